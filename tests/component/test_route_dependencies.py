"""Every route's endpoint and dependencies are coroutines: FastAPI runs a plain `def` one in its
thread pool, a thread hop per request that cost the bench several percent when the services'
dependencies were first injected (issue 14)."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from shared.platform.service import create_app
from shared.topics import SERVICES

pytestmark = pytest.mark.component


def _is_coroutine(call: Any) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
        getattr(call, "__call__", None)  # noqa: B004  (a dependency object's async __call__)
    )


def _sync_calls(dependant: Dependant) -> list[str]:
    found = [] if _is_coroutine(dependant.call) else [getattr(dependant.call, "__qualname__", "?")]
    for sub in dependant.dependencies:
        found += _sync_calls(sub)
    return found


def sync_dependencies(app: FastAPI) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and (calls := _sync_calls(route.dependant)):
            found[f"{sorted(route.methods)} {route.path}"] = calls
    return found


def test_a_sync_dependency_is_found() -> None:
    """Control for the check below."""
    spec = importlib.import_module("services.payment.app").build()
    extra = APIRouter()

    def plain() -> int:
        return 1

    @extra.get("/v1/plain")
    async def uses_plain(value: int = Depends(plain)) -> dict[str, int]:
        return {"value": value}

    spec.routers = [*spec.routers, extra]
    assert sync_dependencies(create_app(spec)) == {"['GET'] /v1/plain": [plain.__qualname__]}


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_runs_on_the_event_loop(service: str) -> None:
    spec = importlib.import_module(f"services.{service}.app").build()
    assert sync_dependencies(create_app(spec)) == {}
