"""Transactional outbox (DESIGN.md §5).

`UnitOfWork` is the one way state changes and outgoing messages are written: both land in the
service's schema in one Postgres transaction, or neither does. `OutboxRelay` publishes committed
rows to Kafka in batches (idempotent producer, acks=all), in commit order, and deletes them once
Kafka acknowledged them. It wakes on LISTEN/NOTIFY and polls only as a fallback.

Per-key order: only one relay per service publishes at a time (a Postgres advisory lock elects
it), rows go out in id order, and the idempotent producer keeps order within a partition.
A crash between publish and delete re-publishes the same envelopes (same message_id); the
consumers' inbox absorbs the duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation

from shared.envelope import Contract, Envelope
from shared.platform import metrics
from shared.platform.batch import Batch, DeferredWrite
from shared.platform.db import DbConnection
from shared.platform.telemetry import context_from_headers, current_trace_headers, tracer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingMessage:
    topic: str
    key: str | None
    envelope: Envelope
    headers: dict[str, str]


@dataclass
class UnitOfWork:
    """An open transaction plus the messages it will emit on commit."""

    conn: DbConnection
    service: str
    cause: Envelope | None = None
    pending: list[PendingMessage] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    topic_prefix: str = ""
    # Shared by the handlers of one consumer batch (one transaction).
    batch: Batch = field(default_factory=Batch)

    def emit(
        self,
        message: Contract,
        *,
        key: str | None,
        topic: str | None = None,
        correlation_id: str | None = None,
        trace_headers: dict[str, str] | None = None,
    ) -> Envelope:
        """Queue a message for the outbox; it is written when the transaction commits.
        `trace_headers`: the trace it continues, when not the current one."""
        correlation = correlation_id or (self.cause.correlation_id if self.cause else None)
        if correlation is None:
            raise ValueError("a message needs a correlation id (the order or return id)")
        envelope = Envelope.wrap(
            message,
            correlation_id=correlation,
            causation_id=self.cause.message_id if self.cause else None,
            producer=self.service,
        )
        destination = self.topic_prefix + (topic or message.TOPIC)
        headers = trace_headers if trace_headers is not None else current_trace_headers()
        self.pending.append(PendingMessage(destination, key, envelope, headers))
        return envelope

    def before_commit(self, key: Hashable, write: DeferredWrite) -> None:
        """See Batch.before_commit."""
        self.batch.before_commit(key, write)

    async def run_before_commit(self) -> None:
        await self.batch.run_before_commit()

    async def flush(self) -> None:
        await self.run_before_commit()
        if not self.pending:
            return
        pending = list(self.pending)
        self.pending.clear()
        # One statement for the whole unit of work (a consumer batch can emit hundreds of rows):
        # one execution, one NOTIFY from the statement trigger, ids in emit order.
        await self.conn.execute(
            "INSERT INTO outbox (message_id, topic, msg_key, msg_type, payload, headers)"
            " SELECT m, t, k, y, p, h FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[],"
            " $5::bytea[], $6::jsonb[]) WITH ORDINALITY AS x(m, t, k, y, p, h, n) ORDER BY n",
            [p.envelope.message_id for p in pending],
            [p.topic for p in pending],
            [p.key for p in pending],
            [p.envelope.type for p in pending],
            [p.envelope.to_bytes() for p in pending],
            [p.headers for p in pending],
        )


@contextlib.asynccontextmanager
async def unit_of_work(
    pool: asyncpg.Pool, service: str, cause: Envelope | None = None, *, topic_prefix: str = ""
) -> AsyncIterator[UnitOfWork]:
    async with pool.acquire() as conn:
        async with conn.transaction():
            uow = UnitOfWork(conn, service, cause, topic_prefix=topic_prefix)
            yield uow
            await uow.flush()
        for callback in uow.after_commit:
            callback()


Publish = Callable[[bytes, str, str | None, dict[str, str]], Awaitable[Awaitable[Any]]]
"""publish(value, topic, key, headers) -> an awaitable that resolves when Kafka acknowledged."""


def crash_now(point: str) -> None:
    """Failure injection for the crash tests: die as a real crash would, without clean-up."""
    log.warning("fault injection: SIGKILL at %s", point)
    os.kill(os.getpid(), signal.SIGKILL)


@dataclass(eq=False, kw_only=True)
class OutboxRelay:
    dsn: str
    schema: str
    service: str
    publish: Publish
    batch_size: int = 500
    poll_interval_s: float = 1.0
    crash_after_publish: bool = False
    is_leader: bool = field(default=False, init=False)
    published_total: int = field(default=0, init=False)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)

    @property
    def channel(self) -> str:
        return f"{self.schema}_outbox"

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        """Run until cancelled; reconnects after database errors."""
        backoff = 0.5
        while True:
            try:
                await self._run_connected()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.is_leader = False
                log.exception("outbox relay failed; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            else:
                backoff = 0.5

    async def _run_connected(self) -> None:
        from shared.platform.db import connect

        conn = await connect(self.dsn, self.schema)
        try:
            await conn.add_listener(self.channel, lambda *_: self._wakeup.set())
            while not await conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtext($1))", f"{self.schema}.outbox-relay"
            ):
                self.is_leader = False
                await asyncio.sleep(self.poll_interval_s)
            self.is_leader = True
            log.info("outbox relay for %s is publishing", self.schema)
            while True:
                self._wakeup.clear()
                published = await self.publish_pending(conn)
                if published >= self.batch_size:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.poll_interval_s)
        finally:
            self.is_leader = False
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5)

    async def publish_pending(self, conn: DbConnection) -> int:
        with suppress_instrumentation():  # polling is not part of any order's trace
            rows = await conn.fetch(
                "SELECT id, topic, msg_key, msg_type, payload, headers, message_id, created_at"
                " FROM outbox ORDER BY id LIMIT $1",
                self.batch_size,
            )
        if not rows:
            metrics.OUTBOX_BACKLOG.labels(self.service).set(0)
            return 0
        acks = []
        for row in rows:
            stored: dict[str, str] = row["headers"] or {}
            token = otel_context.attach(context_from_headers(stored))
            try:
                with tracer().start_as_current_span(
                    f"outbox publish {row['msg_type']}",
                    kind=trace.SpanKind.PRODUCER,
                    attributes={
                        "messaging.destination.name": row["topic"],
                        "messaging.message.id": str(row["message_id"]),
                        "oms.message_type": row["msg_type"],
                    },
                ):
                    headers = {
                        "message_id": str(row["message_id"]),
                        "type": row["msg_type"],
                        **current_trace_headers(),
                    }
                    acks.append(
                        await self.publish(row["payload"], row["topic"], row["msg_key"], headers)
                    )
            finally:
                otel_context.detach(token)
        await asyncio.gather(*acks)
        if self.crash_after_publish:
            crash_now("relay_after_publish")
        with suppress_instrumentation():
            await conn.execute(
                "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        now = datetime.now(UTC)
        for row in rows:
            metrics.OUTBOX_PUBLISHED.labels(self.service, row["topic"]).inc()
            metrics.OUTBOX_LAG.labels(self.service).observe(
                max(0.0, (now - row["created_at"]).total_seconds())
            )
        backlog = 0
        if len(rows) >= self.batch_size:
            # Only a full batch may have left rows behind; counting after every pass would cost
            # a statement per pass (and passes follow every commit).
            with suppress_instrumentation():
                backlog = await conn.fetchval("SELECT count(*) FROM outbox")
        metrics.OUTBOX_BACKLOG.labels(self.service).set(backlog)
        self.published_total += len(rows)
        return len(rows)
