"""Sign-in through the identity provider: OpenID Connect authorization code with PKCE (S256).

Authlib's Starlette client does the protocol: discovery (`<issuer>/.well-known/openid-
configuration`), the authorize redirect with `state`, `nonce` and the code challenge (kept in the
signed session cookie until the callback), the code exchange with the verifier, and the ID
token's signature (the provider's JWKS), issuer, audience, expiry and nonce. The session then
keeps the provider's *access token* — the one the services verify — and nothing else of it: the
console calls every service with it, and the services decide. A token the services would refuse
(another audience or issuer, a key they do not trust) is refused here already.

The session ends when the access token expires (no refresh: the user signs in again, the
provider's own session usually makes that one redirect). Sign-out clears the session and, when
the provider publishes an `end_session_endpoint`, ends the provider's session too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from joserfc.errors import JoseError
from starlette.middleware import Middleware

from services.console.auth.routes import render_sign_in, safe_next, start_session, verified
from services.console.auth.session import SessionExpiry
from services.console.settings import ConsoleSettings

log = logging.getLogger("oms.console.auth")
router = APIRouter(tags=["console sign-in"], include_in_schema=False)

NEXT_KEY = "oidc_next"
MIN_SESSION_SECRET = 32


# --- configuration -----------------------------------------------------------------------------


def configuration_problems(settings: ConsoleSettings) -> list[str]:
    """What keeps the console from starting with these settings (empty: nothing). Production
    needs the identity provider and a session secret of its own; anywhere, an issuer needs a
    client id and the `openid` scope."""
    problems: list[str] = []
    production = settings.env == "production"
    if settings.oidc_issuer is None:
        if production:
            problems.append("OMS_OIDC_ISSUER must be set in production (sign-in through OIDC)")
    else:
        if not settings.oidc_client_id:
            problems.append("OMS_OIDC_CLIENT_ID must be set with OMS_OIDC_ISSUER")
        if "openid" not in settings.oidc_scopes.split():
            problems.append("OMS_OIDC_SCOPES must include openid")
        if production and not settings.oidc_issuer.startswith("https://"):
            problems.append("OMS_OIDC_ISSUER must be an https:// URL in production")
    if production:
        secret = settings.session_secret.get_secret_value() if settings.session_secret else ""
        if len(secret) < MIN_SESSION_SECRET:
            problems.append(
                f"OMS_SESSION_SECRET must be set in production "
                f"(at least {MIN_SESSION_SECRET} characters)"
            )
        if settings.oidc_redirect_url and not settings.oidc_redirect_url.startswith("https://"):
            problems.append("OMS_OIDC_REDIRECT_URL must be an https:// URL in production")
    return problems


def check_configuration(settings: ConsoleSettings) -> None:
    problems = configuration_problems(settings)
    if problems:
        raise ValueError("the console cannot start: " + "; ".join(problems))


def provider_client(settings: ConsoleSettings) -> StarletteOAuth2App | None:
    """Authlib's client of the configured provider (PKCE S256, nonce), or None without one."""
    if settings.oidc_issuer is None:
        return None
    client_kwargs: dict[str, Any] = {
        "scope": settings.oidc_scopes,
        "code_challenge_method": "S256",
        "timeout": settings.api_timeout_s,
    }
    if settings.oidc_client_secret is None:
        client_kwargs["token_endpoint_auth_method"] = "none"  # a public client: PKCE only
    oauth = OAuth()
    client: StarletteOAuth2App = oauth.register(
        "oidc",
        client_id=settings.oidc_client_id,
        client_secret=(
            settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
        ),
        server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs=client_kwargs,
    )
    return client


def configure(settings: ConsoleSettings) -> Callable[[FastAPI], None]:
    """The console's sign-in set-up (ServiceSpec.configure_app): refuses settings it cannot run
    with, registers the provider, and ends a session whose access token has expired."""

    def apply(app: FastAPI) -> None:
        check_configuration(settings)
        app.state.oidc = provider_client(settings)
        # Innermost (after the session middleware, wherever that is added): it reads the session.
        app.user_middleware.append(Middleware(SessionExpiry))

    return apply


