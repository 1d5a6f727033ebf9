"""Produced by inventory."""

from __future__ import annotations

from shared.contracts.common import Allocation, ShortLine, SkuQuantity
from shared.envelope import Event, register
from shared.topics import INVENTORY_EVENTS


@register
class StockReserved(Event):
    TYPE = "StockReserved"
    TOPIC = INVENTORY_EVENTS
    order_id: str
    allocations: tuple[Allocation, ...]


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
class StockCommitted(Event):
    TYPE = "StockCommitted"
    TOPIC = INVENTORY_EVENTS
    order_id: str
    fulfilment_id: str
    location: str
    lines: tuple[SkuQuantity, ...]


@register
class AvailabilityChanged(Event):
    """Available stock of one SKU changed (keyed by SKU)."""

    TYPE = "AvailabilityChanged"
    TOPIC = INVENTORY_EVENTS
    sku: str
    on_hand: int
    reserved: int
    available: int
