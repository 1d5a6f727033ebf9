"""The warehouse floor inside the whole system (five services as processes, real Kafka and
Postgres): an order picked, packed into two boxes, labelled and shipped in two parcels is
captured twice, commits its stock once per parcel, shows the floor's steps on its timeline and
completes when the carrier's signed webhook delivers both parcels; one whose customer cancels
after the first parcel left captures that parcel alone, its second parcel can no longer ship,
its stock is available again, and it completes when the first is delivered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from services.fulfilment.carriers.table_rate import webhook_body, webhook_headers
from shared.money import round_money
from tests.support import auth
from tests.support.env import Infra
from tests.support.floor import pack_and_label, pick_everything, set_up_floor
from tests.support.system import System, order_body, start_system

pytestmark = pytest.mark.integration

SECRET = "floor-integration-secret"


@pytest.fixture(scope="module")
async def system(infra: Infra) -> AsyncIterator[System]:
    started = await start_system(
        infra,
        {
            "order_intake": {"OMS_DEADLINE_POLL_INTERVAL_S": "0.2"},
            "fulfilment": {"OMS_TABLE_RATE_WEBHOOK_SECRET": SECRET},
        },
    )
    yield started
    await started.close()


@pytest.fixture
async def floor(system: System) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=system.url("fulfilment"), headers=auth.bearer("warehouse"), timeout=30
    ) as client:
        await set_up_floor(client)
        yield client


async def test_two_parcels_from_the_floor_capture_twice_and_complete(
    system: System, floor: httpx.AsyncClient
) -> None:
    for sku in ("MUG-1", "CUP-1", "LAMP-1"):
        await system.stock_up(sku, ("berlin", 10))
    order_id = await system.place(
        order_body([("MUG-1", 2, "12.50"), ("CUP-1", 1, "8.00"), ("LAMP-1", 1, "49.90")])
    )
    await system.wait_status(order_id, "FULFILLING")
    [fulfilment] = await system.fulfilments(order_id)
    assert fulfilment["shipping_address"]["name"] == "Ada Lovelace"  # what the label prints

    released = await floor.post("/v1/locations/berlin/pick-lists", json={"strategy": "wave"})
    assert released.status_code == 200, released.text
    [pick_list] = [
        p
        for p in released.json()["pick_lists"]
        if any(put["order_id"] == order_id for s in p["stops"] for put in s["puts"])
    ]
    assert (await pick_everything(floor, pick_list))["status"] == "picked"
    parcels = await pack_and_label(floor, fulfilment["fulfilment_id"])
    assert sorted(p["box"] for p in parcels) == ["M", "S"]
    for parcel in parcels:
        shipped = await floor.post(f"/v1/parcels/{parcel['parcel_id']}/ship")
        assert shipped.status_code == 200, shipped.text
    await system.wait_status(order_id, "SHIPPED")

    async with httpx.AsyncClient(base_url=system.url("fulfilment")) as carrier:
        for parcel in parcels:
            body = webhook_body(
                [{"tracking_number": parcel["tracking_number"], "status": "delivered"}]
            )
            answer = await carrier.post(
                "/v1/carriers/table_rate/webhooks",
                content=body,
                headers=webhook_headers(SECRET, body),
            )
            assert answer.status_code == 200, answer.text
    done = await system.wait_status(order_id, "COMPLETED")

    total = Decimal(done["totals"]["total"])
    [payment] = await system.payments(order_id)
    captures = [op for op in payment["operations"] if op["kind"] == "capture"]
    assert sorted(op["shipment_id"] for op in captures) == sorted(p["parcel_id"] for p in parcels)
    assert sum(Decimal(op["amount"]) for op in captures) == total
    assert Decimal(payment["captured_total"]) == total
    for sku, left in (("MUG-1", 8), ("CUP-1", 9), ("LAMP-1", 9)):
        stock = await system.stock(sku)
        assert (stock["on_hand"], stock["reserved"]) == (left, 0), sku
    events = [e["event"] for e in done["timeline"]]
    for step in ("pick_list_released", "line_picked", "parcel_packed", "label_created"):
        assert step in events, f"{step} missing from {events}"
    assert events.count("fulfilment_shipped") == 2
    assert events.count("payment_captured") == 2


async def test_the_customer_cancels_what_has_not_shipped_after_one_parcel_left(
    system: System, floor: httpx.AsyncClient
) -> None:
    """The small parcel leaves, then the customer cancels: the lamp's parcel can no longer
    ship, the order captures exactly the small parcel's share, the lamp is available again,
    and the order completes when the small parcel is delivered."""
    skus = ("MUG-1", "CUP-1", "LAMP-1")
    for sku in skus:
        await system.stock_up(sku, ("berlin", 10))
    before = {sku: await system.stock(sku) for sku in skus}
    order_id = await system.place(
        order_body([("MUG-1", 2, "12.50"), ("CUP-1", 1, "8.00"), ("LAMP-1", 1, "49.90")])
    )
    await system.wait_status(order_id, "FULFILLING")
    [fulfilment] = await system.fulfilments(order_id)
    released = await floor.post(
        "/v1/locations/berlin/pick-lists", json={"strategy": "single_order"}
    )
    assert released.status_code == 200, released.text
    [pick_list] = [
        p
        for p in released.json()["pick_lists"]
        if any(put["order_id"] == order_id for s in p["stops"] for put in s["puts"])
    ]
    assert (await pick_everything(floor, pick_list))["status"] == "picked"
    parcels = {p["box"]: p for p in await pack_and_label(floor, fulfilment["fulfilment_id"])}
    small, lamp = parcels["S"], parcels["M"]
    assert [(li["sku"], li["quantity"]) for li in lamp["lines"]] == [("LAMP-1", 1)]
    shipped = await floor.post(f"/v1/parcels/{small['parcel_id']}/ship")
    assert shipped.status_code == 200, shipped.text
    await system.wait_status(order_id, "PARTIALLY_SHIPPED")

    cancel = await system.cancel(order_id)
    assert cancel.status_code == 202, cancel.text
    answer = cancel.json()
    assert (answer["scope"], answer["cancel"]) == ("unshipped_rest", "pending")
    assert answer["unshipped"] == [{"sku": "LAMP-1", "quantity": 1}]
    view = await system.wait_status(order_id, "SHIPPED")
    total = Decimal(view["totals"]["total"])
    small_share = round_money(total * Decimal("33.00") / Decimal("82.90"), "EUR")
    assert Decimal(answer["not_charged"]) == total - small_share
    late = await floor.post(f"/v1/parcels/{lamp['parcel_id']}/ship")
    assert late.status_code == 409, late.text
    # The fulfilment is shipped as far as it goes (its rest cancelled): nothing more leaves.
    assert late.json()["error"]["code"] == "rest_cancelled"
    [after] = await system.fulfilments(order_id)
    assert after["status"] == "shipped"
    assert (await system.cancel(order_id)).status_code == 409, "everything left has shipped"

    async with httpx.AsyncClient(base_url=system.url("fulfilment")) as carrier:
        body = webhook_body([{"tracking_number": small["tracking_number"], "status": "delivered"}])
        delivered = await carrier.post(
            "/v1/carriers/table_rate/webhooks",
            content=body,
            headers=webhook_headers(SECRET, body),
        )
        assert delivered.status_code == 200, delivered.text
    done = await system.wait_status(order_id, "COMPLETED")

    [payment] = await system.payments(order_id)
    captures = [op for op in payment["operations"] if op["kind"] == "capture"]
    assert [(op["shipment_id"], Decimal(op["amount"])) for op in captures] == [
        (small["parcel_id"], small_share)
    ]
    assert not [op for op in payment["operations"] if op["kind"] == "void"]
    assert Decimal(payment["captured_total"]) == small_share
    assert done["payment"]["capture_target"] == str(small_share)
    assert done["payment"]["status"] == "captured"
    for sku, shipped_units in (("MUG-1", 2), ("CUP-1", 1), ("LAMP-1", 0)):
        stock = await system.stock(sku)
        expected = before[sku]["on_hand"] - shipped_units
        assert (stock["on_hand"], stock["reserved"]) == (expected, before[sku]["reserved"]), sku
        assert stock["available"] == expected - before[sku]["reserved"], sku
    events = [e["event"] for e in done["timeline"]]
    assert events.count("rest_cancelled") == 1 and events.count("fulfilment_shipped") == 1
    [rest] = [e["detail"] for e in done["timeline"] if e["event"] == "rest_cancelled"]
    assert rest["lines"] == [{"sku": "LAMP-1", "quantity": 1}]
