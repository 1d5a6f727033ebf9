"""Who is calling, and may they (DESIGN.md §9).

Authentication: every route but `/health/*`, `/metrics` and the OpenAPI document needs an
OAuth 2 bearer token, a JWT with an asymmetric signature (RS256, ES256, ...), checked against a
JWKS — a file (`OMS_AUTH_JWKS_FILE`, what `make run` creates) or an identity provider's URL
(`OMS_AUTH_JWKS_URL`: Keycloak, Auth0, Entra ID, Dex...). The issuer, the audience, the expiry
and the key (`kid`) are checked by PyJWT; `alg: none` and HMAC algorithms are never accepted.

Authorisation: a token's roles (claim `roles`, or Keycloak's `realm_access.roles`) map to
permissions in one table, `ROLE_PERMISSIONS`. Every route declares the permission it needs with
`requires(...)`; a test walks the route table of every service and fails on a route without
one. `channel:<name>` and `carrier:<name>` roles are scoped: they act for that one channel or
carrier only.

Answers: 401 `unauthenticated` (no token, or one that does not verify) with
`WWW-Authenticate: Bearer`, 403 `forbidden` (a valid token without the permission).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.platform.errors import ApiError
from shared.platform.ratelimit import RateLimiter, retry_after_header
from shared.platform.settings import ServiceSettings

log = logging.getLogger("oms.audit")

CACHE_S = 60.0
CACHE_ENTRIES = 10_000

ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")
"""Asymmetric only: a token signed with a shared secret or with `none` is refused."""


class Permission(StrEnum):
    ORDERS_READ = "orders:read"  # orders without personal data
    PERSONAL_DATA = "personal_data:read"  # e-mail, name, phone, addresses
    ORDERS_CREATE = "orders:create"  # native orders (web shop, app, phone)
    ORDERS_CANCEL = "orders:cancel"
    ORDERS_OPERATE = "orders:operate"  # stuck orders, retry, compensate
    CHANNEL_ORDERS = "channel_orders:post"  # a channel's own order payloads (scoped)
    STOCK_READ = "stock:read"
    STOCK_WRITE = "stock:write"  # SKUs, receipts, counts, damage
    FULFILMENTS_READ = "fulfilments:read"
    FULFILMENTS_WRITE = "fulfilments:write"  # pick, pack, label, ship, deliver
    WAREHOUSE_SETUP = "warehouse:setup"  # locations, zones and bins, items, boxes
    CARRIER_EVENTS = "carrier_events:post"  # tracking updates (scoped)
    PAYMENTS_READ = "payments:read"
    PAYMENT_EVENTS = "payment_events:post"  # a payment provider's events (signed webhooks)
    RETURNS_READ = "returns:read"
    RETURNS_CREATE = "returns:create"
    RETURNS_DECIDE = "returns:decide"  # approve, refuse, retry a refund
    RETURNS_RECEIVE = "returns:receive"


P = Permission
READ_WITHOUT_PERSONAL_DATA = frozenset(
    {P.ORDERS_READ, P.STOCK_READ, P.FULFILMENTS_READ, P.PAYMENTS_READ, P.RETURNS_READ}
)

ROLE_PERMISSIONS: Mapping[str, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "operator": READ_WITHOUT_PERSONAL_DATA | {P.PERSONAL_DATA, P.ORDERS_CANCEL, P.ORDERS_OPERATE},
    "customer_service": READ_WITHOUT_PERSONAL_DATA
    | {
        P.PERSONAL_DATA,
        P.ORDERS_CREATE,
        P.ORDERS_CANCEL,
        P.RETURNS_CREATE,
        P.RETURNS_DECIDE,
    },
    "warehouse": frozenset(
        {
            P.STOCK_READ,
            P.STOCK_WRITE,
            P.FULFILMENTS_READ,
            P.FULFILMENTS_WRITE,
            P.WAREHOUSE_SETUP,
            P.RETURNS_READ,
            P.RETURNS_RECEIVE,
        }
    ),
    "finance": READ_WITHOUT_PERSONAL_DATA | {P.RETURNS_DECIDE},
    "viewer": READ_WITHOUT_PERSONAL_DATA,
    # Scoped roles: `channel:<name>` posts that channel's orders (webhooks/pollers, or native
    # orders of its own channel, e.g. `channel:web` for the web shop); `carrier:<name>` posts
    # that carrier's tracking events.
    "channel": frozenset({P.CHANNEL_ORDERS, P.ORDERS_CREATE}),
    "carrier": frozenset({P.CARRIER_EVENTS}),
}
SCOPED_ROLES = frozenset({"channel", "carrier"})


@dataclass(frozen=True)
class Principal:
    """The verified caller."""

    subject: str
    roles: frozenset[str]
    permissions: frozenset[Permission]
    unscoped_permissions: frozenset[Permission]  # from roles not tied to a channel or carrier
    channels: frozenset[str]  # from channel:<name> roles
    carriers: frozenset[str]  # from carrier:<name> roles

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def may_act_for_channel(self, channel: str, permission: Permission = P.CHANNEL_ORDERS) -> bool:
        """`permission` for this channel: through an unscoped role, or as `channel:<channel>`."""
        return permission in self.unscoped_permissions or (
            self.can(permission) and channel in self.channels
        )

    def may_act_for_carrier(self, carrier: str) -> bool:
        return P.CARRIER_EVENTS in self.unscoped_permissions or (
            self.can(P.CARRIER_EVENTS) and carrier in self.carriers
        )


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    raw = claims.get("roles")
    if raw is None:
        raw = (claims.get("realm_access") or {}).get("roles", [])
    roles = frozenset(str(r) for r in (raw if isinstance(raw, list) else [raw]))
    permissions: set[Permission] = set()
    unscoped: set[Permission] = set()
    channels: set[str] = set()
    carriers: set[str] = set()
    for role in roles:
        kind, _, scope = role.partition(":")
        if kind in SCOPED_ROLES:
            if not scope:
                continue
            (channels if kind == "channel" else carriers).add(scope)
            permissions |= ROLE_PERMISSIONS[kind]
        else:
            unscoped |= ROLE_PERMISSIONS.get(role, frozenset())
    permissions |= unscoped
    return Principal(
        subject=str(claims.get("sub", "")),
        roles=roles,
        permissions=frozenset(permissions),
        unscoped_permissions=frozenset(unscoped),
        channels=frozenset(channels),
        carriers=frozenset(carriers),
    )


# --- verification ------------------------------------------------------------------------------


class TokenVerifier:
    """Checks a bearer token against the configured JWKS, issuer and audience."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_file: Path | None = None,
        jwks_url: str | None = None,
        leeway_s: float = 30,
    ) -> None:
        if (jwks_file is None) == (jwks_url is None):
            raise ValueError("configure exactly one of OMS_AUTH_JWKS_FILE and OMS_AUTH_JWKS_URL")
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_s
        self._file = jwks_file
        self._file_keys: dict[str, Any] = {}
        self._file_read_at = 0.0
        # PyJWKClient caches the provider's keys and fetches again for an unknown kid (rotation),
        # at most once per cooldown, so made-up kids cannot make it fetch on every request.
        self._client = jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=5) if jwks_url else None
        # A client sends the same token many times: a verified one is remembered for at most
        # CACHE_S (and never past its expiry), so a retired key stops working within that.
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def _key_from_file(self, kid: str) -> Any:
        assert self._file is not None
        if kid not in self._file_keys or time.monotonic() - self._file_read_at > 30:
            jwks = jwt.PyJWKSet.from_dict(json.loads(self._file.read_text()))
            self._file_keys = {key.key_id: key for key in jwks.keys if key.key_id}
            self._file_read_at = time.monotonic()
        key = self._file_keys.get(kid)
        if key is None:
            raise jwt.InvalidTokenError(f"unknown signing key {kid!r}")
        return key

    def verify(self, token: str) -> Principal:
        """Blocks while the provider's keys are fetched (OMS_AUTH_JWKS_URL): see verify_async."""
        return self._cached(token) or self._remember(token, *self._verify(token))

    async def verify_async(self, token: str) -> Principal:
        """As verify, with a fetch of the provider's keys off the event loop."""
        cached = self._cached(token)
        if cached is not None:
            return cached
        if self._client is not None:
            return self._remember(token, *await asyncio.to_thread(self._verify, token))
        return self._remember(token, *self._verify(token))

    def _cached(self, token: str) -> Principal | None:
        cached = self._verified.get(token)
        return cached[0] if cached is not None and cached[1] > time.time() else None

    def _remember(self, token: str, principal: Principal, expires: float) -> Principal:
        self._verified[token] = (principal, min(expires, time.time() + CACHE_S))
        while len(self._verified) > CACHE_ENTRIES:
            self._verified.popitem(last=False)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        header = jwt.get_unverified_header(token)
        if header.get("alg") not in ALGORITHMS:
            raise jwt.InvalidAlgorithmError(f"algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid")
        if not kid:
            raise jwt.InvalidTokenError("the token names no signing key (kid)")
        if self._client is not None:
            key = self._client.get_signing_key(kid)
        else:
            key = self._key_from_file(kid)
        claims = jwt.decode(
            token,
            key=key,
            algorithms=list(ALGORITHMS),
            audience=self._audience,
            issuer=self._issuer,
            leeway=self._leeway,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
        return principal_from_claims(claims), float(claims["exp"])


_bearer = HTTPBearer(auto_error=False)


def _unauthenticated(message: str) -> ApiError:
    return ApiError(401, "unauthenticated", message, headers={"WWW-Authenticate": "Bearer"})


SESSION_TOKEN = "access_token"


def session_token(request: Request) -> str | None:
    """The signed-in user's token from the session cookie, where the app keeps sessions (the
    console's signed cookie: SessionMiddleware); None elsewhere."""
    session = request.scope.get("session")
    token = session.get(SESSION_TOKEN) if isinstance(session, dict) else None
    return token if isinstance(token, str) and token else None


async def authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        raise ApiError(503, "auth_not_configured", "the service has no token verification set up")
    token = credentials.credentials if credentials is not None else session_token(request)
    if token is None or (credentials is not None and credentials.scheme.lower() != "bearer"):
        raise _unauthenticated("a bearer token is required")
    try:
        principal = await verifier.verify_async(token)
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise _unauthenticated(f"the token was refused: {exc}") from exc
    request.state.principal = principal
    return principal


def _limit(request: Request, client: str) -> None:
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    wait = limiter.take(client) if limiter is not None else 0.0
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            "too many requests from this client: retry after Retry-After seconds",
            headers=retry_after_header(wait),
        )


