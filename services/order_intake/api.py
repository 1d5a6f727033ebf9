"""Order-intake's public HTTP API (DESIGN.md §9)."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from services.order_intake import returns_view, store
from services.order_intake.admission import admission_of
from services.order_intake.channels import RESERVED_CHANNELS
from services.order_intake.domain import saga as saga_domain
from services.order_intake.domain.order import (
    CanonicalLine,
    CanonicalOrder,
    new_order_id,
    new_saga,
    price,
)
from services.order_intake.domain.pricing import PricingError
from services.order_intake.domain.saga import CancelRefused, SagaPolicy
from services.order_intake.handlers import now, persist, policy_from, store_new_order
from services.order_intake.settings import OrderIntakeSettings
from shared.contracts.common import Address, Customer
from shared.money import fits_currency, is_currency
from shared.platform.auth import Permission, Principal, mask_personal_data, requires
from shared.platform.errors import ApiError
from shared.platform.service import Runtime, get_runtime
from shared.platform.validation import Quantity, UnitPrice, first_nul_character

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SLUG = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    region: str | None = Field(default=None, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(description="ISO 3166-1 alpha-2 country code, e.g. DE")

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{2}", value):
            raise PydanticCustomError(
                "invalid_country", "country must be an ISO 3166-1 alpha-2 code such as DE"
            )
        return value


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Field(max_length=254)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise PydanticCustomError("invalid_email", "email is not a valid e-mail address")
        return value


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64)
    quantity: Quantity
    unit_price: UnitPrice = Field(
        description='a decimal string such as "19.90", in the order currency'
    )


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: str = Field(default="card", pattern=r"^[a-z_]{2,32}$")
    token: str = Field(min_length=1, max_length=200)


class OrderIn(BaseModel):
    """A native order (web shop, app, phone)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channel: str = Field(default="web", description="web, app, phone, ... (a lowercase slug)")
    external_id: str | None = Field(default=None, max_length=128)
    customer: CustomerIn
    shipping_address: AddressIn
    billing_address: AddressIn | None = None
    currency: str = Field(description="ISO 4217 code, e.g. EUR")
    lines: list[LineIn] = Field(min_length=1)
    payment: PaymentIn
    shipping_method: str = "standard"
    promo_code: str | None = Field(default=None, max_length=64)

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise PydanticCustomError("invalid_channel", "channel must be a lowercase slug")
        if value in RESERVED_CHANNELS:
            raise PydanticCustomError(
                "reserved_channel",
                "channel {channel} is integrated: its orders come through"
                " /v1/channels/{channel}/orders",
                {"channel": value},
            )
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not is_currency(value):
            raise PydanticCustomError(
                "invalid_currency", "currency must be an ISO 4217 code such as EUR"
            )
        return value

    @model_validator(mode="after")
    def _amounts_fit_currency(self) -> OrderIn:
        for index, line in enumerate(self.lines):
            if not fits_currency(line.unit_price, self.currency):
                raise PydanticCustomError(
                    "invalid_amount",
                    "lines.{index}.unit_price has more decimal places than {currency} allows",
                    {"index": index, "currency": self.currency},
                )
        return self

    def canonical(self) -> CanonicalOrder:
        return CanonicalOrder(
            channel=self.channel,
            external_id=self.external_id,
            customer=Customer(**self.customer.model_dump()),
            shipping_address=Address(**self.shipping_address.model_dump()),
            billing_address=Address(**self.billing_address.model_dump())
            if self.billing_address
            else None,
            currency=self.currency,
            lines=tuple(
                CanonicalLine(sku=li.sku, quantity=li.quantity, unit_price=li.unit_price)
                for li in self.lines
            ),
            payment_method=self.payment.method,
            payment_token=self.payment.token,
            shipping_method=self.shipping_method,
            promo_code=self.promo_code,
        )


class OrderAccepted(BaseModel):
    order_id: str
    status: str
    duplicate: bool = False


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="requested by customer", max_length=500)


def _settings(runtime: Runtime) -> OrderIntakeSettings:
    settings = runtime.settings
    assert isinstance(settings, OrderIntakeSettings)
    return settings


