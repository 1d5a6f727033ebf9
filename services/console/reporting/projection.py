"""The projection: each event the KPIs read becomes facts in the read model (store.py).

Behind the consumer's inbox a message is applied once; each handler is idempotent on its own
facts as well (first times kept with LEAST, keyed upserts, revisions), so the same fact sent
again in a new message — a producer re-sending an answer, a replay from a dead-letter topic —
counts once too.
"""

from __future__ import annotations

from services.console.reporting import store
from shared.contracts.fulfilment import FulfilmentDelivered, FulfilmentShipped
from shared.contracts.inventory import (
    AvailabilityChanged,
    LowStock,
    StockBackordered,
    StockRecovered,
)
from shared.contracts.order_intake import OrderStatusChanged
from shared.contracts.payment import PaymentRefunded, PaymentRefundedExternally
from shared.contracts.returns import ChannelRefundRequested, ReturnStatusChanged
from shared.envelope import Envelope
from shared.platform.handlers import HandlerRegistry
from shared.platform.outbox import UnitOfWork
from shared.topics import (
    FULFILMENT_EVENTS,
    INVENTORY_EVENTS,
    ORDERS_EVENTS,
    PAYMENT_EVENTS,
    RETURNS_EVENTS,
)

TOPICS = (ORDERS_EVENTS, FULFILMENT_EVENTS, RETURNS_EVENTS, PAYMENT_EVENTS, INVENTORY_EVENTS)
"""What the console consumes (its ServiceSpec's topics)."""


async def on_order_status(uow: UnitOfWork, _: Envelope, event: OrderStatusChanged) -> None:
    await store.record_order_status(
        uow.conn,
        order_id=event.order_id,
        channel=event.channel,
        currency=event.currency,
        total=event.total,
        status=event.status,
        reason=event.reason,
        at=event.at,
    )


async def on_shipped(uow: UnitOfWork, _: Envelope, event: FulfilmentShipped) -> None:
    units: dict[str, int] = {}
    for line in event.lines:
        units[line.sku] = units.get(line.sku, 0) + line.quantity
    await store.record_shipment(
        uow.conn,
        shipment_key=event.shipment_key,
        order_id=event.order_id,
        fulfilment_id=event.fulfilment_id,
        location=event.location,
        carrier=event.carrier,
        shipped_at=event.shipped_at,
        lines=sorted(units.items()),
    )


async def on_delivered(uow: UnitOfWork, _: Envelope, event: FulfilmentDelivered) -> None:
    await store.record_delivery(
        uow.conn,
        order_id=event.order_id,
        fulfilment_id=event.fulfilment_id,
        shipment_id=event.shipment_id,
        delivered_at=event.delivered_at,
    )


async def on_return_status(uow: UnitOfWork, _: Envelope, event: ReturnStatusChanged) -> None:
    await store.record_return(
        uow.conn,
        return_id=event.return_id,
        order_id=event.order_id,
        status=event.status,
        revision=event.revision,
        at=event.at,
        lines=[(line.sku, line.reason, line.quantity) for line in event.lines],
    )


async def on_refunded(uow: UnitOfWork, envelope: Envelope, event: PaymentRefunded) -> None:
    # One refund of an order is named by the order's refunded total after it (it only grows).
    key = f"payment:{event.order_id}:{event.refunded_total.normalize():f}"
    await _record_refund(uow, envelope, event, key, "payment", event.return_id)


async def on_refunded_externally(
    uow: UnitOfWork, envelope: Envelope, event: PaymentRefundedExternally
) -> None:
    key = f"provider:{event.gateway}:{event.gateway_refund_id}"
    await _record_refund(uow, envelope, event, key, "provider", None)


async def on_channel_refund(
    uow: UnitOfWork, envelope: Envelope, event: ChannelRefundRequested
) -> None:
    key = f"channel:{event.idempotency_key}"
    await _record_refund(uow, envelope, event, key, "channel", event.return_id)


async def _record_refund(
    uow: UnitOfWork,
    envelope: Envelope,
    event: PaymentRefunded | PaymentRefundedExternally | ChannelRefundRequested,
    refund_key: str,
    kind: str,
    return_id: str | None,
) -> None:
    """A refund of any kind: its order, currency and amount, when the event happened."""
    await store.record_refund(
        uow.conn,
        refund_key=refund_key,
        kind=kind,
        order_id=event.order_id,
        return_id=return_id,
        currency=event.currency,
        amount=event.amount,
        at=envelope.occurred_at,
    )


async def on_backordered(uow: UnitOfWork, envelope: Envelope, event: StockBackordered) -> None:
    await store.record_backorders(
        uow.conn,
        order_id=event.order_id,
        lines=[(b.line_id, b.location, b.sku, b.quantity, b.kind) for b in event.backordered],
        at=envelope.occurred_at,
    )


async def on_availability(uow: UnitOfWork, envelope: Envelope, event: AvailabilityChanged) -> None:
    await store.record_availability(
        uow.conn, sku=event.sku, available=event.available, at=envelope.occurred_at
    )


async def on_low_stock(uow: UnitOfWork, envelope: Envelope, event: LowStock) -> None:
    await store.record_low_stock(
        uow.conn,
        sku=event.sku,
        location=event.location,
        available=event.available,
        reorder_point=event.reorder_point,
        at=envelope.occurred_at,
    )


async def on_stock_recovered(uow: UnitOfWork, envelope: Envelope, event: StockRecovered) -> None:
    await store.record_stock_recovered(
        uow.conn, sku=event.sku, location=event.location, at=envelope.occurred_at
    )


def reporting_handlers() -> HandlerRegistry:
    """The console's handlers: every event the KPIs read."""
    registry = HandlerRegistry()
    registry.register(on_order_status, OrderStatusChanged)
    registry.register(on_shipped, FulfilmentShipped)
    registry.register(on_delivered, FulfilmentDelivered)
    registry.register(on_return_status, ReturnStatusChanged)
    registry.register(on_refunded, PaymentRefunded)
    registry.register(on_refunded_externally, PaymentRefundedExternally)
    registry.register(on_channel_refund, ChannelRefundRequested)
    registry.register(on_backordered, StockBackordered)
    registry.register(on_availability, AvailabilityChanged)
    registry.register(on_low_stock, LowStock)
    registry.register(on_stock_recovered, StockRecovered)
    return registry
