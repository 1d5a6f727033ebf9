"""The Shopify client's decisions, pure (no I/O): how SKUs are searched, which fulfillment order
lines a shipment takes, which payments a refund goes back to, how long a throttled call waits,
what a GraphQL error says. `clients/shopify.py` does the talking.

Shopify Admin GraphQL answers in shapes documented at shopify.dev/docs/api/admin-graphql:
`userErrors { field message code }` on every mutation payload (`field` a path into the input),
top-level `errors` for what is not the mutation's (a throttled call: `extensions.code`
THROTTLED, with the cost bucket in the response's `extensions.cost.throttleStatus`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from services.channel_connector.domain import ChannelLine

GID_PREFIX = "gid://shopify/"
FULFILLABLE_STATUSES = frozenset({"OPEN", "IN_PROGRESS"})
WAITING_STATUSES = frozenset({"ON_HOLD", "SCHEDULED"})
REFUNDABLE_KINDS = frozenset({"SALE", "CAPTURE"})
CANCEL_REASONS = ("CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "STAFF", "OTHER")
API_VERSION = re.compile(r"^(\d{4}-\d{2}|unstable)$")
CONCURRENCY_PROTECTION_FROM = "2026-01"
"""From this API version inventorySetQuantities takes `changeFromQuantity` (null: no
compare-and-swap) instead of `ignoreCompareQuantity`, and refundCreate / inventorySetQuantities
take an `@idempotent(key:)` directive (mandatory from 2026-04)."""
NOTE_MARKER = "[oms:{key}]"


class ShopifyInputError(ValueError):
    """What the OMS asks cannot be done on this Shopify order (names the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


# --- ids and versions -----------------------------------------------------------------------


def gid(kind: str, value: str) -> str:
    """A Shopify global id from a numeric id (an id that already is a gid is kept)."""
    value = value.strip()
    if value.startswith(GID_PREFIX):
        return value
    if not value.isdigit():
        raise ShopifyInputError(kind, f"{value!r} is neither a numeric id nor a gid")
    return f"{GID_PREFIX}{kind}/{value}"


def uses_concurrency_protection(api_version: str) -> bool:
    """Whether the API version has changeFromQuantity and @idempotent ("unstable" has)."""
    return api_version >= CONCURRENCY_PROTECTION_FROM


# --- stock -----------------------------------------------------------------------------------


def sku_search(skus: Iterable[str]) -> str:
    """The `query` of a productVariants search for these SKUs: `sku:"A" OR sku:"B"`."""
    terms = []
    for sku in skus:
        escaped = sku.replace("\\", "\\\\").replace('"', '\\"')
        terms.append(f'sku:"{escaped}"')
    return " OR ".join(terms)


def inventory_items_by_sku(
    nodes: Iterable[Mapping[str, Any]], wanted: Iterable[str]
) -> dict[str, list[str]]:
    """The inventory item ids of the variants whose SKU is exactly one wanted (Shopify's search
    also matches by prefix and token); a SKU on several variants has them all."""
    wanted_set = set(wanted)
    found: dict[str, list[str]] = {}
    for node in nodes:
        sku = node.get("sku")
        item = (node.get("inventoryItem") or {}).get("id")
        if sku in wanted_set and isinstance(item, str) and item not in found.get(sku, []):
            found.setdefault(sku, []).append(item)
    return found


def set_quantities_input(
    quantities: Sequence[tuple[str, int]], location_id: str, api_version: str
) -> dict[str, Any]:
    """The `InventorySetQuantitiesInput` setting `available` to absolute values, with no
    compare-and-swap (the OMS is the source of truth for what may be sold)."""
    protected = uses_concurrency_protection(api_version)
    rows: list[dict[str, Any]] = []
    for item, quantity in quantities:
        row: dict[str, Any] = {
            "inventoryItemId": item,
            "locationId": location_id,
            "quantity": quantity,
        }
        if protected:
            row["changeFromQuantity"] = None
        rows.append(row)
    body: dict[str, Any] = {"name": "available", "reason": "correction", "quantities": rows}
    if not protected:
        body["ignoreCompareQuantity"] = True
    return body


def refused_quantities(errors: Sequence[Mapping[str, Any]], count: int) -> dict[int, str] | None:
    """The rows of an inventorySetQuantities the userErrors name (`field` like
    ["input", "quantities", "3", "inventoryItemId"]) with their messages; None when an error
    names no row (the whole call is refused). Each message names the field."""
    refused: dict[int, str] = {}
    for error in errors:
        field = [str(part) for part in error.get("field") or []]
        index = None
        if "quantities" in field:
            position = field.index("quantities") + 1
            if position < len(field) and field[position].isdigit():
                index = int(field[position])
        if index is None or index >= count:
            return None
        refused.setdefault(index, user_error_text([error]))
    return refused


# --- shipments -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenLines:
    """The order's fulfillment order lines that can still be fulfilled, and the fulfillment
    order each belongs to."""

    lines: tuple[ChannelLine, ...]
    fulfillment_order_of: Mapping[str, str]
    held: Mapping[str, int]  # per SKU: units in fulfillment orders not fulfillable yet

    def open_units(self, sku: str) -> int:
        return sum(line.open_quantity for line in self.lines if line.sku == sku)


def open_lines(fulfillment_orders: Iterable[Mapping[str, Any]]) -> OpenLines:
    """The lines of the OPEN / IN_PROGRESS fulfillment orders with a remaining quantity, in
    Shopify's order (SKU from the order line item); what ON_HOLD / SCHEDULED ones hold apart."""
    lines: list[ChannelLine] = []
    owner: dict[str, str] = {}
    held: dict[str, int] = {}
    for fulfillment_order in fulfillment_orders:
        status = fulfillment_order.get("status")
        if status not in FULFILLABLE_STATUSES and status not in WAITING_STATUSES:
            continue
        for item in _nodes(fulfillment_order.get("lineItems")):
            remaining = int(item.get("remainingQuantity") or 0)
            sku = (item.get("lineItem") or {}).get("sku")
            if remaining <= 0 or not sku:
                continue
            if status in WAITING_STATUSES:
                held[str(sku)] = held.get(str(sku), 0) + remaining
                continue
            lines.append(ChannelLine(str(item["id"]), str(sku), remaining))
            owner[str(item["id"])] = str(fulfillment_order["id"])
    return OpenLines(tuple(lines), owner, held)


def line_items_by_fulfillment_order(
    assigned: Sequence[tuple[str, int]], fulfillment_order_of: Mapping[str, str]
) -> list[dict[str, Any]]:
    """`lineItemsByFulfillmentOrder` of a FulfillmentInput: the assigned lines grouped by
    their fulfillment order, in the order first met."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for line_id, quantity in assigned:
        grouped.setdefault(fulfillment_order_of[line_id], []).append(
            {"id": line_id, "quantity": quantity}
        )
    return [
        {"fulfillmentOrderId": order, "fulfillmentOrderLineItems": items}
        for order, items in grouped.items()
    ]


def fulfillment_with_tracking(
    fulfillments: Iterable[Mapping[str, Any]], tracking_number: str
) -> str | None:
    """The id of the order's (not cancelled) fulfillment that carries this tracking number:
    the parcel was already told to Shopify (an answer lost on the way back)."""
    if not tracking_number:
        return None
    for fulfillment in fulfillments:
        if fulfillment.get("status") in ("CANCELLED", "ERROR", "FAILURE"):
            continue
        numbers = {info.get("number") for info in fulfillment.get("trackingInfo") or []}
        if tracking_number in numbers:
            return str(fulfillment["id"])
    return None


# --- cancellations ---------------------------------------------------------------------------


def cancel_reason(reason: str) -> str:
    """Shopify's OrderCancelReason for the OMS's free-text reason."""
    text = reason.lower()
    if "fraud" in text:
        return "FRAUD"
    if "customer" in text:
        return "CUSTOMER"
    if "declin" in text or "payment" in text:
        return "DECLINED"
    if "stock" in text or "inventory" in text:
        return "INVENTORY"
    if "operator" in text or "staff" in text:
        return "STAFF"
    return "OTHER"


# --- refunds ---------------------------------------------------------------------------------


def note_marker(key: str) -> str:
    return NOTE_MARKER.format(key=key)


def refund_with_marker(refunds: Iterable[Mapping[str, Any]], key: str) -> str | None:
    """The id of a refund already made for this push (its note carries the push's marker)."""
    marker = note_marker(key)
    for refund in refunds:
        if marker in str(refund.get("note") or ""):
            return str(refund["id"])
    return None


def _money(transaction: Mapping[str, Any], currency: str) -> Decimal | None:
    amounts = transaction.get("amountSet") or {}
    for side in ("presentmentMoney", "shopMoney"):
        money = amounts.get(side) or {}
        if money.get("currencyCode") == currency:
            try:
                return Decimal(str(money["amount"]))
            except (KeyError, InvalidOperation):
                return None
    return None


def refund_transactions(
    transactions: Sequence[Mapping[str, Any]], amount: Decimal, currency: str
) -> list[dict[str, str]]:
    """How a refund of `amount` goes back: REFUND transactions against the order's successful
    SALE / CAPTURE transactions (their `parentId` and `gateway`), each up to what is left of it
    after earlier refunds, in Shopify's order. Raises ShopifyInputError when the payments do
    not cover the amount or are in another currency."""
    if amount <= 0:
        raise ShopifyInputError("amount", f"a refund must be positive, not {amount}")
    refunded: dict[str, Decimal] = {}
    for transaction in transactions:
        if transaction.get("kind") != "REFUND" or transaction.get("status") != "SUCCESS":
            continue
        parent = (transaction.get("parentTransaction") or {}).get("id")
        value = _money(transaction, currency)
        if parent and value is not None:
            refunded[parent] = refunded.get(parent, Decimal(0)) + value
    plan: list[dict[str, str]] = []
    left = amount
    seen_currency = False
    for transaction in transactions:
        if left <= 0:
            break
        if (
            transaction.get("kind") not in REFUNDABLE_KINDS
            or transaction.get("status") != "SUCCESS"
        ):
            continue
        paid = _money(transaction, currency)
        if paid is None:
            continue
        seen_currency = True
        refundable = paid - refunded.get(str(transaction["id"]), Decimal(0))
        if refundable <= 0:
            continue
        take = min(left, refundable)
        plan.append(
            {
                "parentId": str(transaction["id"]),
                "gateway": str(transaction.get("gateway") or ""),
                "amount": str(take),
            }
        )
        left -= take
    if left > 0:
        if not seen_currency:
            raise ShopifyInputError(
                "currency", f"the order has no successful payment in {currency} to refund"
            )
        raise ShopifyInputError(
            "amount",
            f"the order's payments have {amount - left} {currency} left to refund,"
            f" less than {amount}",
        )
    return plan


# --- errors and throttling -------------------------------------------------------------------


def user_error_text(errors: Iterable[Mapping[str, Any]]) -> str:
    """userErrors as one line: `field.path: message (CODE)` each."""
    parts = []
    for error in errors:
        field = ".".join(str(p) for p in error.get("field") or []) or "(input)"
        code = f" ({error['code']})" if error.get("code") else ""
        parts.append(f"{field}: {error.get('message') or 'refused'}{code}")
    return "; ".join(parts)


def error_codes(errors: Iterable[Mapping[str, Any]]) -> set[str]:
    return {
        str((error.get("extensions") or {}).get("code"))
        for error in errors
        if (error.get("extensions") or {}).get("code")
    }


def is_throttled(errors: Iterable[Mapping[str, Any]]) -> bool:
    return "THROTTLED" in error_codes(errors)


def graphql_error_text(errors: Iterable[Mapping[str, Any]]) -> str:
    return "; ".join(str(error.get("message") or error) for error in errors)[:500]


def throttle_wait_s(extensions: Mapping[str, Any] | None, fallback_cost: float = 10.0) -> float:
    """How long until the cost bucket holds the throttled query's cost again:
    (requested cost - currently available) / restore rate, at least a tenth of a second."""
    cost = (extensions or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    try:
        requested = float(cost.get("requestedQueryCost") or fallback_cost)
        available = float(status.get("currentlyAvailable") or 0.0)
        rate = float(status.get("restoreRate") or 0.0)
    except (TypeError, ValueError):
        return 1.0
    if rate <= 0 or not math.isfinite(rate):
        return 1.0
    return max(0.1, (requested - available) / rate)


def _nodes(connection: Any) -> list[Mapping[str, Any]]:
    if isinstance(connection, list):
        return connection
    if isinstance(connection, Mapping):
        nodes = connection.get("nodes")
        if isinstance(nodes, list):
            return nodes
        edges = connection.get("edges")
        if isinstance(edges, list):
            return [edge["node"] for edge in edges if isinstance(edge, Mapping) and "node" in edge]
    return []


def nodes(connection: Any) -> list[Mapping[str, Any]]:
    """The items of a connection (`nodes` or `edges { node }`) or of a plain list."""
    return _nodes(connection)
