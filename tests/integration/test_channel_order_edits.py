"""Order edits from Shopify across the services, as real processes on real Kafka and Postgres:
an `orders/updated` webhook with a new shipping address before picking reaches the order's
fulfilment (the address labels will print); after the order was picked the same kind of edit is
refused, the order's timeline says so and one OperatorAlert goes out on the notifications
topic."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from shared.topics import NOTIFICATIONS
from tests.support import auth
from tests.support.env import Infra
from tests.support.floor import pick_everything, set_up_floor
from tests.support.kafka import Seen, wait_for_records
from tests.support.services import eventually
from tests.support.system import System, start_system
from tests.unit.channels import payloads

pytestmark = pytest.mark.integration

SKUS = ("MUG-1", "CUP-1")  # both lie in bins of the test floor


@pytest.fixture(scope="module")
async def system(infra: Infra) -> AsyncIterator[System]:
    started = await start_system(
        infra,
        {
            "order_intake": {
                "OMS_SHOPIFY_WEBHOOK_SECRET": payloads.SHOPIFY_SECRET,
                "OMS_DEADLINE_POLL_INTERVAL_S": "0.2",
            },
        },
    )
    yield started
    await started.close()


@pytest.fixture(scope="module")
async def floor(system: System) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=system.url("fulfilment"), headers=auth.bearer("warehouse"), timeout=30
    ) as client:
        await set_up_floor(client)
        yield client


def moved(payload: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    changed["shipping_address"].update(
        {
            "address1": "Jungfernstieg 7",
            "address2": None,
            "city": "Hamburg",
            "province": "Hamburg",
            "province_code": "HH",
            "zip": "20095",
        }
    )
    return changed


async def post_shopify(
    system: System, payload: dict[str, Any], *, topic: str, webhook_id: str
) -> httpx.Response:
    raw = payloads.body(payload)
    return await system.client.post(
        f"{system.url('order_intake')}/v1/channels/shopify/orders",
        content=raw,
        headers=payloads.shopify_headers(raw, topic=topic, webhook_id=webhook_id),
    )


async def fulfilling_order(system: System, shopify_id: int) -> tuple[dict[str, Any], str]:
    for sku in SKUS:
        await system.stock_up(sku, ("berlin", 10))
    payload = payloads.shopify_order(order_id=shopify_id, skus=SKUS)
    created = await post_shopify(
        system, payload, topic="orders/create", webhook_id=f"create-{shopify_id}"
    )
    assert created.status_code == 202, created.text
    order_id: str = created.json()["order_id"]
    await system.wait_status(order_id, "FULFILLING")
    return payload, order_id


def events(order: dict[str, Any], event: str) -> list[dict[str, Any]]:
    return [e for e in order["timeline"] if e["event"] == event]


async def test_an_address_edit_before_picking_updates_the_fulfilment(system: System) -> None:
    payload, order_id = await fulfilling_order(system, 7300000000001)
    [before] = await system.fulfilments(order_id)
    assert before["shipping_address"]["city"] == "Berlin"

    edited = await post_shopify(
        system, moved(payload), topic="orders/updated", webhook_id="edit-7300000000001"
    )
    assert edited.status_code == 202, edited.text
    assert edited.json()["outcome"] == "edit_requested"

    async def fulfilment_moved() -> dict[str, Any] | None:
        [fulfilment] = await system.fulfilments(order_id)
        return fulfilment if fulfilment["shipping_address"]["city"] == "Hamburg" else None

    fulfilment = await eventually(fulfilment_moved, timeout_s=60, message="address at fulfilment")
    shipping = fulfilment["shipping_address"]
    assert (shipping["line1"], shipping["postal_code"], shipping["name"]) == (
        "Jungfernstieg 7",
        "20095",
        "Ada Lovelace",
    )

    async def order_moved() -> dict[str, Any] | None:
        order = await system.order(order_id)
        return order if events(order, "shipping_address_changed") else None

    order = await eventually(order_moved, timeout_s=60, message="address on the order")
    assert order["shipping_address"]["city"] == "Hamburg"
    assert order["status"] == "FULFILLING"
    [changed] = events(order, "shipping_address_changed")
    assert changed["detail"]["fulfilments"] == [fulfilment["fulfilment_id"]]

    again = await post_shopify(
        system, moved(payload), topic="orders/updated", webhook_id="edit-7300000000001-retry"
    )
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"


async def test_an_address_edit_after_picking_is_refused_and_alerted(
    system: System, floor: httpx.AsyncClient
) -> None:
    payload, order_id = await fulfilling_order(system, 7300000000002)
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

    async def picked() -> dict[str, Any] | None:
        order = await system.order(order_id)
        return order if events(order, "line_picked") else None

    await eventually(picked, timeout_s=60, message="the floor's picks on the timeline")

    edited = await post_shopify(
        system, moved(payload), topic="orders/updated", webhook_id="edit-7300000000002"
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["outcome"] == "edit_refused"
    assert "picking" in edited.json()["reason"]
    retried = await post_shopify(
        system, moved(payload), topic="orders/updated", webhook_id="edit-7300000000002-2"
    )
    assert retried.json()["outcome"] == "duplicate"

    order = await system.order(order_id)
    assert order["shipping_address"]["city"] == "Berlin"
    [refusal] = events(order, "channel_edit_refused")
    assert (refusal["detail"]["code"], refusal["detail"]["kind"]) == ("picking_started", "address")
    [fulfilment] = await system.fulfilments(order_id)
    assert fulfilment["shipping_address"]["city"] == "Berlin"

    def alerts(records: list[Seen]) -> list[dict[str, Any]]:
        found = []
        for record in records:
            if record.value is None:
                continue
            envelope = orjson.loads(record.value)
            body = envelope["payload"]
            if envelope["type"] == "OperatorAlert" and body["order_id"] == order_id:
                found.append(body)
        return found

    records = await wait_for_records(
        system.env.kafka,
        system.env.topic(NOTIFICATIONS),
        lambda seen: bool(alerts(seen)),
        timeout_s=60,
    )
    [alert] = alerts(records)
    assert alert["kind"] == "channel_edit_refused"
    assert "picking" in alert["message"]
