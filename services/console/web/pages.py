"""What every page shares: the templates, rendering with the signed-in user, the app's set-up
(session cookie, static files, errors shown as pages), and the home page."""

from __future__ import annotations

import inspect
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from services.console.settings import ConsoleSettings
from shared.platform.auth import Permission, Principal, requires
from shared.platform.errors import ApiError, error_body

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
DEV_SESSION_SECRET = "console-development-session-secret"
CSRF_KEY = "csrf"


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "") and not request.headers.get(
        "hx-request"
    )


def csrf_token(request: Request) -> str:
    """The session's token forms and htmx requests send back (X-CSRF-Token or `csrf`)."""
    session: dict[str, Any] = request.session
    token = session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        session[CSRF_KEY] = token
    return token


def render(
    request: Request,
    template: str,
    principal: Principal | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page with the user (subject, roles, `can(permission)`) and the CSRF token."""
    return templates.TemplateResponse(
        request,
        template,
        {
            "user": principal,
            "can": (lambda permission: principal is not None and principal.can(permission)),
            "P": Permission,
            "csrf": csrf_token(request),
            **context,
        },
        status_code=status_code,
    )


def configure(settings: ConsoleSettings) -> Any:
    """The console's additions to its app (ServiceSpec.configure_app)."""

    def apply(app: FastAPI) -> None:
        secret = settings.session_secret
        if secret is None and settings.env == "production":
            raise ValueError("OMS_SESSION_SECRET must be set in production")
        app.add_middleware(
            SessionMiddleware,
            secret_key=secret.get_secret_value() if secret else DEV_SESSION_SECRET,
            session_cookie="oms_console",
            max_age=settings.session_max_age_s,
            same_site="lax",
            https_only=settings.env == "production",
        )
        app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
        app.state.console_settings = settings
        app.state.console_http = httpx.AsyncClient(timeout=settings.api_timeout_s)
        json_handler = app.exception_handlers[ApiError]

        async def api_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, ApiError)
            if exc.status == 401 and wants_html(request):
                target = quote(
                    request.url.path + (f"?{request.url.query}" if request.url.query else "")
                )
                return RedirectResponse(f"/sign-in?next={target}", status_code=303)
            if request.headers.get("hx-request"):
                return templates.TemplateResponse(
                    request,
                    "_error.html",
                    {"error": exc},
                    status_code=exc.status,
                    headers=exc.headers,
                )
            if wants_html(request):
                return templates.TemplateResponse(
                    request,
                    "error.html",
                    {"error": exc, "user": None, "can": lambda _: False, "P": Permission},
                    status_code=exc.status,
                    headers=exc.headers,
                )
            response = json_handler(request, exc)
            return await response if inspect.isawaitable(response) else response

        app.exception_handlers[ApiError] = api_error
        _ = error_body  # the JSON shape stays the platform's

    return apply


router = APIRouter(tags=["console"], include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def home(
    request: Request, principal: Principal = requires(Permission.ORDERS_READ)
) -> Response:
    """The start page: where to go."""
    return render(request, "home.html", principal)


async def csrf_checked(request: Request) -> None:
    """A form or htmx action must carry the session's CSRF token (header X-CSRF-Token or form
    field `csrf`); the cookie is SameSite=Lax as well. A bearer-token caller (no session
    cookie: a script, a test) needs none."""
    if request.headers.get("authorization"):
        return
    expected = request.session.get(CSRF_KEY)
    given = request.headers.get("x-csrf-token")
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        given = str((await request.form()).get("csrf") or "") or None
    if not expected or not given or not secrets.compare_digest(str(expected), given):
        raise ApiError(403, "csrf_failed", "the form is stale: reload the page and try again")
