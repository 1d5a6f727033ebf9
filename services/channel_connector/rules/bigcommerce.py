"""BigCommerce's rules, pure: the API's constants, webhook verification (the shared-secret
header and the Standard Webhooks signature), the order document composed from the order, its
products and shipping addresses, open lines, shipment and stock bodies, the 429 reset header.
The client (clients/bigcommerce.py) does the HTTP around them."""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from services.channel_connector.clients.base import (
    ShipmentPush,
    StockPush,
)
from services.channel_connector.domain import ChannelLine, assign_to_channel_lines

CHANNEL = "bigcommerce"
DEFAULT_API_BASE = "https://api.bigcommerce.com"
DEFAULT_WEBHOOK_HEADER = "x-oms-webhook-secret"
DEFAULT_RATE = 4.0
PAGE_LIMIT = 250
MAX_PAGES = 40
MAX_ADJUSTMENT_ITEMS = 2000
SIGNATURE_TOLERANCE_S = 300
ORDER_SCOPES = frozenset(
    {"store/order/created", "store/order/updated", "store/order/statusUpdated"}
)
CANCELLED = 5
SHIPPED_STATUSES = frozenset({2, 3, 10})  # Shipped, Partially Shipped, Completed
STORE_HASH_PATTERN = re.compile(r"^[A-Za-z0-9]{1,64}$")
ORDER_ID_PATTERN = re.compile(r"^[1-9][0-9]{0,18}$")
# OMS carrier names → BigCommerce `tracking_carrier` (AfterShip courier slugs).
TRACKING_CARRIERS = {
    "ups": "ups",
    "usps": "usps",
    "fedex": "fedex",
    "dhl": "dhl",
    "dhl_express": "dhl",
    "dhl_parcel": "dhl-germany",
    "dhl_de": "dhl-germany",
    "dpd": "dpd",
    "gls": "gls",
    "hermes": "hermes-de",
    "royal_mail": "royal-mail",
    "royalmail": "royal-mail",
    "canada_post": "canada-post",
    "australia_post": "australia-post",
    "postnl": "postnl",
}


# --- pure: webhooks ----------------------------------------------------------------------------


def shared_secret_matches(headers: Mapping[str, str], header: str, secret: str) -> bool:
    """The delivery carries `secret` in `header` (names lower-cased), compared in constant
    time."""
    given = headers.get(header.lower())
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), secret.encode())


def standard_webhook_matches(
    headers: Mapping[str, str],
    body: bytes,
    key: bytes,
    now: float,
    tolerance_s: float = SIGNATURE_TOLERANCE_S,
) -> bool:
    """A Standard Webhooks signature: `webhook-signature` holds space-separated `v1,<base64>`
    entries, one of which is HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}"); the
    timestamp (Unix seconds) is within `tolerance_s` of `now`."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        return False
    try:
        sent_at = int(stamp)
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance_s:
        return False
    expected = hmac.new(key, f"{msg_id}.{sent_at}.".encode() + body, hashlib.sha256).digest()
    for entry in signatures.split():
        version, _, value = entry.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, given):
            return True
    return False


def webhook_order_ids(body: bytes, store_hash: str) -> list[str]:
    """The order a verified order webhook names. Raises ValueError naming what is wrong."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"the webhook body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ValueError("the webhook body must be a JSON object")
    scope = payload.get("scope")
    if scope not in ORDER_SCOPES:
        raise ValueError(
            f"scope: {scope!r} is not handled; subscribe {', '.join(sorted(ORDER_SCOPES))}"
        )
    producer = payload.get("producer")
    if producer is not None and producer != f"stores/{store_hash}":
        raise ValueError(f"producer: {producer!r} is not this account's store")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise ValueError("data: is required")
    if data.get("type", "order") != "order":
        raise ValueError(f"data.type: {data.get('type')!r} is not an order")
    order_id = data.get("id")
    if isinstance(order_id, bool) or not isinstance(order_id, int | str):
        raise ValueError("data.id: is required")
    text = str(order_id).strip()
    if not ORDER_ID_PATTERN.match(text):
        raise ValueError(f"data.id: {order_id!r} is not an order id")
    return [text]


