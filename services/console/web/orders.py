"""The orders pages and the attention queue.

- `GET /orders`: find orders (order id, the customer's e-mail, channel, status, dates), a page
  at a time, from order-intake's `GET /v1/orders`;
- `GET /orders/{id}`: one order (order-intake's view: lines, totals, status, timeline), its
  payments (payment), fulfilments and parcels (fulfilment), returns (returns), and its trace as
  a waterfall from Jaeger's query API;
- `GET /attention`: orders an operator must look at (parked in NEEDS_ATTENTION, a deadline
  overdue, waiting in ON_HOLD) with retry / compensate / release; after an action the row polls
  the order (`GET /attention/{id}/progress`) until it leaves the state the action left it in.

Every call carries the user's token: what a user may not see (personal data) comes back masked
and what they may not do is refused by the service, whatever this page shows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console.services_api import ServicesApi, services_api
from services.console.settings import ConsoleSettings
from services.console.web.orders_view import (
    ORDER_STATUSES,
    PAGE_SIZES,
    BadInput,
    action_progress,
    attention_rows,
    check_action,
    check_status,
    order_search,
)
from services.console.web.pages import csrf_checked, render
from services.console.web.waterfall import TraceUnreadable, Waterfall, waterfall
from shared.platform.auth import Permission, Principal, requires
from shared.platform.errors import ApiError

router = APIRouter(tags=["console orders"], include_in_schema=False)
QUEUE_LIMIT = 200
TRACE_ID_LENGTH = 32


def _bad(exc: BadInput) -> ApiError:
    return ApiError(422, f"invalid_{exc.field}", str(exc), field=exc.field)


def _seg(value: str) -> str:
    return quote(value, safe="")


@router.get("/orders", response_class=HTMLResponse)
async def orders_page(
    request: Request,
    principal: Principal = requires(Permission.ORDERS_READ),
    api: ServicesApi = Depends(services_api),
) -> Response:
    """The order search and its results."""
    try:
        search = order_search(request.query_params)
    except BadInput as exc:
        raise _bad(exc) from exc
    if search.order_id:
        try:
            await api.get("order_intake", f"/v1/orders/{_seg(search.order_id)}")
        except ApiError as exc:
            if exc.status != 404:
                raise
            return render(
                request,
                "orders.html",
                principal,
                status_code=404,
                search=search,
                orders=[],
                next_cursor=None,
                not_found=search.order_id,
                statuses=ORDER_STATUSES,
                page_sizes=PAGE_SIZES,
            )
        return RedirectResponse(f"/orders/{_seg(search.order_id)}", status_code=303)
    answer = await api.get("order_intake", "/v1/orders", **search.api_params())
    return render(
        request,
        "orders.html",
        principal,
        search=search,
        orders=answer.get("orders", []),
        next_cursor=answer.get("next_cursor"),
        not_found=None,
        statuses=ORDER_STATUSES,
        page_sizes=PAGE_SIZES,
    )


@dataclass(frozen=True)
class Section:
    """What one service answered for a part of the order page, or why it could not."""

    value: Any = None
    error: str | None = None


async def _section(call: Awaitable[Any]) -> Section:
    try:
        return Section(value=await call)
    except ApiError as exc:
        return Section(error=f"{exc.code}: {exc.message}")


async def _fulfilments(api: ServicesApi, order_id: str) -> Section:
    """The order's fulfilments, each with its parcels (those packed at a pack station)."""
    found = await _section(api.get("fulfilment", "/v1/fulfilments", order_id=order_id))
    if found.error is not None:
        return found
    fulfilments = list(found.value.get("fulfilments", []))
    parcels = await asyncio.gather(
        *(
            _section(api.get("fulfilment", f"/v1/fulfilments/{_seg(f['fulfilment_id'])}/parcels"))
            for f in fulfilments
        )
    )
    return Section(
        value=[
            {
                **f,
                "parcels": p.value.get("parcels", []) if p.value else [],
                "parcels_error": p.error,
            }
            for f, p in zip(fulfilments, parcels, strict=True)
        ]
    )


@dataclass(frozen=True)
class TraceSection:
    trace_id: str | None
    drawn: Waterfall | None = None
    note: str | None = None


async def _trace(request: Request, trace_id: str | None) -> TraceSection:
    """The order's trace from Jaeger's query API (no token: Jaeger is not an OMS service)."""
    settings: ConsoleSettings = request.app.state.console_settings
    if not settings.jaeger_query_url:
        return TraceSection(trace_id, note="No trace: Jaeger's query API is not configured.")
    if not trace_id or len(trace_id) != TRACE_ID_LENGTH or not _is_hex(trace_id):
        return TraceSection(trace_id, note="No trace: the order carries no trace id.")
    client: httpx.AsyncClient = request.app.state.console_http
    url = f"{settings.jaeger_query_url.rstrip('/')}/api/traces/{trace_id}"
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        return TraceSection(
            trace_id, note=f"No trace: Jaeger did not answer ({type(exc).__name__})."
        )
    if response.status_code == 404:
        return TraceSection(
            trace_id, note="No trace: Jaeger does not have it (not sampled, or expired)."
        )
    if response.status_code >= 400:
        return TraceSection(trace_id, note=f"No trace: Jaeger answered {response.status_code}.")
    try:
        return TraceSection(trace_id, drawn=waterfall(response.json()))
    except (ValueError, TraceUnreadable) as exc:
        return TraceSection(trace_id, note=f"No trace: Jaeger's answer is unreadable ({exc}).")


