"""Consuming with the inbox, ack-after-commit, bounded retries and dead letters (DESIGN.md §5).

A service has one consumer group and one batch subscriber over all topics it consumes. For each
batch fetched from Kafka:

1. every record is decoded; a record that can never be processed (not JSON, not an envelope,
   unknown type, invalid payload) is dead-lettered at once with the reason;
2. the rest are applied in ONE transaction: inbox rows inserted (duplicates are skipped), each
   handler run in offset order, the outbox rows they emitted written;
3. only after the commit are the offsets acknowledged.

When the batch transaction fails, each message is retried on its own (so one poison message does
not take its neighbours with it), with exponential backoff, up to `max_attempts` times, then
dead-lettered with the error and its original headers, and the partition moves on. Errors of the
infrastructure (database unreachable, serialisation failures) are retried without limit: a
message is never dead-lettered because Postgres restarted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
from opentelemetry import trace
from pydantic import ValidationError
from tenacity import AsyncRetrying, RetryCallState, wait_exponential_jitter

from shared.envelope import (
    Contract,
    Envelope,
    MalformedMessage,
    UnknownMessageType,
    contract_for,
    decode,
    registered_types,
    summarise_validation_error,
)
from shared.platform import metrics
from shared.platform.batch import Batch
from shared.platform.db import DbConnection, is_transient
from shared.platform.logs import order_context
from shared.platform.outbox import PendingMessage, UnitOfWork, crash_now
from shared.platform.telemetry import context_from_headers, tracer

log = logging.getLogger(__name__)

Handler = Callable[[UnitOfWork, Envelope, Any], Awaitable[None]]
"""handler(uow, envelope, contract): apply the message inside the open transaction."""


class Record(Protocol):
    """The part of aiokafka's ConsumerRecord the consumer uses."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


DeadLetterPublish = Callable[[bytes, str, bytes | None, dict[str, str]], Awaitable[None]]


@dataclass
class _Item:
    record: Record
    envelope: Envelope
    message: Contract
    handler: Handler


class PermanentFailure(Exception):
    """Raised by a handler for a message that can never be applied, however often it is tried
    (e.g. a channel payload that does not map): dead-lettered at once, without retries, with
    reason `rejected` and the error `<code>: <message>`. The transaction is rolled back as for any
    other failure, so the handler must raise it before or instead of its effects."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class DeadLetter:
    record: Record
    reason: str
    error: str
    attempts: int


def _type_header(record: Record) -> str | None:
    for name, value in record.headers or ():
        if name == "type":
            return value.decode(errors="replace")
    return None


TRUNCATED_DEAD_LETTER_BYTES = 64 * 1024
"""How much of a record's value a truncated dead letter carries (the rest is in Postgres)."""
_FULL_COPY_ATTEMPTS = 3


def _permanent_publish_failures(state: RetryCallState) -> int:
    """Attempts so far, counting only while the error is not one Kafka calls retriable (a
    broker that is away is waited for without limit, as before)."""
    exc = state.outcome.exception() if state.outcome else None
    if exc is None or getattr(exc, "retriable", False) or isinstance(exc, ConnectionError):
        return 0
    return state.attempt_number


async def store_dead_letter_overflow(
    conn: DbConnection, letter: DeadLetter, headers: Mapping[str, str]
) -> int:
    record = letter.record
    stored: int = await conn.fetchval(
        "INSERT INTO dead_letter_overflow"
        " (topic, partition, record_offset, msg_key, value, headers, reason, error)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (topic, partition, record_offset)"
        " DO UPDATE SET stored_at = clock_timestamp() RETURNING id",
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value or b"",
        {k: v.replace("\x00", "\ufffd") for k, v in headers.items()},
        letter.reason,
        letter.error.replace("\x00", "\ufffd"),
    )
    return stored


def record_headers(record: Record) -> dict[str, str]:
    return {k: v.decode(errors="replace") for k, v in (record.headers or ())}


