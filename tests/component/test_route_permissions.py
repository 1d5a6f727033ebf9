"""Every route of every service declares the permission it needs, and the route table answers
as the role table says: no token 401, a role without the permission 403, a role with it gets
past authorisation (whatever the junk request then earns: 2xx or 4xx, never 401/403/5xx).
Scoped roles act for their own channel or carrier only."""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from shared.platform.auth import ROLE_PERMISSIONS, Permission, declared_permissions
from shared.platform.service import create_app
from shared.topics import SERVICES
from tests.support.component import start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component

PUBLIC = {"/health/live", "/health/ready", "/metrics", "/openapi.json", "/docs", "/redoc"}
# The console's sign-in pages (a session is what they make) and its static files.
PUBLIC |= {"/sign-in", "/sign-out", "/auth/login", "/auth/callback"}
PUBLIC_PREFIXES = ("/docs/",)
ROLES = [
    "admin",
    "operator",
    "customer_service",
    "warehouse",
    "finance",
    "viewer",
    "channel:amazon",
    "channel:ebay",
    "carrier:dhl",
    "carrier:ups",
]
PATH_VALUES = {"channel": "amazon", "carrier": "dhl"}
CONSOLE_NOWHERE = "http://127.0.0.1:9"  # nothing answers there
CONSOLE_CALLS = (
    "order_intake",
    "inventory",
    "payment",
    "fulfilment",
    "returns",
    "channel_connector",
)
# Routes a partner proves itself on with its HMAC signature instead of a token: without either,
# the refusal (its status and code) names the missing signature. Stripe's webhook answers 400,
# as Stripe's documentation asks of an endpoint whose signature check fails. The connector's
# id-only webhooks are verified by the account's client: an account it does not serve (none
# here) is refused before anything is read (its signature check: test_bigcommerce.py).
SIGNED_ROUTES = {
    "/v1/partners/{location}/shipments": (401, "invalid_signature"),
    "/v1/payments/webhooks/stripe": (400, "invalid_signature"),
    "/v1/connectors/{account}/webhooks": (404, "unknown_account"),
}


def protected_routes(app: FastAPI) -> list[tuple[APIRoute, Permission | None]]:
    """(route, its declared permission); a route that declares none fails the caller."""
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        if route.path in PUBLIC or route.path.startswith(PUBLIC_PREFIXES):
            continue
        declared = declared_permissions(route.dependant.dependencies)
        found.append((route, declared[0] if declared else None))
    return found


def allowed(role: str, permission: Permission, path: str) -> bool:
    kind, _, scope = role.partition(":")
    if kind in ("channel", "carrier"):
        if permission not in ROLE_PERMISSIONS[kind]:
            return False
        if "{channel}" in path or "{carrier}" in path:
            return scope == PATH_VALUES[kind]
        return True
    return permission in ROLE_PERMISSIONS[role]


def test_a_route_without_a_declared_permission_is_found() -> None:
    """Control for the walk below: a new route added without `requires(...)` is caught."""
    spec = importlib.import_module("services.payment.app").build()
    extra = APIRouter()

    @extra.get("/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {}

    spec.routers = [*spec.routers, extra]
    undeclared = [r.path for r, p in protected_routes(create_app(spec)) if p is None]
    assert undeclared == ["/v1/forgotten"]


@pytest.mark.parametrize("service", SERVICES)
async def test_every_route_x_role(
    infra: Infra, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if service == "console":
        # Its pages call the services, none of which runs here: a call that gets through
        # authorisation ends in the console's 503 `service_unavailable`.
        for name in CONSOLE_CALLS:
            monkeypatch.setenv(f"OMS_{name.upper()}_URL", CONSOLE_NOWHERE)
    spec = importlib.import_module(f"services.{service}.app").build()
    routes = protected_routes(create_app(spec))
    undeclared = [f"{sorted(r.methods)} {r.path}" for r, p in routes if p is None]
    assert not undeclared, f"routes of {service} without a declared permission: {undeclared}"
    assert routes, service
    problems: list[str] = []
    async for harness in start_harness(infra, spec):
        for route, permission in routes:
            assert permission is not None
            path = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), "x"), route.path)
            for method in sorted(route.methods):
                body: dict[str, Any] = {"json": {}} if method in ("POST", "PUT") else {}
                async with harness.anonymous() as client:
                    anonymous = await client.request(method, path, **body)
                status, code = SIGNED_ROUTES.get(route.path, (401, "unauthenticated"))
                if anonymous.status_code != status:
                    problems.append(f"{method} {path} without a token: {anonymous.status_code}")
                elif anonymous.json()["error"]["code"] != code:
                    problems.append(f"{method} {path} 401 code {anonymous.json()['error']}")
                for role in ROLES:
                    async with harness.http(role) as client:
                        answer = await client.request(method, path, **body)
                    expected = allowed(role, permission, route.path)
                    got = answer.status_code
                    if service == "console" and got == 503:
                        got = (
                            200 if answer.json()["error"]["code"] == "service_unavailable" else got
                        )
                    if expected and (got in (401, 403) or got >= 500):
                        problems.append(f"{method} {path} as {role}: {got} {answer.text[:200]}")
                    if not expected and got != 403:
                        problems.append(f"{method} {path} as {role}: {got}, expected 403")
                    if got == 403 and answer.json()["error"]["code"] != "forbidden":
                        problems.append(f"{method} {path} as {role}: 403 {answer.text[:200]}")
    assert not problems, "\n".join(problems)