def _is_hex(value: str) -> bool:
    try:
        int(value, 16)
    except ValueError:
        return False
    return True


@router.get("/orders/{order_id}", response_class=HTMLResponse)
async def order_page(
    order_id: str,
    request: Request,
    principal: Principal = requires(Permission.ORDERS_READ),
    api: ServicesApi = Depends(services_api),
) -> Response:
    """One order with what the other services know of it; a service that cannot answer leaves
    its section saying so, the rest is shown."""
    order = await api.get("order_intake", f"/v1/orders/{_seg(order_id)}")
    payments, fulfilments, returns, trace = await asyncio.gather(
        _section(api.get("payment", "/v1/payments", order_id=order_id)),
        _fulfilments(api, order_id),
        _section(api.get("returns", "/v1/returns", order_id=order_id)),
        _trace(request, order.get("trace_id")),
    )
    return render(
        request,
        "order.html",
        principal,
        order=order,
        payments=payments,
        fulfilments=fulfilments,
        returns=returns,
        trace=trace,
    )


@router.get("/attention", response_class=HTMLResponse)
async def attention_page(
    request: Request,
    principal: Principal = requires(Permission.ORDERS_READ),
    api: ServicesApi = Depends(services_api),
) -> Response:
    """Orders parked in NEEDS_ATTENTION, overdue deadlines (for users who may operate: the
    stuck list needs orders:operate) and orders waiting in ON_HOLD."""
    operator = principal.can(Permission.ORDERS_OPERATE)
    held_call = api.get("order_intake", "/v1/orders", status="ON_HOLD", limit=QUEUE_LIMIT)
    if operator:
        stuck_answer, held = await asyncio.gather(
            api.get("order_intake", "/v1/ops/orders/stuck", limit=QUEUE_LIMIT), held_call
        )
        stuck = stuck_answer.get("orders", [])
    else:
        parked, held = await asyncio.gather(
            api.get("order_intake", "/v1/orders", status="NEEDS_ATTENTION", limit=QUEUE_LIMIT),
            held_call,
        )
        stuck = parked.get("orders", [])
    rows = attention_rows(stuck, held.get("orders", []))
    return render(request, "attention.html", principal, rows=rows, operator=operator)


@router.post("/attention/{order_id}/{action}", response_class=HTMLResponse)
async def attention_action(
    order_id: str,
    action: str,
    request: Request,
    principal: Principal = requires(Permission.ORDERS_OPERATE),
    _csrf: None = Depends(csrf_checked),  # after the token: anonymous is 401, not a stale form,
    api: ServicesApi = Depends(services_api),
) -> Response:
    """Retry, compensate or release the order as the user (order-intake decides and records
    who); from htmx the answer is the row's progress, which polls until the action is over."""
    try:
        check_action(action)
    except BadInput as exc:
        raise _bad(exc) from exc
    answer = await api.post(
        "order_intake",
        f"/v1/ops/orders/{_seg(order_id)}/{action}",
        {"by": principal.subject[:100], "note": "from the operator console"},
    )
    if not request.headers.get("hx-request"):
        return RedirectResponse(f"/orders/{_seg(order_id)}", status_code=303)
    progress = action_progress(
        action, str(answer["status"]), str(answer["status"]), "sent", elapsed_s=0
    )
    return render(
        request,
        "_attention_progress.html",
        principal,
        order_id=order_id,
        action=action,
        previous=answer.get("previous_status"),
        progress=progress,
        since=time.time(),
    )


@router.get("/attention/{order_id}/progress", response_class=HTMLResponse)
async def attention_progress(
    order_id: str,
    request: Request,
    action: str = Query(max_length=20),
    watch: str = Query(max_length=40, description="the status the action left the order in"),
    previous: str = Query(default="", max_length=40),
    since: float = Query(ge=0, description="when the action was taken (epoch seconds)"),
    principal: Principal = requires(Permission.ORDERS_READ),
    api: ServicesApi = Depends(services_api),
) -> Response:
    """The row's progress while an action works: polled every second until it is over."""
    try:
        check_action(action)
        check_status("watch", watch)
        if previous:
            check_status("previous", previous)
    except BadInput as exc:
        raise _bad(exc) from exc
    order = await api.get("order_intake", f"/v1/orders/{_seg(order_id)}")
    progress = action_progress(
        action,
        watch,
        str(order["status"]),
        (order.get("saga") or {}).get("step"),
        elapsed_s=max(time.time() - since, 0.0),
    )
    return render(
        request,
        "_attention_progress.html",
        principal,
        order_id=order_id,
        action=action,
        previous=previous or None,
        progress=progress,
        since=since,
    )
