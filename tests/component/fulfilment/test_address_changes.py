"""UpdateShippingAddress on a real Postgres: unpicked fulfilments take the new address (and the
label printed later carries it); once a pick list is released the change is refused whole; a
re-sent command, after a crash or not, answers what the first answered."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.fulfilment.app import build
from services.fulfilment.settings import FulfilmentSettings
from shared.contracts.common import Address, Allocation
from shared.contracts.fulfilment import ShippingAddressChangeRefused, ShippingAddressUpdated
from shared.contracts.order_intake import CreateFulfilment, UpdateShippingAddress
from tests.support.component import ComponentHarness, start_harness
from tests.support.crash import CrashOnce, crash_once_for
from tests.support.env import Infra
from tests.support.floor import pack_and_label, pick_everything, set_up_floor

pytestmark = pytest.mark.component

OLD = Address(line1="Invalidenstr. 116", city="Berlin", postal_code="10115", country="DE")
NEW = Address(line1="Jungfernstieg 7", city="Hamburg", postal_code="20095", country="DE")


@pytest.fixture
async def h(infra: Infra) -> AsyncIterator[ComponentHarness]:
    settings = FulfilmentSettings(table_rate_webhook_secret=SecretStr("address-test-secret"))
    async for harness in start_harness(infra, build(settings)):
        yield harness


@pytest.fixture
async def client(h: ComponentHarness) -> AsyncIterator[httpx.AsyncClient]:
    async with h.http() as c:
        await set_up_floor(c)
        yield c


@pytest.fixture
def crash_once(h: ComponentHarness, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrashOnce]:
    yield from crash_once_for(h, monkeypatch)


async def create(h: ComponentHarness, order_id: str, *lines: tuple[str, int]) -> str:
    await h.deliver(
        CreateFulfilment(
            order_id=order_id,
            allocations=tuple(
                Allocation(line_id=f"l{i}", sku=sku, location="berlin", quantity=quantity)
                for i, (sku, quantity) in enumerate(lines)
            ),
            shipping_address=OLD,
            shipping_method="standard",
            recipient_name="Ada Lovelace",
        ),
        correlation_id=order_id,
    )
    [row] = await h.fetch("SELECT fulfilment_id FROM fulfilments WHERE order_id = $1", order_id)
    fulfilment_id: str = row["fulfilment_id"]
    return fulfilment_id


def change(order_id: str, change_id: str = "e1", address: Address = NEW) -> UpdateShippingAddress:
    return UpdateShippingAddress(
        order_id=order_id,
        change_id=f"{order_id}:edit:{change_id}",
        shipping_address=address,
        recipient_name="Ada Lovelace",
    )


async def shown_address(client: httpx.AsyncClient, fulfilment_id: str) -> dict[str, Any]:
    answer = await client.get(f"/v1/fulfilments/{fulfilment_id}")
    assert answer.status_code == 200, answer.text
    address: dict[str, Any] = answer.json()["shipping_address"]
    return address


async def release_pick_list(client: httpx.AsyncClient) -> dict[str, Any]:
    released = await client.post(
        "/v1/locations/berlin/pick-lists", json={"strategy": "single_order"}
    )
    assert released.status_code == 200, released.text
    [pick_list] = released.json()["pick_lists"]
    found: dict[str, Any] = pick_list
    return found


async def test_an_unpicked_fulfilment_takes_the_new_address_and_its_label_prints_it(
    h: ComponentHarness, client: httpx.AsyncClient
):
    fid = await create(h, "o-addr-1", ("MUG-1", 1))
    await h.deliver(change("o-addr-1"), correlation_id="o-addr-1")
    [answer] = await h.emitted_contracts("ShippingAddressUpdated")
    assert answer == ShippingAddressUpdated(
        order_id="o-addr-1", change_id="o-addr-1:edit:e1", updated=(fid,)
    )
    shown = await shown_address(client, fid)
    assert (shown["line1"], shown["city"], shown["postal_code"]) == (
        "Jungfernstieg 7",
        "Hamburg",
        "20095",
    )
    assert shown["name"] == "Ada Lovelace"

    assert (await pick_everything(client, await release_pick_list(client)))["status"] == "picked"
    [parcel] = await pack_and_label(client, fid)
    zpl = await client.get(f"/v1/parcels/{parcel['parcel_id']}/label.zpl")
    assert zpl.status_code == 200
    assert "Jungfernstieg 7" in zpl.text and "Invalidenstr" not in zpl.text


async def test_once_the_pick_list_is_released_the_change_is_refused_and_nothing_changes(
    h: ComponentHarness, client: httpx.AsyncClient
):
    fid = await create(h, "o-addr-2", ("MUG-1", 1))
    await release_pick_list(client)
    await h.deliver(change("o-addr-2"), correlation_id="o-addr-2")
    [refused] = await h.emitted_contracts("ShippingAddressChangeRefused")
    assert isinstance(refused, ShippingAddressChangeRefused)
    assert (refused.code, refused.fulfilments) == ("picking_started", (fid,))
    assert await h.emitted("ShippingAddressUpdated") == []
    assert (await shown_address(client, fid))["line1"] == "Invalidenstr. 116"


async def test_a_resent_change_answers_as_the_first_even_after_picking_started(
    h: ComponentHarness, client: httpx.AsyncClient
):
    fid = await create(h, "o-addr-3", ("MUG-1", 1))
    await h.deliver(change("o-addr-3"), correlation_id="o-addr-3")
    await release_pick_list(client)
    await h.deliver(change("o-addr-3"), correlation_id="o-addr-3")  # re-sent: new message id
    first, second = await h.emitted_contracts("ShippingAddressUpdated")
    assert first == second and first.updated == (fid,)
    assert await h.emitted("ShippingAddressChangeRefused") == []
    # A new change now is refused: picking started.
    other = Address(line1="Elbchaussee 1", city="Hamburg", postal_code="22763", country="DE")
    await h.deliver(change("o-addr-3", "e2", other), correlation_id="o-addr-3")
    [refused] = await h.emitted_contracts("ShippingAddressChangeRefused")
    assert refused.change_id == "o-addr-3:edit:e2"
    assert (await shown_address(client, fid))["line1"] == "Jungfernstieg 7"


async def test_a_change_for_every_open_fulfilment_of_the_order(h: ComponentHarness):
    await h.deliver(
        CreateFulfilment(
            order_id="o-addr-4",
            allocations=(
                Allocation(line_id="l1", sku="MUG-1", location="WH-1", quantity=1),
                Allocation(line_id="l2", sku="CUP-1", location="WH-2", quantity=1),
            ),
            shipping_address=OLD,
        ),
        correlation_id="o-addr-4",
    )
    await h.deliver(change("o-addr-4"), correlation_id="o-addr-4")
    [answer] = await h.emitted_contracts("ShippingAddressUpdated")
    assert len(answer.updated) == 2
    rows = await h.fetch("SELECT shipping_address FROM fulfilments WHERE order_id = 'o-addr-4'")
    assert {r["shipping_address"]["city"] for r in rows} == {"Hamburg"}


async def test_the_change_survives_a_crash_before_commit_and_a_redelivery_after(
    h: ComponentHarness, client: httpx.AsyncClient, crash_once: CrashOnce
):
    fid = await create(h, "o-addr-5", ("MUG-1", 1))
    await h.clear_outbox()
    command = change("o-addr-5")
    crash_once("before_db_commit")
    await h.deliver(command, correlation_id="o-addr-5")
    crash_once("after_db_commit")
    await h.deliver(command, correlation_id="o-addr-5")
    assert crash_once.crashed == ["before_db_commit", "after_db_commit"]
    assert not h.dead_letters
    answers = await h.emitted_contracts("ShippingAddressUpdated")
    assert answers and all(a == answers[0] for a in answers)
    assert answers[0].updated == (fid,)
    rows = await h.fetch("SELECT outcome FROM address_changes WHERE order_id = 'o-addr-5'")
    assert [r["outcome"] for r in rows] == ["updated"]
    assert (await shown_address(client, fid))["city"] == "Hamburg"
