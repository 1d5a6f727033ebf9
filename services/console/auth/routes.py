"""Sign-in and sign-out. Without an OIDC provider configured (local development), sign-in takes
a bearer token as `oms token issue` makes it; it is verified like any token before it is kept in
the session. OIDC (authorization code with PKCE) is added by `oidc.py` when configured."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode, urljoin

import httpx
from authlib.common.errors import AuthlibBaseError
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console.auth.session import SIGNED_IN_WITH, SIGNED_OUT_REASON, new_session
from services.console.settings import ConsoleSettings
from services.console.web.pages import csrf_checked, render
from shared.platform.auth import Principal

log = logging.getLogger("oms.console.auth")

router = APIRouter(tags=["console sign-in"], include_in_schema=False)


def safe_next(value: str | None) -> str:
    """Only a path on this console (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def token_sign_in_allowed(settings: ConsoleSettings) -> bool:
    return settings.oidc_issuer is None and settings.env != "production"


def render_sign_in(
    request: Request, status_code: int = 200, next: str | None = None, **context: Any
) -> HTMLResponse:
    """The sign-in page: the identity provider's button and/or the token form, and why the
    user is here (`error`: a refused sign-in; or the reason the last session ended)."""
    settings: ConsoleSettings = request.app.state.console_settings
    reason = request.session.pop(SIGNED_OUT_REASON, None)
    context.setdefault("error", reason)
    return render(
        request,
        "sign_in.html",
        None,
        status_code=status_code,
        next=safe_next(next),
        oidc=settings.oidc_issuer is not None,
        token_sign_in=token_sign_in_allowed(settings),
        **context,
    )


@router.get("/sign-in", name="sign_in_page", response_class=HTMLResponse)
async def sign_in_page(request: Request, next: str | None = None) -> Response:
    return render_sign_in(request, next=next)


@router.post("/sign-in", response_class=HTMLResponse, dependencies=[Depends(csrf_checked)])
async def sign_in_with_token(
    request: Request, token: str = Form(max_length=8192), next: str = Form(default="/")
) -> Response:
    settings: ConsoleSettings = request.app.state.console_settings
    if not token_sign_in_allowed(settings):
        return render_sign_in(
            request, 403, next=next, error="sign in through the identity provider"
        )
    principal = await verified(request, token.strip())
    if principal is None:
        return render_sign_in(request, 401, next=next, error="that token was refused")
    start_session(request, token.strip())
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/sign-out", dependencies=[Depends(csrf_checked)])
async def sign_out(request: Request) -> Response:
    """Clears the session; after an OIDC sign-in, on to the provider's end_session_endpoint
    (when it has one) so its session ends too, and back to the sign-in page."""
    with_provider = request.session.get(SIGNED_IN_WITH) == "oidc"
    request.session.clear()
    target = await end_session_url(request) if with_provider else None
    return RedirectResponse(target or "/sign-in", status_code=303)


async def verified(request: Request, token: str) -> Principal | None:
    verifier = request.app.state.token_verifier
    if verifier is None or not token:
        return None
    try:
        principal: Principal = await verifier.verify_async(token)
    except Exception:
        return None
    return principal


def start_session(request: Request, token: str, signed_in_with: str = "token") -> None:
    """A new session (the old one's CSRF token and any sign-in state dropped) with the user's
    verified token; it ends when the token expires (session.SessionExpiry)."""
    new_session(request.session, token, signed_in_with)


async def end_session_url(request: Request) -> str | None:
    """The provider's end_session_endpoint with this console's client id and the way back to
    the sign-in page (RP-initiated logout); None without a provider or such an endpoint."""
    client = getattr(request.app.state, "oidc", None)
    if client is None:
        return None
    try:
        metadata = await client.load_server_metadata()
    except (httpx.HTTPError, AuthlibBaseError, RuntimeError, ValueError) as exc:
        log.warning("OIDC: the provider's discovery document failed at sign-out: %r", exc)
        return None
    endpoint = metadata.get("end_session_endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        return None
    settings: ConsoleSettings = request.app.state.console_settings
    back = (
        urljoin(settings.oidc_redirect_url, "/sign-in")
        if settings.oidc_redirect_url
        else str(request.url_for("sign_in_page"))
    )
    query = urlencode({"client_id": client.client_id, "post_logout_redirect_uri": back})
    return str(endpoint) + ("&" if "?" in endpoint else "?") + query
