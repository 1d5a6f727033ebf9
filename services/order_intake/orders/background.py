"""The orders' background task: the orders-by-state gauges (the saga's deadline scheduler is
`service.deadlines(policy).scheduler(...)`)."""

from __future__ import annotations

from opentelemetry.instrumentation.utils import suppress_instrumentation

from services.order_intake.domain.saga import Status
from services.order_intake.orders import metrics, store
from shared.platform.scheduling import repeat
from shared.platform.service import Runtime


async def refresh_order_gauges(runtime: Runtime) -> None:
    """Orders by state for /metrics, counted in Postgres every few seconds."""

    async def count() -> int:
        with suppress_instrumentation():
            async with runtime.pool.acquire() as conn:
                counts = await store.count_by_status(conn)
        metrics.set_orders_by_state(counts, [status.value for status in Status])
        return len(counts)

    await repeat(count, interval_s=5, name="orders-by-state")
