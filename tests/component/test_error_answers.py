"""The platform's error answers for what the request models cannot catch (DESIGN.md §5): a
value Postgres refuses is a 422, a database that cannot be reached is a 503 with Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from shared.platform.errors import RETRY_AFTER_S, install_error_handlers
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra
from tests.support.probe_service import build

pytestmark = pytest.mark.component


@pytest.fixture
async def probe(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


def _app(pool: asyncpg.Pool) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/store-nul")
    async def store_nul() -> str:
        return str(await pool.fetchval("SELECT $1::text", "a\x00b"))

    @app.get("/database-away")
    async def database_away() -> str:
        conn = await asyncpg.connect("postgresql://nobody@127.0.0.1:1/none", timeout=2)
        await conn.close()
        return "unreachable"

    return app


async def test_refused_value_is_422_and_unreachable_database_is_503(probe: ComponentHarness):
    transport = httpx.ASGITransport(app=_app(probe.pool), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        refused = await client.get("/store-nul")
        away = await client.get("/database-away")
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "invalid_value"
    assert away.status_code == 503, away.text
    assert away.json()["error"]["code"] == "dependency_unavailable"
    assert away.headers["retry-after"] == str(RETRY_AFTER_S)


async def test_every_service_refuses_a_body_over_its_limit(infra: Infra) -> None:
    """Abuse limit: no route of any service reads more than OMS_MAX_REQUEST_BYTES."""
    from services.inventory.app import build as build_inventory

    async for harness in start_harness(infra, build_inventory()):
        async with harness.http("warehouse") as client:
            huge = await client.put(
                "/v1/skus/BIG-1",
                content=b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}',
                headers={"content-type": "application/json"},
            )
        assert huge.status_code == 413, huge.text
        assert huge.json()["error"]["code"] == "payload_too_large"
        assert not await harness.fetch("SELECT sku FROM skus WHERE sku = 'BIG-1'")
