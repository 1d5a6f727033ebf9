"""Backorders across all five services, as real processes on real Kafka and Postgres: orders
short of a backorderable SKU wait in BACKORDERED, a purchase order received in two parts fills
them oldest first, a cancelled one leaves its place, and all the others complete with the stock
conserved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.env import Infra
from tests.support.system import System, order_body, start_system

pytestmark = pytest.mark.integration

SKU = "BO-LAMP"


@pytest.fixture(scope="module")
async def system(infra: Infra) -> AsyncIterator[System]:
    started = await start_system(infra, {"order_intake": {"OMS_DEADLINE_POLL_INTERVAL_S": "0.2"}})
    yield started
    await started.close()


async def receive(system: System, receipt_id: str, quantity: int) -> dict[str, Any]:
    response = await system.client.post(
        f"{system.url('inventory')}/v1/purchase-orders/PO-LAMPS/receipts",
        json={"receipt_id": receipt_id, "lines": [{"sku": SKU, "quantity": quantity}]},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def ship_and_deliver(system: System, order_id: str) -> None:
    for fulfilment in await system.fulfilments(order_id):
        fulfilment_id = fulfilment["fulfilment_id"]
        shipped = await system.ship(
            fulfilment_id, carrier="dhl", tracking_number=f"T-{fulfilment_id}"
        )
        assert shipped.status_code == 200, shipped.text
    await system.wait_status(order_id, "SHIPPED", "DELIVERED", "COMPLETED")
    for fulfilment in await system.fulfilments(order_id):
        delivered = await system.deliver(fulfilment["fulfilment_id"])
        assert delivered.status_code == 200, delivered.text
    await system.wait_status(order_id, "COMPLETED")


def events(view: dict[str, Any]) -> list[str]:
    return [entry["event"] for entry in view["timeline"]]


async def test_backorders_are_filled_oldest_first_and_complete(system: System):
    inventory = system.url("inventory")
    defined = await system.client.put(
        f"{inventory}/v1/skus/{SKU}", json={"name": "Lamp", "backorder_policy": "backorder"}
    )
    assert defined.status_code == 201, defined.text
    po = await system.client.post(
        f"{inventory}/v1/purchase-orders",
        json={
            "po_id": "PO-LAMPS",
            "supplier": "Lumen GmbH",
            "location": "berlin",
            "expected_on": "2026-12-18",
            "lines": [{"sku": SKU, "quantity": 6}],
        },
    )
    assert po.status_code == 201, po.text

    # Four orders of two lamps each, one after the other: the second is cancelled while waiting.
    placed, expected = [], []
    for _ in range(4):
        order_id = await system.place(order_body([(SKU, 2, "25.00")]))
        view = await system.wait_status(order_id, "BACKORDERED")
        placed.append(order_id)
        noted = next(e for e in view["timeline"] if e["event"] == "backordered")
        expected.append(noted["detail"]["expected_on"])
    first, leaving, second, third = placed
    # The purchase order brings 6: enough for the first three, not for the fourth (yet).
    assert expected == ["2026-12-18", "2026-12-18", "2026-12-18", None]
    stock = await system.stock(SKU)
    assert (stock["backordered"], stock["incoming"], stock["available_to_promise"]) == (8, 6, -2)

    cancelled = await system.cancel(leaving)
    assert cancelled.status_code in (200, 202), cancelled.text
    await system.wait_status(leaving, "CANCELLED")
    assert (await system.stock(SKU))["backordered"] == 6

    # Three lamps arrive: the oldest order gets its two, the next in line one of its two.
    await receive(system, "GRN-1", 3)
    await system.wait_status(first, "FULFILLING")
    for waiting in (second, third):
        assert (await system.order(waiting))["status"] == "BACKORDERED"
    stock = await system.stock(SKU)
    assert (stock["on_hand"], stock["reserved"], stock["backordered"]) == (3, 3, 3)

    # The rest arrive: both remaining orders go on.
    po_after = await receive(system, "GRN-2", 3)
    assert po_after["status"] == "received"
    for order_id in (second, third):
        view = await system.wait_status(order_id, "FULFILLING")
        assert "backorder_allocated" in events(view)

    for order_id in (first, second, third):
        await ship_and_deliver(system, order_id)
    assert (await system.order(leaving))["status"] == "CANCELLED"

    stock = await system.stock(SKU)
    assert (stock["on_hand"], stock["reserved"], stock["backordered"]) == (0, 0, 0)
    ledger = await system.client.get(f"{inventory}/v1/stock/{SKU}/ledger", params={"limit": 500})
    entries = ledger.json()["entries"]
    assert sum(e["on_hand_delta"] for e in entries) == stock["on_hand"]
    assert sum(e["reserved_delta"] for e in entries) == stock["reserved"]
    assert sum(e["on_hand_delta"] for e in entries if e["reason"] == "receipt") == 6
    assert sum(-e["on_hand_delta"] for e in entries if e["reason"] == "committed") == 6
