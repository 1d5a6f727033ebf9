"""What can be done to orders: place, cancel, retry, compensate, start the saga of a new order,
and let due deadlines fire. Routes, consumers and background tasks call these; each runs in the
caller's transaction (or opens one) and ends in `saga_runner.persist`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from services.order_intake.domain import saga as saga_domain
from services.order_intake.domain.order import CanonicalOrder, new_order_id, new_saga
from services.order_intake.domain.pricing import Totals
from services.order_intake.domain.saga import (
    Decision,
    OrderSaga,
    SagaPolicy,
    ShortPickPolicy,
    Status,
)
from services.order_intake.orders import store
from services.order_intake.orders.saga_runner import now, persist
from services.order_intake.risk import service as risk_service
from services.order_intake.risk import store as risk_store
from services.order_intake.settings import OrderIntakeSettings
from shared.platform.errors import ApiError
from shared.platform.outbox import UnitOfWork
from shared.platform.saga.deadlines import Deadlines
from shared.platform.saga.idempotency import IdempotencyKeys
from shared.platform.service import Runtime
from shared.platform.telemetry import continue_trace, current_trace_headers

OperatorAction = Literal["retry", "compensate"]
HoldAction = Literal["hold", "release", "reject"]
audit_log = logging.getLogger("oms.audit")

# A key reused for another order is refused without naming the order it placed.
IDEMPOTENCY_KEYS = IdempotencyKeys(store.SAGAS, noun="order")


def policy_from(settings: OrderIntakeSettings) -> SagaPolicy:
    return SagaPolicy(
        stock_timeout=timedelta(seconds=settings.saga_stock_timeout_s),
        payment_timeout=timedelta(seconds=settings.saga_payment_timeout_s),
        fulfilment_timeout=timedelta(seconds=settings.saga_fulfilment_timeout_s),
        compensation_timeout=timedelta(seconds=settings.saga_compensation_timeout_s),
        max_attempts=settings.saga_max_attempts,
        ship_sla=timedelta(seconds=settings.saga_ship_sla_s),
        delivery_sla=timedelta(seconds=settings.saga_delivery_sla_s),
        short_pick=ShortPickPolicy(settings.saga_short_pick_policy),
        backorder_max_wait=timedelta(seconds=settings.saga_backorder_max_wait_s),
        hold_sla=timedelta(seconds=settings.saga_hold_sla_s),
        customer_action_timeout=timedelta(seconds=settings.saga_customer_action_timeout_s),
        fraud_rules=settings.fraud_rules if settings.fraud_enabled else None,
    )


@dataclass(frozen=True)
class Placed:
    """The order a request placed; `duplicate`: it repeated one already placed."""

    order_id: str
    status: str
    duplicate: bool = False


async def place_order(
    uow: UnitOfWork,
    order: CanonicalOrder,
    totals: Totals,
    policy: SagaPolicy,
    raw_request: Any,
    *,
    idempotency_key: str | None,
    request_hash: str,
    client_ip: str | None = None,
) -> Placed:
    """A native order: stored with its saga started, or the order this idempotency key (or the
    channel's external id) already placed. 409 when the key was used for a different order.
    `client_ip`: the address it was posted from (the fraud rules' IP velocity)."""
    if idempotency_key is not None:
        earlier = await IDEMPOTENCY_KEYS.earlier_saga(uow.conn, idempotency_key, request_hash)
        if earlier is not None:
            return await _placed_before(uow, earlier)
    saga = await start_order(uow, order, totals, policy, raw_request, client_ip=client_ip)
    if saga is None:
        # The channel already sent this order (same external id).
        existing = await store.order_id_for_external_id(
            uow.conn, order.channel, str(order.external_id)
        )
        assert existing is not None
        return await _placed_before(uow, existing)
    if idempotency_key is not None:
        await IDEMPOTENCY_KEYS.remember(uow.conn, idempotency_key, request_hash, saga.order_id)
    return Placed(saga.order_id, saga.status.value)


async def _placed_before(uow: UnitOfWork, order_id: str) -> Placed:
    saga = await store.load_saga(uow.conn, order_id, lock=False)
    assert saga is not None
    return Placed(order_id, saga.status.value, duplicate=True)


async def start_order(
    uow: UnitOfWork,
    order: CanonicalOrder,
    totals: Totals,
    policy: SagaPolicy,
    raw_request: Any,
    *,
    early_cancel: str | None = None,
    client_ip: str | None = None,
) -> OrderSaga | None:
    """Store a new order and start its saga (reserve stock); `early_cancel`: a cancellation
    that came before the order, applied to it at once. The order, its lines, its saga and the
    first decision's timeline are stored with one statement. None, and nothing stored, when the
    channel already has an order with this external id. An order the fraud rules will score
    has its signals recorded and counted first (the velocity table)."""
    saga, decision = new_order_saga(order, totals, policy)
    rules = None if order.paid_externally or early_cancel else policy.fraud_rules
    if rules is not None:
        saga.risk_signals = await risk_service.record_signals(
            uow.conn, saga.order_id, order, client_ip, rules
        )
    if early_cancel is not None:
        cancelled = saga_domain.request_cancel(saga, early_cancel, now(), policy)
        decision.messages.extend(cancelled.messages)
        decision.timeline.extend(cancelled.timeline)
    if not saga.trace_context:
        saga.trace_context = current_trace_headers()
    stored = await store.insert_order(
        uow.conn, saga.order_id, order, totals, saga, raw_request, decision.timeline
    )
    if not stored:
        if rules is not None:
            await risk_store.forget(uow.conn, saga.order_id)
        return None
    await persist(
        uow, saga, Status.RECEIVED, decision, stored_facts=_new_order_facts(order, totals)
    )
    return saga


def _new_order_facts(order: CanonicalOrder, totals: Totals) -> dict[str, Any]:
    """The facts of a new order's status event (see store.save_saga_with_timeline)."""
    return {
        "external_id": order.external_id,
        "subtotal": totals.subtotal,
        "discount": totals.discount,
        "shipping": totals.shipping,
        "tax": totals.tax,
    }


def new_order_saga(
    order: CanonicalOrder, totals: Totals, policy: SagaPolicy
) -> tuple[OrderSaga, Decision]:
    """A new order id's saga and its first decision (nothing stored yet)."""
    saga = new_saga(new_order_id(), order, totals)
    return saga, saga_domain.start(saga, now(), policy)


@dataclass(frozen=True)
class Acted:
    """What a cancel or an operator action did to the order's saga."""

    saga: OrderSaga
    previous: Status
    decision: Decision


async def cancel_order(
    uow: UnitOfWork, order_id: str, reason: str, policy: SagaPolicy, *, subject: str
) -> Acted:
    """Cancel before shipment (applied when the step in flight answers); 409 once shipped."""
    return await _act(
        uow,
        order_id,
        lambda saga: saga_domain.request_cancel(saga, reason, now(), policy),
        "requested_by",
        {"action": "cancel", "subject": subject},
    )


async def operator_action(
    uow: UnitOfWork,
    order_id: str,
    action: OperatorAction,
    policy: SagaPolicy,
    *,
    subject: str,
    by: str | None,
    note: str | None,
) -> Acted:
    """An operator's retry (re-send what the order waits for, or resume a parked order) or
    compensation (undo and cancel); 409 when the saga refuses it."""
    decide = saga_domain.operator_retry if action == "retry" else saga_domain.operator_compensate
    audit = {"action": action, "subject": subject, "by": by, "note": note}
    return await _act(
        uow,
        order_id,
        lambda saga: decide(saga, now(), policy),
        "operator_action",
        {k: v for k, v in audit.items() if v},
    )


async def hold_action(
    uow: UnitOfWork,
    order_id: str,
    action: HoldAction,
    policy: SagaPolicy,
    *,
    subject: str,
    by: str | None,
    note: str | None,
    reason: str | None = None,
) -> Acted:
    """An operator holds an order, or releases (approves) or rejects a held one; 409 when the
    saga refuses it. Who did it is on the order's timeline and in the audit log."""
    who = by or subject
    if action == "hold":
        assert reason is not None
        held_for = reason

        def decide(saga: OrderSaga) -> Decision:
            return saga_domain.place_hold(saga, held_for, note, who, now(), policy)

    elif action == "release":

        def decide(saga: OrderSaga) -> Decision:
            return saga_domain.release_hold(saga, who, note, now(), policy)

    else:

        def decide(saga: OrderSaga) -> Decision:
            return saga_domain.reject_held(saga, who, note, now(), policy)

    audit = {"action": action, "subject": subject, "by": by, "reason": reason, "note": note}
    acted = await _act(
        uow, order_id, decide, "operator_action", {k: v for k, v in audit.items() if v}
    )
    uow.after_commit.append(
        lambda: audit_log.info(
            "order %s: %s by %s%s",
            order_id,
            action,
            subject,
            f" ({reason})" if reason else "",
            extra={"subject": subject, "order_id": order_id, "action": action},
        )
    )
    return acted


async def _act(
    uow: UnitOfWork,
    order_id: str,
    decide: Callable[[OrderSaga], Decision],
    audit_event: str,
    audit: dict[str, Any],
) -> Acted:
    """Let the saga decide on a request under the order's row lock, note who asked, save."""
    saga = await store.load_saga(uow.conn, order_id, lock=True)
    if saga is None:
        raise ApiError(404, "order_not_found", f"no order {order_id}")
    previous = saga.status
    try:
        decision = decide(saga)
    except saga_domain.Refused as exc:
        raise ApiError(409, exc.code, exc.message, order_status=saga.status.value) from exc
    decision.note(audit_event, **audit)
    await persist(uow, saga, previous, decision)
    return Acted(saga, previous, decision)


def deadlines(policy: SagaPolicy) -> Deadlines[OrderSaga]:
    """The saga's deadline passes (the scheduler is `.scheduler(...)`): each order whose
    deadline passed decides what that means, in the order's own trace."""

    async def on_deadline(uow: UnitOfWork, saga: OrderSaga) -> None:
        previous = saga.status
        with continue_trace(saga.trace_context, "saga deadline"):
            await persist(uow, saga, previous, saga_domain.on_deadline(saga, now(), policy))

    return Deadlines(store.SAGAS, OrderSaga, on_deadline, clock=now)


async def process_due_deadlines(runtime: Runtime, policy: SagaPolicy) -> int:
    """One pass of the scheduler (see Deadlines.process_due)."""
    return await deadlines(policy).process_due(runtime)
