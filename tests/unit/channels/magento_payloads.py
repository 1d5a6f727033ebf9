"""Magento 2 REST orders shaped as `GET /V1/orders/{id}` returns them (sales order with its
items, billing address and `extension_attributes.shipping_assignments`), for the adapter's unit
tests, the connector's Magento double and the integration test. Amounts are JSON numbers, as
Magento sends them."""

from __future__ import annotations

import copy
from typing import Any

_ADDRESS = {
    "address_type": "shipping",
    "city": "Berlin",
    "company": "",
    "country_id": "DE",
    "email": "linus@example.com",
    "entity_id": 82,
    "firstname": "Linus",
    "lastname": "Torvalds",
    "parent_id": 41,
    "postcode": "10178",
    "region": "Berlin",
    "region_code": "BER",
    "region_id": 82,
    "street": ["Alexanderplatz 1", "5. Etage"],
    "telephone": "+49 30 5551234",
}


def magento_order(
    entity_id: int = 41,
    *,
    skus: tuple[str, str] = ("MB-01", "WS-TEE-M"),
    state: str = "processing",
    invoiced: bool = True,
    updated_at: str = "2024-07-10 10:31:02",
) -> dict[str, Any]:
    """A Magento order in EUR: 3 bags at 10.00 less a 1.00 discount (29.00: 9.66 + 2 x 9.67),
    a configurable T-shirt (parent item 12 with the simple's SKU, child item 13) 2 x 22.00,
    flat-rate shipping 10.00, tax 15.77 (19%): grand total 98.77."""
    bag, tee = skus
    grand_total = 98.77
    item_common = {
        "order_id": entity_id,
        "store_id": 1,
        "created_at": "2024-07-10 10:30:55",
        "updated_at": updated_at,
        "is_virtual": 0,
        "qty_shipped": 0,
        "qty_canceled": 0,
        "qty_refunded": 0,
        "qty_invoiced": 0,
    }
    items = [
        {
            **item_common,
            "item_id": entity_id * 100 + 11,
            "sku": bag,
            "name": "Joust Duffle Bag",
            "product_id": 1,
            "product_type": "simple",
            "qty_ordered": 3,
            "price": 10,
            "base_price": 10,
            "original_price": 10,
            "price_incl_tax": 11.9,
            "row_total": 30,
            "base_row_total": 30,
            "row_total_incl_tax": 35.7,
            "discount_amount": 1,
            "base_discount_amount": 1,
            "discount_percent": 0,
            "tax_amount": 5.51,
            "base_tax_amount": 5.51,
            "tax_percent": 19,
            "discount_tax_compensation_amount": 0,
        },
        {
            **item_common,
            "item_id": entity_id * 100 + 12,
            "sku": tee,
            "name": "Strike Endurance Tee",
            "product_id": 1819,
            "product_type": "configurable",
            "qty_ordered": 2,
            "price": 22,
            "base_price": 22,
            "original_price": 22,
            "price_incl_tax": 26.18,
            "row_total": 44,
            "base_row_total": 44,
            "row_total_incl_tax": 52.36,
            "discount_amount": 0,
            "base_discount_amount": 0,
            "tax_amount": 8.36,
            "base_tax_amount": 8.36,
            "tax_percent": 19,
            "discount_tax_compensation_amount": 0,
            "product_option": {
                "extension_attributes": {
                    "configurable_item_options": [{"option_id": "93", "option_value": 5}]
                }
            },
        },
        {
            **item_common,
            "item_id": entity_id * 100 + 13,
            "parent_item_id": entity_id * 100 + 12,
            "sku": tee,
            "name": "Strike Endurance Tee-M-Red",
            "product_id": 1811,
            "product_type": "simple",
            "qty_ordered": 2,
            "price": 0,
            "base_price": 0,
            "original_price": 0,
            "row_total": 0,
            "base_row_total": 0,
            "discount_amount": 0,
            "tax_amount": 0,
            "tax_percent": 0,
            "discount_tax_compensation_amount": 0,
        },
    ]
    for item in items:
        if invoiced:
            item["qty_invoiced"] = item["qty_ordered"]
    billing = {**copy.deepcopy(_ADDRESS), "address_type": "billing", "entity_id": 81}
    return {
        "entity_id": entity_id,
        "increment_id": f"{entity_id:09d}",
        "state": state,
        "status": {"new": "pending", "canceled": "canceled", "complete": "complete"}.get(
            state, state
        ),
        "store_id": 1,
        "store_name": "Main Website\nMain Website Store\nDefault Store View",
        "created_at": "2024-07-10 10:30:55",
        "updated_at": updated_at,
        "customer_email": "linus@example.com",
        "customer_firstname": "Linus",
        "customer_lastname": "Torvalds",
        "customer_is_guest": 1,
        "base_currency_code": "EUR",
        "order_currency_code": "EUR",
        "global_currency_code": "EUR",
        "store_currency_code": "EUR",
        "subtotal": 74,
        "base_subtotal": 74,
        "subtotal_incl_tax": 88.06,
        "discount_amount": -1,
        "base_discount_amount": -1,
        "discount_description": "SUMMER1",
        "shipping_amount": 10,
        "base_shipping_amount": 10,
        "shipping_tax_amount": 1.9,
        "shipping_incl_tax": 11.9,
        "shipping_discount_amount": 0,
        "shipping_discount_tax_compensation_amount": 0,
        "discount_tax_compensation_amount": 0,
        "tax_amount": 15.77,
        "base_tax_amount": 15.77,
        "grand_total": grand_total,
        "base_grand_total": grand_total,
        "total_invoiced": grand_total if invoiced else None,
        "total_paid": grand_total if invoiced else None,
        "total_due": 0 if invoiced else grand_total,
        "total_item_count": 3,
        "total_qty_ordered": 7,
        "weight": 3,
        "shipping_description": "Flat Rate - Fixed",
        "items": items,
        "billing_address": billing,
        "payment": {
            "account_status": None,
            "additional_information": ["Check / Money order"],
            "amount_ordered": grand_total,
            "amount_paid": grand_total if invoiced else None,
            "method": "checkmo",
            "entity_id": entity_id,
            "parent_id": entity_id,
        },
        "status_histories": [],
        "extension_attributes": {
            "shipping_assignments": [
                {
                    "shipping": {
                        "address": copy.deepcopy(_ADDRESS),
                        "method": "flatrate_flatrate",
                        "total": {
                            "shipping_amount": 10,
                            "shipping_tax_amount": 1.9,
                            "shipping_incl_tax": 11.9,
                        },
                    },
                    "items": copy.deepcopy(items),
                }
            ],
            "payment_additional_info": [{"key": "method_title", "value": "Check / Money order"}],
            "applied_taxes": [{"code": "DE-19", "title": "MwSt", "percent": 19, "amount": 15.77}],
        },
    }


