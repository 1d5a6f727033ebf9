"""Order-intake's public order API (DESIGN.md §9): place, read, list and cancel orders.

`POST /v1/orders` reads top to bottom: the body read and validated (`schemas`), the caller's
channel and the order's limits checked, the order priced, admission control asked, then
`service.place_order` stores it and starts its saga. Every refused request is kept for an
operator (`rejected_requests`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse

from services.order_intake.dependencies import IntakeDep, OrderActionsDep
from services.order_intake.domain import saga as saga_domain
from services.order_intake.domain.order import price
from services.order_intake.domain.pricing import PricingError
from services.order_intake.exchanges.returns_view import view_fields
from services.order_intake.operators.admission import OVERLOADED_RESPONSE
from services.order_intake.orders import service, store
from services.order_intake.orders.schemas import (
    CancelAccepted,
    CancelIn,
    OrderAccepted,
    OrderIn,
    read_order,
)
from services.order_intake.orders.views import cancel_answer, order_row, order_view
from services.order_intake.rejected_requests.refusal import BODY_REFUSALS, IntakeRefused
from shared.platform.auth import Permission, Principal, mask_personal_data, requires
from shared.platform.errors import ApiError
from shared.platform.openapi import json_body
from shared.platform.saga.idempotency import request_hash
from shared.platform.service import RuntimeDep

router = APIRouter(prefix="/v1", tags=["orders"])


@router.post(
    "/orders",
    status_code=202,
    response_model=OrderAccepted,
    openapi_extra=json_body(schema=OrderIn.model_json_schema()),
    responses={
        200: {"description": "a repeat of an order already accepted (same Idempotency-Key)"},
        **BODY_REFUSALS,
        409: {"description": "Idempotency-Key reused for a different order"},
        422: {"description": "invalid order (the error names the field)"},
        **OVERLOADED_RESPONSE,
    },
)
async def create_order(
    intake: IntakeDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    principal: Principal = requires(Permission.ORDERS_CREATE),
) -> JSONResponse:
    """Accept a native order. Honours `Idempotency-Key`: the same key from the same caller
    answers the same order. A `channel:<name>` caller places orders of its own channel only."""
    refusals, settings = intake.refusals, intake.settings
    raw = await intake.read_body()
    try:
        payload, order_in = read_order(raw)
    except IntakeRefused as refused:
        raise await refusals.error(refused, raw) from refused
    if not principal.may_act_for_channel(order_in.channel, Permission.ORDERS_CREATE):
        raise ApiError(
            403,
            "forbidden",
            f"this token may not place orders for channel {order_in.channel}",
            permission=str(Permission.ORDERS_CREATE),
        )
    if len(order_in.lines) > settings.max_order_lines:
        too_many = f"lines: an order has at most {settings.max_order_lines} lines"
        raise await refusals.error(IntakeRefused(422, "too_many_lines", too_many), raw)
    order = order_in.canonical()
    try:
        totals = price(order)
    except PricingError as exc:
        raise await refusals.error(IntakeRefused(422, exc.code, str(exc)), raw) from exc

    intake.admit()
    # Keys are scoped to the authenticated caller, so one caller's key never answers with
    # another's order.
    key = f"native:{principal.subject}:{idempotency_key}" if idempotency_key else None
    async with intake.runtime.uow() as uow:
        placed = await service.place_order(
            uow,
            order,
            totals,
            intake.policy,
            payload,
            idempotency_key=key,
            request_hash=request_hash(payload),
            client_ip=intake.client_address,
        )
    if placed.duplicate:
        return _accepted(placed, status_code=200)
    intake.accepted()
    return _accepted(placed, status_code=202)


def _accepted(placed: service.Placed, status_code: int) -> JSONResponse:
    answer = OrderAccepted(
        order_id=placed.order_id, status=placed.status, duplicate=placed.duplicate
    )
    return JSONResponse(answer.model_dump(), status_code=status_code)


@router.get("/orders/{order_id}")
async def get_order(
    order_id: str,
    runtime: RuntimeDep,
    principal: Principal = requires(Permission.ORDERS_READ),
) -> dict[str, Any]:
    """Status, lines, totals, payment and fulfilment state, returns, and the saga timeline.
    The customer and the addresses are masked without `personal_data:read`. While the order is
    AWAITING_CUSTOMER_ACTION (3-D Secure), `payment.next_action` gives the action type, its
    deadline and the payment's `client_secret` (null without `personal_data:read`)."""
    async with runtime.pool.acquire() as conn:
        row = await store.get_order(conn, order_id)
        if row is None:
            raise ApiError(404, "order_not_found", f"no order {order_id}")
        returns = await view_fields(conn, row)
    view = {**order_view(row), **returns}
    if not principal.can(Permission.PERSONAL_DATA):
        for field in ("customer", "shipping_address", "billing_address"):
            view[field] = mask_personal_data(view[field])
        if view["risk"] is not None:
            view["risk"]["client_ip"] = mask_personal_data(view["risk"]["client_ip"])
        if view["payment"]["next_action"] is not None:
            # The client secret completes the customer's payment: only for callers who may
            # see the customer's data (the shop front's backend), never masked-but-present.
            view["payment"]["next_action"]["client_secret"] = None
    return view


