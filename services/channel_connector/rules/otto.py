"""OTTO Market's rules, pure: the API's constants, exact JSON and times, the position items of
an order, which of them a parcel or a cancellation names, carriers, paging links. The client
(clients/otto.py) does the HTTP around them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from services.channel_connector.domain import (
    ChannelLine,
    Quantity,
    assign_to_channel_lines,
)

CHANNEL = "otto"
DEFAULT_API_BASE = "https://api.otto.market"
TOKEN_PATH = "/v1/token"
DEFAULT_SCOPE = "orders shipments availability"
PASSWORD_GRANT_CLIENT_ID = "token-otto-api"
DEFAULT_RATE = 10.0
ORDERS_PAGE = 128
STOCK_BATCH = 200
MAX_PAGES = 1000

PROCESSABLE = "PROCESSABLE"
SENT = "SENT"
RETURNED = "RETURNED"
CANCELLED = frozenset({"CANCELLED_BY_PARTNER", "CANCELLED_BY_MARKETPLACE"})


# --- exact JSON ------------------------------------------------------------------------------


def loads(raw: bytes | str) -> Any:
    """OTTO's JSON with every number with a fraction as an exact Decimal."""
    return json.loads(raw, parse_float=Decimal)


def dumps(value: Any) -> str:
    """JSON text of what `loads` read, Decimals written as the numbers they are."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        return str(value)
    if isinstance(value, Mapping):
        return (
            "{"
            + ",".join(
                f"{json.dumps(str(k), ensure_ascii=False)}:{dumps(v)}" for k, v in value.items()
            )
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a timestamp")
    parsed = datetime.fromisoformat(value.strip())
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def otto_time(when: datetime) -> str:
    """ISO 8601 in UTC with milliseconds (`2026-12-01T10:00:00.000Z`)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the pure choices ------------------------------------------------------------------------


@dataclass(frozen=True)
class PositionItem:
    """One unit of an OTTO order."""

    position_item_id: str
    sku: str
    status: str
    tracking_number: str | None = None


def position_items(order: Mapping[str, Any]) -> list[PositionItem]:
    """The position items of an Orders v4 order; ValueError naming the field when malformed."""
    raw = order.get("positionItems")
    if not isinstance(raw, list):
        raise ValueError("positionItems: is required (a list)")
    found: list[PositionItem] = []
    for index, item in enumerate(raw):
        field = f"positionItems.{index}"
        if not isinstance(item, Mapping):
            raise ValueError(f"{field}: must be an object")
        product = item.get("product")
        item_id = item.get("positionItemId")
        status = item.get("fulfillmentStatus")
        sku = product.get("sku") if isinstance(product, Mapping) else None
        if not isinstance(item_id, str) or not item_id:
            raise ValueError(f"{field}.positionItemId: is required")
        if not isinstance(status, str) or not status:
            raise ValueError(f"{field}.fulfillmentStatus: is required")
        if not isinstance(sku, str) or not sku:
            raise ValueError(f"{field}.product.sku: is required")
        tracking = item.get("trackingInfo")
        number = tracking.get("trackingNumber") if isinstance(tracking, Mapping) else None
        found.append(
            PositionItem(item_id, sku, status, number if isinstance(number, str) else None)
        )
    return found


def _totals(quantities: Iterable[Quantity]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for item in quantities:
        totals[item.sku] = totals.get(item.sku, 0) + item.quantity
    return totals


@dataclass(frozen=True)
class ShipmentPlan:
    send: tuple[str, ...]  # position item ids to mark sent now
    already_sent: int  # units of the parcel OTTO already has as sent
    under_tracking_number: bool  # some of them under this parcel's tracking number


def plan_shipment(
    items: Sequence[PositionItem],
    shipped: Iterable[Quantity],
    earlier: Iterable[Quantity],
    tracking_number: str,
) -> ShipmentPlan:
    """Which position items a parcel marks sent: per SKU, the units OTTO already has as sent for
    this parcel count as done (SENT or RETURNED items under its tracking number; at least the
    SENT items beyond what earlier parcels sent), the rest fill the PROCESSABLE items in the
    order's order. Raises UnmatchedShipment when too few are PROCESSABLE."""
    before = _totals(earlier)
    done_by_sku: dict[str, int] = {}
    need: list[Quantity] = []
    matched_any = False
    for sku, quantity in _totals(shipped).items():
        sent = [i for i in items if i.sku == sku and i.status in (SENT, RETURNED)]
        matched = sum(1 for i in sent if i.tracking_number == tracking_number)
        matched_any = matched_any or matched > 0
        beyond_earlier = max(0, len(sent) - before.get(sku, 0))
        done = min(quantity, max(matched, beyond_earlier))
        done_by_sku[sku] = done
        if quantity > done:
            need.append(Quantity(sku, quantity - done))
    open_lines = [
        ChannelLine(i.position_item_id, i.sku, 1) for i in items if i.status == PROCESSABLE
    ]
    send = [line_id for line_id, _ in assign_to_channel_lines(need, open_lines)]
    return ShipmentPlan(tuple(send), sum(done_by_sku.values()), matched_any)


@dataclass(frozen=True)
class CancellationPlan:
    cancel: tuple[str, ...]  # PROCESSABLE position item ids to cancel now
    already_cancelled: int
    not_cancellable: tuple[Quantity, ...]  # units OTTO has in another state (sent, returned)


def plan_cancellation(items: Sequence[PositionItem], lines: Iterable[Quantity]) -> CancellationPlan:
    """Which position items a cancellation names: per SKU the PROCESSABLE items first (in the
    order's order), then items already cancelled count as done; what is left cannot be
    cancelled on OTTO any more."""
    cancel: list[str] = []
    already = 0
    missing: list[Quantity] = []
    for sku, quantity in _totals(lines).items():
        processable = [
            i.position_item_id for i in items if i.sku == sku and i.status == PROCESSABLE
        ]
        take = processable[:quantity]
        cancel += take
        rest = quantity - len(take)
        cancelled = sum(1 for i in items if i.sku == sku and i.status in CANCELLED)
        covered = min(rest, cancelled)
        already += covered
        if rest > covered:
            missing.append(Quantity(sku, rest - covered))
    return CancellationPlan(tuple(cancel), already, tuple(missing))


def otto_carrier(carrier: str, mapping: Mapping[str, str]) -> str:
    """OTTO's carrier code for the OMS's carrier name."""
    key = carrier.strip().lower()
    if key in mapping:
        return mapping[key]
    return key.upper().replace("-", "_").replace(" ", "_")


def parse_mapping(value: str | None, option: str) -> dict[str, str]:
    """`a=B,c=D` as {"a": "B", "c": "D"} (keys lower-cased)."""
    found: dict[str, str] = {}
    for part in (value or "").split(","):
        if not part.strip():
            continue
        ours, sep, theirs = part.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise ValueError(f"options.{option}: {part.strip()!r} is not name=CODE")
        found[ours.strip().lower()] = theirs.strip()
    return found


def next_link(page: Mapping[str, Any]) -> tuple[str, dict[str, str]] | None:
    """The path and query of a list's `next` link, if there is one."""
    links = page.get("links")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, Mapping) and link.get("rel") == "next":
            href = link.get("href")
            if isinstance(href, str) and href:
                split = urlsplit(href)
                return split.path or "/v4/orders", dict(parse_qsl(split.query))
    return None
