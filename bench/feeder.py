"""What goes into the system under test: the stock seeded before the run, then the orders,
through `POST /v1/orders` and/or the Kafka channel ingress, at a fixed rate or as fast as the
system takes them (with at most `max_in_flight` orders unsettled).

An order's clock starts when the feeder sends it (just before the HTTP request, or the Kafka
produce).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from bench.channel import channel_message
from bench.config import Config
from bench.http import HttpError, HttpPool
from bench.system import BenchEnv, Services, bearer
from bench.workload import Workload
from shared.topics import CHANNEL_ORDERS

THROTTLE_PAUSE_S = 1.0  # order-intake's Retry-After
CHAOS_RETRY_S = 300.0  # under chaos, how long the feeder keeps re-sending one order


@dataclass
class Submission:
    reference: str
    ingress: str
    sent: float
    accepted: float | None = None
    order_id: str | None = None
    refused: str | None = None
    throttled: int = 0  # 429 answers (admission control) retried after a pause


class Feeder:
    def __init__(
        self,
        config: Config,
        env: BenchEnv,
        services: Services,
        workload: Workload,
        settled: Callable[[], int],
    ):
        self._settled = settled
        self._config = config
        self._env = env
        self._workload = workload
        headers = bearer("customer_service", subject="bench-feeder")
        self._pools = [
            HttpPool(url, config.concurrency, headers) for url in services.urls("order_intake")
        ]
        self._next_pool = itertools.cycle(self._pools)
        self.submissions: list[Submission] = []
        self._producer: Any = None
        self._channel_topic = env.topic(CHANNEL_ORDERS)
        self.done = False

    def _ingress_for(self, index: int) -> str:
        if self._config.ingress == "both":
            return "http" if index % 2 == 0 else "kafka"
        return self._config.ingress

    async def _submit(self, index: int, body: dict[str, Any]) -> None:
        ingress = self._ingress_for(index)
        reference = str(body["external_id"])
        if ingress == "kafka":
            value = channel_message(body)
            submission = Submission(reference, ingress, time.time())
            self.submissions.append(submission)
            await self._producer.send(
                self._channel_topic,
                value,
                key=reference.encode(),
                headers=[("type", b"ChannelOrderReceived")],
            )
            return
        payload = orjson.dumps(body)
        submission = Submission(reference, ingress, time.time())
        self.submissions.append(submission)
        give_up_at = time.monotonic() + CHAOS_RETRY_S
        while True:
            try:
                status, data = await next(self._next_pool).post_json("/v1/orders", payload)
            except HttpError as exc:
                if not self._config.chaos or time.monotonic() > give_up_at:
                    submission.refused = str(exc)
                    return
                # A killed order-intake: send the same order again (its external id dedupes).
                await asyncio.sleep(THROTTLE_PAUSE_S)
                continue
            if status >= 500 and self._config.chaos and time.monotonic() < give_up_at:
                await asyncio.sleep(THROTTLE_PAUSE_S)
                continue
            if status != 429:
                break
            # Admission control: retry after the pause it asks for, as a channel would.
            submission.throttled += 1
            await asyncio.sleep(THROTTLE_PAUSE_S)
        if status in (200, 202):
            submission.accepted = time.time()
            submission.order_id = orjson.loads(data)["order_id"]
        else:
            submission.refused = f"{status} {data[:300]!r}"

    async def run(self) -> None:
        bodies = self._workload.orders
        if self._config.ingress in ("kafka", "both"):
            from aiokafka import AIOKafkaProducer

            self._producer = AIOKafkaProducer(
                bootstrap_servers=self._env.kafka_bootstrap,
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
            )
            await self._producer.start()
        try:
            if self._config.rate is None:
                await self._as_fast_as_possible(bodies)
            else:
                await self._at_fixed_rate(bodies, self._config.rate)
            if self._producer is not None:
                await self._producer.flush()
        finally:
            self.done = True

    async def _as_fast_as_possible(self, bodies: tuple[dict[str, Any], ...]) -> None:
        queue = iter(enumerate(bodies))

        window = self._config.max_in_flight

        async def worker() -> None:
            for index, body in queue:
                # The observer counts on its own task; polling its counters is all it takes.
                while window and len(self.submissions) - self._settled() >= window:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                await self._submit(index, body)

        workers = self._config.concurrency * len(self._pools)
        await asyncio.gather(*(worker() for _ in range(workers)))

    async def _at_fixed_rate(self, bodies: tuple[dict[str, Any], ...], rate: float) -> None:
        """Open loop: order i is sent at start + i / rate, whether earlier ones were answered
        or not (at most `concurrency` in flight per replica; the generator falls behind when the
        system answers more slowly than that allows, and the achieved rate shows it)."""
        limit = asyncio.Semaphore(self._config.concurrency * len(self._pools))
        start = time.monotonic()
        tasks = set()

        async def one(index: int, body: dict[str, Any]) -> None:
            try:
                await self._submit(index, body)
            finally:
                limit.release()

        for index, body in enumerate(bodies):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await limit.acquire()
            task = asyncio.create_task(one(index, body))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)

    def close(self) -> None:
        for pool in self._pools:
            pool.close()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        self.close()


async def seed_stock(services: Services, workload: Workload) -> None:
    base = services.urls("inventory")[0]
    async with httpx.AsyncClient(
        base_url=base, timeout=30, headers=bearer("warehouse", subject="bench-seed")
    ) as client:
        limit = asyncio.Semaphore(16)

        async def stock_up(sku: str) -> None:
            async with limit:
                policy = "backorder" if sku in workload.backorder_skus else "deny"
                r = await client.put(
                    f"/v1/skus/{sku}",
                    json={"name": f"Bench item {sku}", "backorder_policy": policy},
                )
                r.raise_for_status()
                for (stocked, location), quantity in workload.initial_stock.items():
                    if stocked != sku:
                        continue
                    r = await client.post(
                        "/v1/stock/adjustments",
                        json={
                            "sku": sku,
                            "location": location,
                            "delta": quantity,
                            "reason": "receipt",
                        },
                    )
                    r.raise_for_status()

        await asyncio.gather(*(stock_up(sku) for sku in workload.skus))
