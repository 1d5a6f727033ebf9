"""The orders' background tasks: the saga's deadline scheduler and the orders-by-state gauges."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation

from services.order_intake.domain.saga import SagaPolicy, Status
from services.order_intake.orders import metrics, store
from services.order_intake.orders.service import process_due_deadlines
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


def deadline_scheduler(
    policy: SagaPolicy, poll_interval_s: float
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    async def run_deadlines(runtime: Runtime) -> None:
        """Deadlines live in Postgres, so they survive restarts; this loop only looks them up."""
        await repeat(
            lambda: process_due_deadlines(runtime, policy),
            interval_s=poll_interval_s,
            name="order deadline",
            full_batch=100,
        )

    return run_deadlines
