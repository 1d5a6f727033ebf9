"""Returns' public HTTP API (DESIGN.md §9): request, review, receive and look up returns."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from services.returns import store
from services.returns.domain import policy as policy_domain
from services.returns.domain import saga as saga_domain
from services.returns.domain.policy import Condition, ReceivedUnits
from services.returns.domain.saga import ActionRefused, ReceivedItem, ReturnSaga
from services.returns.handlers import now, persist, policy_from, timings_from
from services.returns.settings import ReturnsSettings
from shared.money import round_money
from shared.platform.auth import Permission, audit_subject, requires
from shared.platform.db import DbConnection
from shared.platform.errors import ApiError
from shared.platform.saga.idempotency import IdempotencyKeys, request_hash
from shared.platform.saga.views import timeline_view
from shared.platform.service import Runtime, RuntimeDep, service_settings
from shared.platform.validation import Quantity, UnitPrice

router = APIRouter(prefix="/v1", tags=["returns"])

Sku = Annotated[str, Field(min_length=1, max_length=64)]
_REASON = re.compile(r"^[a-z][a-z0-9_]{1,39}$")

# HTTP status of each refusal code.
_STATUS: dict[str, int] = {
    "order_not_found": 404,
    "not_delivered": 409,
    "outside_return_window": 409,
    "sku_not_in_order": 422,
    "not_returnable": 422,
    "quantity_exceeds_delivered": 422,
    "exchange_price_unknown": 422,
    "exchange_price_mismatch": 422,
    "not_awaiting_review": 409,
    "cannot_refuse": 409,
    "not_approved": 409,
    "return_refused": 409,
    "already_received": 409,
    "sku_not_in_return": 422,
    "quantity_exceeds_return": 422,
    "not_needs_attention": 409,
}


class ReturnLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sku: Sku
    quantity: Quantity
    reason: str = Field(
        description="why: e.g. defective, wrong_item, damaged_in_transit, not_as_described,"
        " size_or_fit, no_longer_needed, other (a lowercase code)"
    )

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not _REASON.match(value):
            raise PydanticCustomError(
                "invalid_reason", "reason must be a lowercase code such as no_longer_needed"
            )
        return value


class ExchangeLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sku: Sku
    quantity: Quantity
    unit_price: UnitPrice | None = Field(
        default=None,
        description="only for a SKU the order does not contain: a proposed unit price, which"
        " an operator confirms (the return waits for review); SKUs in the order are priced"
        " from it",
    )


class ReturnIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    order_id: str = Field(min_length=1, max_length=100)
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=100)
    exchange: list[ExchangeLineIn] = Field(
        default_factory=list,
        max_length=100,
        description="replacement items: a linked new order is placed for them",
    )

    @model_validator(mode="after")
    def _one_line_per_sku(self) -> ReturnIn:
        skus = [line.sku for line in self.lines]
        if len(skus) != len(set(skus)):
            raise PydanticCustomError("duplicate_sku", "lines: each SKU may appear once")
        return self


class ReceivedLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sku: Sku
    quantity: Quantity
    condition: Literal["resellable", "damaged"]


class ReceiveIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    location: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="where resellable items go back on hand (default: the configured one)",
    )
    lines: list[ReceivedLineIn] = Field(min_length=1, max_length=200)


class RefuseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="refused by an operator", min_length=1, max_length=500)


Settings = Annotated[ReturnsSettings, Depends(service_settings(ReturnsSettings))]

IDEMPOTENCY_KEYS = IdempotencyKeys(store.SAGAS, noun="return", names_existing=True)


def _refusal(code: str, message: str, **details: Any) -> ApiError:
    return ApiError(_STATUS.get(code, 409), code, message, **details)


def _claimed(returns: list[ReturnSaga], *, exclude: str | None = None) -> dict[str, int]:
    """Units per SKU the order's returns claim (refused ones claim nothing)."""
    claimed: dict[str, int] = {}
    for other in returns:
        if other.return_id == exclude or other.status == saga_domain.Status.REFUSED:
            continue
        for sku, quantity in other.units().items():
            claimed[sku] = claimed.get(sku, 0) + quantity
    return claimed


