"""All five services start as real processes, migrate, and answer health and OpenAPI."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from shared.topics import SERVICES
from tests.support.env import Infra, new_env
from tests.support.services import ServiceProcess

pytestmark = pytest.mark.integration


async def test_every_service_is_ready_and_serves_openapi_and_metrics(infra: Infra):
    env = await new_env(infra)
    processes = [
        ServiceProcess(name, f"services.{name}", env.service_env(name)).start() for name in SERVICES
    ]
    try:
        await asyncio.gather(*(p.wait_ready(timeout_s=90) for p in processes))
        async with httpx.AsyncClient(timeout=5) as client:
            for process in processes:
                ready = (await client.get(f"{process.url}/health/ready")).json()
                assert ready == {
                    "status": "ready",
                    "checks": {"database": "ok", "migrations": "ok", "kafka": "ok", "auth": "ok"},
                }
                assert (await client.get(f"{process.url}/health/live")).status_code == 200
                spec = (await client.get(f"{process.url}/openapi.json")).json()
                assert "/health/ready" in spec["paths"]
                metrics = (await client.get(f"{process.url}/metrics")).text
                assert "oms_outbox_backlog" in metrics or "oms_messages_handled_total" in metrics
    finally:
        for process in processes:
            process.stop()