# --- the routes --------------------------------------------------------------------------------


def _client(request: Request) -> StarletteOAuth2App | None:
    client: StarletteOAuth2App | None = getattr(request.app.state, "oidc", None)
    return client


def _settings(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.console_settings
    return settings


def _refused(request: Request, status: int, message: str, next: str | None = None) -> HTMLResponse:
    return render_sign_in(request, status_code=status, next=next, error=message)


@router.get("/auth/login", response_class=HTMLResponse)
async def login(request: Request, next: str | None = None) -> Response:
    """To the provider's authorize endpoint (state, nonce, code_challenge S256)."""
    client = _client(request)
    if client is None:
        return _refused(request, 404, "sign-in through an identity provider is not configured")
    request.session[NEXT_KEY] = safe_next(next)
    settings = _settings(request)
    redirect_uri = settings.oidc_redirect_url or str(request.url_for("oidc_callback"))
    try:
        response: Response = await client.authorize_redirect(request, redirect_uri)
    except (httpx.HTTPError, AuthlibBaseError, RuntimeError, ValueError) as exc:
        log.warning("OIDC: the provider's discovery document failed: %r", exc)
        return _refused(
            request,
            502,
            f"the identity provider did not answer ({type(exc).__name__}): try again shortly",
        )
    return response


class SignInRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@router.get("/auth/callback", name="oidc_callback", response_class=HTMLResponse)
async def callback(request: Request) -> Response:
    """The provider's answer: state checked, the code exchanged with the verifier, the ID token
    validated, the access token verified as the services verify it and kept in the session."""
    client = _client(request)
    if client is None:
        return _refused(request, 404, "sign-in through an identity provider is not configured")
    next_path = safe_next(request.session.pop(NEXT_KEY, None))
    try:
        access_token = await _access_token(request, client, _settings(request))
    except SignInRefused as refused:
        return _refused(request, refused.status, refused.message, next_path)
    start_session(request, access_token, signed_in_with="oidc")
    return RedirectResponse(next_path, status_code=303)


async def _access_token(
    request: Request, client: StarletteOAuth2App, settings: ConsoleSettings
) -> str:
    """The callback's checks in order; the first that fails refuses the sign-in."""
    assert settings.oidc_issuer is not None and settings.oidc_client_id is not None
    try:
        metadata = await client.load_server_metadata()
        issuer = str(metadata.get("issuer", ""))
        if issuer.rstrip("/") != settings.oidc_issuer.rstrip("/"):
            raise SignInRefused(
                502, f"the identity provider's discovery document names another issuer: {issuer}"
            )
        token: dict[str, Any] = await client.authorize_access_token(
            request,
            claims_options={
                "iss": {"essential": True, "value": issuer},
                "aud": {"essential": True, "value": settings.oidc_client_id},
            },
        )
    except MismatchingStateError as exc:
        raise SignInRefused(
            400, "this sign-in was not started here, or was already used: sign in again"
        ) from exc
    except OAuthError as exc:
        detail = f" ({exc.description})" if exc.description else ""
        raise SignInRefused(
            401, f"the identity provider refused the sign-in: {exc.error}{detail}"
        ) from exc
    except (AuthlibBaseError, JoseError) as exc:
        log.warning("OIDC: the ID token was refused: %r", exc)
        raise SignInRefused(401, f"the identity provider's ID token was refused: {exc}") from exc
    except (httpx.HTTPError, RuntimeError, ValueError, KeyError) as exc:
        log.warning("OIDC: the token exchange failed: %r", exc)
        raise SignInRefused(
            502, f"the identity provider did not answer ({type(exc).__name__}): try again shortly"
        ) from exc
    if not token.get("userinfo"):
        raise SignInRefused(401, "the identity provider sent no ID token")
    access_token = token.get("access_token")
    if not isinstance(access_token, str) or await verified(request, access_token) is None:
        raise SignInRefused(
            401,
            "the identity provider's access token is not one the services accept "
            "(its issuer, audience or signing key)",
        )
    return access_token
