"""The whole OMS as real processes on real Kafka and Postgres, with an HTTP client per service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.topics import SERVICES
from tests.support import auth
from tests.support.env import Infra, TestEnv, new_env
from tests.support.services import ServiceProcess

CONNECTOR = "channel_connector"
CONSOLE = "console"
CORE_SERVICES = tuple(name for name in SERVICES if name not in (CONNECTOR, CONSOLE))
"""What a test system starts unless told: the connector only when a test gives it accounts, the
console only for the tests of its pages."""

TERMINAL = {"COMPLETED", "REJECTED", "CANCELLED", "NEEDS_ATTENTION"}


def order_body(
    lines: Iterable[tuple[str, int, str]], *, token: str = "tok_visa", **extra: Any
) -> dict[str, Any]:
    return {
        "channel": "web",
        "customer": {"email": "ada@example.com", "name": "Ada Lovelace"},
        "shipping_address": {
            "line1": "1 Main St",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
        "currency": "EUR",
        "lines": [{"sku": sku, "quantity": qty, "unit_price": price} for sku, qty, price in lines],
        "payment": {"method": "card", "token": token},
        **extra,
    }


@dataclass
class System:
    env: TestEnv
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    client: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(timeout=15, headers=auth.bearer(auth.ADMIN))
    )

    def url(self, service: str) -> str:
        return self.processes[service].url

    async def start(self, *services: str) -> None:
        names = services or CORE_SERVICES
        for name in names:
            self.processes[name] = self.processes.get(name) or ServiceProcess(
                name,
                f"services.{name}",
                {**self.env.service_env(name), **self.overrides.get(name, {})},
            )
        if CONSOLE in names:
            # The console calls the services of this system (unless an override says where).
            console = self.processes[CONSOLE].env
            for other, process in self.processes.items():
                if other != CONSOLE:
                    console.setdefault(f"OMS_{other.upper()}_URL", process.url)
        for name in names:
            self.processes[name].start()
        await asyncio.gather(*(self.processes[n].wait_ready(timeout_s=90) for n in names))

    def stop(self, *services: str) -> None:
        for name in services or list(self.processes):
            self.processes[name].stop()

    def kill(self, service: str) -> None:
        self.processes[service].kill()

    async def close(self) -> None:
        self.stop()
        await self.client.aclose()

    # --- inventory ---
    async def stock_up(self, sku: str, *locations: tuple[str, int]) -> None:
        r = await self.client.put(f"{self.url('inventory')}/v1/skus/{sku}", json={"name": sku})
        assert r.status_code in (200, 201), r.text
        for location, quantity in locations:
            r = await self.client.post(
                f"{self.url('inventory')}/v1/stock/adjustments",
                json={"sku": sku, "location": location, "delta": quantity, "reason": "receipt"},
            )
            assert r.status_code == 200, r.text

    async def stock(self, sku: str) -> dict[str, Any]:
        r = await self.client.get(f"{self.url('inventory')}/v1/stock/{sku}")
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    # --- orders ---
    async def place(self, body: dict[str, Any], **headers: str) -> str:
        r = await self.client.post(
            f"{self.url('order_intake')}/v1/orders", json=body, headers=headers
        )
        assert r.status_code in (200, 202), r.text
        order_id: str = r.json()["order_id"]
        return order_id

    async def order(self, order_id: str) -> dict[str, Any]:
        r = await self.client.get(f"{self.url('order_intake')}/v1/orders/{order_id}")
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    async def cancel(self, order_id: str) -> httpx.Response:
        return await self.client.post(
            f"{self.url('order_intake')}/v1/orders/{order_id}/cancel", json={"reason": "test"}
        )

    async def wait_status(
        self, order_id: str, *statuses: str, timeout_s: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        view: dict[str, Any] = {}
        while time.monotonic() < deadline:
            view = await self.order(order_id)
            if view["status"] in statuses:
                return view
            await asyncio.sleep(0.2)
        raise AssertionError(
            f"order {order_id} is {view.get('status')}, not {statuses} after {timeout_s}s; "
            f"timeline: {[e['event'] for e in view.get('timeline', [])]}"
        )

    # --- payment ---
    async def payments(self, order_id: str) -> list[dict[str, Any]]:
        r = await self.client.get(
            f"{self.url('payment')}/v1/payments", params={"order_id": order_id}
        )
        assert r.status_code == 200, r.text
        payments: list[dict[str, Any]] = r.json()["payments"]
        return payments

    # --- fulfilment ---
    async def fulfilments(self, order_id: str) -> list[dict[str, Any]]:
        r = await self.client.get(
            f"{self.url('fulfilment')}/v1/fulfilments", params={"order_id": order_id}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        items: list[dict[str, Any]] = body["fulfilments"] if isinstance(body, dict) else body
        return items

    async def ship(self, fulfilment_id: str, **body: str) -> httpx.Response:
        return await self.client.post(
            f"{self.url('fulfilment')}/v1/fulfilments/{fulfilment_id}/ship", json=body
        )

    async def deliver(self, fulfilment_id: str) -> httpx.Response:
        return await self.client.post(
            f"{self.url('fulfilment')}/v1/fulfilments/{fulfilment_id}/deliver"
        )


async def start_system(
    infra: Infra, overrides: dict[str, dict[str, str]] | None = None, *services: str
) -> System:
    env = await new_env(infra)
    system = System(env, overrides or {})
    await system.start(*services)
    return system
