"""A local OpenID Connect provider for the console's sign-in tests.

What a real provider (Keycloak, Auth0, Entra ID, Dex) does for an authorization code flow with
PKCE, and nothing more: a discovery document, its JWKS, an authorize endpoint that approves the
configured user at once (no login form) and sends the browser back with a code and the state, a
token endpoint that checks the code, the redirect URI, the client and the PKCE verifier against
the S256 challenge, and an end-session endpoint. It signs with the tests' signing key
(tests/support/auth.py), so its access tokens are ones the services accept: issuer `oms-local`,
audience `oms` (the services' settings), the user's roles. Its ID tokens carry its own URL as
issuer and the client id as audience, as the console checks.

Served on a free local port (`ServedApp`), so the console takes its real HTTP path to it; what
it was asked and what it issued is recorded for the tests (`authorizations`, `token_requests`,
`logouts`, `issued`).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from shared.ops.tokens import DEFAULT_AUDIENCE, DEFAULT_ISSUER, SigningKeys
from tests.support import auth
from tests.support.served_app import ServedApp

CLIENT_ID = "oms-console"


@dataclass
class OidcUser:
    subject: str
    roles: list[str]
    access_ttl_s: float = 3600


@dataclass
class Grant:
    code: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    user: OidcUser
    issued_at: float = field(default_factory=time.time)


def s256(verifier: str) -> str:
    """The PKCE S256 code challenge of a verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _half_hash(value: str) -> str:
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


class OidcDouble:
    """The provider. `user` is who the authorize endpoint approves; `id_token_claims` and
    `access_token_claims` override claims of the next tokens, `id_token_key` signs the next ID
    tokens with a key that is not the one the JWKS publishes (to test refusals)."""

    def __init__(self, client_id: str = CLIENT_ID, client_secret: str | None = None) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.user = OidcUser("oidc:ada", ["operator"])
        self.keys: SigningKeys = auth.keys()
        self.id_token_claims: dict[str, Any] = {}
        self.id_token_key: Any = None  # another private key, under the trusted key's kid
        self.access_token_claims: dict[str, Any] = {}
        self.grants: dict[str, Grant] = {}
        self.authorizations: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.logouts: list[dict[str, str]] = []
        self.issued: dict[str, str] = {}  # the last access token issued to each subject
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/logout", self.logout),
            ]
        )
        self._served = ServedApp(self.app, "OIDC provider double")

    @property
    def issuer(self) -> str:
        return self._served.base_url

    def start(self) -> None:
        self._served.start()

    def stop(self) -> None:
        self._served.stop()

    def reset(self) -> None:
        self.user = OidcUser("oidc:ada", ["operator"])
        self.keys = auth.keys()
        self.id_token_claims = {}
        self.id_token_key = None
        self.access_token_claims = {}

    # --- endpoints ---

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "end_session_endpoint": f"{self.issuer}/logout",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "none",
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "scopes_supported": ["openid", "profile"],
            }
        )

    async def jwks(self, request: Request) -> Response:
        return Response(self.keys.jwks_file.read_text(), media_type="application/json")

    async def authorize(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.authorizations.append(query)
        problem = self._authorize_problem(query)
        if problem is not None:
            return HTMLResponse(f"<h1>Refused</h1><p>{problem}</p>", status_code=400)
        code = secrets.token_urlsafe(24)
        self.grants[code] = Grant(
            code=code,
            client_id=query["client_id"],
            redirect_uri=query["redirect_uri"],
            code_challenge=query["code_challenge"],
            nonce=query.get("nonce"),
            user=self.user,
        )
        back = urlencode({"code": code, "state": query["state"]})
        separator = "&" if "?" in query["redirect_uri"] else "?"
        return RedirectResponse(f"{query['redirect_uri']}{separator}{back}", status_code=302)

    def _authorize_problem(self, query: dict[str, str]) -> str | None:
        if query.get("client_id") != self.client_id:
            return "unknown client_id"
        if query.get("response_type") != "code":
            return "response_type must be code"
        if not query.get("redirect_uri") or not query.get("state"):
            return "redirect_uri and state are required"
        if "openid" not in query.get("scope", "").split():
            return "the openid scope is required"
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return "PKCE with S256 is required"
        return None

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.token_requests.append(form)
        client_id, secret = self._client_credentials(request, form)
        if client_id != self.client_id or (
            self.client_secret is not None and secret != self.client_secret
        ):
            return _token_error("invalid_client", "unknown client or wrong secret", 401)
        if form.get("grant_type") != "authorization_code":
            return _token_error("unsupported_grant_type", "authorization_code only")
        grant = self.grants.pop(form.get("code", ""), None)  # a code works once
        if grant is None or time.time() - grant.issued_at > 60:
            return _token_error("invalid_grant", "unknown, used or expired code")
        if grant.client_id != client_id or grant.redirect_uri != form.get("redirect_uri"):
            return _token_error("invalid_grant", "the code was issued to another client or URI")
        verifier = form.get("code_verifier", "")
        if not verifier or not secrets.compare_digest(s256(verifier), grant.code_challenge):
            return _token_error("invalid_grant", "the code_verifier does not match the challenge")
        access_token = self.keys.issue(
            grant.user.roles,
            subject=grant.user.subject,
            ttl_s=grant.user.access_ttl_s,
            issuer=DEFAULT_ISSUER,
            audience=DEFAULT_AUDIENCE,
            extra=self.access_token_claims,
        )
        id_token = self._id_token(grant, access_token)
        self.issued[grant.user.subject] = access_token
        return JSONResponse(
            {
                "access_token": access_token,
                "id_token": id_token,
                "token_type": "Bearer",
                "expires_in": int(grant.user.access_ttl_s),
                "scope": "openid profile",
            },
            headers={"Cache-Control": "no-store"},
        )

    def _id_token(self, grant: Grant, access_token: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": grant.user.subject,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
            "at_hash": _half_hash(access_token),
            "name": grant.user.subject,
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        claims.update(self.id_token_claims)
        kid = self.keys.ensure()
        key = self.id_token_key or self.keys.private_key_file(kid).read_bytes()
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})

    def _client_credentials(
        self, request: Request, form: dict[str, str]
    ) -> tuple[str | None, str | None]:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            decoded = base64.b64decode(header[6:]).decode()
            client_id, _, secret = decoded.partition(":")
            return client_id, secret
        return form.get("client_id"), form.get("client_secret")

    async def logout(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.logouts.append(query)
        back = query.get("post_logout_redirect_uri")
        if back:
            return RedirectResponse(back, status_code=302)
        return HTMLResponse("<h1>Signed out</h1>")


def _token_error(error: str, description: str, status: int = 400) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


@contextmanager
def running_oidc_double(client_secret: str | None = None) -> Iterator[OidcDouble]:
    double = OidcDouble(client_secret=client_secret)
    double.start()
    try:
        yield double
    finally:
        double.stop()


def decode_unverified(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims
