"""Produced by inventory."""

from __future__ import annotations

from shared.contracts.common import Allocation, FulfilmentLines, ReturnedLines, ShortLine, Value
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
class StockReallocated(Event):
    """Answer to ReallocateStock: `written_off` units of the SKU were written off at the short
    `location`, and the missing units are reserved again at other locations (`allocations`,
    under the order's line ids)."""

    TYPE = "StockReallocated"
    TOPIC = INVENTORY_EVENTS
    order_id: str
    short_id: str
    sku: str
    location: str
    written_off: int
    allocations: tuple[Allocation, ...]


@register
class StockReallocationFailed(Event):
    """Answer to ReallocateStock when the other locations cannot take the missing units
    (`insufficient_stock`, `unknown_sku`), or the order's stock was released (`order_released`).
    The units were written off at the short `location` all the same; nothing was reserved."""

    TYPE = "StockReallocationFailed"
    TOPIC = INVENTORY_EVENTS
    order_id: str
    short_id: str
    sku: str
    location: str
    written_off: int
    requested: int
    available: int
    reason: str


@register
class ShortPickWrittenOff(Event):
    """Answer to WriteOffShortPick: `written_off` units written off at `location`."""

    TYPE = "ShortPickWrittenOff"
    TOPIC = INVENTORY_EVENTS
    order_id: str
    short_id: str
    sku: str
    location: str
    written_off: int


@register
class AvailabilityChanged(Event):
    """Available stock of one SKU changed (keyed by SKU)."""

    TYPE = "AvailabilityChanged"
    TOPIC = INVENTORY_EVENTS
    sku: str
    on_hand: int
    reserved: int
    available: int


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
    """What one sales channel may sell of one SKU (keyed by SKU): the SKU's available stock
    minus the channel's safety stock, never below 0. One per channel whenever the SKU's
    available stock changes, emitted in the same transaction as the change."""

    TYPE = "ChannelAvailabilityChanged"
    TOPIC = CHANNEL_AVAILABILITY
    channel: str
    sku: str
    available: int
    safety_stock: int
    warehouse_available: int
