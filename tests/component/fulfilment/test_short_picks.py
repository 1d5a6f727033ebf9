"""Short picks in fulfilment on a real Postgres: the units a bin did not hold leave their
fulfilment, which ships what is left and completes with its last parcel, or ends without
shipping when nothing is left; AddFulfilment creates the fulfilments of re-allocated units once
(through crashes and re-sends), and never for a cancelled order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from services.fulfilment.app import build
from services.fulfilment.domain import fulfilment_id_for
from shared.contracts.common import Address, Allocation
from shared.contracts.fulfilment import (
    FulfilmentCancelled,
    FulfilmentCreated,
    FulfilmentsAdded,
    FulfilmentShipped,
    ShortPick,
    short_pick_id,
)
from shared.contracts.order_intake import AddFulfilment, CancelFulfilment, CreateFulfilment
from tests.support.component import ComponentHarness, start_harness
from tests.support.crash import CrashOnce, crash_once_for
from tests.support.env import Infra
from tests.support.floor import ITEMS, pack_and_label, set_up_floor

pytestmark = pytest.mark.component

ADDRESS = Address(line1="1 Main St", city="Berlin", postal_code="10115", country="DE")


@pytest.fixture
async def h(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


@pytest.fixture
async def client(h: ComponentHarness) -> AsyncIterator[httpx.AsyncClient]:
    async with h.http() as c:
        await set_up_floor(c)
        yield c


@pytest.fixture
def crash_once(h: ComponentHarness, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrashOnce]:
    yield from crash_once_for(h, monkeypatch)


def allocation(sku: str, location: str, quantity: int, line: str = "l1") -> Allocation:
    return Allocation(line_id=line, sku=sku, location=location, quantity=quantity)


async def create(h: ComponentHarness, order_id: str, *allocations: Allocation) -> None:
    command = CreateFulfilment(order_id=order_id, allocations=allocations, shipping_address=ADDRESS)
    await h.deliver(command, correlation_id=order_id)


async def claimed_list(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    released = await client.post(
        "/v1/locations/berlin/pick-lists", json={"strategy": "single_order"}
    )
    assert released.status_code == 200, released.text
    [pick_list] = [
        p
        for p in released.json()["pick_lists"]
        if any(put["order_id"] == order_id for s in p["stops"] for put in s["puts"])
    ]
    claim = await client.post(f"/v1/pick-lists/{pick_list['pick_list_id']}/claim")
    assert claim.status_code == 200, claim.text
    found: dict[str, Any] = pick_list
    return found


async def pick(client: httpx.AsyncClient, pick_list: dict[str, Any], sku: str) -> None:
    [stop] = [s for s in pick_list["stops"] if s["sku"] == sku]
    answer = await client.post(
        f"/v1/pick-lists/{pick_list['pick_list_id']}/picks",
        json={"stop": stop["stop"], "barcode": ITEMS[sku]["barcode"], "quantity": stop["quantity"]},
    )
    assert answer.status_code == 200, answer.text


async def empty_bin(client: httpx.AsyncClient, pick_list: dict[str, Any], sku: str) -> str:
    [stop] = [s for s in pick_list["stops"] if s["sku"] == sku]
    answer = await client.post(
        f"/v1/pick-lists/{pick_list['pick_list_id']}/stops/{stop['stop']}/empty"
    )
    assert answer.status_code == 200, answer.text
    bin_code: str = stop["bin"]
    return bin_code


async def test_the_short_units_leave_the_fulfilment_and_its_last_parcel_completes_it(
    h: ComponentHarness, client: httpx.AsyncClient
):
    await create(h, "o-1", allocation("MUG-1", "berlin", 2), allocation("CUP-1", "berlin", 1, "l2"))
    fulfilment_id = fulfilment_id_for("o-1", "berlin")
    pick_list = await claimed_list(client, "o-1")
    await pick(client, pick_list, "MUG-1")
    bin_code = await empty_bin(client, pick_list, "CUP-1")

    [short] = await h.emitted_contracts(ShortPick.TYPE)
    assert short == ShortPick(
        order_id="o-1",
        fulfilment_id=fulfilment_id,
        location="berlin",
        pick_list_id=pick_list["pick_list_id"],
        sku="CUP-1",
        missing=1,
        bin=bin_code,
        short_id=short_pick_id(fulfilment_id, pick_list["pick_list_id"], bin_code, "CUP-1"),
        fulfilment_empty=False,
    )
    view = (await client.get(f"/v1/fulfilments/{fulfilment_id}")).json()
    assert view["status"] == "created"
    assert view["lines"] == [
        {"sku": "CUP-1", "quantity": 1, "short": 1},
        {"sku": "MUG-1", "quantity": 2, "short": 0},
    ]

    [parcel] = await pack_and_label(client, fulfilment_id)
    assert [(line["sku"], line["quantity"]) for line in parcel["lines"]] == [("MUG-1", 2)]
    shipped = await client.post(f"/v1/parcels/{parcel['parcel_id']}/ship")
    assert shipped.status_code == 200, shipped.text
    [event] = await h.emitted_contracts(FulfilmentShipped.TYPE)
    assert event.fulfilment_complete, "the short unit is not waited for"
    assert [(li.sku, li.quantity) for li in event.lines] == [("MUG-1", 2)]
    view = (await client.get(f"/v1/fulfilments/{fulfilment_id}")).json()
    assert view["status"] == "shipped"


async def test_a_fulfilment_none_of_whose_units_is_found_ends_without_shipping(
    h: ComponentHarness, client: httpx.AsyncClient
):
    await create(h, "o-2", allocation("CUP-1", "berlin", 2))
    fulfilment_id = fulfilment_id_for("o-2", "berlin")
    pick_list = await claimed_list(client, "o-2")
    await empty_bin(client, pick_list, "CUP-1")
    [short] = await h.emitted_contracts(ShortPick.TYPE)
    assert (short.missing, short.fulfilment_empty) == (2, True)
    view = (await client.get(f"/v1/fulfilments/{fulfilment_id}")).json()
    assert (view["status"], view["cancel_reason"]) == ("cancelled", "short_pick")
    packed = await client.post(f"/v1/fulfilments/{fulfilment_id}/parcels")
    assert packed.status_code == 409

    # A later cancel of the order reports it as cancelled.
    await h.deliver(CancelFulfilment(order_id="o-2", reason="customer"), correlation_id="o-2")
    [answer] = await h.emitted_contracts(FulfilmentCancelled.TYPE)
    assert answer.cancelled == (fulfilment_id,)


def add(order_id: str, short_id: str, *allocations: Allocation) -> AddFulfilment:
    return AddFulfilment(
        order_id=order_id,
        short_id=short_id,
        allocations=allocations,
        shipping_address=ADDRESS,
        shipping_method="express",
    )


async def test_add_fulfilment_creates_the_re_allocated_units_fulfilments_once(
    h: ComponentHarness, client: httpx.AsyncClient, crash_once: CrashOnce
):
    await create(
        h, "o-3", allocation("MUG-1", "berlin", 2), allocation("CUP-1", "hamburg", 1, "l2")
    )
    await h.clear_outbox()
    command = add("o-3", "s-1", allocation("MUG-1", "hamburg", 1), allocation("MUG-1", "munich", 1))
    crash_once("before_db_commit")
    await h.deliver(command, correlation_id="o-3")
    crash_once("after_db_commit")
    sent = await h.deliver(command, correlation_id="o-3")  # re-sent: the same answer
    await h.deliver(command, correlation_id="o-3", envelope=sent)  # redelivered: dropped
    assert crash_once.crashed == ["before_db_commit", "after_db_commit"]

    first, again = await h.emitted_contracts(FulfilmentsAdded.TYPE)
    assert first == again
    hamburg, munich = (
        fulfilment_id_for("o-3", "hamburg", "s-1"),
        fulfilment_id_for("o-3", "munich", "s-1"),
    )
    assert [(f.fulfilment_id, f.location) for f in first.fulfilments] == [
        (hamburg, "hamburg"),
        (munich, "munich"),
    ]
    assert hamburg != fulfilment_id_for("o-3", "hamburg"), "a second fulfilment at hamburg"
    rows = await h.fetch(
        "SELECT location, reallocated_for_short, shipping_method, status FROM fulfilments"
        " WHERE order_id = 'o-3' ORDER BY location, reallocated_for_short NULLS FIRST"
    )
    assert [tuple(r) for r in rows] == [
        ("berlin", None, None, "created"),
        ("hamburg", None, None, "created"),
        ("hamburg", "s-1", "express", "created"),
        ("munich", "s-1", "express", "created"),
    ]
    # A CreateFulfilment re-sent now answers with the order's first fulfilments only.
    await create(
        h, "o-3", allocation("MUG-1", "berlin", 2), allocation("CUP-1", "hamburg", 1, "l2")
    )
    [created] = await h.emitted_contracts(FulfilmentCreated.TYPE)
    assert {f.location for f in created.fulfilments} == {"berlin", "hamburg"}
    assert len(created.fulfilments) == 2
    assert not h.dead_letters


async def test_add_fulfilment_after_the_order_was_cancelled_adds_nothing(h: ComponentHarness):
    await create(h, "o-4", allocation("MUG-1", "berlin", 2))
    await h.deliver(CancelFulfilment(order_id="o-4", reason="customer"), correlation_id="o-4")
    await h.clear_outbox()
    await h.deliver(add("o-4", "s-1", allocation("MUG-1", "hamburg", 1)), correlation_id="o-4")
    assert await h.emitted(FulfilmentsAdded.TYPE) == []
    [answer] = await h.emitted_contracts(FulfilmentCancelled.TYPE)
    assert answer.cancelled == (fulfilment_id_for("o-4", "berlin"),)
    rows = await h.fetch("SELECT count(*) AS n FROM fulfilments WHERE order_id = 'o-4'")
    assert rows[0]["n"] == 1
