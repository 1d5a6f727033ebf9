"""Amazon Selling Partner API decisions, pure (the client in `clients/amazon.py` does the HTTP):
which open order items a shipment confirms, the package reference id a parcel gets, the
`confirmShipment` and Listings `patchListingsItem` bodies, how SP-API errors and rate-limit
headers read, and how long a throttled call waits. No I/O here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.channel_connector.domain import (
    ChannelLine,
    Quantity,
    UnmatchedShipment,
    assign_to_channel_lines,
)

# --- operations and their documented usage plans -------------------------------------------


@dataclass(frozen=True)
class UsagePlan:
    """An SP-API operation's default rate (requests per second) and burst (token bucket size),
    as its API reference documents them; `x-amzn-RateLimit-Limit` may say otherwise."""

    operation: str
    rate: float
    burst: float


GET_ORDERS = UsagePlan("getOrders", 0.0167, 20)
GET_ORDER = UsagePlan("getOrder", 0.5, 30)
GET_ORDER_ITEMS = UsagePlan("getOrderItems", 0.5, 30)
CONFIRM_SHIPMENT = UsagePlan("confirmShipment", 2.0, 10)
PATCH_LISTINGS_ITEM = UsagePlan("patchListingsItem", 5.0, 10)
CREATE_RDT = UsagePlan("createRestrictedDataToken", 1.0, 10)
USAGE_PLANS = (
    GET_ORDERS,
    GET_ORDER,
    GET_ORDER_ITEMS,
    CONFIRM_SHIPMENT,
    PATCH_LISTINGS_ITEM,
    CREATE_RDT,
)

ORDERS_PATH = "/orders/v0/orders"


def restricted_data_request() -> dict[str, Any]:
    """createRestrictedDataToken for getOrders with the buyer's details and shipping address
    (the PII order-intake needs: getOrders returns them only to such a token)."""
    return {
        "restrictedResources": [
            {"method": "GET", "path": ORDERS_PATH, "dataElements": ["buyerInfo", "shippingAddress"]}
        ]
    }


RATE_LIMIT_HEADER = "x-amzn-RateLimit-Limit"


def rate_limit(headers: Mapping[str, str]) -> float | None:
    """The rate (requests per second) an `x-amzn-RateLimit-Limit` header gives, if usable."""
    value = headers.get(RATE_LIMIT_HEADER) or headers.get(RATE_LIMIT_HEADER.lower())
    if not value:
        return None
    try:
        rate = float(value.strip())
    except ValueError:
        return None
    return rate if rate > 0 else None


def throttle_wait(rate: float, throttled_before: int, retry_after_s: float | None = None) -> float:
    """How long to wait after a 429 (SP-API sends no Retry-After, only the rate): the time one
    request token takes to come back at `rate`, doubled for each throttle in a row, or the
    channel's Retry-After when it gives one."""
    if retry_after_s is not None:
        return retry_after_s
    return (1.0 / rate) * float(2**throttled_before)


# --- errors ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiErrorItem:
    code: str
    message: str
    details: str


def errors_of(body: Any) -> list[ApiErrorItem]:
    """The SP-API error list (`{"errors": [{"code", "message", "details"}]}`), [] otherwise."""
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return []
    return [
        ApiErrorItem(
            str(e.get("code") or ""), str(e.get("message") or ""), str(e.get("details") or "")
        )
        for e in body["errors"]
        if isinstance(e, dict)
    ]


def describe(errors: Sequence[ApiErrorItem]) -> str:
    return "; ".join(
        f"{e.code}: {e.message}" + (f" ({e.details})" if e.details else "") for e in errors
    )


def token_refused(errors: Sequence[ApiErrorItem]) -> bool:
    """A 403 that says the access token is expired (or revoked/invalid): fetch a new one and try
    again. Other 403s (the app lacks the role, the seller did not authorise) are final."""
    for error in errors:
        if error.code != "Unauthorized":
            continue
        text = f"{error.message} {error.details}".lower()
        if "access token" in text and ("expired" in text or "invalid" in text):
            return True
    return False


ALREADY_SHIPPED_PHRASES = ("already fulfilled", "already shipped", "already been shipped")


def already_shipped(errors: Sequence[ApiErrorItem]) -> bool:
    """confirmShipment's answer when the items were confirmed before (a repeat)."""
    return any(
        phrase in f"{e.message} {e.details}".lower()
        for e in errors
        for phrase in ALREADY_SHIPPED_PHRASES
    )


