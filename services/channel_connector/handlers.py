"""The connector's event handlers: each turns an event into work for a channel, in the consumer's
transaction (the work is sent later by workers.py; a redelivered event queues nothing twice —
every push is unique by (account, kind, key), a stock level only moves to a newer value).

- `ChannelAvailabilityChanged` → the SKU's level for the accounts of that channel that take stock;
- `OrderStatusChanged` of a channel order → the order projection; CANCELLED → a cancellation
  of what had not shipped; the shipments that arrived before the order was known are queued;
- `FulfilmentShipped` → one shipment push per parcel (parked until the order is known);
- `ChannelRefundRequested` → a refund push (the channel holds the money).
"""

from __future__ import annotations

import logging
from typing import Any

from services.channel_connector import store
from services.channel_connector.accounts import Accounts
from services.channel_connector.clients.base import Capability
from services.channel_connector.domain import PushKind, Quantity, quantities_json, unshipped
from services.channel_connector.store import ChannelOrder
from shared.contracts.fulfilment import FulfilmentShipped
from shared.contracts.inventory import ChannelAvailabilityChanged
from shared.contracts.order_intake import OrderStatusChanged
from shared.contracts.returns import ChannelRefundRequested
from shared.envelope import Envelope
from shared.platform.handlers import HandlerRegistry
from shared.platform.outbox import UnitOfWork

log = logging.getLogger(__name__)

CANCELLED = "CANCELLED"


def shipment_document(event: FulfilmentShipped) -> dict[str, Any]:
    """What a shipment push carries (without the order's channel ids, added when queued)."""
    return {
        "key": event.shipment_key,
        "order_id": event.order_id,
        "carrier": event.carrier,
        "tracking_number": event.tracking_number,
        "tracking_url": event.tracking_url,
        "shipped_at": event.shipped_at.isoformat(),
        "lines": [{"sku": line.sku, "quantity": line.quantity} for line in event.lines],
    }


def connector_handlers(accounts: Accounts) -> HandlerRegistry:
    async def on_availability(
        uow: UnitOfWork, envelope: Envelope, event: ChannelAvailabilityChanged
    ) -> None:
        takers = [a.name for a in accounts.doing(Capability.STOCK, event.channel)]
        if takers:
            await store.set_stock_levels(uow.conn, takers, event.sku, max(0, event.available))

    async def on_order_status(
        uow: UnitOfWork, envelope: Envelope, event: OrderStatusChanged
    ) -> None:
        if event.channel not in accounts.channels():
            return
        if event.external_id is None:
            log.warning(
                "order %s of %s has no channel id: not served", event.order_id, event.channel
            )
            return
        preferred = await store.account_of_order(uow.conn, event.channel, event.external_id)
        account = accounts.serving(event.channel, preferred)
        assert account is not None
        ordered = tuple(Quantity(line.sku, line.quantity) for line in event.lines)
        order = ChannelOrder(
            event.order_id, account.name, event.channel, event.external_id, event.status, ordered
        )
        previous = await store.upsert_channel_order(uow.conn, order)
        if previous is None:
            for parked in await store.take_parked_shipments(uow.conn, event.order_id):
                await _queue_shipment(uow, order, parked)
        if event.status == CANCELLED and previous != CANCELLED:
            left = unshipped(ordered, (Quantity(s.sku, s.quantity) for s in event.shipped or ()))
            # Queued even where the channel's API cannot cancel: the sender then alerts an
            # operator to cancel it on the channel by hand.
            if left and account.wants(Capability.CANCELLATIONS):
                await _queue_push(
                    uow,
                    order,
                    PushKind.CANCELLATION,
                    event.order_id,
                    {"reason": event.reason or "cancelled", "lines": quantities_json(left)},
                )

    async def on_shipped(uow: UnitOfWork, envelope: Envelope, event: FulfilmentShipped) -> None:
        shipment = shipment_document(event)
        order = await store.get_channel_order(uow.conn, event.order_id)
        if order is None:
            await store.park_shipment(uow.conn, event.shipment_key, event.order_id, shipment)
            return
        await _queue_shipment(uow, order, shipment)

    async def _queue_shipment(
        uow: UnitOfWork, order: ChannelOrder, shipment: dict[str, Any]
    ) -> None:
        account = accounts.get(order.account)
        if account is None or not account.does(Capability.SHIPMENTS):
            return
        await _queue_push(uow, order, PushKind.SHIPMENT, shipment["key"], shipment)

    async def on_refund(uow: UnitOfWork, envelope: Envelope, event: ChannelRefundRequested) -> None:
        order = await store.get_channel_order(uow.conn, event.order_id)
        if order is None:
            if event.channel in accounts.channels():
                log.warning(
                    "refund %s of unknown order %s not pushed", event.return_id, event.order_id
                )
            return
        account = accounts.get(order.account)
        if account is None or not account.wants(Capability.REFUNDS):
            return
        await _queue_push(
            uow,
            order,
            PushKind.REFUND,
            event.idempotency_key,
            {
                "return_id": event.return_id,
                "amount": str(event.amount),
                "currency": event.currency,
                "reason": event.reason,
            },
        )

    async def _queue_push(
        uow: UnitOfWork, order: ChannelOrder, kind: PushKind, key: str, details: dict[str, Any]
    ) -> None:
        """A push about a channel order for its account, unique by `key`: its payload names the
        order by the OMS's id and the channel's (what the sender reads of every kind) and
        carries the kind's `details`."""
        await store.enqueue_push(
            uow.conn,
            order.account,
            kind,
            key,
            {"key": key, "order_id": order.order_id, "external_id": order.external_id, **details},
            order_id=order.order_id,
        )

    registry = HandlerRegistry()
    registry.register(on_availability, ChannelAvailabilityChanged)
    registry.register(on_order_status, OrderStatusChanged)
    registry.register(on_shipped, FulfilmentShipped)
    registry.register(on_refund, ChannelRefundRequested)
    return registry
