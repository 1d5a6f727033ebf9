"""A short pick inside the whole system (five services as processes, real Kafka and Postgres):
stock at berlin and hamburg, an order allocated to berlin, the picker finds berlin's bin of one
SKU empty → the missing units are written off at berlin and reserved at hamburg, hamburg gets a
fulfilment of its own, both locations pick, pack and ship, and the order completes capturing
its total, with stock conserved (on hand before - shipped - written off = on hand after) and
nothing left reserved."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support import auth
from tests.support.env import Infra
from tests.support.floor import ITEMS, pack_and_label, pick_everything, set_up_floor
from tests.support.system import System, order_body, start_system

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def system(infra: Infra) -> AsyncIterator[System]:
    started = await start_system(infra, {"order_intake": {"OMS_DEADLINE_POLL_INTERVAL_S": "0.2"}})
    yield started
    await started.close()


@pytest.fixture
async def floor(system: System) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=system.url("fulfilment"), headers=auth.bearer("warehouse"), timeout=30
    ) as client:
        for location in ("berlin", "hamburg"):
            await set_up_floor(client, location)
        yield client


async def release_list(floor: httpx.AsyncClient, location: str, order_id: str) -> dict[str, Any]:
    released = await floor.post(
        f"/v1/locations/{location}/pick-lists", json={"strategy": "single_order"}
    )
    assert released.status_code == 200, released.text
    [pick_list] = [
        p
        for p in released.json()["pick_lists"]
        if any(put["order_id"] == order_id for s in p["stops"] for put in s["puts"])
    ]
    found: dict[str, Any] = pick_list
    return found


async def wait_fulfilments(system: System, order_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = await system.fulfilments(order_id)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"order {order_id} has {len(found)} fulfilments, not {count}")


def at(stock: dict[str, Any], location: str) -> tuple[int, int]:
    [row] = [r for r in stock["locations"] if r["location"] == location]
    return row["on_hand"], row["reserved"]


async def test_a_bin_found_empty_is_reallocated_to_another_location_and_the_order_completes(
    system: System, floor: httpx.AsyncClient
) -> None:
    await system.stock_up("MUG-1", ("berlin", 5))
    await system.stock_up("CUP-1", ("berlin", 5), ("hamburg", 5))
    before = {sku: (await system.stock(sku))["on_hand"] for sku in ("MUG-1", "CUP-1")}
    order_id = await system.place(order_body([("MUG-1", 1, "12.50"), ("CUP-1", 2, "8.00")]))
    await system.wait_status(order_id, "FULFILLING")
    [berlin] = await system.fulfilments(order_id)
    assert berlin["location"] == "berlin"

    # The picker takes the mug and finds the cups' bin empty.
    pick_list = await release_list(floor, "berlin", order_id)
    list_id = pick_list["pick_list_id"]
    assert (await floor.post(f"/v1/pick-lists/{list_id}/claim")).status_code == 200
    [mugs] = [s for s in pick_list["stops"] if s["sku"] == "MUG-1"]
    [cups] = [s for s in pick_list["stops"] if s["sku"] == "CUP-1"]
    picked = await floor.post(
        f"/v1/pick-lists/{list_id}/picks",
        json={"stop": mugs["stop"], "barcode": ITEMS["MUG-1"]["barcode"], "quantity": 1},
    )
    assert picked.status_code == 200, picked.text
    empty = await floor.post(f"/v1/pick-lists/{list_id}/stops/{cups['stop']}/empty")
    assert empty.status_code == 200 and empty.json()["status"] == "short", empty.text

    # Re-allocated: hamburg gets a fulfilment of its own for the two cups.
    fulfilments = await wait_fulfilments(system, order_id, 2)
    [hamburg] = [f for f in fulfilments if f["location"] == "hamburg"]
    assert [(li["sku"], li["quantity"]) for li in hamburg["lines"]] == [("CUP-1", 2)]
    cups_stock = await system.stock("CUP-1")
    assert at(cups_stock, "berlin") == (3, 0), "written off at berlin: not there"
    assert at(cups_stock, "hamburg") == (5, 2), "reserved at hamburg"

    # berlin ships the mug, hamburg the cups.
    [berlin_parcel] = await pack_and_label(floor, berlin["fulfilment_id"])
    assert [(li["sku"], li["quantity"]) for li in berlin_parcel["lines"]] == [("MUG-1", 1)]
    shipped = await floor.post(f"/v1/parcels/{berlin_parcel['parcel_id']}/ship")
    assert shipped.status_code == 200, shipped.text
    hamburg_list = await release_list(floor, "hamburg", order_id)
    assert (await pick_everything(floor, hamburg_list))["status"] == "picked"
    for parcel in await pack_and_label(floor, hamburg["fulfilment_id"]):
        shipped = await floor.post(f"/v1/parcels/{parcel['parcel_id']}/ship")
        assert shipped.status_code == 200, shipped.text
    await system.wait_status(order_id, "SHIPPED")
    for fulfilment in (berlin, hamburg):
        delivered = await system.deliver(fulfilment["fulfilment_id"])
        assert delivered.status_code == 200, delivered.text
    done = await system.wait_status(order_id, "COMPLETED")

    total = Decimal(done["totals"]["total"])
    [payment] = await system.payments(order_id)
    captures = [op for op in payment["operations"] if op["kind"] == "capture"]
    assert len(captures) == 2
    assert sum(Decimal(op["amount"]) for op in captures) == total
    assert Decimal(payment["captured_total"]) == total

    shipped_units = {"MUG-1": 1, "CUP-1": 2}
    written_off = {"MUG-1": 0, "CUP-1": 2}
    for sku in ("MUG-1", "CUP-1"):
        stock = await system.stock(sku)
        assert stock["on_hand"] == before[sku] - shipped_units[sku] - written_off[sku], sku
        assert stock["reserved"] == 0, sku
    cups_stock = await system.stock("CUP-1")
    assert at(cups_stock, "berlin") == (3, 0) and at(cups_stock, "hamburg") == (3, 0)
    async with httpx.AsyncClient(
        base_url=system.url("inventory"), headers=auth.bearer("admin"), timeout=30
    ) as inventory:
        ledger = (await inventory.get("/v1/stock/CUP-1/ledger")).json()
    [write_off] = [e for e in ledger["entries"] if e["reason"] == "short_pick"]
    assert (write_off["location"], write_off["on_hand_delta"]) == ("berlin", -2)

    events = [e["event"] for e in done["timeline"]]
    for step in ("short_pick", "reallocating", "stock_reallocated", "fulfilment_added"):
        assert events.count(step) == 1, f"{step} in {events}"
    assert events.count("fulfilment_shipped") == 2
    [short] = done["fulfilment"]["short_picks"]
    assert (short["sku"], short["quantity"], short["state"]) == ("CUP-1", 2, "reallocated")
