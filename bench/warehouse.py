"""The warehouse simulator: ships and delivers every fulfilment through fulfilment's HTTP API.

By default (`--lookup floor`) it works the warehouse floor as staff would: pick lists, scans,
packing, labels, shipping in parcels (bench/floor.py). The older modes ship each fulfilment in
one call:

Run as its own process by the bench (`python -m bench.warehouse ...`), so its CPU is accounted
apart. It learns of work either as warehouse staff would look it up (`--lookup http`: on an
order reaching FULFILLING, `GET /v1/fulfilments?order_id=`) or from fulfilment's own
FulfilmentCreated events (`--lookup events`, one HTTP call fewer per order), then calls
`POST /v1/fulfilments/{id}/ship` with `{}` (carrier chosen, tracking number issued) and
`POST /v1/fulfilments/{id}/deliver`. On SIGTERM it writes its counters as JSON and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import sys
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import floor
from bench.http import HttpError, HttpPool
from bench.workload import LOCATIONS, catalogue

ORDERS_EVENTS = "oms.orders.events.v1"
THROTTLED_AT_MOST = 600  # 429 answers one call waits out before it gives up
FULFILMENT_EVENTS = "oms.fulfilment.events.v1"


class Warehouse:
    def __init__(
        self, urls: list[str], concurrency: int, ship_delay_s: float, attempts: int = 8
    ) -> None:
        self._attempts = attempts
        per_pool = max(1, concurrency // len(urls))
        token = os.environ.get("OMS_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._pools = [HttpPool(url, per_pool, headers) for url in urls]
        self._next_pool = itertools.cycle(self._pools)
        self._ship_delay_s = ship_delay_s
        self.queue: asyncio.Queue[tuple[str, list[str] | None]] = asyncio.Queue()
        self.seen: set[str] = set()
        self.stats = {
            "orders": 0,
            "lookups": 0,
            "shipped": 0,
            "delivered": 0,
            "errors": 0,
            "throttled": 0,
            "pick_lists": 0,
            "picks": 0,
            "parcels": 0,
        }
        self.errors: list[str] = []

    async def raw_call(
        self, method: str, path: str, body: bytes | None = None
    ) -> tuple[int, bytes]:
        """The answer to a call, retried through 429s, 5xx and connection errors (backoff capped
        at 2 s); a 4xx is returned as it is. Raises RuntimeError when the tries run out."""
        throttled = 0
        attempt = 0
        failure = ""
        while attempt < self._attempts:
            pool = next(self._next_pool)
            try:
                status, data = await pool.request(
                    method, path, body, {"Content-Type": "application/json"} if body else None
                )
            except HttpError as exc:
                failure = str(exc)
            else:
                if status < 400:
                    return status, data
                failure = f"{method} {path}: {status} {data[:200]!r}"
                if status == 429 and throttled < THROTTLED_AT_MOST:
                    # Rate limited: wait as told (Retry-After is at least a second), as a
                    # real warehouse integration would, without spending an attempt.
                    throttled += 1
                    self.stats["throttled"] += 1
                    await asyncio.sleep(1.0)
                    continue
                if status < 500:
                    return status, data
            await asyncio.sleep(min(0.05 * 2**attempt, 2.0))
            attempt += 1
        self._failed(failure)
        raise RuntimeError(failure)

    def _failed(self, failure: str) -> None:
        self.stats["errors"] += 1
        if len(self.errors) < 20:
            self.errors.append(failure)

    async def _call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        status, data = await self.raw_call(method, path, body)
        if status != 200:
            failure = f"{method} {path}: {status} {data[:200]!r}"
            self._failed(failure)
            raise RuntimeError(failure)
        return data

    async def handle(self, order_id: str, fulfilment_ids: list[str] | None) -> None:
        if fulfilment_ids is None:
            self.stats["lookups"] += 1
            listing = orjson.loads(await self._call("GET", f"/v1/fulfilments?order_id={order_id}"))
            fulfilment_ids = [
                f["fulfilment_id"] for f in listing["fulfilments"] if f["status"] == "created"
            ]
        if self._ship_delay_s:
            await asyncio.sleep(self._ship_delay_s)
        for fulfilment_id in fulfilment_ids:
            await self._call("POST", f"/v1/fulfilments/{fulfilment_id}/ship", b"{}")
            self.stats["shipped"] += 1
        for fulfilment_id in fulfilment_ids:
            await self._call("POST", f"/v1/fulfilments/{fulfilment_id}/deliver")
            self.stats["delivered"] += 1

    async def worker(self) -> None:
        while True:
            order_id, fulfilment_ids = await self.queue.get()
            with contextlib.suppress(RuntimeError):
                await self.handle(order_id, fulfilment_ids)

    def offer(self, order_id: str, fulfilment_ids: list[str] | None) -> None:
        if order_id in self.seen:
            return
        self.seen.add(order_id)
        self.stats["orders"] += 1
        self.queue.put_nowait((order_id, fulfilment_ids))

    def close(self) -> None:
        for pool in self._pools:
            pool.close()


async def _consume(bootstrap: str, topic: str, warehouse: Warehouse, lookup: str) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        wanted = b"OrderStatusChanged" if lookup == "http" else b"FulfilmentCreated"
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=2000)
            for records in batches.values():
                for record in records:
                    if dict(record.headers or ()).get("type") != wanted or record.value is None:
                        continue
                    payload = orjson.loads(record.value)["payload"]
                    if lookup == "http":
                        if payload["status"] == "FULFILLING":
                            warehouse.offer(payload["order_id"], None)
                    else:
                        warehouse.offer(
                            payload["order_id"],
                            [f["fulfilment_id"] for f in payload["fulfilments"]],
                        )
    finally:
        await consumer.stop()


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    warehouse = Warehouse(
        args.fulfilment_url, args.concurrency, args.ship_delay_ms / 1000, args.attempts
    )
    topic = args.topic_prefix + (ORDERS_EVENTS if args.lookup == "http" else FULFILMENT_EVENTS)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if args.lookup == "floor":
        await floor.set_up(warehouse.raw_call, LOCATIONS, catalogue(args.skus))
        tasks = [
            asyncio.create_task(
                floor.Floor(warehouse.raw_call, location, warehouse.stats, args.concurrency).run(
                    stop
                )
            )
            for location in LOCATIONS
        ]
    else:
        tasks = [asyncio.create_task(warehouse.worker()) for _ in range(args.concurrency)]
        tasks.append(asyncio.create_task(_consume(args.bootstrap, topic, warehouse, args.lookup)))
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    warehouse.close()
    return {**warehouse.stats, "error_examples": warehouse.errors}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic-prefix", default="")
    parser.add_argument("--fulfilment-url", action="append", required=True)
    parser.add_argument("--lookup", choices=("http", "events", "floor"), default="floor")
    parser.add_argument("--skus", type=int, default=200, help="the bench's SKUs (floor set-up)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--ship-delay-ms", type=float, default=0)
    parser.add_argument("--stats-file")
    parser.add_argument(
        "--attempts",
        type=int,
        default=8,
        help="tries per HTTP call (backoff capped at 2 s); chaos runs ride out restarts",
    )
    args = parser.parse_args(argv)
    import uvloop

    stats = uvloop.run(main_async(args))
    if args.stats_file:
        Path(args.stats_file).write_bytes(orjson.dumps(stats))
    sys.exit(0)


if __name__ == "__main__":
    main()