def _policy(runtime: Runtime) -> SagaPolicy:
    return policy_from(_settings(runtime))


def _problems(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join(str(p) for p in err["loc"]),
            "code": err["type"],
            "message": err["msg"],
        }
        for err in exc.errors()
    ]


_OWN_CODES = {
    "invalid_currency",
    "invalid_amount",
    "invalid_quantity",
    "invalid_email",
    "invalid_country",
    "invalid_channel",
    "reserved_channel",
}


async def _refuse(
    runtime: Runtime,
    request: Request,
    raw: bytes,
    status: int,
    code: str,
    message: str,
    **details: Any,
) -> ApiError:
    """Keep the refused input for an operator, then build the error to raise."""
    headers = {
        k: v
        for k, v in request.headers.items()
        if k.lower() in {"content-type", "user-agent", "idempotency-key", "x-request-id"}
    }
    async with runtime.pool.acquire() as conn:
        rejected_id = await store.record_rejected_request(
            conn,
            request.url.path,
            code,
            message,
            raw,
            headers,
            max_bytes=_settings(runtime).rejected_request_body_max_bytes,
        )
    return ApiError(status, code, message, rejected_request_id=rejected_id, **details)


async def read_body(runtime: Runtime, request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise await _refuse(
            runtime, request, b"", 413, "payload_too_large", f"request body exceeds {limit} bytes"
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise await _refuse(
                runtime,
                request,
                body[:limit],
                413,
                "payload_too_large",
                f"request body exceeds {limit} bytes",
            )
    return body


router = APIRouter(prefix="/v1", tags=["orders"])


@router.post(
    "/orders",
    status_code=202,
    response_model=OrderAccepted,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": OrderIn.model_json_schema()}},
        }
    },
    responses={
        200: {"description": "a repeat of an order already accepted (same Idempotency-Key)"},
        400: {"description": "malformed JSON"},
        409: {"description": "Idempotency-Key reused for a different order"},
        413: {"description": "body too large"},
        422: {"description": "invalid order (the error names the field)"},
        429: {"description": "too many orders in flight: retry after Retry-After seconds"},
    },
)
async def create_order(
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    principal: Principal = requires(Permission.ORDERS_CREATE),
) -> JSONResponse:
    """Accept a native order. Honours `Idempotency-Key`: the same key from the same caller
    answers the same order. A `channel:<name>` caller places orders of its own channel only."""
    runtime = get_runtime(request)
    settings = _settings(runtime)
    raw = await read_body(runtime, request, settings.max_body_bytes)
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise await _refuse(
            runtime, request, raw, 400, "malformed_json", f"request body is not JSON: {exc}"
        ) from exc
    nul = first_nul_character(payload)
    if nul is not None:
        raise await _refuse(
            runtime, request, raw, 422, "invalid_character", f"{nul}: text must not contain NUL"
        )
    try:
        order_in = OrderIn.model_validate(payload)
    except ValidationError as exc:
        problems = _problems(exc)
        first = problems[0]
        code = first["code"] if first["code"] in _OWN_CODES else "validation_failed"
        raise await _refuse(
            runtime,
            request,
            raw,
            422,
            code,
            f"{first['field'] or 'body'}: {first['message']}",
            problems=problems,
        ) from exc
    if not principal.may_act_for_channel(order_in.channel, Permission.ORDERS_CREATE):
        raise ApiError(
            403,
            "forbidden",
            f"this token may not place orders for channel {order_in.channel}",
            permission=str(Permission.ORDERS_CREATE),
        )
    if len(order_in.lines) > settings.max_order_lines:
        raise await _refuse(
            runtime,
            request,
            raw,
            422,
            "too_many_lines",
            f"lines: an order has at most {settings.max_order_lines} lines",
        )
    order = order_in.canonical()
    try:
        totals = price(order)
    except PricingError as exc:
        raise await _refuse(runtime, request, raw, 422, exc.code, str(exc)) from exc

    admission = admission_of(runtime)
    if admission is not None:
        admission.check()
    request_hash = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
    # Keys are scoped to the authenticated caller, so one caller's key never answers with
    # another's order.
    key = f"native:{principal.subject}:{idempotency_key}" if idempotency_key else None
    async with runtime.uow() as uow:
        if key is not None:
            await store.lock_idempotency_key(uow.conn, key)
            known = await store.order_id_for_idempotency_key(uow.conn, key)
            if known is not None:
                existing_id, existing_hash = known
                if existing_hash != request_hash:
                    raise ApiError(
                        409,
                        "idempotency_key_reused",
                        "this Idempotency-Key was used for a different order",
                    )
                return await _existing(uow.conn, existing_id)
        order_id = new_order_id()
        saga = new_saga(order_id, order, totals)
        decision = saga_domain.start(saga, now(), _policy(runtime))
        if not await store_new_order(uow, order, totals, saga, decision, payload):
            # The channel already sent this order (same external id).
            existing = await store.order_id_for_external_id(
                uow.conn, order.channel, str(order.external_id)
            )
            assert existing is not None
            return await _existing(uow.conn, existing)
        if key is not None:
            await store.remember_idempotency_key(uow.conn, key, request_hash, order_id)
    if admission is not None:
        admission.accepted()
    return JSONResponse(
        OrderAccepted(order_id=order_id, status=saga.status.value).model_dump(), status_code=202
    )


