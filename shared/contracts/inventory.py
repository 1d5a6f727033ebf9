"""Produced by inventory."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from shared.contracts.common import (
    Allocation,
    FulfilmentLines,
    ReturnedLines,
    ShortLine,
    ShortWrittenOff,
    Value,
)
from shared.envelope import Event, register
from shared.topics import CHANNEL_AVAILABILITY, INVENTORY_EVENTS


class RoutingDecision(Value):
    """Why the order's stock was reserved where it was: the routing `strategy`, the
    `locations` it chose, and a sentence for the order's timeline."""

    strategy: str
    locations: tuple[str, ...]
    reason: str


@register
class StockReserved(Event):
    TYPE = "StockReserved"
    TOPIC = INVENTORY_EVENTS
    order_id: str
    allocations: tuple[Allocation, ...]
    routing: RoutingDecision | None = None


@register
class StockReservationFailed(Event):
    TYPE = "StockReservationFailed"
    TOPIC = INVENTORY_EVENTS
    order_id: str
    reason: str
    short_lines: tuple[ShortLine, ...] = ()


class BackorderedLine(Value):
    """Units of an order line waiting in a SKU's queue for stock, at the location the order
    waits at; `expected_on`: when the stock is expected (purchase orders, a pre-order's release
    date), None while nobody knows."""

    line_id: str
    sku: str
    location: str
    quantity: int = Field(gt=0)
    kind: Literal["backorder", "preorder"] = "backorder"
    expected_on: date | None = None


@register
class StockBackordered(Event):
    """Answer to ReserveStock when the order is short of SKUs that may be backordered (or
    pre-ordered): what was available is reserved (`allocations`), the rest (`backordered`) waits
    in each SKU's queue, oldest order first. A `StockReserved` with every allocation follows
    once stock arrived for all of it. Repeated as is when ReserveStock is re-sent meanwhile."""

    TYPE = "StockBackordered"
    TOPIC = INVENTORY_EVENTS
    order_id: str
    allocations: tuple[Allocation, ...] = ()
    backordered: tuple[BackorderedLine, ...]
    expected_on: date | None = None


@register
class StockReleased(Event):
    TYPE = "StockReleased"
    TOPIC = INVENTORY_EVENTS
    order_id: str
    released: tuple[Allocation, ...] = ()


@register
class StockCommitted(Event, FulfilmentLines):
    """Answer to CommitStock (repeated as is when it is re-sent), with its `shipment_id`."""

    TYPE = "StockCommitted"
    TOPIC = INVENTORY_EVENTS
    shipment_id: str | None = None


# --- answers to short picks (ReallocateStock, WriteOffShortPick) ---------------------------


@register
class StockReallocated(Event, ShortWrittenOff):
    """Answer to ReallocateStock: `written_off` units of the SKU were written off at the short
    `location`, and the missing units are reserved again at other locations (`allocations`,
    under the order's line ids)."""

    TYPE = "StockReallocated"
    TOPIC = INVENTORY_EVENTS
    allocations: tuple[Allocation, ...]


@register
class StockReallocationFailed(Event, ShortWrittenOff):
    """Answer to ReallocateStock when the other locations cannot take the missing units
    (`insufficient_stock`, `unknown_sku`), or the order's stock was released (`order_released`).
    The units were written off at the short `location` all the same; nothing was reserved."""

    TYPE = "StockReallocationFailed"
    TOPIC = INVENTORY_EVENTS
    requested: int
    available: int
    reason: str


@register
class ShortPickWrittenOff(Event, ShortWrittenOff):
    """Answer to WriteOffShortPick: `written_off` units written off at `location`."""

    TYPE = "ShortPickWrittenOff"
    TOPIC = INVENTORY_EVENTS


@register
class AvailabilityChanged(Event):
    """Available stock of one SKU changed (keyed by SKU). `available_to_promise`: what may
    still be sold — on hand less reserved less `backordered` demand waiting for stock, plus
    `incoming` (open purchase orders) for SKUs that may be backordered or pre-ordered; below 0
    when more is promised than is coming."""

    TYPE = "AvailabilityChanged"
    TOPIC = INVENTORY_EVENTS
    sku: str
    on_hand: int
    reserved: int
    available: int
    backordered: int = 0
    incoming: int = 0
    available_to_promise: int | None = None


# --- answers to the returns saga (commands in shared/contracts/returns.py) ----------------


@register
class ReturnedItemsRestocked(Event, ReturnedLines):
    """Answer to RestockReturnedItems: everything restocked for the return (repeated as is when
    the command is re-sent)."""

    TYPE = "ReturnedItemsRestocked"
    TOPIC = INVENTORY_EVENTS


@register
class ReturnedItemsWrittenOff(Event, ReturnedLines):
    """Answer to WriteOffReturnedItems: the damaged items recorded and written off."""

    TYPE = "ReturnedItemsWrittenOff"
    TOPIC = INVENTORY_EVENTS


@register
class ReturnedStockFailed(Event):
    """A restock or write-off inventory cannot apply (e.g. a SKU it does not know)."""

    TYPE = "ReturnedStockFailed"
    TOPIC = INVENTORY_EVENTS
    return_id: str
    order_id: str
    kind: str  # "restock" or "write_off"
    reason: str
    skus: tuple[str, ...] = ()


@register
class ChannelAvailabilityChanged(Event):
    """What one sales channel may sell of one SKU (keyed by SKU): the SKU's available to
    promise (see AvailabilityChanged) minus the channel's safety stock, never below 0. One per channel whenever the SKU's
    available stock changes, emitted in the same transaction as the change."""

    TYPE = "ChannelAvailabilityChanged"
    TOPIC = CHANNEL_AVAILABILITY
    channel: str
    sku: str
    available: int
    safety_stock: int
    warehouse_available: int


# --- replenishment ----------------------------------------------------------------------------


@register
class LowStock(Event):
    """The available stock of a SKU at a location fell to or below its reorder point (keyed by
    SKU). Once per crossing: not again until the stock recovered (StockRecovered).
    `reorder_point_source`: `explicit` (set by an operator) or `velocity` (units shipped per day
    * lead time + safety units); `velocity_per_day` is the higher of the last 7 and 30 days';
    `days_of_cover` is None when nothing shipped from there lately."""

    TYPE = "LowStock"
    TOPIC = INVENTORY_EVENTS
    sku: str
    location: str
    on_hand: int
    reserved: int
    available: int
    reorder_point: int
    reorder_point_source: str
    velocity_per_day: float
    days_of_cover: float | None = None


@register
class StockRecovered(Event):
    """The available stock of a SKU at a location that was low is back above its reorder point
    plus the recovery margin (keyed by SKU); the next fall to the point is a new LowStock."""

    TYPE = "StockRecovered"
    TOPIC = INVENTORY_EVENTS
    sku: str
    location: str
    available: int
    reorder_point: int
