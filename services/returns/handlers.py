"""Returns' message handlers and the saga's deadline scheduler.

- OrderStatusChanged: kept in returns' own read model of orders (the policy and the refunds
  need the lines, totals and the delivery time); when the order is the replacement of an
  exchange, its return's saga learns how far it got.
- The answers of inventory (restock / write-off), order-intake (replacement order) and payment
  (refund): load the return's saga under a row lock, let the pure saga decide, save the saga,
  its timeline and the outgoing messages (outbox) in the handler's transaction.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry import trace

from services.returns import store
from services.returns.domain import saga as saga_domain
from services.returns.domain.policy import RefundShipping, ReturnPolicy
from services.returns.domain.saga import Decision, ReturnSaga, SagaTimings
from services.returns.settings import ReturnsSettings
from shared.contracts.inventory import (
    ReturnedItemsRestocked,
    ReturnedItemsWrittenOff,
    ReturnedStockFailed,
)
from shared.contracts.order_intake import (
    OrderStatusChanged,
    RefundPayment,
    ReplacementOrderCreated,
    ReplacementOrderRefused,
)
from shared.contracts.payment import PaymentRefunded, PaymentRefundFailed
from shared.contracts.returns import ReceivedLineSummary, ReturnLineSummary, ReturnStatusChanged
from shared.envelope import Contract, Envelope
from shared.platform.batch import BatchKey
from shared.platform.handlers import HandlerRegistry
from shared.platform.outbox import UnitOfWork
from shared.platform.saga import store as saga_store
from shared.platform.saga.deadlines import Deadlines
from shared.platform.saga.store import TimelineRow
from shared.platform.service import BackgroundJob, Runtime

log = logging.getLogger(__name__)


def now() -> datetime:
    return datetime.now(UTC)


def policy_from(settings: ReturnsSettings) -> ReturnPolicy:
    return ReturnPolicy(
        window_days=settings.return_window_days,
        window_days_by_channel=dict(settings.return_window_days_by_channel),
        non_returnable_skus=frozenset(settings.non_returnable_skus),
        refund_shipping=RefundShipping(settings.refund_shipping),
        damaged_refund_percent=settings.damaged_refund_percent,
        full_refund_reasons=frozenset(settings.full_refund_reasons),
        manual_review_reasons=frozenset(settings.manual_review_reasons),
        manual_review_above=settings.manual_review_above,
    )


def timings_from(settings: ReturnsSettings) -> SagaTimings:
    return SagaTimings(
        stock_timeout=timedelta(seconds=settings.saga_stock_timeout_s),
        replacement_timeout=timedelta(seconds=settings.saga_replacement_timeout_s),
        refund_timeout=timedelta(seconds=settings.saga_refund_timeout_s),
        max_attempts=settings.saga_max_attempts,
        refund_max_attempts=settings.refund_max_attempts,
        refund_retry_backoff=timedelta(seconds=settings.refund_retry_backoff_s),
    )


async def persist(
    uow: UnitOfWork, saga: ReturnSaga, decision: Decision, *, created: bool = False
) -> None:
    """Save the saga and everything it decided, in the caller's transaction."""
    at = now()
    changes = []
    for previous, status in decision.transitions:
        saga.revision += 1
        changes.append(status_changed(saga, previous, status, at))
    if created:
        await store.insert_return(uow.conn, saga)
    else:
        await store.save_return(uow.conn, saga)
    await saga_store.append_timeline(
        uow.conn,
        store.SAGAS,
        [TimelineRow(saga.return_id, e.status, e.event, e.detail) for e in decision.timeline],
    )
    for message in decision.messages:
        # Payment serialises an order's operations by its key: refunds are keyed by order.
        key = message.order_id if isinstance(message, RefundPayment) else saga.return_id
        uow.emit(message, key=key, correlation_id=saga.return_id)
    for change in changes:
        uow.emit(change, key=saga.return_id, correlation_id=saga.return_id)
    span = trace.get_current_span()
    span.set_attribute("oms.return_id", saga.return_id)
    span.set_attribute("oms.order_id", saga.order_id)
    span.set_attribute("oms.return_status", saga.status.value)


