"""Operator endpoints of order-intake (used by the `oms` command): find stuck orders, and retry
or compensate them.

A stuck order is parked in NEEDS_ATTENTION, or waits on a machine-paced step whose deadline
passed longer ago than a grace period (the deadline scheduler is not getting to it). Retry and
compensate go through the saga like any other input: under the order's row lock, with the saga
state, timeline and outgoing commands saved in one transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from services.order_intake.dependencies import OrderActions, OrderActionsDep
from services.order_intake.domain import saga as saga_domain
from services.order_intake.domain.saga import OrderSaga
from services.order_intake.operators import store
from services.order_intake.orders import service
from services.order_intake.orders.saga_runner import now
from shared.platform.auth import Permission, Principal, requires
from shared.platform.service import RuntimeDep

router = APIRouter(prefix="/v1/ops", tags=["operator"])

StuckBecause = Literal["needs_attention", "deadline_overdue", "retrying"]


class StuckOrder(BaseModel):
    order_id: str
    channel: str
    status: str
    stuck_because: StuckBecause = Field(
        description="needs_attention: parked for an operator; deadline_overdue: the step's"
        " deadline passed longer ago than the grace period; retrying: a step's command was"
        " re-sent at least once (only with include_retrying)"
    )
    reason: str | None = Field(description="why the order was parked or cancelled, if known")
    step: str | None = Field(description="the machine-paced step in flight, if any")
    attempt: int = Field(description="how many times the step's command was sent")
    deadline_at: datetime | None
    overdue_s: float | None = Field(description="seconds since the step's deadline passed")
    parked_from: str | None = Field(description="the status the order was in when parked")
    parked_step: str | None = Field(description="the step in flight when the order was parked")
    created_at: datetime
    updated_at: datetime


class StuckOrders(BaseModel):
    as_of: datetime
    grace_s: float
    orders: list[StuckOrder]


class OperatorActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(default=None, max_length=100, description="who asked (audit trail)")
    note: str | None = Field(default=None, max_length=500, description="why (audit trail)")


class OperatorActionOut(BaseModel):
    order_id: str
    action: service.OperatorAction
    previous_status: str
    status: str
    step: str | None
    attempt: int
    deadline_at: datetime | None
    sent: list[str] = Field(description="the message types sent (through the outbox)")


def stuck_because(
    saga: OrderSaga, at: datetime, grace: timedelta, include_retrying: bool
) -> StuckBecause | None:
    if saga.status == saga_domain.Status.NEEDS_ATTENTION:
        return "needs_attention"
    if saga_domain.is_stuck(saga, at, grace):
        return "deadline_overdue"
    if include_retrying and saga.step is not None and saga.attempt > 1:
        return "retrying"
    return None


@router.get(
    "/orders/stuck",
    response_model=StuckOrders,
    dependencies=[requires(Permission.ORDERS_OPERATE)],
)
async def list_stuck_orders(
    runtime: RuntimeDep,
    grace_s: Annotated[
        float,
        Query(ge=0, le=7 * 24 * 3600, description="how long past its deadline counts as stuck"),
    ] = 0,
    include_retrying: Annotated[
        bool, Query(description="also list orders whose step's command was already re-sent")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> StuckOrders:
    """Orders in NEEDS_ATTENTION and orders whose saga deadline is overdue, oldest change first."""
    at = now()
    grace = timedelta(seconds=grace_s)
    async with runtime.pool.acquire() as conn:
        rows = await store.stuck_order_candidates(
            conn, at - grace, include_retrying=include_retrying, limit=limit
        )
    found: list[StuckOrder] = []
    for row in rows:
        saga = OrderSaga.model_validate(row["saga"])
        because = stuck_because(saga, at, grace, include_retrying)
        if because is None:
            continue  # e.g. only a service-level (human-paced) deadline passed
        found.append(
            StuckOrder(
                order_id=row["order_id"],
                channel=row["channel"],
                status=saga.status.value,
                stuck_because=because,
                reason=saga.reason,
                step=saga.step.value if saga.step else None,
                attempt=saga.attempt,
                deadline_at=saga.deadline_at,
                overdue_s=round((at - saga.deadline_at).total_seconds(), 3)
                if saga.deadline_at is not None and saga.deadline_at < at
                else None,
                parked_from=saga.parked_from.value if saga.parked_from else None,
                parked_step=saga.parked_step.value if saga.parked_step else None,
                created_at=row["created_at"],
                updated_at=row["updated_at"],
            )
        )
    return StuckOrders(as_of=at, grace_s=grace_s, orders=found)


_ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "`order_not_found`"},
    409: {
        "description": "refused by the saga: `nothing_to_retry`, `order_closed`, `already_shipped`"
    },
}


Act = Callable[..., Awaitable[service.Acted]]
"""An `OrderActions` method taking (order_id, action, *, subject, by, note)."""


def _action_route(
    action: service.OperatorAction | service.HoldAction,
    description: str,
    act: Act,
    answer: Callable[[str, Any, service.Acted], BaseModel],
    response_model: type[BaseModel],
    responses: dict[int | str, dict[str, Any]],
) -> None:
    """`POST /v1/ops/orders/{order_id}/<action>` with an optional audit body (who asked, why):
    `act` on the order, then `answer(order_id, action, acted)`; served by the endpoint
    `<action>_order`."""

    async def endpoint(
        order_id: str,
        orders: OrderActionsDep,
        body: OperatorActionIn | None = None,
        principal: Principal = requires(Permission.ORDERS_OPERATE),
    ) -> BaseModel:
        acted = await act(
            orders,
            order_id,
            action,
            subject=principal.subject,
            by=body.by if body else None,
            note=body.note if body else None,
        )
        return answer(order_id, action, acted)

    endpoint.__name__ = endpoint.__qualname__ = f"{action}_order"
    endpoint.__doc__ = description
    router.post(
        f"/orders/{{order_id}}/{action}",
        status_code=202,
        response_model=response_model,
        responses=responses,
    )(endpoint)


def _operator_answer(
    order_id: str, action: service.OperatorAction, acted: service.Acted
) -> OperatorActionOut:
    saga = acted.saga
    return OperatorActionOut(
        order_id=order_id,
        action=action,
        previous_status=acted.previous.value,
        status=saga.status.value,
        step=saga.step.value if saga.step else None,
        attempt=saga.attempt,
        deadline_at=saga.deadline_at,
        sent=[message.TYPE for message in acted.decision.messages],
    )


def _operator_action_route(action: service.OperatorAction, description: str) -> None:
    """A retry or a compensation, answered with where the saga stands after it."""
    _action_route(
        action,
        description,
        OrderActions.operator_action,
        _operator_answer,
        OperatorActionOut,
        _ACTION_RESPONSES,
    )


_operator_action_route(
    "retry",
    """Re-send what the order waits for (same idempotency keys), with fresh attempts; an order
    parked in NEEDS_ATTENTION resumes where the saga underneath stands, its step and any
    unconfirmed capture re-sent (409 `nothing_to_retry` when it waits on nothing).""",
)
_operator_action_route(
    "compensate",
    """Undo what was done so far (release stock, void the authorisation, cancel fulfilment) and
    cancel the order. Once part of the order shipped (PARTIALLY_SHIPPED, also parked), the same
    cancel of the unshipped rest as a customer's: the parcels that left stay shipped and
    captured (their unconfirmed captures are sent again), the rest is cancelled at the
    warehouse, its stock released and never captured (never a void), and the order completes
    when what shipped is delivered. Refused once everything shipped (409 `already_shipped`:
    refund through a return) or when the order is closed or being cancelled (409
    `order_closed`).""",
)


# --- holds and fraud review ----------------------------------------------------------------------


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(
        min_length=1,
        max_length=100,
        description="why: `address_check`, `customer_request`, `fraud_review`, or free text",
        examples=["address_check"],
    )
    note: str | None = Field(default=None, max_length=500, description="more on why (audit)")
    by: str | None = Field(default=None, max_length=100, description="who asked (audit trail)")


class HoldOut(BaseModel):
    reason: str
    note: str | None
    by: str
    placed_at: datetime
    alert_at: datetime = Field(description="when an operator is alerted that it is held long")


class HoldActionOut(BaseModel):
    order_id: str
    action: service.HoldAction
    previous_status: str
    status: str = Field(
        description="ON_HOLD once the order waits for the release (stock reserved, payment"
        " authorised); held earlier, the status it goes on in until it gets there"
    )
    hold: HoldOut | None = Field(description="the hold in place after the action, if any")
    sent: list[str] = Field(description="the message types sent (through the outbox)")


_HOLD_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "`order_not_found`"},
    409: {
        "description": "refused by the saga: `already_fulfilling` (everything shipped"
        " already: nothing to hold), `already_on_hold`, `not_on_hold`, `order_closed`"
    },
    422: {"description": "`validation_failed`, naming the field"},
}


def _hold_answer(order_id: str, action: service.HoldAction, acted: service.Acted) -> HoldActionOut:
    saga = acted.saga
    hold = saga.hold
    return HoldActionOut(
        order_id=order_id,
        action=action,
        previous_status=acted.previous.value,
        status=saga.status.value,
        hold=HoldOut(
            reason=hold.reason,
            note=hold.note,
            by=hold.by,
            placed_at=hold.placed_at,
            alert_at=hold.alert_at,
        )
        if hold is not None
        else None,
        sent=[message.TYPE for message in acted.decision.messages],
    )


@router.post(
    "/orders/{order_id}/hold",
    status_code=202,
    response_model=HoldActionOut,
    responses=_HOLD_RESPONSES,
)
async def hold_order(
    order_id: str,
    body: HoldIn,
    orders: OrderActionsDep,
    principal: Principal = requires(Permission.ORDERS_OPERATE),
) -> HoldActionOut:
    """Hold the order from fulfilment. The saga goes on up to and including the payment
    authorisation, then waits in ON_HOLD instead of sending the order to fulfilment; every fact
    that arrives meanwhile is applied, and a cancel works as usual. At fulfilment (units still
    to ship) it sends HoldFulfilments: the warehouse stops the unshipped fulfilments; the
    release sends ReleaseFulfilments. Refused once everything shipped (409
    `already_fulfilling`). A hold older than `OMS_SAGA_HOLD_SLA_S` alerts an
    operator once; it never ends by itself."""
    acted = await orders.hold_action(
        order_id,
        "hold",
        subject=principal.subject,
        by=body.by,
        note=body.note,
        reason=body.reason,
    )
    return _hold_answer(order_id, "hold", acted)


def _review_route(action: service.HoldAction, description: str) -> None:
    """`release` or `reject` of a held order, answered with the hold after it."""
    _action_route(
        action, description, OrderActions.hold_action, _hold_answer, HoldActionOut, _HOLD_RESPONSES
    )


_review_route(
    "release",
    """Take the hold off (a fraud review's approval). An order waiting in ON_HOLD goes to
    fulfilment (CreateFulfilment sent, the customer told it is confirmed); one held before its
    authorisation finished goes on as usual. 409 `not_on_hold`.""",
)
_review_route(
    "reject",
    """Reject a held order (a fraud review's reject): it is cancelled, its authorisation voided
    and its stock released (held before the authorisation answered: once it answers), the
    customer told; reason `fraud_rejected` after a fraud review. 409 `not_on_hold`.""",
)
