"""OTTO Market Orders v4 orders as `GET /v4/orders` returns them (api.otto.market, Orders
interface: PartnerOrder, PositionItem, Product, Amount, Address, InitialDeliveryFee), for the
adapter's tests, the OTTO double and the integration test. Amounts are JSON numbers, as OTTO
sends them."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

SALES_ORDER_ID = "a3b5c7d9-1f2e-4d6c-8b0a-9e8f7d6c5b4a"


_NUMBER = re.compile(r'"__number__(-?[0-9]+(?:\.[0-9]+)?)"')


def body(payload: Any) -> bytes:
    """JSON with every Decimal as a JSON number of exactly its digits (as OTTO sends amounts)."""
    text = json.dumps(payload, default=_number, ensure_ascii=False)
    return _NUMBER.sub(r"\1", text).encode()


def _number(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"__number__{value}"
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def money(amount: str, currency: str = "EUR") -> dict[str, Any]:
    return {"amount": Decimal(amount), "currency": currency}


def address(**changes: Any) -> dict[str, Any]:
    found = {
        "salutation": "MS",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "street": "Invalidenstraße",
        "houseNumber": "116",
        "addition": "3. OG",
        "zipCode": "10115",
        "city": "Berlin",
        "countryCode": "DEU",
        "email": "ada@example.com",
        "phoneNumber": "+49 30 1234567",
    }
    found.update(changes)
    return found


def position_item(
    position_item_id: str,
    sku: str,
    gross: str = "19.99",
    *,
    status: str = "PROCESSABLE",
    vat_rate: Any = 19,
    currency: str = "EUR",
    **extra: Any,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "positionItemId": position_item_id,
        "fulfillmentStatus": status,
        "itemValueGrossPrice": money(gross, currency),
        "product": {
            "sku": sku,
            "ean": "4006381333931",
            "articleNumber": f"A-{sku}",
            "productTitle": f"Product {sku}",
            "vatRate": vat_rate,
        },
        "expectedDeliveryDate": "2026-12-04T12:00:00.000+00:00",
    }
    if status == "PROCESSABLE":
        item["processableDate"] = "2026-12-01T10:00:05.000+00:00"
    if status == "SENT":
        item["sentDate"] = "2026-12-02T09:00:00.000+00:00"
    if status.startswith("CANCELLED"):
        item["cancellationDate"] = "2026-12-01T11:00:00.000+00:00"
        item["cancellationReason"] = "CANCELLED_ON_CUSTOMER_WISH"
    item.update(extra)
    return item


def items_of(
    sales_order_id: str,
    units: Sequence[tuple[str, int, str]],
    *,
    status: str = "PROCESSABLE",
    vat_rate: Any = 19,
) -> list[dict[str, Any]]:
    """Position items for (SKU, units, gross unit price): one item per unit."""
    found: list[dict[str, Any]] = []
    for sku, count, gross in units:
        for _ in range(count):
            found.append(
                position_item(
                    f"{sales_order_id[:8]}-{len(found) + 1:04d}",
                    sku,
                    gross,
                    status=status,
                    vat_rate=vat_rate,
                )
            )
    return found


def order(
    sales_order_id: str = SALES_ORDER_ID,
    *,
    items: list[dict[str, Any]] | None = None,
    fees: Sequence[tuple[str, Any]] = (("4.95", 19),),
    order_number: str = "bu5h6x7z01",
    order_date: str = "2026-12-01T10:00:00.000+00:00",
    last_modified: str = "2026-12-01T10:00:05.000+00:00",
    **changes: Any,
) -> dict[str, Any]:
    """An order of 2 mugs and 3 shirts at 19.99 (19 % VAT) and a book at 12.99 (7 %), with a
    4.95 delivery fee (19 %): 117.89 in all."""
    if items is None:
        items = items_of(sales_order_id, [("MUG-1", 2, "19.99"), ("TEE-M", 3, "19.99")])
        items.append(position_item(f"{sales_order_id[:8]}-book", "BOOK-1", "12.99", vat_rate=7))
    found: dict[str, Any] = {
        "salesOrderId": sales_order_id,
        "orderNumber": order_number,
        "orderDate": order_date,
        "lastModifiedDate": last_modified,
        "orderLifecycleInformation": {"lifecycleChangeDate": last_modified},
        "payment": {"paymentMethod": "PAYPAL"},
        "positionItems": items,
        "deliveryAddress": address(),
        "invoiceAddress": address(email="4c1f0e@otto-pseudonym.example"),
        "initialDeliveryFees": [
            {
                "name": "DELIVERY_FEE_STANDARD",
                "deliveryFeeAmount": money(amount),
                "vatRate": rate,
                "positionItemIds": [item["positionItemId"] for item in items],
            }
            for amount, rate in fees
        ],
        "links": [{"rel": "self", "href": f"/v4/orders/{sales_order_id}"}],
    }
    found.update(changes)
    return found