# --- orders ------------------------------------------------------------------------------------


def amazon_time(value: datetime) -> str:
    """ISO 8601 in UTC to the second, as SP-API's date parameters take it."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any, field: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field}: expected an ISO 8601 date-time, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{field}: not an ISO 8601 date-time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


NOT_HANDED_ON = frozenset({"Pending", "PendingAvailability"})
"""Order statuses the poller skips: Amazon has not taken the payment, the order has no prices
yet; it comes back with a new LastUpdateDate when it is Unshipped."""


def hand_on(order: Mapping[str, Any]) -> bool:
    return order.get("OrderStatus") not in NOT_HANDED_ON


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{field}: expected a whole number, got {value!r}")
    try:
        number = int(str(value))
    except ValueError as exc:
        raise ValueError(f"{field}: expected a whole number, got {value!r}") from exc
    if number < 0:
        raise ValueError(f"{field}: must not be negative")
    return number


@dataclass(frozen=True)
class OrderItem:
    order_item_id: str
    sku: str
    ordered: int
    shipped: int


def order_items(items: Iterable[Mapping[str, Any]]) -> list[OrderItem]:
    """getOrderItems' items (OrderItemId, SellerSKU, QuantityOrdered, QuantityShipped)."""
    found = []
    for index, item in enumerate(items):
        where = f"OrderItems[{index}]"
        item_id = item.get("OrderItemId")
        sku = item.get("SellerSKU")
        if not isinstance(item_id, str) or not item_id:
            raise ValueError(f"{where}.OrderItemId: is required")
        if not isinstance(sku, str) or not sku:
            raise ValueError(f"{where}.SellerSKU: is required")
        found.append(
            OrderItem(
                item_id,
                sku,
                _int(item.get("QuantityOrdered"), f"{where}.QuantityOrdered"),
                _int(item.get("QuantityShipped", 0), f"{where}.QuantityShipped"),
            )
        )
    return found


# --- shipments ---------------------------------------------------------------------------------


def package_reference_id(key: str) -> str:
    """The parcel's packageReferenceId: Amazon takes only positive numbers, unique within the
    order, and a confirmation sent again with the same one edits that package instead of adding
    one. A numeric parcel id is used as it is; any other becomes a stable number from its hash
    (the same parcel always gets the same one)."""
    if key.isdigit() and int(key) > 0 and len(key) <= 18:
        return str(int(key))
    digest = hashlib.sha256(key.encode()).digest()
    return str(int.from_bytes(digest[:6], "big") + 1)


def _open_lines(items: Sequence[OrderItem], earlier: Iterable[Quantity]) -> list[ChannelLine]:
    """Each item's units Amazon still expects: ordered less shipped; where Amazon does not count
    yet what earlier parcels told it (its QuantityShipped lags), those units are taken off too."""
    open_by_item = {item.order_item_id: max(0, item.ordered - item.shipped) for item in items}
    told: dict[str, int] = {}
    for quantity in earlier:
        told[quantity.sku] = told.get(quantity.sku, 0) + quantity.quantity
    for sku, units in told.items():
        counted = sum(item.shipped for item in items if item.sku == sku)
        lag = units - counted
        for item in items:
            if lag <= 0:
                break
            if item.sku != sku:
                continue
            take = min(lag, open_by_item[item.order_item_id])
            open_by_item[item.order_item_id] -= take
            lag -= take
    return [ChannelLine(i.order_item_id, i.sku, open_by_item[i.order_item_id]) for i in items]


def _counted(
    shipped: Sequence[Quantity], items: Sequence[OrderItem], earlier: Sequence[Quantity]
) -> bool:
    """Amazon counts the parcel as shipped already: nothing of its SKUs is open, or Amazon's
    shipped units of each of its SKUs cover the earlier parcels and this one (it was confirmed
    before, and the connector went down before recording it)."""
    for quantity in shipped:
        ordered = sum(item.ordered for item in items if item.sku == quantity.sku)
        counted = sum(min(item.shipped, item.ordered) for item in items if item.sku == quantity.sku)
        told = sum(q.quantity for q in earlier if q.sku == quantity.sku)
        if counted < ordered and counted < told + quantity.quantity:
            return False
    return True