# --- pure: documents and pushes ----------------------------------------------------------------


def compose_order(
    order: Mapping[str, Any],
    products: Sequence[Mapping[str, Any]],
    addresses: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The order with its products and shipping addresses embedded (in the order those keys
    are only links to the sub-resources)."""
    return {**order, "products": list(products), "shipping_addresses": list(addresses)}


def modified_at(order: Mapping[str, Any], fallback: datetime) -> datetime:
    """The order's `date_modified` (RFC 2822, as BigCommerce writes dates)."""
    value = order.get("date_modified") or order.get("date_created")
    if not isinstance(value, str) or not value.strip():
        return fallback
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return fallback
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def open_lines(products: Sequence[Mapping[str, Any]]) -> list[ChannelLine]:
    """The order's products as channel lines: id, SKU, what has not shipped yet."""
    lines = []
    for product in products:
        ordered = int(product.get("quantity") or 0)
        shipped = int(product.get("quantity_shipped") or 0)
        lines.append(
            ChannelLine(
                line_id=str(product["id"]),
                sku=str(product.get("sku") or ""),
                open_quantity=max(0, ordered - shipped),
            )
        )
    return lines


def shipment_comment(key: str) -> str:
    return f"OMS shipment {key}"


def existing_shipment(shipments: Sequence[Mapping[str, Any]], push: ShipmentPush) -> str | None:
    """The id of a shipment already on the order for this push: its key in the comments, or the
    same tracking number."""
    marker = shipment_comment(push.key)
    tracking = push.tracking_number.strip()
    for shipment in shipments:
        if marker in str(shipment.get("comments") or ""):
            return str(shipment.get("id"))
        if tracking and str(shipment.get("tracking_number") or "").strip() == tracking:
            return str(shipment.get("id"))
    return None


def tracking_carrier(carrier: str) -> str:
    """BigCommerce's `tracking_carrier` for an OMS carrier name; "" when it has none (the
    tracking number and link are still sent)."""
    return TRACKING_CARRIERS.get(carrier.strip().lower().replace("-", "_").replace(" ", "_"), "")


def shipment_body(
    push: ShipmentPush,
    products: Sequence[Mapping[str, Any]],
    addresses: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The `POST /v2/orders/{id}/shipments` body for a parcel: its SKUs on the products' open
    quantities (raises UnmatchedShipment when they do not fit), shipped to the products' address
    (ValueError when they go to several)."""
    assigned = assign_to_channel_lines(push.lines, open_lines(products))
    by_id = {str(product["id"]): product for product in products}
    address_ids = {int(by_id[line_id].get("order_address_id") or 0) for line_id, _ in assigned}
    address_ids.discard(0)
    if not address_ids and addresses:
        address_ids = {int(addresses[0]["id"])}
    if len(address_ids) != 1:
        raise ValueError(
            f"order {push.external_id}: the shipped products go to {len(address_ids)} shipping"
            " addresses; one shipment goes to one"
        )
    body: dict[str, Any] = {
        "order_address_id": address_ids.pop(),
        "tracking_number": push.tracking_number.strip()[:50],
        "tracking_carrier": tracking_carrier(push.carrier),
        "comments": shipment_comment(push.key),
        "items": [
            {"order_product_id": int(line_id), "quantity": quantity}
            for line_id, quantity in assigned
        ],
    }
    if push.tracking_url:
        body["tracking_link"] = push.tracking_url[:500]
    return body


def stock_items(levels: Sequence[StockPush], location_id: int) -> list[dict[str, Any]]:
    return [
        {"location_id": location_id, "sku": level.sku, "quantity": max(0, level.quantity)}
        for level in levels
    ]


def reset_wait_s(value: str | None) -> float | None:
    """`X-Rate-Limit-Time-Reset-Ms` in seconds."""
    if not value:
        return None
    try:
        milliseconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, milliseconds / 1000.0)
