"""Produced by fulfilment."""

from __future__ import annotations

from datetime import datetime

from shared.contracts.common import FulfilmentLines, SkuQuantity, Value
from shared.envelope import Event, register
from shared.topics import FULFILMENT_EVENTS


class FulfilmentRef(Value):
    fulfilment_id: str
    location: str
    lines: tuple[SkuQuantity, ...]


@register
class FulfilmentCreated(Event):
    TYPE = "FulfilmentCreated"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    fulfilments: tuple[FulfilmentRef, ...]


@register
class FulfilmentShipped(Event, FulfilmentLines):
    TYPE = "FulfilmentShipped"
    TOPIC = FULFILMENT_EVENTS
    carrier: str
    tracking_number: str
    shipped_at: datetime


@register
class FulfilmentDelivered(Event):
    TYPE = "FulfilmentDelivered"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    fulfilment_id: str
    delivered_at: datetime


@register
class FulfilmentCancelled(Event):
    """The answer to CancelFulfilment, also when there was nothing to cancel.

    `cancelled`: the order's fulfilments that are cancelled (now or by an earlier cancel);
    `already_shipped`: shipped or delivered ones, which could not be cancelled;
    `already_failed`: ones the carrier reported failed before the cancel, left as they are.
    """

    TYPE = "FulfilmentCancelled"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    cancelled: tuple[str, ...] = ()
    reason: str
    already_shipped: tuple[str, ...] = ()
    already_failed: tuple[str, ...] = ()


@register
class FulfilmentFailed(Event):
    TYPE = "FulfilmentFailed"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    fulfilment_id: str
    reason: str
