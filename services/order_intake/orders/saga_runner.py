"""Running the order saga: saving what it decided and emitting its messages, and its event
handlers on a consumer batch.

`persist` saves a saga and everything its `Decision` holds (timeline, commands, notices, the
status event) in the caller's transaction; every path that changes an order ends there.

The saga's event handlers: load the order's saga under a row lock, let the pure saga decide,
save. In a consumer batch the sagas of the orders still to come are locked and loaded with one
statement, and the saga steps decided are written with one statement before the commit (the
pending sagas in `uow.batch`); handlers that read or write orders themselves run after that
write (registered with `after=write_pending_sagas`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from services.order_intake.domain import saga as saga_domain
from services.order_intake.domain.saga import Decision, OrderSaga, SagaPolicy, Status
from services.order_intake.orders import metrics, store
from shared.contracts.common import SkuQuantity
from shared.contracts.order_intake import OrderLineSummary, OrderStatusChanged
from shared.envelope import Envelope
from shared.platform.batch import BatchKey
from shared.platform.consumer import Handler
from shared.platform.handlers import HandlerRegistry
from shared.platform.outbox import UnitOfWork
from shared.platform.telemetry import continue_trace, current_trace_headers, current_trace_id

log = logging.getLogger(__name__)


def now() -> datetime:
    return datetime.now(UTC)


async def persist(
    uow: UnitOfWork,
    saga: OrderSaga,
    previous: Status,
    decision: Decision,
    *,
    stored_facts: dict[str, Any] | None = None,
    deferred_facts: dict[str, Any] | None = None,
) -> None:
    """Save the saga and everything it decided, in the caller's transaction.

    `stored_facts`: the saga and the decision's timeline were already stored with the new order
    (store.insert_order); these are its totals for the status event.
    `deferred_facts` (a consumer batch, facts loaded with the saga): the saga and its timeline
    are written with the batch's other saga steps in one statement before the commit.
    The order's messages always continue the order's own trace (stored when it was created),
    also when a deadline, an operator or a cancel request caused them.
    """
    step_before = saga_step_of(previous, decision)
    if stored_facts is not None:
        facts = stored_facts
    elif deferred_facts is not None:
        if not saga.trace_context:
            saga.trace_context = current_trace_headers()
        pending = uow.batch.setdefault(_PENDING_SAGAS, PendingSagas())
        pending.sagas[saga.order_id] = saga
        pending.timeline.extend((saga.order_id, saga.status.value, e) for e in decision.timeline)
        uow.before_commit(_PENDING_SAGAS, lambda: write_pending_sagas(uow))
        facts = deferred_facts
    else:
        if not saga.trace_context:
            saga.trace_context = current_trace_headers()
        facts = await store.save_saga_with_timeline(uow.conn, saga, decision.timeline)
    with _in_order_trace(saga) as span:
        span.set_attribute("oms.order_id", saga.order_id)
        span.set_attribute("oms.saga_status", saga.status.value)
        if saga.step is not None:
            span.set_attribute("oms.saga_step", saga.step.value)
        for message in decision.messages:
            uow.emit(message, key=saga.order_id, correlation_id=saga.order_id)
        if saga.status != previous:
            uow.emit(
                status_changed(saga, previous, facts),
                key=saga.order_id,
                correlation_id=saga.order_id,
            )
    if saga.status != previous:
        uow.after_commit.append(
            lambda: metrics.record_transition(previous.value, saga.status.value)
        )
    if step_before is not None:
        uow.after_commit.append(step_before)


def saga_step_of(previous: Status, decision: Decision) -> Any:
    """A callback that records how long the step that just answered took, if one did."""
    finished = [e for e in decision.timeline if e.event == "step_finished"]
    if not finished:
        return None
    detail = finished[-1].detail

    def record() -> None:
        metrics.SAGA_STEP_DURATION.labels(detail["step"], detail["outcome"]).observe(
            detail["seconds"]
        )

    return record


@contextlib.contextmanager
def _in_order_trace(saga: OrderSaga) -> Iterator[trace.Span]:
    stored = saga.trace_context.get("traceparent", "")
    current = current_trace_id()
    if stored and current and stored.split("-")[1:2] == [current]:
        span = trace.get_current_span()
        yield span
        return
    with continue_trace(saga.trace_context, f"order saga {saga.status.value}") as span:
        yield span


def status_changed(
    saga: OrderSaga, previous: Status | None, facts: dict[str, Any] | None = None
) -> OrderStatusChanged:
    """`facts`: the order's totals and exchange links (as store.lock_sagas and
    store.save_saga_with_timeline read them), for returns."""
    facts = facts or {}
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
        subtotal=facts.get("subtotal"),
        discount=facts.get("discount"),
        shipping=facts.get("shipping"),
        tax=facts.get("tax"),
        paid_externally=saga.paid_externally,
        linked_return_id=facts.get("linked_return_id"),
        original_order_id=facts.get("original_order_id"),
        external_id=facts.get("external_id"),
        shipped=tuple(
            SkuQuantity(sku=sku, quantity=quantity)
            for sku, quantity in sorted(saga_domain.shipped_units(saga).items())
        ),
    )


@dataclass
class PendingSagas:
    """The saga steps of a consumer batch not written yet: the sagas by order id, and their
    (order id, status, entry) timeline rows in order."""

    sagas: dict[str, OrderSaga] = field(default_factory=dict)
    timeline: list[tuple[str, str, saga_domain.TimelineEntry]] = field(default_factory=list)


@dataclass
class LockedSagas:
    """The sagas (with their facts, see store.lock_sagas) of the orders still to come in the
    batch, locked and loaded at the message at `position`."""

    sagas: dict[str, tuple[OrderSaga, dict[str, Any]]]
    position: int


_PENDING_SAGAS = BatchKey[PendingSagas]("order_intake.pending_sagas")
_LOCKED_SAGAS = BatchKey[LockedSagas]("order_intake.locked_sagas")


async def write_pending_sagas(uow: UnitOfWork) -> None:
    """Write the saga steps of the batch deferred so far (one statement). Handlers that read or
    write orders themselves run after it (registered with `after=write_pending_sagas`)."""
    pending = uow.batch.pop(_PENDING_SAGAS)
    if pending is not None:
        await store.save_sagas(uow.conn, list(pending.sagas.values()), pending.timeline)


async def load_locked(uow: UnitOfWork, order_id: str) -> OrderSaga | None:
    """The order's saga under a row lock. In a consumer batch the sagas of every order still to
    come in it are locked and loaded with one statement; they are trusted for the next message
    only while the batch's messages are handled one after the other by this handler (the saga
    objects are the ones it saved), else loaded again."""
    batch = uow.batch
    if not batch.messages:
        return await store.load_saga(uow.conn, order_id, lock=True)
    locked = batch.get(_LOCKED_SAGAS)
    if locked is None or locked.position != batch.position - 1 or order_id not in locked.sagas:
        await write_pending_sagas(uow)  # what is read next must be what was decided
        upcoming = [getattr(m, "order_id", None) for m in batch.upcoming]
        sagas = await store.lock_sagas(
            uow.conn, [o for o in upcoming if isinstance(o, str)] or [order_id]
        )
        locked = LockedSagas(sagas, batch.position)
        batch.set(_LOCKED_SAGAS, locked)
    locked.position = batch.position
    found = locked.sagas.get(order_id)
    return found[0] if found is not None else None


def facts_in_batch(uow: UnitOfWork, order_id: str) -> dict[str, Any] | None:
    """The facts load_locked read with the order's saga in this batch, if it did."""
    locked = uow.batch.get(_LOCKED_SAGAS)
    found = locked.sagas.get(order_id) if locked is not None else None
    return found[1] if found is not None else None


def make_event_handler(policy: SagaPolicy) -> Handler:
    async def on_event(uow: UnitOfWork, envelope: Envelope, event: Any) -> None:
        order_id: str = event.order_id
        saga = await load_locked(uow, order_id)
        if saga is None:
            log.warning("%s for unknown order %s ignored", envelope.type, order_id)
            return
        previous = saga.status
        decision = saga_domain.handle(saga, event, now(), policy)
        await persist(uow, saga, previous, decision, deferred_facts=facts_in_batch(uow, order_id))

    return on_event


def saga_event_handlers(policy: SagaPolicy) -> HandlerRegistry:
    registry = HandlerRegistry()
    registry.register(make_event_handler(policy), *saga_domain.HANDLED_EVENTS)
    return registry
