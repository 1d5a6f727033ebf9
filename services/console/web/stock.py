"""Stock per SKU and location, its ledger, adjustments, and low stock — all through inventory's API
as the signed-in user (`GET /v1/stock/{sku}`, `GET /v1/stock/{sku}/ledger`,
`POST /v1/stock/adjustments`, `GET /v1/replenishment/suggestions`).

Inventory has no list of every SKU's stock: the list on /stock is replenishment's view of the
SKUs and locations it watches (reorder settings) or that shipped in the last 30 days."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console.operations import forms
from services.console.operations.forms import FormError
from services.console.services_api import ServicesApi, services_api
from services.console.web.actions import answer, form_of, location_filter, refused_field
from services.console.web.pages import csrf_checked, render
from shared.platform.auth import Permission, Principal, requires

router = APIRouter(tags=["console stock"], include_in_schema=False)
LEDGER_ROWS = 50


@router.get("/stock", response_class=HTMLResponse)
async def stock_list(
    request: Request,
    sku: str | None = None,
    location: str | None = None,
    api: ServicesApi = Depends(services_api),
    principal: Principal = requires(Permission.STOCK_READ),
) -> Response:
    """Find a SKU (its page), and the stock replenishment watches per SKU and location."""
    try:
        if sku is not None and sku.strip():
            return RedirectResponse(f"/stock/{quote(forms.sku(sku), safe='')}", status_code=303)
        where = forms.location_param(location)
    except FormError as exc:
        raise refused_field(exc) from exc
    found = await api.get("inventory", "/v1/replenishment/suggestions", location=where, all="true")
    return render(
        request, "stock/list.html", principal, positions=found["suggestions"], location=where
    )


@router.get("/stock/low", response_class=HTMLResponse)
async def low_stock(
    request: Request,
    api: ServicesApi = Depends(services_api),
    principal: Principal = requires(Permission.STOCK_READ),
    where: str | None = Depends(location_filter),
) -> Response:
    """What is low or about to run out: replenishment's suggestions, most urgent first."""
    found = await api.get("inventory", "/v1/replenishment/suggestions", location=where)
    return render(
        request, "stock/low.html", principal, suggestions=found["suggestions"], location=where
    )


@router.get("/stock/{sku}", response_class=HTMLResponse)
async def stock_of(
    request: Request,
    sku: str,
    api: ServicesApi = Depends(services_api),
    principal: Principal = requires(Permission.STOCK_READ),
    where: str | None = Depends(location_filter),
) -> Response:
    """A SKU's stock per location, its ledger (newest first) and the adjustment form."""
    context = await _sku_context(api, sku, where)
    return render(request, "stock/sku.html", principal, **context)


@router.post(
    "/stock/{sku}/adjustments",
    response_class=HTMLResponse,
)
async def adjust(
    request: Request,
    sku: str,
    api: ServicesApi = Depends(services_api),
    principal: Principal = requires(Permission.STOCK_WRITE),
    _csrf: None = Depends(csrf_checked),
) -> Response:
    """A receipt, count, damage... at one location, through inventory's adjustments API."""
    try:
        body = forms.adjustment(sku, await form_of(request))
    except FormError as exc:
        raise refused_field(exc) from exc
    result = await api.post("inventory", "/v1/stock/adjustments", body)
    context = await _sku_context(api, body["sku"], None)
    return answer(
        request,
        principal,
        page="stock/sku.html",
        fragment="stock/_adjusted.html",
        adjusted=result["adjustment"],
        **context,
    )


async def _sku_context(api: ServicesApi, sku: str, location: str | None) -> dict[str, Any]:
    stock = await api.get("inventory", f"/v1/stock/{quote(sku, safe='')}")
    ledger = await api.get(
        "inventory",
        f"/v1/stock/{quote(sku, safe='')}/ledger",
        limit=LEDGER_ROWS,
        location=location,
    )
    return {
        "sku": sku,
        "stock": stock,
        "ledger": ledger["entries"],
        "location": location,
        "reasons": forms.ADJUSTMENT_REASONS,
    }
