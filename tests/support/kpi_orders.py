"""A seeded generator of order histories for the KPI tests: orders on several channels and
currencies, rejected and cancelled ones (with reasons), backorders, shipments in one or two
parcels (some late against the promise), deliveries, returns (some refused) with their refunds,
and each SKU's availability going to 0 and back, plus low-stock alerts.

`generate(...)` gives the facts as the test knows them (`World`: what happened) and the events
the services would have sent for them (`TimedEvent`s, in time order). The test computes the
expected KPIs from the facts on its own and compares them with what the console's projection
made of the events.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.contracts.common import SkuQuantity
from shared.contracts.fulfilment import FulfilmentDelivered, FulfilmentShipped
from shared.contracts.inventory import (
    AvailabilityChanged,
    BackorderedLine,
    LowStock,
    StockBackordered,
    StockRecovered,
)
from shared.contracts.order_intake import OrderLineSummary, OrderStatusChanged
from shared.contracts.payment import PaymentRefunded
from shared.contracts.returns import ChannelRefundRequested, ReturnLineSummary, ReturnStatusChanged
from shared.envelope import Contract, Envelope

CHANNELS = ("web", "amazon", "ebay", "pos")
CURRENCIES = ("EUR", "USD", "GBP")
CANCEL_REASONS = ("customer_request", "fraud_rejected", "backorder_timeout", "address_invalid")
RETURN_REASONS = ("damaged", "wrong_size", "not_as_described", "changed_mind")
SKUS = tuple(f"SKU-{n:03d}" for n in range(1, 41))


@dataclass
class Shipment:
    key: str
    fulfilment_id: str
    shipped_at: datetime
    lines: dict[str, int]
    delivered_at: datetime | None = None


@dataclass
class Return:
    return_id: str
    requested_at: datetime
    refused: bool
    lines: list[tuple[str, str, int]]  # sku, reason, units


@dataclass
class Refund:
    kind: str
    currency: str
    amount: Decimal
    at: datetime


@dataclass
class Order:
    order_id: str
    channel: str
    currency: str
    total: Decimal
    placed_at: datetime
    lines: list[tuple[str, int, Decimal]]
    confirmed_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    rejected_at: datetime | None = None
    backordered_at: datetime | None = None
    backordered: dict[str, int] = field(default_factory=dict)
    shipments: list[Shipment] = field(default_factory=list)
    returns: list[Return] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)


@dataclass
class World:
    orders: list[Order]
    availability: dict[str, list[tuple[datetime, int]]]
    low_stock: list[tuple[str, str, datetime]]


Add = Callable[[Contract, datetime, str], None]


@dataclass(frozen=True)
class TimedEvent:
    at: datetime
    envelope: Envelope
    topic: str
    key: str


def _status(order: Order, status: str, at: datetime, reason: str | None = None) -> Contract:
    return OrderStatusChanged(
        order_id=order.order_id,
        channel=order.channel,
        status=status,
        reason=reason,
        currency=order.currency,
        total=order.total,
        lines=tuple(
            OrderLineSummary(
                line_id=f"l{i}",
                sku=sku,
                quantity=qty,
                unit_price=price,
                line_total=price * qty,
            )
            for i, (sku, qty, price) in enumerate(order.lines)
        ),
        at=at,
    )


def generate(
    seed: int, count: int, first_day: datetime, days: int
) -> tuple[World, list[TimedEvent]]:
    """`count` orders placed from a day before `first_day` to a day after the `days` that
    follow it (so that some fall outside the period), their events in time order."""
    rng = random.Random(seed)
    events: list[TimedEvent] = []

    def add(message: Contract, at: datetime, key: str) -> None:
        envelope = Envelope.wrap(
            message,
            correlation_id=key,
            producer="kpi-generator",
            message_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        ).model_copy(update={"occurred_at": at})
        events.append(TimedEvent(at, envelope, message.TOPIC, key))

    window_start = first_day - timedelta(days=1)
    window_s = (days + 2) * 86400
    orders: list[Order] = []
    for n in range(count):
        order_id = f"ord_{seed}_{n:05d}"
        channel = rng.choices(CHANNELS, weights=(5, 3, 2, 1))[0]
        currency = rng.choices(CURRENCIES, weights=(6, 3, 1))[0]
        lines = [
            (
                sku,
                rng.randint(1, 3),
                Decimal(rng.randint(500, 12000)) / 100,
            )
            for sku in rng.sample(SKUS, rng.randint(1, 3))
        ]
        total = sum((price * qty for _, qty, price in lines), Decimal(0))
        placed = window_start + timedelta(seconds=rng.randrange(window_s))
        order = Order(order_id, channel, currency, total, placed, lines)
        orders.append(order)
        add(_status(order, "RECEIVED", placed), placed, order_id)
        fate = rng.random()
        if fate < 0.04:
            order.rejected_at = placed + timedelta(minutes=rng.randint(1, 20))
            add(
                _status(order, "REJECTED", order.rejected_at, "payment_declined"),
                order.rejected_at,
                order_id,
            )
            continue
        at = placed + timedelta(minutes=rng.randint(1, 10))
        if rng.random() < 0.06:
            order.backordered_at = at
            waiting = lines[: rng.randint(1, len(lines))]
            order.backordered = {sku: qty for sku, qty, _ in waiting}
            add(
                StockBackordered(
                    order_id=order_id,
                    backordered=tuple(
                        BackorderedLine(line_id=f"l{i}", sku=sku, location="WH1", quantity=qty)
                        for i, (sku, qty, _) in enumerate(waiting)
                    ),
                ),
                at,
                order_id,
            )
            add(_status(order, "BACKORDERED", at), at, order_id)
            at += timedelta(hours=rng.randint(2, 72))
        if fate < 0.07:  # cancelled before it was confirmed
            order.cancelled_at = at
            order.cancel_reason = rng.choice((*CANCEL_REASONS, None))
            add(_status(order, "CANCELLED", at, order.cancel_reason), at, order_id)
            continue
        order.confirmed_at = at + timedelta(minutes=rng.randint(1, 30))
        confirmed = order.confirmed_at
        add(_status(order, "CONFIRMED", confirmed), confirmed, order_id)
        if fate < 0.12:  # cancelled after confirmation, before anything shipped
            order.cancelled_at = confirmed + timedelta(hours=rng.randint(1, 20))
            order.cancel_reason = rng.choice((*CANCEL_REASONS, None))
            add(
                _status(order, "CANCELLED", order.cancelled_at, order.cancel_reason),
                order.cancelled_at,
                order_id,
            )
            continue
        late = rng.random() < 0.15
        fulfilment_id = f"ful_{order_id}"
        parcels = 2 if len(lines) > 1 and rng.random() < 0.3 else 1
        split = (
            [lines[: len(lines) // 2 or 1], lines[len(lines) // 2 or 1 :]]
            if parcels == 2
            else [lines]
        )
        shipped_last = confirmed
        for index, part in enumerate(split):
            hours = rng.uniform(50, 120) if late else rng.uniform(0.5, 40)
            shipped_at = confirmed + timedelta(hours=hours)
            shipment_id = f"shp_{order_id}_{index}" if parcels == 2 else None
            shipment = Shipment(
                shipment_id or fulfilment_id, fulfilment_id, shipped_at, {s: q for s, q, _ in part}
            )
            order.shipments.append(shipment)
            add(
                FulfilmentShipped(
                    order_id=order_id,
                    fulfilment_id=fulfilment_id,
                    location="WH1",
                    lines=tuple(SkuQuantity(sku=s, quantity=q) for s, q, _ in part),
                    carrier="dhl",
                    tracking_number=f"T{n}{index}",
                    shipped_at=shipped_at,
                    shipment_id=shipment_id,
                    fulfilment_complete=index == len(split) - 1,
                ),
                shipped_at,
                order_id,
            )
            shipped_last = max(shipped_last, shipped_at)
        add(_status(order, "SHIPPED", shipped_last), shipped_last, order_id)
        if rng.random() < 0.12:
            continue  # still on its way
        delivered_last = shipped_last
        for shipment in order.shipments:
            shipment.delivered_at = shipment.shipped_at + timedelta(hours=rng.uniform(12, 96))
            delivered_last = max(delivered_last, shipment.delivered_at)
            add(
                FulfilmentDelivered(
                    order_id=order_id,
                    fulfilment_id=fulfilment_id,
                    delivered_at=shipment.delivered_at,
                    shipment_id=None if parcels == 1 else shipment.key,
                ),
                shipment.delivered_at,
                order_id,
            )
        add(_status(order, "DELIVERED", delivered_last), delivered_last, order_id)
        if rng.random() < 0.12:
            _return(rng, order, delivered_last, add)
        else:
            done = delivered_last + timedelta(days=1)
            add(_status(order, "COMPLETED", done), done, order_id)

    availability, low_stock = _stock(rng, window_start, window_s, add)
    events.sort(key=lambda e: (e.at, e.envelope.message_id.int))
    return World(orders, availability, low_stock), events


def _return(rng: random.Random, order: Order, delivered: datetime, add: Add) -> None:
    return_id = f"ret_{order.order_id}"
    requested = delivered + timedelta(hours=rng.uniform(4, 120))
    chosen = order.lines[: rng.randint(1, len(order.lines))]
    lines = [(sku, rng.choice(RETURN_REASONS), rng.randint(1, qty)) for sku, qty, _ in chosen]
    refused = rng.random() < 0.1
    order.returns.append(Return(return_id, requested, refused, lines))
    summary = tuple(ReturnLineSummary(sku=s, quantity=q, reason=r) for s, r, q in lines)
    steps = (
        ["REQUESTED", "REFUSED"] if refused else ["REQUESTED", "APPROVED", "RECEIVED", "REFUNDED"]
    )
    at = requested
    for revision, status in enumerate(steps, start=1):
        add(
            ReturnStatusChanged(
                return_id=return_id,
                order_id=order.order_id,
                status=status,
                revision=revision,
                currency=order.currency,
                lines=summary,
                refund_status="pending",
                at=at,
            ),
            at,
            return_id,
        )
        at += timedelta(hours=rng.uniform(1, 30))
    if refused:
        return
    prices = {sku: price for sku, _, price in order.lines}
    amount = sum((prices[s] * q for s, _, q in lines), Decimal(0))
    refunded_at = at
    if order.channel == "amazon":
        order.refunds.append(Refund("channel", order.currency, amount, refunded_at))
        add(
            ChannelRefundRequested(
                return_id=return_id,
                order_id=order.order_id,
                channel=order.channel,
                amount=amount,
                currency=order.currency,
                reason="return",
                idempotency_key=f"{return_id}:refund",
            ),
            refunded_at,
            return_id,
        )
    else:
        order.refunds.append(Refund("payment", order.currency, amount, refunded_at))
        add(
            PaymentRefunded(
                order_id=order.order_id,
                amount=amount,
                currency=order.currency,
                refunded_total=amount,
                return_id=return_id,
            ),
            refunded_at,
            order.order_id,
        )


def _stock(
    rng: random.Random, start: datetime, window_s: int, add: Add
) -> tuple[dict[str, list[tuple[datetime, int]]], list[tuple[str, str, datetime]]]:
    """Each SKU's availability over the window: a walk that now and then hits 0 (or below)."""
    series: dict[str, list[tuple[datetime, int]]] = {}
    low: list[tuple[str, str, datetime]] = []
    for sku in SKUS:
        level = rng.randint(0, 40)
        at = start + timedelta(seconds=rng.randrange(3600))
        points: list[tuple[datetime, int]] = []
        low_now = False
        while at < start + timedelta(seconds=window_s):
            points.append((at, level))
            add(
                AvailabilityChanged(sku=sku, on_hand=max(level, 0), reserved=0, available=level),
                at,
                sku,
            )
            if level <= 5 and not low_now:
                low_now = True
                low.append((sku, "WH1", at))
                add(
                    LowStock(
                        sku=sku,
                        location="WH1",
                        on_hand=max(level, 0),
                        reserved=0,
                        available=level,
                        reorder_point=5,
                        reorder_point_source="explicit",
                        velocity_per_day=1.0,
                    ),
                    at,
                    sku,
                )
            elif level > 10 and low_now:
                low_now = False
                add(
                    StockRecovered(sku=sku, location="WH1", available=level, reorder_point=5),
                    at,
                    sku,
                )
            level = (
                rng.randint(8, 40)
                if level <= 0 and rng.random() < 0.6
                else level + rng.randint(-12, 6)
            )
            at += timedelta(minutes=rng.randint(30, 600))
        series[sku] = points
    return series, low


def at_utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)
