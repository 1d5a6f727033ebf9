"""Dead-letter operations for operators: list what a consumer group dead-lettered, and replay it
to the topic it came from (with its original key and headers, so the message keeps its id and the
consumer's inbox still guards against applying it twice)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from shared.envelope import MalformedMessage, decode
from shared.topics import dead_letter_topic

DLQ_HEADER_PREFIX = "x-dlq-"


@dataclass(frozen=True)
class DeadLetterRecord:
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    replayed: bool
    partition: int = 0

    @property
    def reason(self) -> str:
        return self.headers.get("x-dlq-reason", "?")

    @property
    def error(self) -> str:
        return self.headers.get("x-dlq-error", "")

    @property
    def original_topic(self) -> str:
        return self.headers.get("x-dlq-original-topic", "")

    @property
    def truncated(self) -> bool:
        """Too large for the topic: the full record is in the service's `dead_letter_overflow`
        table (id `x-dlq-stored-id`); this copy is never replayed."""
        return self.headers.get("x-dlq-truncated") == "true"

    @property
    def message_type(self) -> str:
        try:
            return decode(self.value).type
        except MalformedMessage:
            return "(malformed)"

    def original_headers(self) -> dict[str, str]:
        return {k: v for k, v in self.headers.items() if not k.startswith(DLQ_HEADER_PREFIX)}


def replay_group(service: str, prefix: str = "") -> str:
    return f"{prefix}oms-dlq-replay.{service}"


class _DeadLetterTopic:
    """One service's dead-letter topic, read page by page. What was replayed is remembered as
    the replay consumer group's committed offset per partition."""

    def __init__(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        self._consumer = consumer
        self.tps = tps
        self.committed: dict[TopicPartition, int] = {}

    async def pages(
        self, *, from_committed: bool, max_records: int = 500
    ) -> AsyncIterator[list[DeadLetterRecord]]:
        """Every record from the beginning (or from what was replayed) to the end as of now."""
        consumer = self._consumer
        for tp in self.tps:
            committed = await consumer.committed(tp)
            self.committed[tp] = committed or 0
        ends = await consumer.end_offsets(self.tps)
        await consumer.seek_to_beginning(*self.tps)
        if from_committed:
            for tp in self.tps:
                if self.committed[tp]:
                    consumer.seek(tp, self.committed[tp])
        while True:
            pending = [tp for tp in self.tps if await consumer.position(tp) < ends[tp]]
            if not pending:
                return
            batch = await consumer.getmany(*pending, timeout_ms=500, max_records=max_records)
            page = [
                DeadLetterRecord(
                    r.offset,
                    r.key,
                    r.value or b"",
                    {k: v.decode(errors="replace") for k, v in r.headers},
                    r.offset < self.committed[tp],
                    tp.partition,
                )
                for tp, records in batch.items()
                for r in records
                if r.offset < ends[tp]
            ]
            if page:
                yield page

    async def remember_replayed(self, letters: list[DeadLetterRecord]) -> None:
        upto: dict[TopicPartition, int] = {}
        for letter in letters:
            tp = TopicPartition(self.tps[0].topic, letter.partition)
            upto[tp] = max(upto.get(tp, 0), letter.offset + 1)
        advanced = {tp: offset for tp, offset in upto.items() if offset > self.committed[tp]}
        if advanced:
            await self._consumer.commit(
                {tp: OffsetAndMetadata(offset, "") for tp, offset in advanced.items()}
            )
            self.committed.update(advanced)


@asynccontextmanager
async def _dead_letter_topic(
    bootstrap: str, service: str, prefix: str
) -> AsyncIterator[_DeadLetterTopic]:
    topic = prefix + dead_letter_topic(service)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=replay_group(service, prefix),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer._client.force_metadata_update()  # metadata is fetched lazily
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if tps:
            consumer.assign(tps)
        yield _DeadLetterTopic(consumer, tps)
    finally:
        await consumer.stop()


async def list_dead_letters(
    bootstrap: str, service: str, *, prefix: str = "", limit: int = 1000
) -> list[DeadLetterRecord]:
    """The first `limit` dead letters of the topic, each marked whether it was replayed."""
    found: list[DeadLetterRecord] = []
    async with _dead_letter_topic(bootstrap, service, prefix) as dlq:
        if not dlq.tps:
            return []
        async for page in dlq.pages(from_committed=False):
            found.extend(page)
            if len(found) >= limit:
                break
    return found[:limit]


async def replay_dead_letters(
    bootstrap: str, service: str, *, prefix: str = "", offsets: set[int] | None = None
) -> list[DeadLetterRecord]:
    """Republish dead letters not yet replayed (or only the given offsets) to their origin,
    with their original key and headers, page by page through the whole topic.

    After each page is acknowledged by Kafka its position is committed under the replay
    consumer group, so running it again (or after a crash midway) does not replay a dead
    letter twice. Replaying chosen offsets does not move that position. Truncated dead
    letters (see `DeadLetterRecord.truncated`) are passed over: the whole record is in the
    service's `dead_letter_overflow` table, for an operator to look at.
    """
    replayed: list[DeadLetterRecord] = []
    async with _dead_letter_topic(bootstrap, service, prefix) as dlq:
        if not dlq.tps:
            return []
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            async for page in dlq.pages(from_committed=offsets is None):
                letters = [
                    d for d in page if (offsets is None or d.offset in offsets) and not d.truncated
                ]
                sent = []
                for letter in letters:
                    headers = letter.original_headers()
                    headers["x-replayed-from-dlq-offset"] = str(letter.offset)
                    sent.append(
                        await producer.send(
                            letter.original_topic,
                            letter.value,
                            key=letter.key,
                            headers=[(k, v.encode()) for k, v in headers.items()],
                        )
                    )
                for delivery in sent:
                    await delivery
                replayed.extend(letters)
                if offsets is None:
                    await dlq.remember_replayed(page)
        finally:
            await producer.stop()
    return replayed
