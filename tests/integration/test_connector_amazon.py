"""Amazon both ways, every service a real process on real Kafka and Postgres, Amazon's SP-API a
local double: an order on Amazon is polled by the channel connector (getOrders +
getOrderItems), becomes an OMS order paid on Amazon, ships, and Amazon receives exactly one
confirmShipment with the order's items; its listings get the available quantity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.support.amazon_double import MARKETPLACE_US, AmazonDouble
from tests.support.connector import start_system_with_connector
from tests.support.env import Infra
from tests.support.services import eventually
from tests.support.system import System
from tests.unit.channels import payloads

pytestmark = pytest.mark.integration

ACCOUNT = "amazon-us"


@pytest.fixture(scope="module")
def double() -> Iterator[AmazonDouble]:
    with AmazonDouble().serving() as served:
        yield served


@pytest.fixture(scope="module")
async def system(infra: Infra, double: AmazonDouble) -> AsyncIterator[System]:
    started = await start_system_with_connector(
        infra,
        [double.account(ACCOUNT, poll_interval_s=3600, stock_push_interval_s=1)],
    )
    yield started
    await started.close()


async def orders_of(system: System, external_id: str) -> list[dict[str, Any]]:
    response = await system.client.get(
        f"{system.url('order_intake')}/v1/orders", params={"channel": "amazon"}
    )
    assert response.status_code == 200, response.text
    return [o for o in response.json()["orders"] if o["external_id"] == external_id]


async def test_a_polled_amazon_order_ships_and_amazon_gets_one_confirmation(
    system: System, double: AmazonDouble
) -> None:
    skus = ("CN-AMZ-MUG", "CN-AMZ-TEE")
    await system.stock_up(skus[0], ("berlin", 10))
    await system.stock_up(skus[1], ("berlin", 6))
    external_id = double.add_order(payloads.amazon_order("113-0000000-0000017", skus=skus))

    polled = await system.client.post(
        f"{system.url('channel_connector')}/v1/connectors/{ACCOUNT}/poll"
    )
    assert polled.status_code == 200, polled.text
    assert polled.json()["handed_on"] == 1
    assert double.calls("getOrders") >= 1 and double.token_grants >= 1

    async def the_order() -> list[dict[str, Any]]:
        return await orders_of(system, external_id)

    [order] = await eventually(the_order, timeout_s=60, message="the polled Amazon order")
    order_id = order["order_id"]
    view = await system.wait_status(order_id, "FULFILLING")
    assert view["payment"]["status"] == "paid_externally"
    assert await system.payments(order_id) == [], "Amazon took the money: no authorisation"
    assert view["totals"]["total"] == "75.61"

    # Polling again hands nothing on twice.
    again = await system.client.post(
        f"{system.url('channel_connector')}/v1/connectors/{ACCOUNT}/poll"
    )
    assert again.json()["handed_on"] == 0

    [fulfilment] = await system.fulfilments(order_id)
    shipped = await system.ship(
        fulfilment["fulfilment_id"], carrier="ups", tracking_number="1Z999AA10123456784"
    )
    assert shipped.status_code == 200, shipped.text

    async def confirmations() -> list[tuple[str, dict[str, Any]]]:
        return [c for c in double.confirmations if c[0] == external_id]

    [(_order, body)] = await eventually(
        confirmations, timeout_s=60, message="Amazon's shipment confirmation"
    )
    assert body["marketplaceId"] == MARKETPLACE_US
    detail = body["packageDetail"]
    assert (detail["carrierCode"], detail["trackingNumber"]) == ("UPS", "1Z999AA10123456784")
    assert detail["packageReferenceId"].isdigit()
    assert sorted((i["orderItemId"], i["quantity"]) for i in detail["orderItems"]) == [
        ("52852651034158", 3),
        ("52852651034159", 2),
    ]
    assert double.orders[external_id]["OrderStatus"] == "Shipped"

    async def push_done() -> list[dict[str, Any]]:
        response = await system.client.get(
            f"{system.url('channel_connector')}/v1/connectors/pushes",
            params={"order_id": order_id, "kind": "shipment"},
        )
        assert response.status_code == 200, response.text
        return [p for p in response.json()["pushes"] if p["status"] == "done"]

    [push] = await eventually(push_done, timeout_s=30, message="the shipment push done")
    assert push["attempts"] == 1
    await asyncio.sleep(1.0)  # the sender keeps running: still exactly one confirmation
    assert len(await confirmations()) == 1 and double.package_edits == []

    # The listings carry what Amazon may sell: 10 mugs, 3 sold, 2 held back for Amazon.
    async def mugs_listed() -> list[int]:
        return [q for sku, q in double.quantities.items() if sku == skus[0] and q == 5]

    await eventually(mugs_listed, timeout_s=60, message="the mug listing at 5")