class Consumer:
    def __init__(
        self,
        *,
        service: str,
        group_id: str,
        pool: asyncpg.Pool,
        handlers: Mapping[str, Handler],
        dead_letter_topic: str,
        publish_dead_letter: DeadLetterPublish,
        max_attempts: int = 5,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        crash_point: str | None = None,
        topic_prefix: str = "",
    ) -> None:
        self._topic_prefix = topic_prefix
        self.service = service
        self.group_id = group_id
        self._pool = pool
        self._handlers = dict(handlers)
        self._dead_letter_topic = dead_letter_topic
        self._publish_dead_letter = publish_dead_letter
        self._max_attempts = max_attempts
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._crash_point = crash_point
        self._known_types: frozenset[str] = frozenset(t for t, _ in registered_types())
        self._ignored_counters: dict[str, Any] = {}
        for reason in (
            "malformed",
            "unknown_type",
            "invalid_payload",
            "handler_failed",
            "rejected",
        ):
            metrics.DEAD_LETTERS.labels(service, reason)  # exported as 0 until one happens

    def _ignored(self, type_: str) -> Any:
        counter = self._ignored_counters.get(type_)
        if counter is None:
            counter = metrics.MESSAGES_HANDLED.labels(self.service, type_, "ignored")
            self._ignored_counters[type_] = counter
        return counter

    @property
    def handled_types(self) -> frozenset[str]:
        return frozenset(self._handlers)

    async def handle_records(self, records: Sequence[Record]) -> None:
        started = time.perf_counter()
        metrics.BATCH_SIZE.labels(self.service).observe(len(records))
        items: list[_Item] = []
        dead: list[DeadLetter] = []
        for record in records:
            item_or_dead = self._classify(record)
            if isinstance(item_or_dead, DeadLetter):
                dead.append(item_or_dead)
            elif item_or_dead is not None:
                items.append(item_or_dead)
        if items:
            try:
                await self._apply(items)
            except Exception as exc:
                log.warning(
                    "batch of %d failed (%s); applying one by one",
                    len(items),
                    exc,
                    exc_info=not is_transient(exc) and not isinstance(exc, PermanentFailure),
                )
                for item in items:
                    failure = await self._apply_with_retries(item)
                    if failure is not None:
                        dead.append(failure)
        for letter in dead:
            await self._dead_letter(letter)
        metrics.HANDLER_LATENCY.labels(self.service).observe(time.perf_counter() - started)

    def _known_type(self, type_: str) -> bool:
        if type_ not in self._known_types:
            self._known_types = frozenset(t for t, _ in registered_types())
        return type_ in self._known_types

    def _classify(self, record: Record) -> _Item | DeadLetter | None:
        labelled = _type_header(record)
        if labelled is not None and labelled not in self._handlers and self._known_type(labelled):
            # Another consumer's message on a shared topic, by the type the relay put in the
            # headers: skipped without decoding it.
            self._ignored(labelled).inc()
            return None
        try:
            envelope = decode(record.value)
        except MalformedMessage as exc:
            return DeadLetter(record, "malformed", str(exc), 1)
        handler = self._handlers.get(envelope.type)
        if handler is None:
            if contract_for(envelope.type, envelope.version) is None and not self._known_type(
                envelope.type
            ):
                return DeadLetter(
                    record,
                    "unknown_type",
                    str(UnknownMessageType(envelope.type, envelope.version)),
                    1,
                )
            # A known message this consumer has no business with (another consumer's event on a
            # shared topic): acknowledged and skipped on purpose.
            self._ignored(envelope.type).inc()
            return None
        try:
            message = envelope.contract()
        except UnknownMessageType as exc:
            return DeadLetter(record, "unknown_type", str(exc), 1)
        except ValidationError as exc:
            return DeadLetter(
                record, "invalid_payload", f"{envelope.type}: {summarise_validation_error(exc)}", 1
            )
        return _Item(record, envelope, message, handler)

    async def _apply(self, items: Sequence[_Item]) -> None:
        pending: list[PendingMessage] = []
        after_commit: list[Callable[[], None]] = []
        async with self._pool.acquire() as conn, conn.transaction():
            fresh = set(
                await conn.fetchval(
                    "WITH ins AS (INSERT INTO inbox (consumer, message_id, msg_type)"
                    " SELECT $1, m, t FROM unnest($2::uuid[], $3::text[]) AS x(m, t)"
                    " ON CONFLICT DO NOTHING RETURNING message_id)"
                    " SELECT coalesce(array_agg(message_id), '{}') FROM ins",
                    self.group_id,
                    [i.envelope.message_id for i in items],
                    [i.envelope.type for i in items],
                )
            )
            batch = Batch([i.message for i in items])
            for position, item in enumerate(items):
                batch.position = position
                if item.envelope.message_id not in fresh:
                    metrics.MESSAGES_HANDLED.labels(
                        self.service, item.envelope.type, "duplicate"
                    ).inc()
                    continue
                fresh.discard(item.envelope.message_id)
                uow = UnitOfWork(
                    conn,
                    self.service,
                    item.envelope,
                    pending,
                    after_commit,
                    self._topic_prefix,
                    batch=batch,
                )
                with tracer().start_as_current_span(
                    f"{self.service} handle {item.envelope.type}",
                    context=context_from_headers(record_headers(item.record)),
                    kind=trace.SpanKind.CONSUMER,
                    attributes={
                        "messaging.destination.name": item.record.topic,
                        "messaging.message.id": str(item.envelope.message_id),
                        "oms.message_type": item.envelope.type,
                        "oms.correlation_id": item.envelope.correlation_id,
                    },
                ):
                    started = time.perf_counter()
                    with order_context(item.envelope.correlation_id):
                        await item.handler(uow, item.envelope, item.message)
                    metrics.MESSAGE_HANDLER_DURATION.labels(
                        self.service, item.envelope.type
                    ).observe(time.perf_counter() - started)
                metrics.MESSAGES_HANDLED.labels(self.service, item.envelope.type, "applied").inc()
            await UnitOfWork(conn, self.service, None, pending, batch=batch).flush()
            if self._crash_point == "before_db_commit":
                crash_now("before_db_commit")
        if self._crash_point == "after_db_commit":
            crash_now("after_db_commit")
        for callback in after_commit:
            callback()

    async def _apply_with_retries(self, item: _Item) -> DeadLetter | None:
        max_attempts = self._max_attempts

        def give_up(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, PermanentFailure):
                return True
            return (
                exc is not None and not is_transient(exc) and state.attempt_number >= max_attempts
            )

        def note_failure(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            metrics.HANDLER_FAILURES.labels(
                self.service, item.envelope.type, str(exc is not None and is_transient(exc))
            ).inc()
            log.warning(
                "handling %s %s failed (attempt %d): %r",
                item.envelope.type,
                item.envelope.message_id,
                state.attempt_number,
                exc,
            )

        retrying = AsyncRetrying(
            stop=give_up,
            wait=wait_exponential_jitter(
                multiplier=self._backoff_initial_s,
                max=self._backoff_max_s,
                jitter=self._backoff_initial_s,
            ),
            before_sleep=note_failure,
            reraise=True,
        )
        attempts = 0
        try:
            async for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    await self._apply([item])
        except PermanentFailure as exc:
            return DeadLetter(item.record, "rejected", f"{exc.code}: {exc.message}", attempts)
        except Exception as exc:
            return DeadLetter(
                item.record, "handler_failed", f"{type(exc).__name__}: {exc}", attempts
            )
        return None

    async def _dead_letter_overflow(
        self, letter: DeadLetter, headers: dict[str, str], exc: Exception
    ) -> None:
        """Keep the full record in Postgres, dead-letter a truncated copy that points at it
        (and at the original topic, partition and offset), alert, and move on."""
        record = letter.record
        value = record.value or b""
        async with self._pool.acquire() as conn:
            stored_id = await store_dead_letter_overflow(conn, letter, headers)
        dlq_headers = {k: v for k, v in headers.items() if k.startswith("x-dlq-")}
        dlq_headers.update(
            {
                "x-dlq-truncated": "true",
                "x-dlq-stored-id": str(stored_id),
                "x-dlq-original-size": str(len(value)),
                "x-dlq-publish-error": f"{type(exc).__name__}: {exc}"[:500],
            }
        )
        metrics.DEAD_LETTER_OVERFLOWS.labels(self.service).inc()
        log.error(
            "dead letter of %s/%d@%d could not be published (%s): full record kept in"
            " dead_letter_overflow id %d, a truncated copy dead-lettered",
            record.topic,
            record.partition,
            record.offset,
            type(exc).__name__,
            stored_id,
        )
        async for attempt in AsyncRetrying(
            wait=wait_exponential_jitter(multiplier=0.5, max=10), reraise=True
        ):
            with attempt:
                await self._publish_dead_letter(
                    value[:TRUNCATED_DEAD_LETTER_BYTES],
                    self._dead_letter_topic,
                    (record.key or b"")[:1024] or None,
                    dlq_headers,
                )

    async def _dead_letter(self, letter: DeadLetter) -> None:
        record = letter.record
        headers = record_headers(record)
        headers.update(
            {
                "x-dlq-reason": letter.reason,
                "x-dlq-error": letter.error[:2000],
                "x-dlq-attempts": str(letter.attempts),
                "x-dlq-original-topic": record.topic,
                "x-dlq-original-partition": str(record.partition),
                "x-dlq-original-offset": str(record.offset),
                "x-dlq-consumer-group": self.group_id,
                "x-dlq-failed-at": datetime.now(UTC).isoformat(),
            }
        )
        try:
            # A broker that is away is waited for (retriable errors); a dead letter the broker
            # or the producer refuses for good (too large with its headers) is tried a few times.
            async for attempt in AsyncRetrying(
                stop=lambda state: _permanent_publish_failures(state) >= _FULL_COPY_ATTEMPTS,
                wait=wait_exponential_jitter(multiplier=0.5, max=10),
                reraise=True,
            ):
                with attempt:
                    await self._publish_dead_letter(
                        record.value or b"", self._dead_letter_topic, record.key, headers
                    )
        except Exception as exc:
            await self._dead_letter_overflow(letter, headers, exc)
        metrics.DEAD_LETTERS.labels(self.service, letter.reason).inc()
        metrics.MESSAGES_HANDLED.labels(self.service, headers.get("type", "?"), "dead_letter").inc()
        log.error(
            "dead-lettered %s/%d@%d to %s: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            self._dead_letter_topic,
            letter.reason,
            letter.error,
        )
