"""Retention of the tables that grow with traffic: the inbox of every consumer (the platform's)
and whatever a service adds (order-intake's refused requests). Rows are deleted in small
batches, oldest first, so a pass never holds long locks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.platform.db import DbConnection
from shared.platform.scheduling import repeat

if TYPE_CHECKING:
    from shared.platform.service import Runtime

PRUNE_BATCH = 5_000


def deleted(status: str) -> int:
    """Rows a `DELETE` status string (`DELETE 42`) reports."""
    return int(status.rsplit(" ", 1)[-1])


async def prune_inbox(conn: DbConnection, older_than: datetime) -> int:
    """Delete up to PRUNE_BATCH inbox rows processed before `older_than`. A message redelivered
    after its row is gone would be applied again, so the retention must outlast every way a
    message comes back: the topics' retention and the dead-letter topics' (30 days)."""
    status = await conn.execute(
        "DELETE FROM inbox WHERE ctid = ANY(ARRAY("
        " SELECT ctid FROM inbox WHERE processed_at < $1 LIMIT $2))",
        older_than,
        PRUNE_BATCH,
    )
    return deleted(status)


def retention_job(
    name: str,
    prune: Callable[[DbConnection, datetime], Awaitable[int]],
    retention: timedelta,
    interval_s: float,
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """A background job: prune rows older than `retention`, every `interval_s`, in batches."""

    async def job(runtime: Runtime) -> None:
        async def one_pass() -> int:
            async with runtime.pool.acquire() as conn:
                return await prune(conn, datetime.now(UTC) - retention)

        await repeat(one_pass, interval_s=interval_s, name=name, full_batch=PRUNE_BATCH)

    job.__name__ = name.replace(" ", "_")
    return job
