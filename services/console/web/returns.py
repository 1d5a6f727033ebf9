"""Returns to approve, refuse and receive, through returns' API as the signed-in user
(`services/returns/api.py`: `GET /v1/returns`, `GET /v1/returns/{id}`, and `POST .../approve`,
`.../refuse`, `.../receive`). The services decide; the page only offers what the user may do and
what the return's status allows."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from services.console.operations import forms
from services.console.operations.forms import FormError, ReturnLine
from services.console.services_api import ServicesApi, services_api
from services.console.web.actions import answer, form_of, refused_field
from services.console.web.pages import csrf_checked, render
from shared.platform.auth import Permission, Principal, requires

router = APIRouter(tags=["console returns"], include_in_schema=False)
DECIDABLE = ("REQUESTED",)  # approve
REFUSABLE = ("REQUESTED", "APPROVED")
RECEIVABLE = ("APPROVED",)


@router.get("/returns", response_class=HTMLResponse)
async def returns_list(
    request: Request,
    status: str | None = None,
    api: ServicesApi = Depends(services_api),
    principal: Principal = requires(Permission.RETURNS_READ),
) -> Response:
    """Returns by status: those waiting for approval unless told."""
    try:
        chosen = forms.return_status(status)
    except FormError as exc:
        raise refused_field(exc) from exc
    found = await api.get("returns", "/v1/returns", status=chosen, limit=200)
    return render(
        request,
        "returns/list.html",
        principal,
        returns=found["returns"],
        status=chosen,
        statuses=forms.RETURN_STATUSES,
    )


@router.get("/returns/{return_id}", response_class=HTMLResponse)
async def return_page(
    request: Request,
    return_id: str,
    api: ServicesApi = Depends(services_api),
    principal: Principal = requires(Permission.RETURNS_READ),
) -> Response:
    """A return's lines, refund and timeline, with the actions its status allows."""
    found = await _return(api, return_id)
    return render(request, "returns/return.html", principal, **_context(found))


@router.post(
    "/returns/{return_id}/approve",
    response_class=HTMLResponse,
)
async def approve(
    request: Request,
    return_id: str,
    api: ServicesApi = Depends(services_api),
    principal: Principal = requires(Permission.RETURNS_DECIDE),
    _csrf: None = Depends(csrf_checked),
) -> Response:
    return await _act(request, principal, api, return_id, "approve", "approved")


@router.post(
    "/returns/{return_id}/refuse",
    response_class=HTMLResponse,
)
async def refuse(
    request: Request,
    return_id: str,
    api: ServicesApi = Depends(services_api),
    principal: Principal = requires(Permission.RETURNS_DECIDE),
    _csrf: None = Depends(csrf_checked),
) -> Response:
    try:
        body = forms.refusal(await form_of(request))
    except FormError as exc:
        raise refused_field(exc) from exc
    return await _act(request, principal, api, return_id, "refuse", "refused", body)


@router.post(
    "/returns/{return_id}/receive",
    response_class=HTMLResponse,
)
async def receive(
    request: Request,
    return_id: str,
    api: ServicesApi = Depends(services_api),
    principal: Principal = requires(Permission.RETURNS_RECEIVE),
    _csrf: None = Depends(csrf_checked),
) -> Response:
    """The goods arrived: units per line by condition (the form has a row per line)."""
    form = await form_of(request)
    current = await _return(api, return_id)
    lines = [ReturnLine(line["sku"], line["quantity"]) for line in current["lines"]]
    try:
        body = forms.receipt(form, lines)
    except FormError as exc:
        raise refused_field(exc) from exc
    return await _act(request, principal, api, return_id, "receive", "received", body)


def _path(return_id: str) -> str:
    return f"/v1/returns/{quote(return_id, safe='')}"


async def _return(api: ServicesApi, return_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await api.get("returns", _path(return_id))
    return found


async def _act(
    request: Request,
    principal: Principal,
    api: ServicesApi,
    return_id: str,
    action: str,
    done_as: str,
    body: dict[str, Any] | None = None,
) -> Response:
    """Post the action to returns' API; the answer is the return as it is now."""
    done = await api.post("returns", f"{_path(return_id)}/{action}", body)
    return _done(request, principal, done, done_as)


def _context(found: dict[str, Any]) -> dict[str, Any]:
    status = found["status"]
    return {
        "r": found,
        "may_approve": status in DECIDABLE,
        "may_refuse": status in REFUSABLE,
        "may_receive": status in RECEIVABLE,
    }


def _done(request: Request, principal: Principal, found: dict[str, Any], action: str) -> Response:
    return answer(
        request,
        principal,
        page="returns/return.html",
        fragment="returns/_done.html",
        action=action,
        **_context(found),
    )