async def _existing(conn: Any, order_id: str) -> JSONResponse:
    saga = await store.load_saga(conn, order_id, lock=False)
    assert saga is not None
    return JSONResponse(
        OrderAccepted(order_id=order_id, status=saga.status.value, duplicate=True).model_dump(),
        status_code=200,
    )


@router.get("/orders/{order_id}")
async def get_order(
    order_id: str, request: Request, principal: Principal = requires(Permission.ORDERS_READ)
) -> dict[str, Any]:
    """Status, lines, totals, payment and fulfilment state, returns, and the saga timeline.
    The customer and the addresses are masked without `personal_data:read`."""
    runtime = get_runtime(request)
    async with runtime.pool.acquire() as conn:
        row = await store.get_order(conn, order_id)
        if row is None:
            raise ApiError(404, "order_not_found", f"no order {order_id}")
        returns = await returns_view.view_fields(conn, row)
    view = {**order_view(row), **returns}
    if not principal.can(Permission.PERSONAL_DATA):
        for field in ("customer", "shipping_address", "billing_address"):
            view[field] = mask_personal_data(view[field])
    return view


def order_view(row: dict[str, Any]) -> dict[str, Any]:
    saga = saga_domain.OrderSaga.model_validate(row["saga"])
    if saga.paid_externally:
        payment_status = "paid_externally"
    elif saga.captured_total > 0:
        payment_status = "captured" if saga.captured_total >= saga.total else "partially_captured"
    elif saga.payment_voided:
        payment_status = "voided"
    elif saga.payment_authorized:
        payment_status = "authorized"
    elif saga.status in {saga_domain.Status.CANCELLED, saga_domain.Status.REJECTED}:
        payment_status = "not_taken"
    else:
        payment_status = "pending"
    traceparent = saga.trace_context.get("traceparent", "")
    parts = traceparent.split("-")
    return {
        "order_id": row["order_id"],
        "trace_id": parts[1] if len(parts) == 4 else None,
        "channel": row["channel"],
        "external_id": row["external_id"],
        "status": row["status"],
        "reason": saga.reason,
        "cancel_requested": saga.cancel_requested,
        "customer": row["customer"],
        "shipping_address": row["shipping_address"],
        "billing_address": row["billing_address"],
        "shipping_method": row["shipping_method"],
        "lines": [
            {
                "line_id": li["line_id"],
                "sku": li["sku"],
                "quantity": li["quantity"],
                "unit_price": _money(li["unit_price"], row["currency"]),
                "line_total": _money(li["line_total"], row["currency"]),
            }
            for li in row["lines"]
        ],
        "totals": {
            "currency": row["currency"],
            **{
                name: _money(row[name], row["currency"])
                for name in ("subtotal", "discount", "shipping", "tax", "total")
            },
        },
        "payment": {
            "status": payment_status,
            "authorized": saga.payment_authorized,
            "captured_total": _money(saga.captured_total, row["currency"]),
        },
        "fulfilment": {
            "fulfilments": [
                {
                    "fulfilment_id": f.fulfilment_id,
                    "location": f.location,
                    "status": "cancelled"
                    if f.cancelled
                    else "delivered"
                    if f.delivered
                    else "shipped"
                    if f.shipped
                    else "open",
                    "carrier": f.carrier,
                    "tracking_number": f.tracking_number,
                    "lines": [line.model_dump() for line in f.lines],
                }
                for f in saga.fulfilments.values()
            ],
            "allocations": [a.model_dump() for a in saga.allocations],
        },
        "saga": {
            "step": saga.step,
            "attempt": saga.attempt,
            "deadline_at": saga.deadline_at.isoformat() if saga.deadline_at else None,
            "sla_deadline_at": saga.sla_deadline_at.isoformat() if saga.sla_deadline_at else None,
            "pending_compensations": list(saga.pending_compensations),
        },
        "timeline": [
            {
                "at": t["at"].isoformat(),
                "status": t["status"],
                "event": t["event"],
                "detail": t["detail"],
            }
            for t in row["timeline"]
        ],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


def _money(value: Decimal, currency: str) -> str:
    from shared.money import round_money

    return str(round_money(Decimal(value), currency))


@router.get("/orders", dependencies=[requires(Permission.ORDERS_READ)])
async def list_orders(
    request: Request,
    status: Annotated[str | None, Query(description="filter by saga status")] = None,
    channel: Annotated[str | None, Query(description="filter by channel")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> dict[str, Any]:
    runtime = get_runtime(request)
    if status is not None and status not in saga_domain.Status.__members__:
        raise ApiError(
            422, "invalid_status", f"status must be one of {', '.join(saga_domain.Status)}"
        )
    after = None
    if cursor:
        try:
            after = store.decode_cursor(cursor)
        except Exception as exc:
            raise ApiError(400, "invalid_cursor", "cursor is not one this API issued") from exc
    async with runtime.pool.acquire() as conn:
        rows = await store.list_orders(
            conn, status=status, channel=channel, limit=limit + 1, after=after
        )
    page, more = rows[:limit], len(rows) > limit
    return {
        "orders": [
            {
                "order_id": r["order_id"],
                "channel": r["channel"],
                "external_id": r["external_id"],
                "status": r["status"],
                "currency": r["currency"],
                "total": _money(r["total"], r["currency"]),
                "created_at": r["created_at"].isoformat(),
                "updated_at": r["updated_at"].isoformat(),
            }
            for r in page
        ],
        "next_cursor": store.encode_cursor(page[-1]["created_at"], page[-1]["order_id"])
        if more
        else None,
    }


@router.post("/orders/{order_id}/cancel", status_code=202)
async def cancel_order(
    order_id: str,
    request: Request,
    body: CancelIn | None = None,
    principal: Principal = requires(Permission.ORDERS_CANCEL),
) -> dict[str, Any]:
    """Cancel before shipment. While a step is in flight the cancel is recorded and applied when
    the step answers; after shipment it is refused (409 `already_shipped`)."""
    runtime = get_runtime(request)
    reason = body.reason if body else "requested by customer"
    async with runtime.uow() as uow:
        saga = await store.load_saga(uow.conn, order_id, lock=True)
        if saga is None:
            raise ApiError(404, "order_not_found", f"no order {order_id}")
        previous = saga.status
        try:
            decision = saga_domain.request_cancel(saga, reason, now(), _policy(runtime))
        except CancelRefused as exc:
            raise ApiError(409, exc.code, exc.message, order_status=saga.status.value) from exc
        decision.note("requested_by", action="cancel", subject=principal.subject)
        await persist(uow, saga, previous, decision)
    return {
        "order_id": order_id,
        "status": saga.status.value,
        "cancel": "pending" if saga.status not in {saga_domain.Status.CANCELLED} else "done",
    }
