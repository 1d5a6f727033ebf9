"""BigCommerce V2 orders as the API returns them (developer.bigcommerce.com, Orders V2: Get an
Order, List Order Products, Get Order Shipping Addresses): amounts as strings with four decimal
places, tax exclusive prices with the tax worked out per line, discounts in each product's
`applied_discounts`. Used by the adapter's unit tests and served by the BigCommerce double."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

FOUR = Decimal("0.0001")
STORE_HASH = "abc123xyz"


def money(value: Decimal) -> str:
    return str(value.quantize(FOUR, rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Item:
    sku: str
    quantity: int
    price_ex_tax: Decimal
    discount: Decimal = Decimal(0)  # a coupon's share of this line, tax exclusive


DEFAULT_ITEMS = (
    Item("BC-MUG", 2, Decimal("12.50")),
    Item("BC-TEE", 1, Decimal("20.00"), discount=Decimal("5.00")),
)


def shipping_address(order_id: int, address_id: int, **overrides: Any) -> dict[str, Any]:
    address: dict[str, Any] = {
        "id": address_id,
        "order_id": order_id,
        "first_name": "Grace",
        "last_name": "Hopper",
        "company": "",
        "street_1": "1 Navy Yard Road",
        "street_2": "Suite 4",
        "city": "Arlington",
        "zip": "22202",
        "country": "United States",
        "country_iso2": "US",
        "state": "Virginia",
        "email": "grace@example.com",
        "phone": "+1 703 555 0100",
        "items_total": 3,
        "items_shipped": 0,
        "shipping_method": "Flat Rate",
        "base_cost": "4.9500",
        "cost_ex_tax": "4.9500",
        "cost_inc_tax": "5.3584",
        "cost_tax": "0.4084",
        "cost_tax_class_id": 2,
        "base_handling_cost": "0.0000",
        "handling_cost_ex_tax": "0.0000",
        "handling_cost_inc_tax": "0.0000",
        "handling_cost_tax": "0.0000",
        "handling_cost_tax_class_id": 2,
        "shipping_zone_id": 1,
        "shipping_zone_name": "United States",
        "form_fields": [],
        "shipping_quotes": {
            "url": f"https://api.bigcommerce.com/stores/{STORE_HASH}/v2/orders/{order_id}"
            f"/shipping_addresses/{address_id}/shipping_quotes",
            "resource": f"/orders/{order_id}/shipping_addresses/{address_id}/shipping_quotes",
        },
    }
    address.update(overrides)
    return address


def order_parts(
    order_id: int = 250,
    items: tuple[Item, ...] = DEFAULT_ITEMS,
    *,
    tax_rate: Decimal = Decimal("0.0825"),
    shipping: Decimal = Decimal("4.95"),
    status_id: int = 11,
    status: str = "Awaiting Fulfillment",
    payment_status: str = "captured",
    currency: str = "USD",
    first_product_id: int | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(order, products, shipping addresses) of one order, as three API answers."""
    address_id = order_id * 10 + 1
    first_id = first_product_id if first_product_id is not None else order_id * 10 + 1
    products = []
    subtotal_ex = subtotal_tax = discounts = Decimal(0)
    for index, item in enumerate(items):
        price_tax = item.price_ex_tax * tax_rate
        total_ex = item.price_ex_tax * item.quantity
        line_tax = (total_ex - item.discount) * tax_rate
        subtotal_ex += total_ex
        subtotal_tax += line_tax
        discounts += item.discount
        applied = (
            [
                {
                    "id": "total-coupon",
                    "amount": money(item.discount),
                    "name": "$5 off",
                    "code": "SAVE5",
                    "target": "order",
                }
            ]
            if item.discount
            else []
        )
        products.append(
            {
                "id": first_id + index,
                "order_id": order_id,
                "product_id": 77 + index,
                "variant_id": 770 + index,
                "order_pickup_method_id": 0,
                "order_address_id": address_id,
                "name": f"Product {item.sku}",
                "sku": item.sku,
                "upc": "",
                "type": "physical",
                "base_price": money(item.price_ex_tax),
                "price_ex_tax": money(item.price_ex_tax),
                "price_inc_tax": money(item.price_ex_tax + price_tax),
                "price_tax": money(price_tax),
                "base_total": money(total_ex),
                "total_ex_tax": money(total_ex),
                "total_inc_tax": money(total_ex + item.price_ex_tax * item.quantity * tax_rate),
                "total_tax": money(line_tax),
                "quantity": item.quantity,
                "base_cost_price": "0.0000",
                "cost_price_inc_tax": "0.0000",
                "cost_price_ex_tax": "0.0000",
                "weight": 1,
                "is_refunded": False,
                "quantity_refunded": 0,
                "refund_amount": "0.0000",
                "return_id": 0,
                "wrapping_id": 0,
                "wrapping_name": None,
                "base_wrapping_cost": "0.0000",
                "wrapping_cost_ex_tax": "0.0000",
                "wrapping_cost_inc_tax": "0.0000",
                "wrapping_cost_tax": "0.0000",
                "wrapping_message": "",
                "quantity_shipped": 0,
                "event_name": None,
                "event_date": None,
                "fixed_shipping_cost": "0.0000",
                "ebay_item_id": "",
                "ebay_transaction_id": "",
                "option_set_id": None,
                "parent_order_product_id": None,
                "is_bundled_product": False,
                "bin_picking_number": "",
                "external_id": None,
                "brand": "",
                "applied_discounts": applied,
                "product_options": [],
                "configurable_fields": [],
                "discounted_total_inc_tax": money((total_ex - item.discount) * (1 + tax_rate)),
            }
        )
    shipping_tax = shipping * tax_rate
    total_tax = subtotal_tax + shipping_tax
    total_ex = subtotal_ex - discounts + shipping
    order = {
        "id": order_id,
        "customer_id": 11,
        "date_created": "Tue, 01 Dec 2026 11:40:11 +0000",
        "date_modified": "Tue, 01 Dec 2026 11:41:25 +0000",
        "date_shipped": "",
        "status_id": status_id,
        "status": status,
        "subtotal_ex_tax": money(subtotal_ex),
        "subtotal_inc_tax": money(subtotal_ex + subtotal_tax),
        "subtotal_tax": money(subtotal_tax),
        "base_shipping_cost": money(shipping),
        "shipping_cost_ex_tax": money(shipping),
        "shipping_cost_inc_tax": money(shipping + shipping_tax),
        "shipping_cost_tax": money(shipping_tax),
        "shipping_cost_tax_class_id": 2,
        "base_handling_cost": "0.0000",
        "handling_cost_ex_tax": "0.0000",
        "handling_cost_inc_tax": "0.0000",
        "handling_cost_tax": "0.0000",
        "handling_cost_tax_class_id": 2,
        "base_wrapping_cost": "0.0000",
        "wrapping_cost_ex_tax": "0.0000",
        "wrapping_cost_inc_tax": "0.0000",
        "wrapping_cost_tax": "0.0000",
        "wrapping_cost_tax_class_id": 3,
        "total_ex_tax": money(total_ex),
        "total_inc_tax": money(total_ex + total_tax),
        "total_tax": money(total_tax),
        "is_tax_inclusive_pricing": False,
        "items_total": sum(item.quantity for item in items),
        "items_shipped": 0,
        "payment_method": "Test Payment Gateway",
        "payment_provider_id": "",
        "payment_status": payment_status,
        "refunded_amount": "0.0000",
        "order_is_digital": False,
        "store_credit_amount": "0.0000",
        "gift_certificate_amount": "0.0000",
        "ip_address": "192.0.2.10",
        "ip_address_v6": "",
        "geoip_country": "United States",
        "geoip_country_iso2": "US",
        "currency_id": 1,
        "currency_code": currency,
        "currency_exchange_rate": "1.0000000000",
        "default_currency_id": 1,
        "default_currency_code": currency,
        "staff_notes": "",
        "customer_message": "",
        "discount_amount": money(discounts),
        "coupon_discount": money(discounts),
        "shipping_address_count": 1,
        "ebay_order_id": "0",
        "cart_id": "7e48f7ef-2e88-4817-aea4-b0ed01490114",
        "billing_address": {
            "first_name": "Grace",
            "last_name": "Hopper",
            "company": "",
            "street_1": "10 Billing Street",
            "street_2": "",
            "city": "Austin",
            "state": "Texas",
            "zip": "78751",
            "country": "United States",
            "country_iso2": "US",
            "phone": "+1 512 555 0199",
            "email": "grace.billing@example.com",
            "form_fields": [],
        },
        "is_email_opt_in": False,
        "credit_card_type": None,
        "order_source": "www",
        "channel_id": 1,
        "external_source": None,
        "products": {
            "url": f"https://api.bigcommerce.com/stores/{STORE_HASH}/v2/orders/{order_id}/products",
            "resource": f"/orders/{order_id}/products",
        },
        "shipping_addresses": {
            "url": f"https://api.bigcommerce.com/stores/{STORE_HASH}/v2/orders/{order_id}"
            "/shipping_addresses",
            "resource": f"/orders/{order_id}/shipping_addresses",
        },
        "coupons": {
            "url": f"https://api.bigcommerce.com/stores/{STORE_HASH}/v2/orders/{order_id}/coupons",
            "resource": f"/orders/{order_id}/coupons",
        },
        "external_id": None,
        "external_merchant_id": None,
        "tax_provider_id": "BasicTaxProvider",
        "store_default_currency_code": currency,
        "store_default_to_transactional_exchange_rate": "1.0000000000",
        "custom_status": status,
        "customer_locale": "en",
        "external_order_id": "",
        "fees": [],
    }
    return order, products, [shipping_address(order_id, address_id)]


def document(
    order: dict[str, Any], products: list[dict[str, Any]], addresses: list[dict[str, Any]]
) -> dict[str, Any]:
    """The order with its products and shipping addresses embedded, as the connector composes
    it for order-intake."""
    composed = copy.deepcopy(order)
    composed["products"] = copy.deepcopy(products)
    composed["shipping_addresses"] = copy.deepcopy(addresses)
    return composed


def bigcommerce_order(order_id: int = 250, **kwargs: Any) -> dict[str, Any]:
    return document(*order_parts(order_id, **kwargs))
