"""Order-intake's message handlers and the saga's deadline scheduler.

Each handler: load the order's saga under a row lock, let the pure saga decide, save the saga,
its timeline and the outgoing messages (outbox) in the handler's transaction.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry import trace

from services.order_intake import store
from services.order_intake.domain import saga as saga_domain
from services.order_intake.domain.saga import Decision, OrderSaga, SagaPolicy, Status
from services.order_intake.settings import OrderIntakeSettings
from shared.contracts.order_intake import OrderLineSummary, OrderStatusChanged
from shared.envelope import Contract, Envelope
from shared.platform.consumer import Handler
from shared.platform.outbox import UnitOfWork
from shared.platform.service import Runtime

log = logging.getLogger(__name__)


def policy_from(settings: OrderIntakeSettings) -> SagaPolicy:
    return SagaPolicy(
        stock_timeout=timedelta(seconds=settings.saga_stock_timeout_s),
        payment_timeout=timedelta(seconds=settings.saga_payment_timeout_s),
        fulfilment_timeout=timedelta(seconds=settings.saga_fulfilment_timeout_s),
        compensation_timeout=timedelta(seconds=settings.saga_compensation_timeout_s),
        max_attempts=settings.saga_max_attempts,
        ship_sla=timedelta(seconds=settings.saga_ship_sla_s),
        delivery_sla=timedelta(seconds=settings.saga_delivery_sla_s),
    )


def now() -> datetime:
    return datetime.now(UTC)


async def persist(uow: UnitOfWork, saga: OrderSaga, previous: Status, decision: Decision) -> None:
    """Save the saga and everything it decided, in the caller's transaction."""
    await store.save_saga(uow.conn, saga)
    await store.append_timeline(uow.conn, saga.order_id, saga.status.value, decision.timeline)
    for message in decision.messages:
        uow.emit(message, key=saga.order_id, correlation_id=saga.order_id)
    if saga.status != previous:
        uow.emit(status_changed(saga, previous), key=saga.order_id, correlation_id=saga.order_id)
    span = trace.get_current_span()
    span.set_attribute("oms.order_id", saga.order_id)
    span.set_attribute("oms.saga_status", saga.status.value)


def status_changed(saga: OrderSaga, previous: Status | None) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=saga.order_id,
        channel=saga.channel,
        status=saga.status.value,
        previous_status=previous.value if previous else None,
        reason=saga.reason,
        currency=saga.currency,
        total=saga.total,
        lines=tuple(
            OrderLineSummary(
                line_id=li.line_id,
                sku=li.sku,
                quantity=li.quantity,
                unit_price=li.unit_price,
                line_total=li.line_total,
            )
            for li in saga.lines
        ),
        at=now(),
    )


def make_event_handler(policy: SagaPolicy) -> Handler:
    async def on_event(uow: UnitOfWork, envelope: Envelope, event: Any) -> None:
        order_id: str = event.order_id
        saga = await store.load_saga(uow.conn, order_id, lock=True)
        if saga is None:
            log.warning("%s for unknown order %s ignored", envelope.type, order_id)
            return
        previous = saga.status
        decision = saga_domain.handle(saga, event, now(), policy)
        await persist(uow, saga, previous, decision)

    return on_event


def handlers(policy: SagaPolicy) -> dict[str, Handler]:
    on_event = make_event_handler(policy)
    event_types: tuple[type[Contract], ...] = saga_domain.HANDLED_EVENTS
    return {event_type.TYPE: on_event for event_type in event_types}


async def process_due_deadlines(runtime: Runtime, policy: SagaPolicy, limit: int = 100) -> int:
    """One pass of the scheduler: every order whose deadline passed, under SKIP LOCKED so
    several replicas share the work."""
    async with runtime.uow() as uow:
        due = await store.due_order_ids(uow.conn, now(), limit)
        for order_id in due:
            saga = await store.load_saga(uow.conn, order_id, lock=False)
            if saga is None:
                continue
            previous = saga.status
            decision = saga_domain.on_deadline(saga, now(), policy)
            await persist(uow, saga, previous, decision)
    return len(due)


def deadline_scheduler(settings: OrderIntakeSettings) -> Any:
    policy = policy_from(settings)

    async def run_deadlines(runtime: Runtime) -> None:
        """Deadlines live in Postgres, so they survive restarts; this loop only looks them up."""
        while True:
            try:
                handled = await process_due_deadlines(runtime, policy)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("deadline pass failed")
                handled = 0
            if handled < 100:
                await asyncio.sleep(settings.deadline_poll_interval_s)

    return run_deadlines