class _Requirement:
    """A route's declared permission (found by the route-table test through `.permission`).
    Async, so it runs on the event loop rather than in the thread pool."""

    def __init__(
        self,
        permission: Permission,
        *,
        optional: bool = False,
        carrier_param: str | None = None,
    ) -> None:
        self.permission = permission
        self.optional = optional
        self.carrier_param = carrier_param

    async def __call__(
        self,
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> Principal | None:
        if self.optional and credentials is None:
            _limit(request, f"address:{request.client.host if request.client else '?'}")
            return None
        principal = await authenticate(request, credentials)
        _limit(request, f"subject:{principal.subject}")
        if not principal.can(self.permission):
            raise ApiError(
                403,
                "forbidden",
                f"this needs the permission {self.permission}",
                permission=str(self.permission),
            )
        if self.carrier_param is not None:
            carrier = str(request.path_params.get(self.carrier_param, ""))
            if not principal.may_act_for_carrier(carrier):
                raise ApiError(
                    403,
                    "forbidden",
                    f"this token may not act for carrier {carrier}",
                    permission=str(self.permission),
                )
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            # Audit: who changed what (the path names ids, never personal data).
            log.info(
                "%s %s by %s",
                request.method,
                request.url.path,
                principal.subject,
                extra={"subject": principal.subject},
            )
        return principal


@functools.cache
def requires(permission: Permission) -> Any:
    """`dependencies=[requires(Permission.X)]`, or a parameter `principal: Principal =
    requires(Permission.X)` where the route needs to know who calls."""
    return Depends(_Requirement(permission))


@functools.cache
def requires_carrier(path_param: str = "carrier") -> Any:
    """`carrier_events:post` for the carrier named in the path: a `carrier:<name>` token acts
    for its own carrier only (checked before the body is read)."""
    return Depends(_Requirement(Permission.CARRIER_EVENTS, carrier_param=path_param))


@functools.cache
def token_if_present(permission: Permission) -> Any:
    """For routes a channel may authenticate another way (its webhook signature): a token, if
    sent, must verify and carry `permission`; without one the route checks the signature."""
    return Depends(_Requirement(permission, optional=True))


def mask_personal_data(value: Any) -> Any:
    """What a caller without `personal_data:read` sees of a customer or an address."""
    if isinstance(value, Mapping):
        return {k: ("***" if v not in (None, "") else v) for k, v in value.items()}
    return "***" if value not in (None, "") else value


def audit_subject(request: Request) -> str | None:
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal.subject if principal is not None else None


def declared_permissions(dependencies: Iterable[Any]) -> list[Permission]:
    """The permissions a route's dependency tree declares (for the route-table test)."""
    found: list[Permission] = []
    for dependency in dependencies:
        call = getattr(dependency, "call", None)
        if isinstance(call, _Requirement):
            found.append(call.permission)
        found.extend(declared_permissions(getattr(dependency, "dependencies", ())))
    return found


def token_verifier(settings: ServiceSettings) -> TokenVerifier | None:
    """The service's verifier, or None when no JWKS is configured (every protected route then
    answers 503 `auth_not_configured` and readiness says so: nothing is ever open)."""
    if settings.auth_jwks_file is None and settings.auth_jwks_url is None:
        return None
    return TokenVerifier(
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        jwks_file=settings.auth_jwks_file,
        jwks_url=settings.auth_jwks_url,
    )