@router.post(
    "/returns",
    status_code=201,
    dependencies=[requires(Permission.RETURNS_CREATE)],
    responses={
        200: {"description": "a repeat of a return already created (same Idempotency-Key)"},
        404: {"description": "order_not_found"},
        409: {"description": "not_delivered, outside_return_window, idempotency_key_reused"},
        422: {
            "description": "not_returnable, quantity_exceeds_delivered, sku_not_in_order,"
            " exchange_price_unknown, exchange_price_mismatch, or an invalid request (the error"
            " names the field)"
        },
    },
)
async def request_return(
    body: ReturnIn,
    runtime: RuntimeDep,
    settings: Settings,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Ask to return lines of a delivered order (optionally for replacement items). Approved at
    once when the policy allows it; held for an operator when its reason or value asks for one.
    Honours `Idempotency-Key`."""
    policy = policy_from(settings)
    body_hash = request_hash(body.model_dump(mode="json"))
    async with runtime.uow() as uow:
        if idempotency_key is not None:
            existing_id = await IDEMPOTENCY_KEYS.earlier_saga(uow.conn, idempotency_key, body_hash)
            if existing_id is not None:
                view = await _view(uow.conn, existing_id)
                return JSONResponse({**view, "duplicate": True}, status_code=200)
        known_order = await store.order_facts(uow.conn, body.order_id, lock=True)
        order = known_order.facts if known_order else None
        outcome = policy_domain.evaluate(
            order,
            [policy_domain.RequestedLine(li.sku, li.quantity, li.reason) for li in body.lines],
            [
                policy_domain.ExchangeRequest(item.sku, item.quantity, item.unit_price)
                for item in body.exchange
            ],
            _claimed(await store.returns_of_order(uow.conn, body.order_id)),
            now(),
            policy,
        )
        if isinstance(outcome, policy_domain.Refused):
            raise _refusal(outcome.code, outcome.message, order_id=body.order_id, **outcome.details)
        assert order is not None and known_order is not None
        saga = ReturnSaga(
            return_id=f"ret_{uuid.uuid4().hex}",
            order_id=order.order_id,
            refund_order_id=known_order.refund_order_id,
            channel=order.channel,
            currency=order.currency,
            lines=tuple(
                saga_domain.ReturnLine(sku=li.sku, quantity=li.quantity, reason=li.reason)
                for li in body.lines
            ),
            exchange=tuple(
                saga_domain.ExchangeItem(sku=i.sku, quantity=i.quantity, unit_price=i.unit_price)
                for i in outcome.exchange
            ),
            paid_by_channel=order.paid_by_channel,
            refund_estimate=outcome.estimate,
        )
        decision = saga_domain.open_return(saga, outcome.review_reason, now())
        await persist(uow, saga, decision, created=True)
        if idempotency_key is not None:
            await IDEMPOTENCY_KEYS.remember(uow.conn, idempotency_key, body_hash, saga.return_id)
        view = await _view(uow.conn, saga.return_id)
    return JSONResponse(view, status_code=201)


@router.post("/returns/{return_id}/approve", dependencies=[requires(Permission.RETURNS_DECIDE)])
async def approve_return(return_id: str, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    """An operator approves a return the policy held for review (REQUESTED → APPROVED)."""
    return await _operator_action(
        runtime, request, return_id, lambda saga: saga_domain.approve(saga, now())
    )


@router.post("/returns/{return_id}/refuse", dependencies=[requires(Permission.RETURNS_DECIDE)])
async def refuse_return(
    return_id: str, request: Request, runtime: RuntimeDep, body: RefuseIn | None = None
) -> dict[str, Any]:
    """An operator refuses a return before its goods were received (→ REFUSED)."""
    reason = body.reason if body else "refused by an operator"
    return await _operator_action(
        runtime, request, return_id, lambda saga: saga_domain.refuse(saga, reason, now())
    )


@router.post("/returns/{return_id}/receive", dependencies=[requires(Permission.RETURNS_RECEIVE)])
async def receive_return(
    return_id: str, body: ReceiveIn, request: Request, runtime: RuntimeDep, settings: Settings
) -> JSONResponse:
    """The goods arrived, with the condition of each unit. Resellable ones go back on hand at
    `location`, damaged ones are written off; then the refund (or exchange) follows. A repeat of
    the same receipt answers 200 with `duplicate: true` and changes nothing; a different one is
    refused (409 `already_received`): a return is received, and refunded, once."""
    policy = policy_from(settings)
    received = [
        ReceivedItem(sku=li.sku, quantity=li.quantity, condition=Condition(li.condition))
        for li in body.lines
    ]
    async with runtime.uow() as uow:
        unlocked = await store.load_return(uow.conn, return_id, lock=False)
        if unlocked is None:
            raise _not_found(return_id)
        # Receipts of one order's returns are serialised: refunds are prorated over them.
        known_order = await store.order_facts(uow.conn, unlocked.order_id, lock=True)
        saga = await _locked(uow.conn, return_id)
        if saga_domain.is_same_receipt(saga, received):
            view = await _view(uow.conn, return_id)
            return JSONResponse({**view, "duplicate": True}, status_code=200)
        try:
            saga_domain.check_receipt(saga, received)
        except ActionRefused as exc:
            raise _refusal(exc.code, exc.message, return_status=saga.status.value) from exc
        assert known_order is not None, "a return exists only for an order returns knows"
        others = [
            other
            for other in await store.returns_of_order(uow.conn, saga.order_id)
            if other.return_id != return_id and other.received_at is not None
        ]
        credit = policy_domain.credit_for(
            known_order.facts,
            [ReceivedUnits(i.sku, i.quantity, i.condition) for i in received],
            {line.sku: line.reason for line in saga.lines},
            credited_before=_claimed(others),
            shipping_refunded_before=any(other.credit_shipping > 0 for other in others),
            policy=policy,
        )
        decision = saga_domain.receive(
            saga,
            received,
            body.location or settings.restock_location,
            credit,
            now(),
            timings_from(settings),
        )
        _audit(request, saga, decision)
        await persist(uow, saga, decision)
        view = await _view(uow.conn, return_id)
    return JSONResponse(view, status_code=200)


@router.post("/returns/{return_id}/retry", dependencies=[requires(Permission.RETURNS_DECIDE)])
async def retry_return(
    return_id: str, request: Request, runtime: RuntimeDep, settings: Settings
) -> dict[str, Any]:
    """An operator resumes a return waiting in NEEDS_ATTENTION: the step it was parked on is
    tried again with fresh attempts and the same idempotency keys."""
    timings = timings_from(settings)
    return await _operator_action(
        runtime, request, return_id, lambda saga: saga_domain.retry(saga, now(), timings)
    )


@router.get("/returns/{return_id}", dependencies=[requires(Permission.RETURNS_READ)])
async def get_return(return_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    """Lines, conditions, refund (amount and status), exchange, and the timeline."""
    async with runtime.pool.acquire() as conn:
        return await _view(conn, return_id)


@router.get("/returns", dependencies=[requires(Permission.RETURNS_READ)])
async def list_returns(
    runtime: RuntimeDep,
    order_id: Annotated[str | None, Query(description="the returns of one order")] = None,
    status: Annotated[str | None, Query(description="filter by return status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    if status is not None and status not in saga_domain.Status.__members__:
        raise ApiError(
            422, "invalid_status", f"status must be one of {', '.join(saga_domain.Status)}"
        )
    async with runtime.pool.acquire() as conn:
        rows = await store.list_returns(conn, order_id=order_id, status=status, limit=limit)
    return {"returns": [_summary(row) for row in rows]}


async def _operator_action(
    runtime: Runtime,
    request: Request,
    return_id: str,
    act: Callable[[ReturnSaga], saga_domain.Decision],
) -> dict[str, Any]:
    """Apply an operator's action to the locked return, on its timeline with who asked."""
    async with runtime.uow() as uow:
        saga = await _locked(uow.conn, return_id)
        try:
            decision = act(saga)
        except ActionRefused as exc:
            raise _refusal(exc.code, exc.message, return_status=saga.status.value) from exc
        _audit(request, saga, decision)
        await persist(uow, saga, decision)
        return await _view(uow.conn, return_id)


def _audit(request: Request, saga: ReturnSaga, decision: saga_domain.Decision) -> None:
    """Who asked (the token's subject) goes on the return's timeline."""
    action = request.url.path.rsplit("/", 1)[-1]
    decision.timeline.append(
        saga_domain.TimelineEntry(
            "requested_by", saga.status.value, {"action": action, "subject": audit_subject(request)}
        )
    )


def _not_found(return_id: str) -> ApiError:
    return ApiError(404, "return_not_found", f"no return {return_id}")


async def _locked(conn: DbConnection, return_id: str) -> ReturnSaga:
    saga = await store.load_return(conn, return_id, lock=True)
    if saga is None:
        raise _not_found(return_id)
    return saga


async def _view(conn: DbConnection, return_id: str) -> dict[str, Any]:
    row = await store.get_return(conn, return_id)
    if row is None:
        raise _not_found(return_id)
    return return_view(row)


def _money(value: Decimal | None, currency: str) -> str | None:
    return None if value is None else str(round_money(Decimal(value), currency))


def _summary(row: Mapping[str, Any]) -> dict[str, Any]:
    saga = ReturnSaga.model_validate(row["saga"])
    return {
        "return_id": saga.return_id,
        "order_id": saga.order_id,
        "status": saga.status.value,
        "currency": saga.currency,
        "refund_status": saga.refund_status.value,
        "refund_amount": _money(saga.refund_amount, saga.currency),
        "replacement_order_id": saga.replacement_order_id,
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


def return_view(row: Mapping[str, Any]) -> dict[str, Any]:
    saga = ReturnSaga.model_validate(row["saga"])
    currency = saga.currency
    return {
        **_summary(row),
        "reason": saga.reason,
        "review_reason": saga.review_reason,
        "channel": saga.channel,
        "lines": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "reason": line.reason,
                "received": {
                    str(condition): sum(
                        i.quantity
                        for i in saga.received
                        if i.sku == line.sku and i.condition == condition
                    )
                    for condition in Condition
                },
            }
            for line in saga.lines
        ],
        "received": [
            {
                "sku": i.sku,
                "quantity": i.quantity,
                "condition": i.condition.value,
                "refund": _money(i.refund, currency),
            }
            for i in saga.received
        ],
        "received_at": saga.received_at.isoformat() if saga.received_at else None,
        "location": saga.location,
        "refund": {
            "status": saga.refund_status.value,
            "estimate": _money(saga.refund_estimate, currency),
            "items": _money(saga.credit_items, currency) if saga.received_at else None,
            "shipping": _money(saga.credit_shipping, currency) if saga.received_at else None,
            "amount": _money(saga.refund_amount, currency),
            "refunded": _money(saga.refunded_amount, currency),
            "amount_due": _money(saga.amount_due, currency),
            "order_id": saga.refund_order_id,
            "idempotency_key": saga.refund_key,
            "last_failure": saga.last_refund_failure,
        },
        "exchange": {
            "status": saga.exchange_status.value if saga.exchange_status else None,
            "lines": [
                {
                    "sku": i.sku,
                    "quantity": i.quantity,
                    "unit_price": _money(i.unit_price, currency),
                }
                for i in saga.exchange
            ],
            "replacement_order_id": saga.replacement_order_id,
            "replacement_status": saga.replacement_status,
            "replacement_total": _money(saga.replacement_total, currency),
        }
        if saga.exchange
        else None,
        "saga": {
            "step": saga.step.value if saga.step else None,
            "attempt": saga.attempt,
            "deadline_at": saga.deadline_at.isoformat() if saga.deadline_at else None,
            "parked_step": saga.parked_step.value if saga.parked_step else None,
            "stock_pending": [t.value for t in saga.stock_pending],
        },
        "timeline": timeline_view(row["timeline"]),
    }
