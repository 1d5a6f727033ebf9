"""The deadline scheduler of a saga: deadlines live in Postgres (`next_deadline_at`), so they
survive restarts; a background loop finds the sagas whose deadline passed and hands each, locked,
to the service in one unit of work per pass."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic

from opentelemetry.instrumentation.utils import suppress_instrumentation

from shared.platform.outbox import UnitOfWork
from shared.platform.saga import store
from shared.platform.saga.store import SagaT, SagaTables
from shared.platform.scheduling import repeat
from shared.platform.service import BackgroundJob, Runtime


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deadlines(Generic[SagaT]):
    tables: SagaTables
    saga: type[SagaT]
    # Decide what the passed deadline means for the saga and save it, in the pass's unit of work.
    on_deadline: Callable[[UnitOfWork, SagaT], Awaitable[None]]
    clock: Callable[[], datetime] = utc_now
    limit: int = 100

    async def process_due(self, runtime: Runtime) -> int:
        """One pass: every saga whose deadline passed (at most `limit`), under SKIP LOCKED so
        several replicas share the work. How many it handled."""
        with suppress_instrumentation():  # an empty poll is not worth a trace
            async with runtime.pool.acquire() as conn:
                if not await store.any_due(conn, self.tables, self.clock()):
                    return 0
        async with runtime.uow() as uow:
            due = await store.lock_due(uow.conn, self.tables, self.saga, self.clock(), self.limit)
            for saga in due:
                await self.on_deadline(uow, saga)
        return len(due)

    def scheduler(self, *, interval_s: float, name: str) -> BackgroundJob:
        """The background job (ServiceSpec.background): a pass every `interval_s`, at once
        again after a full one."""

        async def run_deadlines(runtime: Runtime) -> None:
            await repeat(
                lambda: self.process_due(runtime),
                interval_s=interval_s,
                name=name,
                full_batch=self.limit,
            )

        return run_deadlines
