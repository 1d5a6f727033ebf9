"""Sign-in and sign-out. Without an OIDC provider configured (local development), sign-in takes
a bearer token as `oms token issue` makes it; it is verified like any token before it is kept in
the session. OIDC (authorization code with PKCE) is added by `oidc.py` when configured."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console.settings import ConsoleSettings
from services.console.web.pages import csrf_checked, render
from shared.platform.auth import SESSION_TOKEN, Principal

router = APIRouter(tags=["console sign-in"], include_in_schema=False)


def safe_next(value: str | None) -> str:
    """Only a path on this console (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def token_sign_in_allowed(settings: ConsoleSettings) -> bool:
    return settings.oidc_issuer is None and settings.env != "production"


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, next: str | None = None) -> Response:
    settings: ConsoleSettings = request.app.state.console_settings
    return render(
        request,
        "sign_in.html",
        None,
        next=safe_next(next),
        oidc=settings.oidc_issuer is not None,
        token_sign_in=token_sign_in_allowed(settings),
    )


@router.post("/sign-in", response_class=HTMLResponse, dependencies=[Depends(csrf_checked)])
async def sign_in_with_token(
    request: Request, token: str = Form(max_length=8192), next: str = Form(default="/")
) -> Response:
    settings: ConsoleSettings = request.app.state.console_settings
    if not token_sign_in_allowed(settings):
        return render(
            request,
            "sign_in.html",
            None,
            status_code=403,
            next=safe_next(next),
            oidc=settings.oidc_issuer is not None,
            token_sign_in=False,
            error="sign in through the identity provider",
        )
    principal = await verified(request, token.strip())
    if principal is None:
        return render(
            request,
            "sign_in.html",
            None,
            status_code=401,
            next=safe_next(next),
            oidc=False,
            token_sign_in=True,
            error="that token was refused",
        )
    start_session(request, token.strip())
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/sign-out", dependencies=[Depends(csrf_checked)])
async def sign_out(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/sign-in", status_code=303)


async def verified(request: Request, token: str) -> Principal | None:
    verifier = request.app.state.token_verifier
    if verifier is None or not token:
        return None
    try:
        principal: Principal = await verifier.verify_async(token)
    except Exception:
        return None
    return principal


def start_session(request: Request, token: str) -> None:
    """A new session (the old one's id and CSRF token are dropped) with the user's token."""
    request.session.clear()
    request.session[SESSION_TOKEN] = token