def status_changed(
    saga: ReturnSaga,
    previous: saga_domain.Status | None,
    status: saga_domain.Status,
    at: datetime,
) -> ReturnStatusChanged:
    return ReturnStatusChanged(
        return_id=saga.return_id,
        order_id=saga.order_id,
        status=status.value,
        previous_status=previous.value if previous else None,
        revision=saga.revision,
        reason=saga.reason,
        currency=saga.currency,
        lines=tuple(
            ReturnLineSummary(sku=line.sku, quantity=line.quantity, reason=line.reason)
            for line in saga.lines
        ),
        received=tuple(
            ReceivedLineSummary(sku=i.sku, quantity=i.quantity, condition=i.condition.value)
            for i in saga.received
        ),
        refund_amount=saga.refund_amount,
        refund_status=saga.refund_status.value,
        refunded_amount=saga.refunded_amount,
        amount_due=saga.amount_due,
        replacement_order_id=saga.replacement_order_id,
        at=at,
    )


ANSWERS: tuple[type[Contract], ...] = (
    ReturnedItemsRestocked,
    ReturnedItemsWrittenOff,
    ReturnedStockFailed,
    ReplacementOrderCreated,
    ReplacementOrderRefused,
    PaymentRefunded,
    PaymentRefundFailed,
)


_PENDING_ORDERS = BatchKey[list[OrderStatusChanged]]("returns.pending_order_events")


async def write_pending_orders(uow: UnitOfWork) -> None:
    """Store the order events of the batch collected so far (one round trip)."""
    events = uow.batch.pop(_PENDING_ORDERS)
    if events:
        await store.upsert_orders(uow.conn, events)


def handlers(timings: SagaTimings) -> HandlerRegistry:
    async def on_answer(uow: UnitOfWork, envelope: Envelope, event: Any) -> None:
        return_id: str | None = event.return_id
        if return_id is None:
            return  # a refund of a cancellation, not of a return
        saga = await store.load_return(uow.conn, return_id, lock=True)
        if saga is None:
            log.warning("%s for unknown return %s ignored", envelope.type, return_id)
            return
        decision = saga_domain.handle(saga, event, now(), timings)
        await persist(uow, saga, decision)

    async def on_order_status_changed(
        uow: UnitOfWork, envelope: Envelope, event: OrderStatusChanged
    ) -> None:
        # Most order events only update the read model: they are written together, once per
        # consumer batch (in order), before the transaction commits.
        uow.batch.setdefault(_PENDING_ORDERS, []).append(event)
        uow.before_commit(_PENDING_ORDERS, lambda: write_pending_orders(uow))
        return_id = event.linked_return_id
        if return_id is None and event.original_order_id is not None:
            # Only a replacement order (it names its original) can belong to an exchange.
            return_id = await store.return_id_for_replacement(uow.conn, event.order_id)
        if return_id is None:
            return
        await write_pending_orders(uow)
        saga = await store.load_return(uow.conn, return_id, lock=True)
        if saga is None:
            return
        decision = saga_domain.on_replacement_status(
            saga, event.order_id, event.status, now(), timings
        )
        await persist(uow, saga, decision)

    registry = HandlerRegistry()
    # What follows an answer sees the read model of orders up to date.
    registry.register(on_answer, *ANSWERS, after=write_pending_orders)
    registry.register(on_order_status_changed, OrderStatusChanged)
    return registry


def deadlines(timings: SagaTimings) -> Deadlines[ReturnSaga]:
    async def on_deadline(uow: UnitOfWork, saga: ReturnSaga) -> None:
        await persist(uow, saga, saga_domain.on_deadline(saga, now(), timings))

    return Deadlines(store.SAGAS, ReturnSaga, on_deadline, clock=now)


async def process_due_deadlines(runtime: Runtime, timings: SagaTimings) -> int:
    """One pass of the scheduler (see Deadlines.process_due)."""
    return await deadlines(timings).process_due(runtime)


def deadline_scheduler(settings: ReturnsSettings) -> BackgroundJob:
    return deadlines(timings_from(settings)).scheduler(
        interval_s=settings.deadline_poll_interval_s, name="return deadline"
    )
