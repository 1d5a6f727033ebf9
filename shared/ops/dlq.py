"""Dead-letter operations for operators: list what a consumer group dead-lettered, and replay it
to the topic it came from (with its original key and headers, so the message keeps its id and the
consumer's inbox still guards against applying it twice)."""

from __future__ import annotations

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
    def message_type(self) -> str:
        try:
            return decode(self.value).type
        except MalformedMessage:
            return "(malformed)"

    def original_headers(self) -> dict[str, str]:
        return {k: v for k, v in self.headers.items() if not k.startswith(DLQ_HEADER_PREFIX)}


def replay_group(service: str, prefix: str = "") -> str:
    return f"{prefix}oms-dlq-replay.{service}"


async def list_dead_letters(
    bootstrap: str, service: str, *, prefix: str = "", limit: int = 1000
) -> list[DeadLetterRecord]:
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
        if not tps:
            return []
        consumer.assign(tps)
        committed = {tp: await consumer.committed(tp) for tp in tps}
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: list[DeadLetterRecord] = []
        while len(found) < limit:
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
            batch = await consumer.getmany(timeout_ms=500)
            if not batch:
                continue
            for tp, records in batch.items():
                for r in records:
                    done = committed[tp] is not None and r.offset < committed[tp]
                    found.append(
                        DeadLetterRecord(
                            r.offset,
                            r.key,
                            r.value or b"",
                            {k: v.decode(errors="replace") for k, v in r.headers},
                            done,
                        )
                    )
        return found[:limit]
    finally:
        await consumer.stop()


async def replay_dead_letters(
    bootstrap: str, service: str, *, prefix: str = "", offsets: set[int] | None = None
) -> list[DeadLetterRecord]:
    """Republish dead letters not yet replayed (or only the given offsets) to their origin.

    Replayed positions are committed under a replay consumer group, so running it again does not
    replay the same dead letter twice.
    """
    letters = [
        d
        for d in await list_dead_letters(bootstrap, service, prefix=prefix)
        if (offsets is None and not d.replayed) or (offsets is not None and d.offset in offsets)
    ]
    if not letters:
        return []
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for letter in letters:
            headers = letter.original_headers()
            headers["x-replayed-from-dlq-offset"] = str(letter.offset)
            await producer.send_and_wait(
                letter.original_topic,
                letter.value,
                key=letter.key,
                headers=[(k, v.encode()) for k, v in headers.items()],
            )
    finally:
        await producer.stop()
    if offsets is None:
        topic = prefix + dead_letter_topic(service)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=replay_group(service, prefix),
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, 0)])
            await consumer.commit(
                {
                    TopicPartition(topic, 0): OffsetAndMetadata(
                        max(d.offset for d in letters) + 1, ""
                    )
                }
            )
        finally:
            await consumer.stop()
    return letters
