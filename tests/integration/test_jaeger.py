"""With Jaeger running, Jaeger's own query API returns an order's trace from all services.

Needs the Jaeger binary that `make jaeger` builds (about 8 minutes from the Go module proxy, so
`make test` does not build it); skipped with that reason when it is not there.
"""

from __future__ import annotations

import httpx
import pytest

from devtools import jaeger
from tests.support.env import Infra
from tests.support.services import eventually
from tests.support.system import CORE_SERVICES as SERVICES
from tests.support.system import order_body, start_system

pytestmark = pytest.mark.integration


@pytest.mark.timeout(240)
async def test_jaeger_query_api_returns_the_order_trace_with_all_services(infra: Infra):
    if not jaeger.available():
        pytest.skip("Jaeger is not built here: run `make jaeger` (builds from the Go module proxy)")
    started = jaeger.start()
    tracing = {"OMS_OTLP_ENDPOINT": str(started["otlp_http"]), "OTEL_BSP_SCHEDULE_DELAY": "200"}
    system = await start_system(infra, {name: dict(tracing) for name in SERVICES})
    try:
        await system.stock_up("JAEGER-1", ("berlin", 2))
        order_id = await system.place(order_body([("JAEGER-1", 1, "10.00")]))
        await system.wait_status(order_id, "FULFILLING")
        [fulfilment] = await system.fulfilments(order_id)
        await system.ship(fulfilment["fulfilment_id"])
        await system.deliver(fulfilment["fulfilment_id"])
        view = await system.wait_status(order_id, "COMPLETED")
        trace_id = view["trace_id"]

        async def services_in_jaeger() -> set[str]:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(f"{started['query_api']}traces/{trace_id}")
            if response.status_code != 200:
                return set()
            [trace] = response.json()["data"]
            services = {p["serviceName"] for p in trace["processes"].values()}
            return services if services >= set(SERVICES) else set()

        found = await eventually(services_in_jaeger, timeout_s=30, message="trace in Jaeger")
        assert found >= set(SERVICES)
    finally:
        await system.close()
        if not started.get("reused"):
            jaeger.stop()
