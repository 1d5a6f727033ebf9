"""The Magento client's decisions, pure (no I/O): the search criteria of a poll, Magento's
timestamps, the order's shippable lines and what of them is open, the bodies of ship and refund
calls, which shipment or credit memo a push already made, and order JSON written back exactly."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from services.channel_connector.domain import ChannelLine, Quantity

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CARRIER_CODES = {"ups": "ups", "usps": "usps", "fedex": "fedex", "dhl": "dhl"}
REFUND_MARK = "OMS refund"


# --- polling ---------------------------------------------------------------------------------


def magento_time(at: datetime) -> str:
    """Magento's timestamp (UTC, to the second) for `at`, rounded down: a `gteq` filter on it
    still includes `at`."""
    return at.astimezone(UTC).strftime(TIME_FORMAT)


def parse_magento_time(value: Any, field: str = "updated_at") -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field}: is required (Magento's `YYYY-MM-DD HH:MM:SS`)")
    text = value.strip().replace("T", " ")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{field}: {value!r} is not a Magento timestamp") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def search_criteria(
    filters: Sequence[tuple[str, str, str]],
    *,
    page: int = 1,
    page_size: int | None = None,
    sort: Sequence[tuple[str, str]] = (),
) -> dict[str, str]:
    """`searchCriteria` query parameters: each (field, value, condition) its own filter group
    (groups are ANDed), sorted by `sort` (field, ASC|DESC)."""
    params: dict[str, str] = {}
    for group, (field, value, condition) in enumerate(filters):
        prefix = f"searchCriteria[filter_groups][{group}][filters][0]"
        params[f"{prefix}[field]"] = field
        params[f"{prefix}[value]"] = value
        params[f"{prefix}[condition_type]"] = condition
    for index, (field, direction) in enumerate(sort):
        params[f"searchCriteria[sortOrders][{index}][field]"] = field
        params[f"searchCriteria[sortOrders][{index}][direction]"] = direction
    if page_size is not None:
        params["searchCriteria[pageSize]"] = str(page_size)
        params["searchCriteria[currentPage]"] = str(page)
    return params


def more_pages(page: int, page_size: int, total_count: int, got: int) -> bool:
    """Whether to ask for page + 1. Magento answers a page past the last with the last page
    again, so the total count decides, not an empty page."""
    return got > 0 and page * page_size < total_count


def dump_json(value: Any) -> str:
    """JSON text of a document parsed with exact decimals, numbers written as they came."""
    if isinstance(value, Mapping):
        return (
            "{" + ",".join(f"{json.dumps(str(k))}:{dump_json(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(dump_json(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value)


# --- lines -----------------------------------------------------------------------------------


def _number(value: Any) -> Decimal:
    if value is None or isinstance(value, bool):
        return Decimal(0)
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return Decimal(0)


def shippable_items(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The items that are the order's lines, by the rule order-intake's Magento adapter maps
    them with: an item whose parent is in the order is a child; the line is the parent, unless
    the parent carries no money (`row_total` 0: a dynamic-price bundle), then its children."""
    ids = {str(item.get("item_id")) for item in items if item.get("item_id") is not None}
    children: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        parent = item.get("parent_item_id")
        if parent is not None and str(parent) in ids:
            children.setdefault(str(parent), []).append(item)
    chosen: list[Mapping[str, Any]] = []
    for item in items:
        parent = item.get("parent_item_id")
        if parent is not None and str(parent) in ids:
            continue
        own = children.get(str(item.get("item_id")))
        if own and _number(item.get("row_total")) == 0:
            chosen += own
        else:
            chosen.append(item)
    return chosen


def open_quantity(item: Mapping[str, Any]) -> int:
    """Units of the item Magento still expects to ship: ordered less shipped less cancelled."""
    left = (
        _number(item.get("qty_ordered"))
        - _number(item.get("qty_shipped"))
        - _number(item.get("qty_canceled"))
    )
    return max(0, int(left))


def channel_lines(items: Sequence[Mapping[str, Any]]) -> list[ChannelLine]:
    return [
        ChannelLine(str(item["item_id"]), str(item.get("sku") or ""), open_quantity(item))
        for item in shippable_items(items)
        if item.get("item_id") is not None and not item.get("is_virtual")
    ]


def nothing_open(lines: Iterable[ChannelLine], shipped: Iterable[Quantity]) -> bool:
    """No unit of the shipped SKUs is open on the channel: the parcel was already recorded
    (shipped in Magento's admin, or by an earlier try of this push)."""
    skus = {item.sku for item in shipped}
    return all(line.open_quantity == 0 for line in lines if line.sku in skus)


# --- shipments -------------------------------------------------------------------------------


def carrier_code(carrier: str) -> str:
    """Magento's code of the OMS's carrier; carriers Magento has no module for are `custom`
    (the name goes in the track's title)."""
    return CARRIER_CODES.get(carrier.strip().lower(), "custom")


def ship_body(
    assigned: Sequence[tuple[str, int]],
    *,
    carrier: str,
    tracking_number: str,
    source_code: str,
    notify: bool,
) -> dict[str, Any]:
    return {
        "items": [{"order_item_id": int(line_id), "qty": qty} for line_id, qty in assigned],
        "notify": notify,
        "appendComment": False,
        "tracks": [
            {
                "track_number": tracking_number,
                "title": carrier,
                "carrier_code": carrier_code(carrier),
            }
        ],
        "arguments": {"extension_attributes": {"source_code": source_code}},
    }


def shipment_with_track(shipments: Iterable[Mapping[str, Any]], tracking_number: str) -> int | None:
    """The shipment of the order that already carries this tracking number, if any."""
    for shipment in shipments:
        for track in shipment.get("tracks") or []:
            if str(track.get("track_number")) == tracking_number:
                return int(shipment.get("entity_id") or 0)
    return None


# --- refunds ---------------------------------------------------------------------------------


def refund_comment(key: str, reason: str) -> str:
    return f"{reason} ({REFUND_MARK} {key})"


def refund_body(
    items: Sequence[Mapping[str, Any]], amount: Decimal, key: str, reason: str
) -> dict[str, Any]:
    """An offline credit memo of `amount` as an adjustment refund: every item at quantity 0
    (Magento refunds every item in full when `items` is empty), no shipping, nothing returned
    to Magento's stock (the OMS owns the stock and pushes it)."""
    return {
        "items": [
            {"order_item_id": int(item["item_id"]), "qty": 0}
            for item in items
            if item.get("item_id") is not None and item.get("parent_item_id") is None
        ],
        "notify": False,
        "appendComment": True,
        "comment": {"comment": refund_comment(key, reason), "is_visible_on_front": 0},
        "arguments": {
            "shipping_amount": "0",
            "adjustment_positive": str(amount),
            "adjustment_negative": "0",
            "extension_attributes": {"return_to_stock_items": []},
        },
    }


def creditmemo_with_key(creditmemos: Iterable[Mapping[str, Any]], key: str) -> int | None:
    mark = f"({REFUND_MARK} {key})"
    for memo in creditmemos:
        for comment in memo.get("comments") or []:
            if str(comment.get("comment") or "").endswith(mark):
                return int(memo.get("entity_id") or 0)
    return None
