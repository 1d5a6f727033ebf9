"""The order saga across all five services, as real processes on real Kafka and Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from shared.contracts.common import SkuQuantity
from shared.contracts.fulfilment import FulfilmentDelivered, FulfilmentShipped
from shared.topics import FULFILMENT_EVENTS
from tests.support import auth
from tests.support.env import Infra
from tests.support.kafka import send
from tests.support.system import System, order_body, start_system

pytestmark = pytest.mark.integration

FAST_SAGA = {
    "OMS_DEADLINE_POLL_INTERVAL_S": "0.2",
}


@pytest.fixture(scope="module")
async def system(infra: Infra) -> AsyncIterator[System]:
    started = await start_system(infra, {"order_intake": FAST_SAGA})
    yield started
    await started.close()


async def _ship_and_deliver_all(system: System, order_id: str) -> None:
    fulfilments = await system.fulfilments(order_id)
    assert fulfilments
    for fulfilment in fulfilments:
        shipped = await system.ship(
            fulfilment["fulfilment_id"],
            carrier="dhl",
            tracking_number=f"T-{fulfilment['fulfilment_id']}",
        )
        assert shipped.status_code == 200, shipped.text
    await system.wait_status(order_id, "SHIPPED", "DELIVERED", "COMPLETED")
    for fulfilment in fulfilments:
        delivered = await system.deliver(fulfilment["fulfilment_id"])
        assert delivered.status_code == 200, delivered.text


async def test_happy_path_to_completed_commits_stock_and_captures_the_total(system: System):
    await system.stock_up("HAPPY-1", ("berlin", 10))
    await system.stock_up("HAPPY-2", ("berlin", 5), ("hamburg", 5))
    order_id = await system.place(order_body([("HAPPY-1", 2, "12.50"), ("HAPPY-2", 1, "30.00")]))
    confirmed = await system.wait_status(order_id, "FULFILLING")
    assert confirmed["payment"]["status"] == "authorized"
    assert {a["location"] for a in confirmed["fulfilment"]["allocations"]} == {"berlin"}, (
        "one location that can fill the whole order is preferred"
    )
    await _ship_and_deliver_all(system, order_id)
    done = await system.wait_status(order_id, "COMPLETED")

    total = Decimal(done["totals"]["total"])
    assert done["payment"]["captured_total"] == done["totals"]["total"]
    [payment] = await system.payments(order_id)
    assert Decimal(payment["amount"]) == total
    assert Decimal(payment["captured_total"]) == total
    assert payment["status"] == "captured"
    one = await system.stock("HAPPY-1")
    two = await system.stock("HAPPY-2")
    assert (one["on_hand"], one["reserved"], one["available"]) == (8, 0, 8)
    assert (two["on_hand"], two["reserved"], two["available"]) == (9, 0, 9)
    events = [e["event"] for e in done["timeline"]]
    for step in (
        "stock_reserved",
        "payment_authorized",
        "fulfilment_created",
        "fulfilment_shipped",
        "payment_captured",
        "fulfilment_delivered",
    ):
        assert step in events, f"{step} missing from the timeline {events}"


async def test_one_fulfilment_in_two_parcels_captures_twice_commits_each_once_and_completes(
    system: System,
):
    """The warehouse's parcels are published onto the fulfilment events topic by the test,
    standing in for a fulfilment service that ships in parcels."""
    await system.stock_up("PARCEL-1", ("berlin", 10))
    await system.stock_up("PARCEL-2", ("berlin", 5))
    order_id = await system.place(order_body([("PARCEL-1", 3, "9.99"), ("PARCEL-2", 1, "24.50")]))
    await system.wait_status(order_id, "FULFILLING")
    [fulfilment] = await system.fulfilments(order_id)
    fulfilment_id = fulfilment["fulfilment_id"]
    topic = system.env.topic(FULFILMENT_EVENTS)

    def parcel(shipment_id: str, lines: dict[str, int], complete: bool) -> FulfilmentShipped:
        return FulfilmentShipped(
            order_id=order_id,
            fulfilment_id=fulfilment_id,
            location=fulfilment["location"],
            lines=tuple(SkuQuantity(sku=sku, quantity=n) for sku, n in lines.items()),
            carrier="dhl",
            tracking_number=f"JJD-{shipment_id}",
            tracking_url=f"https://track.example/JJD-{shipment_id}",
            shipped_at=datetime.now(UTC),
            shipment_id=shipment_id,
            fulfilment_complete=complete,
        )

    first = parcel(f"{fulfilment_id}-a", {"PARCEL-1": 2}, complete=False)
    await send(system.env.kafka, topic, first, correlation_id=order_id)
    partly = await system.wait_status(order_id, "PARTIALLY_SHIPPED")
    [shown] = partly["fulfilment"]["fulfilments"]
    assert shown["status"] == "partially_shipped"
    assert shown["unshipped"] == [
        {"sku": "PARCEL-1", "quantity": 1},
        {"sku": "PARCEL-2", "quantity": 1},
    ]
    second = parcel(f"{fulfilment_id}-b", {"PARCEL-1": 1, "PARCEL-2": 1}, complete=True)
    await send(system.env.kafka, topic, second, correlation_id=order_id)
    await send(system.env.kafka, topic, first, correlation_id=order_id)  # re-sent by the warehouse
    await system.wait_status(order_id, "SHIPPED")
    delivered = FulfilmentDelivered(
        order_id=order_id, fulfilment_id=fulfilment_id, delivered_at=datetime.now(UTC)
    )
    await send(system.env.kafka, topic, delivered, correlation_id=order_id)
    done = await system.wait_status(order_id, "COMPLETED")

    total = Decimal(done["totals"]["total"])
    assert done["payment"]["captured_total"] == done["totals"]["total"]
    [payment] = await system.payments(order_id)
    assert payment["status"] == "captured" and Decimal(payment["captured_total"]) == total
    captures = [op for op in payment["operations"] if op["kind"] == "capture"]
    assert sorted((op["shipment_id"], op["idempotency_key"]) for op in captures) == [
        (f"{fulfilment_id}-a", f"{order_id}:capture:{fulfilment_id}-a"),
        (f"{fulfilment_id}-b", f"{order_id}:capture:{fulfilment_id}-b"),
    ]
    assert all(op["outcome"] == "succeeded" for op in captures)
    assert sum(Decimal(op["amount"]) for op in captures) == total
    [shown] = done["fulfilment"]["fulfilments"]
    assert [(s["shipment_id"], s["captured"]) for s in shown["shipments"]] == [
        (f"{fulfilment_id}-a", True),
        (f"{fulfilment_id}-b", True),
    ]

    one, two = await system.stock("PARCEL-1"), await system.stock("PARCEL-2")
    assert (one["on_hand"], one["reserved"], one["available"]) == (7, 0, 7)
    assert (two["on_hand"], two["reserved"], two["available"]) == (4, 0, 4)
    commits = []
    for sku in ("PARCEL-1", "PARCEL-2"):
        r = await system.client.get(f"{system.url('inventory')}/v1/stock/{sku}/ledger")
        assert r.status_code == 200, r.text
        commits += [
            (sku, e["reference"], e["on_hand_delta"])
            for e in r.json()["entries"]
            if e["reason"] == "committed" and e["order_id"] == order_id
        ]
    assert sorted(commits) == [
        ("PARCEL-1", f"{fulfilment_id}-a", -2),
        ("PARCEL-1", f"{fulfilment_id}-b", -1),
        ("PARCEL-2", f"{fulfilment_id}-b", -1),
    ], "stock committed exactly once per parcel"
    events = [e["event"] for e in done["timeline"]]
    assert events.count("fulfilment_shipped") == 2
    assert events.count("payment_captured") == 2


async def test_not_enough_stock_rejects_naming_the_short_lines(system: System):
    await system.stock_up("SHORT-1", ("berlin", 1))
    await system.stock_up("SHORT-OK", ("berlin", 5))
    order_id = await system.place(order_body([("SHORT-OK", 1, "5.00"), ("SHORT-1", 3, "5.00")]))
    rejected = await system.wait_status(order_id, "REJECTED")
    assert "SHORT-1" in rejected["reason"]
    failure = next(e for e in rejected["timeline"] if e["event"] == "stock_reservation_failed")
    assert failure["detail"]["short_lines"] == [
        {"sku": "SHORT-1", "line_id": "l2", "requested": 3, "available": 1}
    ]
    assert (await system.stock("SHORT-OK"))["reserved"] == 0
    assert (await system.stock("SHORT-1"))["reserved"] == 0
    assert await system.payments(order_id) == []


async def test_declined_payment_cancels_and_releases_the_reservation(system: System):
    await system.stock_up("DECLINE-1", ("berlin", 4))
    order_id = await system.place(order_body([("DECLINE-1", 2, "10.00")], token="tok_declined"))
    cancelled = await system.wait_status(order_id, "CANCELLED")
    assert "declined" in cancelled["reason"]
    stock = await system.stock("DECLINE-1")
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (4, 0, 4)
    assert [p["status"] for p in await system.payments(order_id)] == ["declined"]


async def test_cancel_before_shipment_undoes_everything_and_after_shipment_is_refused(
    system: System,
):
    await system.stock_up("CANCEL-1", ("berlin", 3))
    order_id = await system.place(order_body([("CANCEL-1", 1, "10.00")]))
    await system.wait_status(order_id, "FULFILLING")
    response = await system.cancel(order_id)
    assert response.status_code == 202, response.text
    cancelled = await system.wait_status(order_id, "CANCELLED")
    assert cancelled["payment"]["status"] == "voided"
    assert (await system.stock("CANCEL-1"))["reserved"] == 0
    assert [p["status"] for p in await system.payments(order_id)] == ["voided"]
    assert [f["status"] for f in await system.fulfilments(order_id)] == ["cancelled"]

    shipped_id = await system.place(order_body([("CANCEL-1", 1, "10.00")]))
    await system.wait_status(shipped_id, "FULFILLING")
    [fulfilment] = await system.fulfilments(shipped_id)
    assert (await system.ship(fulfilment["fulfilment_id"])).status_code == 200
    await system.wait_status(shipped_id, "SHIPPED")
    refused = await system.cancel(shipped_id)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "already_shipped"
    assert (await system.order(shipped_id))["status"] == "SHIPPED"


async def test_gateway_timeout_is_retried_with_the_same_key_and_authorises_once(system: System):
    await system.stock_up("TIMEOUT-1", ("berlin", 2))
    order_id = await system.place(
        order_body([("TIMEOUT-1", 1, "10.00")], token="tok_gateway_timeout")
    )
    await system.wait_status(order_id, "FULFILLING")
    [payment] = await system.payments(order_id)
    assert payment["status"] == "authorized"
    authorisations = [op for op in payment["operations"] if op["kind"] == "authorize"]
    assert len({op["idempotency_key"] for op in authorisations}) == 1


async def test_the_same_idempotency_key_twice_makes_one_order(system: System):
    await system.stock_up("IDEM-1", ("berlin", 2))
    body = order_body([("IDEM-1", 1, "10.00")])
    first = await system.place(body, **{"Idempotency-Key": "integration-key-1"})
    second = await system.place(body, **{"Idempotency-Key": "integration-key-1"})
    assert first == second
    await system.wait_status(first, "FULFILLING")
    assert (await system.stock("IDEM-1"))["reserved"] == 1


@pytest.mark.timeout(300)
async def test_200_concurrent_orders_against_50_units_confirm_exactly_50(system: System):
    await system.stock_up("RUSH-1", ("berlin", 30), ("hamburg", 20))
    violations: list[dict] = []
    stop = asyncio.Event()

    async def watch_stock() -> int:
        checks = 0
        while not stop.is_set():
            stock = await system.stock("RUSH-1")
            checks += 1
            for row in [stock, *stock["locations"]]:
                if (
                    row["on_hand"] != row["available"] + row["reserved"]
                    or min(row["on_hand"], row["available"], row["reserved"]) < 0
                ):
                    violations.append(row)
            await asyncio.sleep(0.05)
        return checks

    watcher = asyncio.create_task(watch_stock())
    limit = asyncio.Semaphore(25)

    async def place_one(i: int) -> str:
        async with limit:
            return await system.place(order_body([("RUSH-1", 1, "1.00")], external_id=f"rush-{i}"))

    order_ids = await asyncio.gather(*(place_one(i) for i in range(200)))
    assert len(set(order_ids)) == 200

    async def settled() -> dict[str, int]:
        async with httpx.AsyncClient(timeout=15, headers=auth.bearer(auth.ADMIN)) as client:
            counts: dict[str, int] = {}
            for status in (
                "FULFILLING",
                "REJECTED",
                "RESERVING_STOCK",
                "AUTHORIZING_PAYMENT",
                "CONFIRMED",
            ):
                r = await client.get(
                    f"{system.url('order_intake')}/v1/orders",
                    params={"status": status, "limit": 500},
                )
                counts[status] = sum(
                    1 for o in r.json()["orders"] if o["order_id"] in set(order_ids)
                )
            return counts

    for _ in range(600):
        counts = await settled()
        if counts["FULFILLING"] + counts["REJECTED"] == 200:
            break
        await asyncio.sleep(0.25)
    stop.set()
    checks = await watcher
    assert counts["FULFILLING"] == 50, counts
    assert counts["REJECTED"] == 150, counts
    stock = await system.stock("RUSH-1")
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (50, 50, 0)
    assert checks > 5 and violations == []


# --- deadlines: a service stopped mid-saga ---------------------------------------------------

SHORT_DEADLINES = {
    "OMS_DEADLINE_POLL_INTERVAL_S": "0.2",
    "OMS_SAGA_STOCK_TIMEOUT_S": "2",
    "OMS_SAGA_PAYMENT_TIMEOUT_S": "2",
    "OMS_SAGA_MAX_ATTEMPTS": "2",
    "OMS_SAGA_COMPENSATION_TIMEOUT_S": "3",
}


@pytest.fixture
async def short_deadline_system(infra: Infra) -> AsyncIterator[System]:
    started = await start_system(infra, {"order_intake": SHORT_DEADLINES})
    yield started
    await started.close()


@pytest.mark.timeout(180)
async def test_payment_down_mid_saga_waits_then_completes_after_restart(infra: Infra):
    system = await start_system(infra, {"order_intake": FAST_SAGA})
    try:
        await system.stock_up("DOWN-1", ("berlin", 2))
        system.kill("payment")
        order_id = await system.place(order_body([("DOWN-1", 1, "10.00")]))
        waiting = await system.wait_status(order_id, "AUTHORIZING_PAYMENT")
        await asyncio.sleep(2)
        assert (await system.order(order_id))["status"] == "AUTHORIZING_PAYMENT", waiting
        await system.start("payment")
        await system.wait_status(order_id, "FULFILLING")
        assert len(await system.payments(order_id)) == 1
    finally:
        await system.close()


@pytest.mark.timeout(180)
async def test_payment_down_past_the_deadline_is_compensated_or_parked(
    short_deadline_system: System,
):
    system = short_deadline_system
    await system.stock_up("DEAD-1", ("berlin", 2))
    system.kill("payment")
    order_id = await system.place(order_body([("DEAD-1", 1, "10.00")]))
    parked = await system.wait_status(order_id, "NEEDS_ATTENTION", "CANCELLED", timeout_s=60)
    events = [e["event"] for e in parked["timeline"]]
    assert "deadline_passed_retry" in events and "deadline_passed_give_up" in events
    # The stock compensation did run; only the void could not be confirmed.
    assert (await system.stock("DEAD-1"))["reserved"] == 0
    assert parked["status"] == "NEEDS_ATTENTION"
    assert "payment" in parked["reason"]


@pytest.mark.timeout(180)
async def test_stock_reserved_after_the_order_was_given_up_is_released_again(infra: Infra):
    overrides = {**SHORT_DEADLINES, "OMS_SAGA_COMPENSATION_TIMEOUT_S": "60"}
    system = await start_system(infra, {"order_intake": overrides})
    try:
        await system.stock_up("LATE-1", ("berlin", 3))
        system.kill("inventory")
        order_id = await system.place(order_body([("LATE-1", 1, "10.00")]))
        given_up = await system.wait_status(order_id, "CANCELLING", timeout_s=30)
        assert "inventory did not answer" in given_up["reason"]
        await system.start("inventory")
        cancelled = await system.wait_status(order_id, "CANCELLED", timeout_s=60)
        events = [e["event"] for e in cancelled["timeline"]]
        assert "late_stock_reserved_released" in events
        await asyncio.sleep(1)
        stock = await system.stock("LATE-1")
        assert (stock["on_hand"], stock["reserved"], stock["available"]) == (3, 0, 3)
        assert await system.payments(order_id) == []
    finally:
        await system.close()
