"""Kafka helpers for tests: produce raw records, read a topic from the beginning."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.envelope import Contract, Envelope


@dataclass(frozen=True)
class Seen:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]


async def produce(
    bootstrap: str,
    topic: str,
    value: bytes | None,
    *,
    key: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            value,
            key=key,
            headers=[(k, v.encode()) for k, v in (headers or {}).items()],
        )
    finally:
        await producer.stop()


async def send(
    bootstrap: str,
    topic: str,
    message: Contract,
    *,
    correlation_id: str,
    envelope: Envelope | None = None,
) -> Envelope:
    envelope = envelope or Envelope.wrap(message, correlation_id=correlation_id, producer="test")
    await produce(bootstrap, topic, envelope.to_bytes(), key=correlation_id.encode())
    return envelope


async def read_topic(bootstrap: str, topic: str, *, timeout_s: float = 2.0) -> list[Seen]:
    """Everything on a topic right now (all partitions, from the beginning)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        seen: list[Seen] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    seen.append(
                        Seen(
                            r.topic,
                            r.partition,
                            r.offset,
                            r.key,
                            r.value,
                            {k: v.decode(errors="replace") for k, v in r.headers},
                        )
                    )
        return seen
    finally:
        await consumer.stop()


async def wait_for_records(
    bootstrap: str,
    topic: str,
    predicate: Callable[[list[Seen]], bool],
    *,
    timeout_s: float = 30.0,
) -> list[Seen]:
    deadline = time.monotonic() + timeout_s
    seen: list[Seen] = []
    while time.monotonic() < deadline:
        seen = await read_topic(bootstrap, topic)
        if predicate(seen):
            return seen
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting on {topic}; saw {len(seen)} records: {seen[-5:]}")
