"""Receives stock for the SKUs sold on backorder while the run goes: every few seconds, as many
units as their backorders wait for, at the first location (a stock adjustment with reason
`receipt`, which fills the queues oldest first). What it received is added to the initial stock
when the run's stock is checked."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

import httpx

from bench.system import Services, bearer
from bench.workload import LOCATIONS, Workload


class Restocker:
    def __init__(self, services: Services, workload: Workload, every_s: float) -> None:
        self._services = services
        self._workload = workload
        self._every_s = every_s
        self._stopping = asyncio.Event()
        self.received: dict[tuple[str, str], int] = defaultdict(int)
        self.receipts = 0

    async def run(self) -> None:
        if not self._workload.backorder_skus:
            return
        async with httpx.AsyncClient(
            base_url=self._services.urls("inventory")[0],
            timeout=30,
            headers=bearer("warehouse", subject="bench-restocker"),
        ) as client:
            while not self._stopping.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._every_s)
                await self._restock(client)

    async def _restock(self, client: httpx.AsyncClient) -> None:
        for sku in self._workload.backorder_skus:
            response = await client.get(f"/v1/stock/{sku}")
            if response.status_code != 200:
                continue
            waiting = int(response.json().get("backordered", 0))
            if waiting <= 0:
                continue
            received = await client.post(
                "/v1/stock/adjustments",
                json={
                    "sku": sku,
                    "location": LOCATIONS[0],
                    "delta": waiting,
                    "reason": "receipt",
                    "reference": "bench-restock",
                },
            )
            if received.status_code == 200:
                self.received[(sku, LOCATIONS[0])] += waiting
                self.receipts += 1

    def stop(self) -> None:
        self._stopping.set()
