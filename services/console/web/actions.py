"""What the operations pages' actions share: the form as plain strings, a refused field as a 4xx
naming it, the pages' `location` filter, and the answer — the whole page (a browser without htmx, a script) or, for htmx, the
outcome with the refreshed parts of the page swapped in out of band."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from services.console.operations import forms
from services.console.operations.forms import FormError
from services.console.web.pages import render
from shared.platform.auth import Principal
from shared.platform.errors import ApiError


def is_htmx(request: Request) -> bool:
    return bool(request.headers.get("hx-request"))


async def form_of(request: Request) -> dict[str, str]:
    """The posted form's text fields (files are not taken)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        raise ApiError(415, "form_expected", "post the page's form (form-encoded)")
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def refused_field(exc: FormError) -> ApiError:
    return ApiError(422, "invalid_form", str(exc), field=exc.field)


async def location_filter(location: str | None = None) -> str | None:
    """The `location` query parameter of a page, checked (a route dependency: list it after the
    principal, so that a request without a token is refused first)."""
    try:
        return forms.location_param(location)
    except FormError as exc:
        raise refused_field(exc) from exc


def answer(
    request: Request,
    principal: Principal,
    *,
    page: str,
    fragment: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page for a browser without htmx; the fragment (outcome + out-of-band parts) for htmx."""
    if is_htmx(request):
        return render(request, fragment, principal, status_code=status_code, oob=True, **context)
    return render(request, page, principal, status_code=status_code, oob=False, **context)
