"""The services' dead-letter topics as the console reads them, straight from Kafka (DESIGN.md §2
lets the console use Kafka and the public APIs), with the Kafka settings every service has.

Reading never moves anything: the newest letters of one topic are fetched with a consumer that
is assigned its partitions and never commits. What `oms dlq replay` already sent back is known by
the replay consumer group's committed offset (shared/ops/dlq.py), read here too. Publishing one
letter back goes to the topic it came from with its original key and headers, as
`oms dlq replay --offset` does, so the message keeps its id and the consumer's inbox still guards
against applying it twice. Which letters the console replayed is the console's own table
(`replays.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from shared.ops.dlq import DeadLetterRecord, replay_group
from shared.platform.errors import ApiError
from shared.platform.kafka_security import aiokafka_options
from shared.platform.settings import ServiceSettings
from shared.topics import SERVICES, dead_letter_topic

TIMEOUT_S = 15.0
PAGE = 100


@dataclass(frozen=True)
class TopicState:
    """How far a dead-letter topic reaches, per partition: kept (begin..end) and what
    `oms dlq replay` sent back (committed)."""

    topic: str
    begin: dict[int, int]
    end: dict[int, int]
    committed: dict[int, int]

    @property
    def kept(self) -> int:
        return sum(self.end[p] - self.begin[p] for p in self.end)

    @property
    def after_bulk_replay(self) -> int:
        """Letters past what `oms dlq replay` sent back."""
        return sum(self.end[p] - max(self.begin[p], self.committed.get(p, 0)) for p in self.end)


@dataclass(frozen=True)
class LetterPage:
    state: TopicState
    letters: list[DeadLetterRecord]  # newest first
    older: int | None  # `before` for the next page (single partition), None at the start


class DeadLetters:
    """One console's access to the dead-letter topics (a consumer per request, never committing)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings

    def topic(self, service: str) -> str:
        if service not in SERVICES:
            raise ApiError(404, "unknown_service", f"no service {service!r}", service=service)
        return self.settings.topic_prefix + dead_letter_topic(service)

    @asynccontextmanager
    async def _consumer(self, service: str) -> AsyncIterator[tuple[AIOKafkaConsumer, TopicState]]:
        topic = self.topic(service)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=replay_group(service, self.settings.topic_prefix),
            enable_auto_commit=False,
            request_timeout_ms=int(TIMEOUT_S * 1000),
            **aiokafka_options(self.settings),
        )
        try:
            async with asyncio.timeout(TIMEOUT_S):
                await consumer.start()
        except (KafkaError, TimeoutError, OSError) as exc:
            await consumer.stop()
            raise _unavailable(exc) from exc
        try:
            async with asyncio.timeout(TIMEOUT_S):
                partitions = consumer.partitions_for_topic(topic)
                if partitions is None:
                    await consumer._client.force_metadata_update()  # fetched lazily
                    partitions = consumer.partitions_for_topic(topic) or set()
                tps = [TopicPartition(topic, p) for p in sorted(partitions)]
                begin: dict[int, int] = {}
                end: dict[int, int] = {}
                committed: dict[int, int] = {}
                if tps:
                    consumer.assign(tps)
                    first = await consumer.beginning_offsets(tps)
                    last = await consumer.end_offsets(tps)
                    begin = {tp.partition: offset for tp, offset in first.items()}
                    end = {tp.partition: offset for tp, offset in last.items()}
                    for tp in tps:
                        committed[tp.partition] = await consumer.committed(tp) or 0
            yield consumer, TopicState(topic, begin, end, committed)
        except (KafkaError, TimeoutError, OSError) as exc:
            raise _unavailable(exc) from exc
        finally:
            await consumer.stop()

    async def state(self, service: str) -> TopicState:
        async with self._consumer(service) as (_, state):
            return state

    async def page(
        self, service: str, *, before: int | None = None, limit: int = PAGE
    ) -> LetterPage:
        """The newest `limit` letters of each partition before offset `before` (newest first)."""
        letters: list[DeadLetterRecord] = []
        older: int | None = None
        async with self._consumer(service) as (consumer, state):
            for partition, end in state.end.items():
                stop = min(end, before) if before is not None else end
                start = max(state.begin[partition], stop - limit)
                if start >= stop:
                    continue
                if start > state.begin[partition]:
                    older = start
                found = await _read(consumer, TopicPartition(state.topic, partition), start, stop)
                letters.extend(_letter(r, partition, state) for r in found)
        letters.sort(key=lambda d: (d.headers.get("x-dlq-failed-at", ""), d.offset), reverse=True)
        return LetterPage(state, letters, older)

    async def one(self, service: str, partition: int, offset: int) -> DeadLetterRecord | None:
        async with self._consumer(service) as (consumer, state):
            if partition not in state.end:
                return None
            if not state.begin[partition] <= offset < state.end[partition]:
                return None
            tp = TopicPartition(state.topic, partition)
            found = await _read(consumer, tp, offset, offset + 1)
            return _letter(found[0], partition, state) if found else None

    async def publish_back(self, letter: DeadLetterRecord) -> None:
        """The letter to the topic it came from, with its original key and headers; returns when
        Kafka acknowledged it (all in-sync replicas)."""
        headers = letter.original_headers()
        headers["x-replayed-from-dlq-offset"] = str(letter.offset)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=int(TIMEOUT_S * 1000),
            **aiokafka_options(self.settings),
        )
        try:
            async with asyncio.timeout(TIMEOUT_S):
                await producer.start()
                await producer.send_and_wait(
                    letter.original_topic,
                    letter.value,
                    key=letter.key,
                    headers=[(k, v.encode()) for k, v in headers.items()],
                )
        except (KafkaError, TimeoutError, OSError) as exc:
            raise _unavailable(exc) from exc
        finally:
            await producer.stop()


async def _read(consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, stop: int) -> list[Any]:
    """The records of [start, stop) of one partition (within TIMEOUT_S, else 503)."""
    consumer.seek(tp, start)
    found: list[Any] = []
    try:
        async with asyncio.timeout(TIMEOUT_S):
            while await consumer.position(tp) < stop:
                batch = await consumer.getmany(tp, timeout_ms=500, max_records=stop - start)
                found.extend(r for r in batch.get(tp, []) if start <= r.offset < stop)
    except TimeoutError as exc:
        raise _unavailable(exc) from exc
    return found


def _letter(record: Any, partition: int, state: TopicState) -> DeadLetterRecord:
    return DeadLetterRecord(
        record.offset,
        record.key,
        record.value or b"",
        {k: v.decode(errors="replace") for k, v in record.headers},
        record.offset < state.committed.get(partition, 0),
        partition,
    )


def _unavailable(exc: BaseException) -> ApiError:
    return ApiError(
        503,
        "kafka_unavailable",
        f"Kafka did not answer: {type(exc).__name__}",
        headers={"Retry-After": "5"},
    )