def tax_included_order(entity_id: int = 52) -> dict[str, Any]:
    """A store whose catalog prices include 19% VAT and whose discounts apply to prices
    including tax: one item at 11.90 gross (`price` 10.00 net), 3 units, a 3.57 gross
    discount (10%) of which 0.57 is tax (`discount_tax_compensation_amount`), shipping 5.95
    gross. Net line 30.00 - 3.57 + 0.57 = 27.00; tax 5.13 + 0.95 = 6.08; grand total 38.08 (35.70 - 3.57 + 5.95)."""
    order = magento_order(entity_id, skus=("MB-01", "UNUSED"))
    [bag] = [item for item in order["items"] if item["product_type"] == "simple"][:1]
    bag.update(
        {
            "price": 10,
            "price_incl_tax": 11.9,
            "row_total": 30,
            "row_total_incl_tax": 35.7,
            "discount_amount": 3.57,
            "discount_tax_compensation_amount": 0.57,
            "tax_amount": 5.13,
        }
    )
    order["items"] = [bag]
    order.update(
        {
            "subtotal": 30,
            "subtotal_incl_tax": 35.7,
            "discount_amount": -3.57,
            "discount_tax_compensation_amount": 0.57,
            "shipping_amount": 5,
            "shipping_incl_tax": 5.95,
            "shipping_tax_amount": 0.95,
            "tax_amount": 6.08,
            "grand_total": 38.08,
            "total_invoiced": 38.08,
        }
    )
    return order