@dataclass(frozen=True)
class ShipmentPlan:
    """What to tell Amazon of a parcel: nothing (`already_shipped`: every unit of its SKUs was
    confirmed before, a repeat), or these (orderItemId, quantity) pairs."""

    items: tuple[tuple[str, int], ...]
    already_shipped: bool = False


def plan_shipment(
    shipped: Sequence[Quantity], items: Sequence[OrderItem], earlier: Sequence[Quantity] = ()
) -> ShipmentPlan:
    """The order items a parcel confirms (`domain.assign_to_channel_lines` on the open units).
    Raises UnmatchedShipment when a SKU is not on the order or more units ship than it has."""
    shipped = [q for q in shipped if q.quantity > 0]
    for quantity in shipped:
        on_order = sum(item.ordered for item in items if item.sku == quantity.sku)
        if on_order < quantity.quantity:
            raise UnmatchedShipment(quantity.sku, quantity.quantity - on_order)
    if not shipped or _counted(shipped, items, earlier):
        return ShipmentPlan((), already_shipped=True)
    lines = _open_lines(items, earlier)
    try:
        return ShipmentPlan(tuple(assign_to_channel_lines(shipped, lines)))
    except UnmatchedShipment:
        # Part of it is counted already: this very parcel confirmed before and sent again after
        # a crash. Sent again under its packageReferenceId it edits that package, so it is
        # assigned as it was the first time: to what the earlier parcels left open.
        ours = _open_lines(
            [OrderItem(i.order_item_id, i.sku, i.ordered, 0) for i in items], earlier
        )
        return ShipmentPlan(tuple(assign_to_channel_lines(shipped, ours)))


CARRIER_CODES = {
    "ups": "UPS",
    "usps": "USPS",
    "fedex": "FedEx",
    "dhl": "DHL",
    "dhl_express": "DHL",
    "dhl_ecommerce": "DHL eCommerce",
    "deutsche_post": "Deutsche Post",
    "dpd": "DPD",
    "gls": "GLS",
    "hermes": "Hermes",
    "evri": "Evri",
    "royal_mail": "Royal Mail",
    "parcelforce": "Parcelforce",
    "canada_post": "Canada Post",
    "australia_post": "Australia Post",
    "colissimo": "Colissimo",
    "chronopost": "Chronopost",
    "poste_italiane": "Poste Italiane",
    "correos": "Correos",
    "postnl": "PostNL",
    "ontrac": "OnTrac",
    "amazon_shipping": "Amazon Shipping",
}


def carrier_fields(carrier: str) -> dict[str, str]:
    """confirmShipment's carrierCode (Amazon's code for the carriers it knows), or `Other` with
    the carrier's name as carrierName."""
    key = carrier.strip().lower().replace(" ", "_").replace("-", "_")
    code = CARRIER_CODES.get(key)
    if code is not None:
        return {"carrierCode": code}
    return {"carrierCode": "Other", "carrierName": carrier.strip() or "Other"}


def confirmation_body(
    *,
    marketplace_id: str,
    package_reference: str,
    carrier: str,
    tracking_number: str,
    shipped_at: datetime,
    items: Sequence[tuple[str, int]],
) -> dict[str, Any]:
    """The confirmShipment request (`POST /orders/v0/orders/{orderId}/shipmentConfirmation`)."""
    return {
        "marketplaceId": marketplace_id,
        "packageDetail": {
            "packageReferenceId": package_reference,
            **carrier_fields(carrier),
            "trackingNumber": tracking_number,
            "shipDate": amazon_time(shipped_at),
            "orderItems": [
                {"orderItemId": item_id, "quantity": quantity} for item_id, quantity in items
            ],
        },
    }


# --- stock -------------------------------------------------------------------------------------


def availability_patch(quantity: int, product_type: str) -> dict[str, Any]:
    """The patchListingsItem body that sets the seller-fulfilled quantity of a listing."""
    return {
        "productType": product_type,
        "patches": [
            {
                "op": "replace",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": max(0, quantity)}],
            }
        ],
    }


def listing_issues(body: Any) -> tuple[str, list[str]]:
    """A patchListingsItem answer's status (ACCEPTED / INVALID) and its ERROR issues."""
    if not isinstance(body, dict):
        return "", []
    errors = [
        f"{issue.get('code')}: {issue.get('message')}"
        for issue in body.get("issues") or []
        if isinstance(issue, dict) and issue.get("severity") == "ERROR"
    ]
    return str(body.get("status") or ""), errors