@router.get(
    "/orders",
    responses={
        400: {"description": "`invalid_cursor`"},
        403: {"description": "`forbidden`: customer_email without `personal_data:read`"},
        422: {"description": "`invalid_status`, `invalid_date_range` or an invalid parameter"},
    },
)
async def list_orders(
    runtime: RuntimeDep,
    status: Annotated[str | None, Query(description="filter by saga status")] = None,
    channel: Annotated[str | None, Query(description="filter by channel")] = None,
    customer_email: Annotated[
        str | None,
        Query(
            max_length=320,
            description="the customer's e-mail, matched exactly (ignoring case); needs"
            " `personal_data:read`",
        ),
    ] = None,
    created_from: Annotated[
        datetime | None,
        Query(description="placed at or after this time (ISO 8601; without a zone: UTC)"),
    ] = None,
    created_to: Annotated[
        datetime | None,
        Query(description="placed before this time (ISO 8601; without a zone: UTC)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    principal: Principal = requires(Permission.ORDERS_READ),
) -> dict[str, Any]:
    """Orders newest first, a page at a time (`next_cursor`). The customer is masked without
    `personal_data:read`, and searching by e-mail needs it."""
    if status is not None and status not in saga_domain.Status.__members__:
        raise ApiError(
            422, "invalid_status", f"status must be one of {', '.join(saga_domain.Status)}"
        )
    sees_personal_data = principal.can(Permission.PERSONAL_DATA)
    customer_email = (customer_email or "").strip() or None
    if customer_email is not None and not sees_personal_data:
        raise ApiError(
            403,
            "forbidden",
            "customer_email: searching by e-mail needs personal_data:read",
            permission=str(Permission.PERSONAL_DATA),
        )
    created_from = _utc("created_from", created_from)
    created_to = _utc("created_to", created_to)
    if created_from is not None and created_to is not None and created_from >= created_to:
        raise ApiError(422, "invalid_date_range", "created_to: must be later than created_from")
    after = None
    if cursor:
        try:
            after = store.decode_cursor(cursor)
        except Exception as exc:
            raise ApiError(400, "invalid_cursor", "cursor is not one this API issued") from exc
    async with runtime.pool.acquire() as conn:
        rows = await store.list_orders(
            conn,
            status=status,
            channel=channel,
            customer_email=customer_email,
            created_from=created_from,
            created_to=created_to,
            limit=limit + 1,
            after=after,
        )
    page, more = rows[:limit], len(rows) > limit
    orders = [order_row(r) for r in page]
    if not sees_personal_data:
        for order in orders:
            order["customer"] = mask_personal_data(order["customer"])
    return {
        "orders": orders,
        "next_cursor": store.encode_cursor(page[-1]["created_at"], page[-1]["order_id"])
        if more
        else None,
    }


def _utc(field: str, at: datetime | None) -> datetime | None:
    """The time in UTC (without a zone: taken as UTC); one that UTC cannot hold is refused."""
    if at is None:
        return None
    try:
        return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError as exc:
        raise ApiError(422, "invalid_date", f"{field}: out of range") from exc


@router.post(
    "/orders/{order_id}/cancel",
    status_code=202,
    response_model=CancelAccepted,
    responses={
        202: {
            "description": "taken: the whole order (`scope: order`) or, once part of it shipped,"
            " its unshipped rest (`scope: unshipped_rest`, with the units and the amount not"
            " charged); `cancel: done` once CANCELLED, else `pending`"
        },
        404: {"description": "`order_not_found`"},
        409: {
            "description": "refused by the saga: `already_shipped` (everything has shipped:"
            " refund through a return), `order_closed` (rejected), `needs_attention` (an"
            " operator resolves it)"
        },
    },
)
async def cancel_order(
    order_id: str,
    orders: OrderActionsDep,
    body: CancelIn | None = None,
    principal: Principal = requires(Permission.ORDERS_CANCEL),
) -> CancelAccepted:
    """Cancel the order, or what has not shipped of it. Before anything shipped the whole order
    is cancelled (`scope: order`). Once part of it shipped (PARTIALLY_SHIPPED) the unshipped
    rest is cancelled (`scope: unshipped_rest`, listing those units and the amount not
    charged): the parcels that left stay shipped and captured, the rest is cancelled at the
    warehouse, its stock released and never captured, the customer is e-mailed what was
    cancelled, and the order completes when what shipped is delivered. While a step is in
    flight the cancel is recorded and applied when the step answers; a repeated cancel changes
    nothing. Once everything shipped it is refused (409 `already_shipped`)."""
    reason = body.reason if body else "requested by customer"
    acted = await orders.cancel(order_id, reason, subject=principal.subject)
    return cancel_answer(acted.saga, acted.decision)
