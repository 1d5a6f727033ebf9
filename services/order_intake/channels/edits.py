"""Order edits from channels, at the edges: an update of a known order taken in (webhook or
Kafka), and fulfilment's answers to the address changes it asked for.

The rules are domain/edits.py's. Here: the saga is loaded under its row lock, whether picking
has started is read from the order's timeline (the floor's progress, orders/warehouse_progress.py)
only when the update asks for a change, the decision is persisted like any saga step, and the
order row's shipping address follows the saga's when a change is applied.
"""

from __future__ import annotations

import logging
from typing import Any

from services.order_intake.channels import store
from services.order_intake.channels.adapters.base import NewOrder
from services.order_intake.domain import edits
from services.order_intake.domain.saga import Decision, OrderSaga
from services.order_intake.orders import store as order_store
from services.order_intake.orders.saga_runner import now, persist
from shared.envelope import Envelope
from shared.platform.consumer import Handler
from shared.platform.outbox import UnitOfWork

log = logging.getLogger(__name__)


def channel_update(channel: str, result: NewOrder) -> edits.ChannelUpdate:
    order = result.order
    return edits.ChannelUpdate(
        channel=channel,
        external_id=result.external_id,
        shipping_address=order.shipping_address,
        lines=edits.units((line.sku, line.quantity) for line in order.lines),
        changed_at=order.channel_changed_at,
    )


async def take_edit(
    uow: UnitOfWork, channel: str, result: NewOrder, order_id: str
) -> tuple[str, OrderSaga, str | None]:
    """An order the channel sent before, sent again: (outcome, saga, reason). The outcome is
    `duplicate` when it asks for no change, else EditResult.outcome."""
    conn = uow.conn
    saga = await order_store.load_saga(conn, order_id, lock=True)
    assert saga is not None
    update = channel_update(channel, result)
    if edits.is_stale(saga, update):
        return "duplicate", saga, None
    if not edits.wants_change(saga, update):
        if edits.note_version(saga, update):  # a newer version, the same order: remember it
            await persist(uow, saga, saga.status, Decision())
        return "duplicate", saga, None
    started = await store.picking_started(conn, order_id)
    address_before = saga.shipping_address
    previous = saga.status
    decided = edits.request_edit(saga, update, now(), picking_started=started)
    await persist(uow, saga, previous, decided.decision)
    await _address_followed(uow, saga, address_before)
    return decided.outcome, saga, decided.reason


async def _address_followed(uow: UnitOfWork, saga: OrderSaga, before: Any) -> None:
    if saga.shipping_address != before:
        await store.save_shipping_address(
            uow.conn, saga.order_id, saga.shipping_address.model_dump(mode="json")
        )


async def on_address_answer(uow: UnitOfWork, envelope: Envelope, event: Any) -> None:
    """ShippingAddressUpdated / ShippingAddressChangeRefused from fulfilment."""
    saga = await order_store.load_saga(uow.conn, event.order_id, lock=True)
    if saga is None:
        log.warning("%s for unknown order %s ignored", envelope.type, event.order_id)
        return
    before = saga.shipping_address
    previous = saga.status
    decision = edits.handle_answer(saga, event, now())
    if not decision.timeline and not decision.messages:
        return  # the answer to a change decided already (a re-sent command's)
    await persist(uow, saga, previous, decision)
    await _address_followed(uow, saga, before)


def edit_answer_handlers() -> dict[str, Handler]:
    return {contract.TYPE: on_address_answer for contract in edits.HANDLED_ANSWERS}
