"""Channel payloads shaped as each channel documents them, for unit, component and
integration tests. Each builder returns a fresh dict; pass SKUs and ids to vary it."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from services.order_intake.channels.adapters.base import sign

SHOPIFY_SECRET = "test-shopify-secret"
WOOCOMMERCE_SECRET = "test-woocommerce-secret"


def body(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload)


def shopify_headers(
    raw: bytes,
    *,
    topic: str = "orders/create",
    webhook_id: str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    secret: str = SHOPIFY_SECRET,
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-SHA256": sign(secret.encode(), raw),
        "X-Shopify-Shop-Domain": "oms-test-shop.myshopify.com",
        "X-Shopify-API-Version": "2024-07",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Triggered-At": "2024-07-10T10:30:01.123Z",
    }


def woocommerce_headers(
    raw: bytes,
    *,
    topic: str = "order.created",
    delivery_id: str = "7f3c0e2a9b1d4c5e8f6a7b8c9d0e1f2a",
    secret: str = WOOCOMMERCE_SECRET,
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/8.5.1 Hookshot (WordPress/6.4.2)",
        "X-WC-Webhook-Source": "https://shop.example.com/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": topic.split(".", 1)[1],
        "X-WC-Webhook-Signature": sign(secret.encode(), raw),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": delivery_id,
    }


_SHOPIFY_ADDRESS = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "name": "Ada Lovelace",
    "company": None,
    "address1": "Invalidenstraße 116",
    "address2": "3. OG",
    "city": "Berlin",
    "province": "Berlin",
    "province_code": "BE",
    "zip": "10115",
    "country": "Germany",
    "country_code": "DE",
    "phone": "+49 30 1234567",
    "latitude": 52.5302,
    "longitude": 13.3816,
}


def shopify_order(
    order_id: int = 5940139491234,
    *,
    skus: tuple[str, str] = ("MUG-1", "TSHIRT-M"),
    financial_status: str = "paid",
) -> dict[str, Any]:
    """A Shopify `orders/create` body: 2 x MUG at 12.50, 1 x T-shirt at 25.00 less a 5.00
    discount, standard shipping 4.95, 19 % VAT 9.49: total 59.44 EUR."""
    mug, shirt = skus
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": "#1001",
        "order_number": 1001,
        "email": "ada@example.com",
        "contact_email": "ada@example.com",
        "phone": None,
        "created_at": "2024-07-10T12:30:00+02:00",
        "processed_at": "2024-07-10T12:30:00+02:00",
        "currency": "EUR",
        "presentment_currency": "EUR",
        "financial_status": financial_status,
        "fulfillment_status": None,
        "confirmed": True,
        "test": False,
        "taxes_included": False,
        "subtotal_price": "45.00",
        "total_line_items_price": "50.00",
        "total_discounts": "5.00",
        "total_tax": "9.49",
        "total_price": "59.44",
        "total_weight": 900,
        "cancelled_at": None,
        "cancel_reason": None,
        "gateway": "shopify_payments",
        "payment_gateway_names": ["shopify_payments"],
        "discount_codes": [{"code": "SUMMER5", "amount": "5.00", "type": "fixed_amount"}],
        "line_items": [
            {
                "id": 13702870122658,
                "admin_graphql_api_id": "gid://shopify/LineItem/13702870122658",
                "variant_id": 40277183430818,
                "product_id": 6834218188962,
                "title": "Enamel mug",
                "name": "Enamel mug - White",
                "sku": mug,
                "quantity": 2,
                "price": "12.50",
                "total_discount": "0.00",
                "fulfillable_quantity": 2,
                "requires_shipping": True,
                "taxable": True,
                "grams": 300,
                "vendor": "OMS test shop",
                "discount_allocations": [],
                "tax_lines": [{"title": "MwSt", "price": "4.75", "rate": 0.19}],
            },
            {
                "id": 13702870155426,
                "admin_graphql_api_id": "gid://shopify/LineItem/13702870155426",
                "variant_id": 40277183463586,
                "product_id": 6834218221730,
                "title": "T-shirt",
                "name": "T-shirt - M",
                "sku": shirt,
                "quantity": 1,
                "price": "25.00",
                "total_discount": "0.00",
                "fulfillable_quantity": 1,
                "requires_shipping": True,
                "taxable": True,
                "grams": 300,
                "vendor": "OMS test shop",
                "discount_allocations": [{"amount": "5.00", "discount_application_index": 0}],
                "tax_lines": [{"title": "MwSt", "price": "3.80", "rate": 0.19}],
            },
        ],
        "shipping_lines": [
            {
                "id": 4190498652322,
                "title": "Standard",
                "code": "Standard",
                "source": "shopify",
                "price": "4.95",
                "discounted_price": "4.95",
                "tax_lines": [{"title": "MwSt", "price": "0.94", "rate": 0.19}],
            }
        ],
        "shipping_address": dict(_SHOPIFY_ADDRESS),
        "billing_address": dict(_SHOPIFY_ADDRESS),
        "customer": {
            "id": 6512456712354,
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "phone": None,
            "state": "enabled",
            "verified_email": True,
        },
    }


def shopify_cancelled(order_id: int = 5940139491234, **kwargs: Any) -> dict[str, Any]:
    """The `orders/cancelled` body: the order, with its cancellation."""
    order = shopify_order(order_id, **kwargs)
    order.update(
        cancelled_at="2024-07-10T13:05:00+02:00",
        cancel_reason="customer",
        financial_status="refunded",
    )
    return order


def woocommerce_order(
    order_id: int = 727,
    *,
    skus: tuple[str, str] = ("SOCK-3", "MUG-1"),
    status: str = "processing",
) -> dict[str, Any]:
    """A WooCommerce REST v3 order: 3 socks for 10.00 (the line total: 3.33 + 3.33 + 3.34),
    2 mugs for 25.00, shipping 4.95, tax 7.59: total 47.54 EUR."""
    socks, mug = skus
    paid = status in {"processing", "completed"}
    return {
        "id": order_id,
        "parent_id": 0,
        "number": str(order_id),
        "order_key": "wc_order_7b5c0c2a1e3f4",
        "created_via": "checkout",
        "version": "8.5.1",
        "status": status,
        "currency": "EUR",
        "date_created": "2024-07-10T12:31:02",
        "date_created_gmt": "2024-07-10T10:31:02",
        "date_modified": "2024-07-10T12:31:05",
        "discount_total": "0.00",
        "discount_tax": "0.00",
        "shipping_total": "4.95",
        "shipping_tax": "0.94",
        "cart_tax": "6.65",
        "total": "47.54",
        "total_tax": "7.59",
        "prices_include_tax": False,
        "customer_id": 0,
        "customer_note": "",
        "billing": {
            "first_name": "Grace",
            "last_name": "Hopper",
            "company": "",
            "address_1": "Friedrichstraße 43",
            "address_2": "",
            "city": "Berlin",
            "state": "BE",
            "postcode": "10117",
            "country": "DE",
            "email": "grace@example.com",
            "phone": "+49 30 5550100",
        },
        "shipping": {
            "first_name": "Grace",
            "last_name": "Hopper",
            "company": "",
            "address_1": "Friedrichstraße 43",
            "address_2": "Hinterhaus",
            "city": "Berlin",
            "state": "BE",
            "postcode": "10117",
            "country": "DE",
            "phone": "",
        },
        "payment_method": "stripe",
        "payment_method_title": "Credit Card (Stripe)",
        "transaction_id": "pi_3PaBcD2eZvKYlo2C1xYz" if paid else "",
        "date_paid": "2024-07-10T12:31:05" if paid else None,
        "date_paid_gmt": "2024-07-10T10:31:05" if paid else None,
        "date_completed": None,
        "cart_hash": "3f1c8e6a0b2d4f5e",
        "line_items": [
            {
                "id": 315,
                "name": "Wool socks (3-pack)",
                "product_id": 93,
                "variation_id": 0,
                "quantity": 3,
                "tax_class": "",
                "subtotal": "10.00",
                "subtotal_tax": "1.90",
                "total": "10.00",
                "total_tax": "1.90",
                "taxes": [{"id": 1, "total": "1.9", "subtotal": "1.9"}],
                "meta_data": [],
                "sku": socks,
                "price": 3.3333333333333335,
            },
            {
                "id": 316,
                "name": "Enamel mug",
                "product_id": 94,
                "variation_id": 0,
                "quantity": 2,
                "tax_class": "",
                "subtotal": "25.00",
                "subtotal_tax": "4.75",
                "total": "25.00",
                "total_tax": "4.75",
                "taxes": [{"id": 1, "total": "4.75", "subtotal": "4.75"}],
                "meta_data": [],
                "sku": mug,
                "price": 12.5,
            },
        ],
        "tax_lines": [
            {
                "id": 318,
                "rate_code": "DE-MWST-1",
                "rate_id": 1,
                "label": "MwSt",
                "compound": False,
                "tax_total": "6.65",
                "shipping_tax_total": "0.94",
            }
        ],
        "shipping_lines": [
            {
                "id": 317,
                "method_title": "Flat rate",
                "method_id": "flat_rate",
                "instance_id": "1",
                "total": "4.95",
                "total_tax": "0.94",
                "taxes": [],
            }
        ],
        "fee_lines": [],
        "coupon_lines": [],
        "refunds": [],
        "set_paid": paid,
    }


def _amazon_money(amount: str, currency: str = "USD") -> dict[str, str]:
    return {"CurrencyCode": currency, "Amount": amount}


def amazon_order(
    order_id: str = "113-4567890-1234567",
    *,
    skus: tuple[str, str] = ("MUG-1", "TSHIRT-M"),
    status: str = "Unshipped",
) -> dict[str, Any]:
    """An SP-API order (getOrder) with its items (getOrderItems) on Amazon.com (prices
    without tax): 3 mugs for 29.99 (the line total: 9.99 + 10.00 + 10.00), 2 T-shirts for
    40.00 less a 5.00 promotion (17.50 each), shipping 3.99, tax 6.63: total 75.61 USD."""
    mug, shirt = skus
    return {
        "AmazonOrderId": order_id,
        "SellerOrderId": order_id,
        "PurchaseDate": "2024-07-10T10:29:51Z",
        "LastUpdateDate": "2024-07-10T10:59:12Z",
        "OrderStatus": status,
        "FulfillmentChannel": "MFN",
        "SalesChannel": "Amazon.com",
        "ShipServiceLevel": "Std US D2D Dom",
        "ShipmentServiceLevelCategory": "Standard",
        "OrderTotal": _amazon_money("75.61"),
        "NumberOfItemsShipped": 0,
        "NumberOfItemsUnshipped": 5,
        "PaymentMethod": "Other",
        "PaymentMethodDetails": ["Standard"],
        "MarketplaceId": "ATVPDKIKX0DER",
        "OrderType": "StandardOrder",
        "EarliestShipDate": "2024-07-11T07:00:00Z",
        "LatestShipDate": "2024-07-12T06:59:59Z",
        "IsBusinessOrder": False,
        "IsPrime": False,
        "IsPremiumOrder": False,
        "IsGlobalExpressEnabled": False,
        "IsReplacementOrder": False,
        "IsSoldByAB": False,
        "IsISPU": False,
        "IsAccessPointOrder": False,
        "ShippingAddress": {
            "Name": "Grace Hopper",
            "AddressLine1": "410 Terry Ave N",
            "City": "Seattle",
            "StateOrRegion": "WA",
            "PostalCode": "98109-5210",
            "CountryCode": "US",
            "Phone": "+1 206-555-0100",
            "AddressType": "Residential",
        },
        "BuyerInfo": {
            "BuyerEmail": "q8w5z3abcd7y2tf@marketplace.amazon.com",
            "BuyerName": "Grace Hopper",
        },
        "OrderItems": [
            {
                "ASIN": "B00X4WHP5E",
                "SellerSKU": mug,
                "OrderItemId": "52852651034158",
                "Title": "Enamel mug, white",
                "QuantityOrdered": 3,
                "QuantityShipped": 0,
                "ProductInfo": {"NumberOfItems": "1"},
                "ItemPrice": _amazon_money("29.99"),
                "ShippingPrice": _amazon_money("3.99"),
                "ItemTax": _amazon_money("3.06"),
                "ShippingTax": _amazon_money("0.00"),
                "ShippingDiscount": _amazon_money("0.00"),
                "ShippingDiscountTax": _amazon_money("0.00"),
                "PromotionDiscount": _amazon_money("0.00"),
                "PromotionDiscountTax": _amazon_money("0.00"),
                "PromotionIds": [],
                "IsGift": "false",
                "ConditionId": "New",
                "ConditionSubtypeId": "New",
                "IsTransparency": False,
            },
            {
                "ASIN": "B07Q2X9L4M",
                "SellerSKU": shirt,
                "OrderItemId": "52852651034159",
                "Title": "T-shirt, M",
                "QuantityOrdered": 2,
                "QuantityShipped": 0,
                "ProductInfo": {"NumberOfItems": "1"},
                "ItemPrice": _amazon_money("40.00"),
                "ShippingPrice": _amazon_money("0.00"),
                "ItemTax": _amazon_money("3.57"),
                "ShippingTax": _amazon_money("0.00"),
                "ShippingDiscount": _amazon_money("0.00"),
                "ShippingDiscountTax": _amazon_money("0.00"),
                "PromotionDiscount": _amazon_money("5.00"),
                "PromotionDiscountTax": _amazon_money("0.00"),
                "PromotionIds": ["SUMMER-5-OFF"],
                "IsGift": "false",
                "ConditionId": "New",
                "ConditionSubtypeId": "New",
                "IsTransparency": False,
            },
        ],
    }


def amazon_de_order(order_id: str = "302-1234567-7654321", sku: str = "MUG-1") -> dict[str, Any]:
    """An Amazon.de order: prices INCLUDE 19 % VAT. 2 mugs for 23.80 (VAT 3.80 inside),
    shipping 5.95 (VAT 0.95 inside): total 29.75 EUR."""
    return {
        "AmazonOrderId": order_id,
        "OrderStatus": "Unshipped",
        "FulfillmentChannel": "MFN",
        "SalesChannel": "Amazon.de",
        "ShipmentServiceLevelCategory": "Expedited",
        "OrderTotal": _amazon_money("29.75", "EUR"),
        "MarketplaceId": "A1PA6795UKMFR9",
        "ShippingAddress": {
            "Name": "Emmy Noether",
            "AddressLine1": "Bunsenstraße 3-5",
            "AddressLine2": "Mathematisches Institut",
            "City": "Göttingen",
            "StateOrRegion": "Niedersachsen",
            "PostalCode": "37073",
            "CountryCode": "DE",
        },
        "BuyerInfo": {"BuyerEmail": "x1y2z3@marketplace.amazon.de"},
        "OrderItems": [
            {
                "ASIN": "B00X4WHP5E",
                "SellerSKU": sku,
                "OrderItemId": "11122233344455",
                "QuantityOrdered": 2,
                "ItemPrice": _amazon_money("23.80", "EUR"),
                "ShippingPrice": _amazon_money("5.95", "EUR"),
                "ItemTax": _amazon_money("3.80", "EUR"),
                "ShippingTax": _amazon_money("0.95", "EUR"),
                "PromotionDiscount": _amazon_money("0.00", "EUR"),
                "PromotionDiscountTax": _amazon_money("0.00", "EUR"),
            }
        ],
    }


def _ebay_money(value: str, currency: str = "GBP") -> dict[str, str]:
    return {"value": value, "currency": currency}


def ebay_order(
    order_id: str = "12-34567-89012",
    *,
    skus: tuple[str, str] = ("MUG-1", "TSHIRT-M"),
    payment_status: str = "PAID",
    cancel_state: str = "NONE_REQUESTED",
) -> dict[str, Any]:
    """A Sell Fulfillment API order (getOrder): 3 mugs for 29.99 (9.99 + 10.00 + 10.00),
    2 T-shirts for 29.98 less a 3.00 promotion (13.49 each), delivery 4.50: total 61.47 GBP."""
    mug, shirt = skus
    return {
        "orderId": order_id,
        "legacyOrderId": "110123456789-27123456789",
        "creationDate": "2024-07-10T10:31:00.000Z",
        "lastModifiedDate": "2024-07-10T10:35:12.000Z",
        "orderFulfillmentStatus": "NOT_STARTED",
        "orderPaymentStatus": payment_status,
        "sellerId": "oms_test_seller",
        "buyer": {
            "username": "alan_t_1912",
            "taxAddress": {
                "stateOrProvince": "Buckinghamshire",
                "postalCode": "MK3 6EB",
                "city": "Milton Keynes",
                "countryCode": "GB",
            },
            "buyerRegistrationAddress": {
                "fullName": "Alan Turing",
                "contactAddress": {
                    "addressLine1": "2 Bletchley Park",
                    "city": "Milton Keynes",
                    "postalCode": "MK3 6EB",
                    "countryCode": "GB",
                },
                "primaryPhone": {"phoneNumber": "+44 1908 640404"},
                "email": "alan.t@example.co.uk",
            },
        },
        "pricingSummary": {
            "priceSubtotal": _ebay_money("59.97"),
            "priceDiscount": _ebay_money("-3.00"),
            "deliveryCost": _ebay_money("4.50"),
            "tax": _ebay_money("0.00"),
            "total": _ebay_money("61.47"),
        },
        "cancelStatus": {"cancelState": cancel_state, "cancelRequests": []},
        "paymentSummary": {
            "totalDueSeller": _ebay_money("61.47"),
            "payments": [
                {
                    "paymentMethod": "EBAY",
                    "paymentReferenceId": "7D8E9F0A1B2C3D4E",
                    "paymentStatus": "PAID",
                    "amount": _ebay_money("61.47"),
                }
            ],
            "refunds": [],
        },
        "fulfillmentStartInstructions": [
            {
                "fulfillmentInstructionsType": "SHIP_TO",
                "minEstimatedDeliveryDate": "2024-07-12T07:00:00.000Z",
                "maxEstimatedDeliveryDate": "2024-07-15T07:00:00.000Z",
                "ebaySupportedFulfillment": False,
                "shippingStep": {
                    "shipTo": {
                        "fullName": "Alan Turing",
                        "contactAddress": {
                            "addressLine1": "2 Bletchley Park",
                            "addressLine2": "The Mansion",
                            "city": "Milton Keynes",
                            "stateOrProvince": "Buckinghamshire",
                            "postalCode": "MK3 6EB",
                            "countryCode": "GB",
                        },
                        "primaryPhone": {"phoneNumber": "+44 1908 640404"},
                        "email": "alan.t@example.co.uk",
                    },
                    "shippingCarrierCode": "Royal Mail",
                    "shippingServiceCode": "UK_RoyalMailSecondClassStandard",
                },
            }
        ],
        "fulfillmentHrefs": [],
        "lineItems": [
            {
                "lineItemId": "10000000001",
                "legacyItemId": "110123456789",
                "sku": mug,
                "title": "Enamel mug, white",
                "lineItemCost": _ebay_money("29.99"),
                "quantity": 3,
                "soldFormat": "FIXED_PRICE",
                "listingMarketplaceId": "EBAY_GB",
                "purchaseMarketplaceId": "EBAY_GB",
                "lineItemFulfillmentStatus": "NOT_STARTED",
                "total": _ebay_money("34.49"),
                "deliveryCost": {"shippingCost": _ebay_money("4.50")},
                "appliedPromotions": [],
                "taxes": [],
                "refunds": [],
                "properties": {"buyerProtection": True},
                "lineItemFulfillmentInstructions": {
                    "guaranteedDelivery": False,
                    "shipByDate": "2024-07-12T22:59:59.000Z",
                },
            },
            {
                "lineItemId": "10000000002",
                "legacyItemId": "110123456790",
                "sku": shirt,
                "title": "T-shirt, M",
                "lineItemCost": _ebay_money("29.98"),
                "quantity": 2,
                "soldFormat": "FIXED_PRICE",
                "listingMarketplaceId": "EBAY_GB",
                "purchaseMarketplaceId": "EBAY_GB",
                "lineItemFulfillmentStatus": "NOT_STARTED",
                "total": _ebay_money("26.98"),
                "deliveryCost": {"shippingCost": _ebay_money("0.00")},
                "appliedPromotions": [
                    {
                        "promotionId": "5012345678",
                        "description": "Save 10% on T-shirts",
                        "discountAmount": _ebay_money("3.00"),
                    }
                ],
                "taxes": [],
                "refunds": [],
                "properties": {"buyerProtection": True},
                "lineItemFulfillmentInstructions": {
                    "guaranteedDelivery": False,
                    "shipByDate": "2024-07-12T22:59:59.000Z",
                },
            },
        ],
    }


def without(payload: dict[str, Any], path: str) -> dict[str, Any]:
    """A copy of the payload with the field at `a.0.b` removed."""
    copied = copy.deepcopy(payload)
    *parents, last = path.split(".")
    node: Any = copied
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        del node[int(last)]
    else:
        del node[last]
    return copied
