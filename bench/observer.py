"""Watches order progress on `oms.orders.events.v1` instead of polling every order over HTTP.

Each OrderStatusChanged (produced by order-intake's outbox, keyed by order id) carries the
status and `at`, the time the saga took the decision (inside the handler's transaction). For
every (order, status) the observer keeps the first `at` (event time) and the time the bench
consumed it (consume time: event time + commit + outbox relay + Kafka), and the message ids seen,
so a status applied twice shows up as two different message ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

STATUS_CHANGED = b"OrderStatusChanged"


@dataclass
class Progress:
    # order id -> status -> (event time, consume time), epoch seconds
    reached: dict[str, dict[str, tuple[float, float]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    messages: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    records: int = 0

    def note(self, order_id: str, status: str, at: float, seen: float, message_id: str) -> None:
        self.messages[(order_id, status)].add(message_id)
        statuses = self.reached[order_id]
        if status not in statuses:
            statuses[status] = (at, seen)
            self.counts[status] += 1

    def count(self, *statuses: str) -> int:
        return sum(self.counts.get(s, 0) for s in statuses)


def parse_status_changed(value: bytes) -> tuple[str, str, float, str] | None:
    """(order id, status, event time, message id) of an OrderStatusChanged envelope."""
    envelope = orjson.loads(value)
    if envelope.get("type") != "OrderStatusChanged":
        return None
    payload = envelope["payload"]
    at = datetime.fromisoformat(payload["at"]).timestamp()
    return payload["order_id"], payload["status"], at, envelope["message_id"]


class Observer:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self.progress = Progress()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        partitions = consumer.partitions_for_topic(self._topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(self._topic) or set()
        tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name="observer")

    async def _run(self) -> None:
        assert self._consumer is not None
        progress = self.progress
        self.ready.set()
        while True:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=5000)
            seen = time.time()
            for records in batches.values():
                for record in records:
                    progress.records += 1
                    headers = dict(record.headers or ())
                    kind = headers.get("type")
                    if kind is not None and kind != STATUS_CHANGED:
                        continue
                    if record.value is None:
                        continue
                    parsed = parse_status_changed(record.value)
                    if parsed is not None:
                        order_id, status, at, message_id = parsed
                        progress.note(order_id, status, at, seen, message_id)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
