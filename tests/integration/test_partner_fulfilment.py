"""3PL and dropship fulfilment inside the whole system (services as processes, real Kafka and
Postgres, a partner's HTTP endpoint on 127.0.0.1): an order split across the own warehouse and
a 3PL — the warehouse ships two parcels, the 3PL confirms its shipment — captures three times
and completes with stock committed exactly; a dropship order gets its purchase order and
completes on the supplier's confirmation."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.fulfilment.partners.signing import signed_headers
from tests.support import auth
from tests.support.env import Infra
from tests.support.floor import ADDRESS, pack_and_label, pick_everything, set_up_floor
from tests.support.partner_receiver import PartnerReceiver
from tests.support.system import System, order_body, start_system

pytestmark = pytest.mark.integration

SECRET = b"partner-integration-secret"


@pytest.fixture(scope="module")
def receiver() -> Iterator[PartnerReceiver]:
    running = PartnerReceiver(SECRET).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
async def system(infra: Infra, receiver: PartnerReceiver) -> AsyncIterator[System]:
    secrets = {"tpl": SECRET.decode(), "supplier": SECRET.decode()}
    started = await start_system(
        infra,
        {
            "order_intake": {"OMS_DEADLINE_POLL_INTERVAL_S": "0.2"},
            "fulfilment": {
                "OMS_PARTNER_SECRETS": json.dumps(secrets),
                "OMS_PARTNER_POLL_INTERVAL_S": "0.2",
                "OMS_PARTNER_RETRY_INITIAL_S": "0.2",
            },
        },
    )
    yield started
    await started.close()


@pytest.fixture(scope="module")
async def fulfilment(system: System, receiver: PartnerReceiver) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=system.url("fulfilment"), headers=auth.bearer("admin"), timeout=30
    ) as client:
        await set_up_floor(client)
        for code, kind in (("tpl", "3pl"), ("supplier", "dropship_supplier")):
            put = await client.put(
                f"/v1/locations/{code}", json={"kind": kind, "name": code, "address": ADDRESS}
            )
            assert put.status_code in (200, 201), put.text
            connector = await client.put(
                f"/v1/locations/{code}/connector",
                json={"kind": "webhook", "url": receiver.url, "deadline_hours": 24},
            )
            assert connector.status_code in (200, 201), connector.text
        yield client


async def _request_for(receiver: PartnerReceiver, order_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for got in receiver.received:
            body = got.json()
            if got.signature_valid and json.dumps(body).find(order_id) >= 0:
                found: dict[str, Any] = body
                return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"no signed request for {order_id} reached the partner")


async def _confirm(
    system: System, location: str, fulfilment_id: str, lines: list[dict[str, Any]], tracking: str
) -> None:
    body = json.dumps(
        {
            "fulfilment_id": fulfilment_id,
            "parcels": [{"carrier": "dhl", "tracking_number": tracking, "lines": lines}],
        }
    ).encode()
    async with httpx.AsyncClient(base_url=system.url("fulfilment")) as partner:
        answer = await partner.post(
            f"/v1/partners/{location}/shipments",
            content=body,
            headers={
                "Content-Type": "application/json",
                **signed_headers(SECRET, body, time.time()),
            },
        )
    assert answer.status_code == 200, answer.text


async def _captures(system: System, order_id: str) -> list[dict[str, Any]]:
    [payment] = await system.payments(order_id)
    return [op for op in payment["operations"] if op["kind"] == "capture"]


async def test_an_order_split_across_the_warehouse_and_a_3pl_completes(
    system: System, fulfilment: httpx.AsyncClient, receiver: PartnerReceiver
) -> None:
    for sku in ("MUG-1", "LAMP-1"):
        await system.stock_up(sku, ("berlin", 5))
    await system.stock_up("BOOK-1", ("tpl", 5))
    order_id = await system.place(
        order_body([("MUG-1", 1, "12.50"), ("LAMP-1", 1, "49.90"), ("BOOK-1", 2, "9.99")])
    )
    await system.wait_status(order_id, "FULFILLING")
    by_location = {f["location"]: f for f in await system.fulfilments(order_id)}
    assert set(by_location) == {"berlin", "tpl"}

    request = await _request_for(receiver, order_id)
    assert request["fulfilment_id"] == by_location["tpl"]["fulfilment_id"]

    released = await fulfilment.post("/v1/locations/berlin/pick-lists", json={})
    [pick_list] = [
        p
        for p in released.json()["pick_lists"]
        if any(put["order_id"] == order_id for s in p["stops"] for put in s["puts"])
    ]
    await pick_everything(fulfilment, pick_list)
    parcels = await pack_and_label(fulfilment, by_location["berlin"]["fulfilment_id"])
    assert len(parcels) == 2
    for parcel in parcels:
        assert (await fulfilment.post(f"/v1/parcels/{parcel['parcel_id']}/ship")).status_code == 200
    await system.wait_status(order_id, "PARTIALLY_SHIPPED")

    await _confirm(
        system,
        "tpl",
        by_location["tpl"]["fulfilment_id"],
        [{"sku": "BOOK-1", "quantity": 2}],
        "3PL-TRACK-1",
    )
    await system.wait_status(order_id, "SHIPPED")
    for found in by_location.values():
        delivered = await system.deliver(found["fulfilment_id"])
        assert delivered.status_code == 200, delivered.text
    done = await system.wait_status(order_id, "COMPLETED")

    captures = await _captures(system, order_id)
    assert len(captures) == 3  # two parcels from berlin, one from the 3PL
    assert sum(Decimal(c["amount"]) for c in captures) == Decimal(done["totals"]["total"])
    for sku, left in (("MUG-1", 4), ("LAMP-1", 4), ("BOOK-1", 3)):
        stock = await system.stock(sku)
        assert (stock["on_hand"], stock["reserved"]) == (left, 0), sku


async def test_a_dropship_order_gets_a_purchase_order_and_completes(
    system: System, fulfilment: httpx.AsyncClient, receiver: PartnerReceiver
) -> None:
    await system.stock_up("CHAIR-1", ("supplier", 3))
    order_id = await system.place(order_body([("CHAIR-1", 1, "149.00")]))
    await system.wait_status(order_id, "FULFILLING")
    [found] = await system.fulfilments(order_id)
    purchase_order = await _request_for(receiver, order_id)
    po = purchase_order["purchase_order"]
    assert po["number"] and po["supplier"]["code"] == "supplier"
    assert base64.b64decode(po["pdf_base64"]).startswith(b"%PDF")
    await _confirm(
        system,
        "supplier",
        found["fulfilment_id"],
        [{"sku": "CHAIR-1", "quantity": 1}],
        "DROP-TRACK-1",
    )
    await system.wait_status(order_id, "SHIPPED")
    assert (await system.deliver(found["fulfilment_id"])).status_code == 200
    done = await system.wait_status(order_id, "COMPLETED")
    [capture] = await _captures(system, order_id)
    assert Decimal(capture["amount"]) == Decimal(done["totals"]["total"])
