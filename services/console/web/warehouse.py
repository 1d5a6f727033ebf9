"""The warehouse queue: per location with a floor, the fulfilments waiting for a pick list, the
open pick lists by wave, one pick list's stops, and releasing waiting fulfilments onto pick
lists — fulfilment's picking API (`services/fulfilment/picking/routes.py`), what
`oms warehouse queue / lists / show / release` read, as the signed-in user."""

from __future__ import annotations

from itertools import groupby
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from services.console.operations import forms
from services.console.operations.forms import FormError
from services.console.services_api import ServicesApi, services_api
from services.console.web.actions import answer, form_of, location_filter, refused_field
from services.console.web.pages import csrf_checked, render
from shared.platform.auth import Permission, Principal, requires

router = APIRouter(tags=["console warehouse"], include_in_schema=False)
FLOORS = ("warehouse", "store")  # the kinds of location that pick for themselves here
OPEN = ("released", "claimed", "picking")


@router.get("/warehouse", response_class=HTMLResponse)
async def queue(
    request: Request,
    api: ServicesApi = Depends(services_api),
    principal: Principal = requires(Permission.FULFILMENTS_READ),
    chosen: str | None = Depends(location_filter),
) -> Response:
    """The queue of one location (the first with a floor unless told)."""
    found = await api.get("fulfilment", "/v1/locations")
    floors = [loc for loc in found["locations"] if loc["kind"] in FLOORS]
    if chosen is None and floors:
        chosen = floors[0]["code"]
    context = await _queue_context(api, chosen) if chosen else {"location": None}
    return render(request, "warehouse/queue.html", principal, floors=floors, **context)


@router.get("/warehouse/pick-lists/{pick_list_id}", response_class=HTMLResponse)
async def pick_list(
    request: Request,
    pick_list_id: str,
    api: ServicesApi = Depends(services_api),
    principal: Principal = requires(Permission.FULFILMENTS_READ),
) -> Response:
    """A pick list's stops in walking order, with what was picked and where it goes."""
    found = await api.get("fulfilment", f"/v1/pick-lists/{quote(pick_list_id, safe='')}")
    return render(request, "warehouse/pick_list.html", principal, p=found)


@router.post(
    "/warehouse/{location}/release",
    response_class=HTMLResponse,
)
async def release(
    request: Request,
    location: str,
    api: ServicesApi = Depends(services_api),
    principal: Principal = requires(Permission.FULFILMENTS_WRITE),
    _csrf: None = Depends(csrf_checked),
) -> Response:
    """Put the location's waiting fulfilments on pick lists (the strategy from the form)."""
    try:
        body = forms.release(await form_of(request))
    except FormError as exc:
        raise refused_field(exc) from exc
    released = await api.post(
        "fulfilment", f"/v1/locations/{quote(location, safe='')}/pick-lists", body
    )
    found = await api.get("fulfilment", "/v1/locations")
    floors = [loc for loc in found["locations"] if loc["kind"] in FLOORS]
    context = await _queue_context(api, location)
    return answer(
        request,
        principal,
        page="warehouse/queue.html",
        fragment="warehouse/_released.html",
        floors=floors,
        released=released,
        **context,
    )


async def _queue_context(api: ServicesApi, location: str) -> dict[str, Any]:
    code = quote(location, safe="")
    counts = await api.get("fulfilment", f"/v1/locations/{code}/queue")
    lists = await api.call(
        "fulfilment",
        "GET",
        "/v1/pick-lists",
        params={"location": location, "status": list(OPEN), "limit": 200},
    )
    return {
        "location": location,
        "counts": counts,
        "waves": waves(lists["pick_lists"]),
        "strategies": forms.RELEASE_STRATEGIES,
    }


def waves(pick_lists: list[dict[str, Any]]) -> list[tuple[int | None, list[dict[str, Any]]]]:
    """Open pick lists grouped by wave (the API sorts them by wave, then age); lists of no wave
    come last."""
    ordered = sorted(pick_lists, key=lambda p: (p["wave"] is None, p["wave"] or 0))
    return [(wave, list(group)) for wave, group in groupby(ordered, key=lambda p: p["wave"])]
