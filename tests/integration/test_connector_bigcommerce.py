"""BigCommerce end to end, every service a real process on real Kafka and Postgres, BigCommerce a
local double of its store API: the store's id-only `store/order/created` webhook reaches the
channel connector, which verifies it, fetches the order with its products and shipping
addresses and hands it to order-intake; the order is confirmed paid by BigCommerce with the
right lines and money; shipped in the OMS, it becomes exactly one shipment in BigCommerce on
the right order products. The status webhook BigCommerce sends back after that shipment, and a
redelivery of the first webhook, change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.support.bigcommerce_double import TEST_TOKEN, BigCommerceDouble, webhook_body
from tests.support.connector import start_system_with_connector
from tests.support.env import Infra
from tests.support.services import eventually
from tests.support.system import CONNECTOR, System
from tests.unit.channels.bigcommerce_payloads import STORE_HASH, Item

pytestmark = pytest.mark.integration

SECRET = "bc-webhook-header-secret"
CLIENT_SECRET = "bc-app-client-secret"
ACCOUNT = "bc-main"


@pytest.fixture(scope="module")
def double() -> Iterator[BigCommerceDouble]:
    with BigCommerceDouble().serving() as served:
        yield served


@pytest.fixture(scope="module")
async def system(infra: Infra, double: BigCommerceDouble) -> AsyncIterator[System]:
    started = await start_system_with_connector(
        infra,
        [
            {
                "name": ACCOUNT,
                "channel": "bigcommerce",
                "api_base": double.base_url,
                "credentials": {
                    "access_token": TEST_TOKEN,
                    "webhook_secret": SECRET,
                    "client_secret": CLIENT_SECRET,
                },
                "options": {"store_hash": STORE_HASH},
                "stock_push_interval_s": 0.5,
            }
        ],
    )
    yield started
    await started.close()


async def bigcommerce_orders(system: System) -> list[dict[str, Any]]:
    response = await system.client.get(
        f"{system.url('order_intake')}/v1/orders", params={"channel": "bigcommerce"}
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["orders"]
    return found


async def test_a_bigcommerce_order_comes_in_by_webhook_and_its_shipment_goes_back_once(
    system: System, double: BigCommerceDouble
):
    skus = ("BCI-MUG", "BCI-TEE")
    for sku in skus:
        await system.stock_up(sku, ("berlin", 10))
    double.add_order(
        4101,
        items=(
            Item(skus[0], 2, Decimal("12.50")),
            Item(skus[1], 1, Decimal("20.00"), discount=Decimal("5.00")),
        ),
    )
    hook_url = f"{system.url(CONNECTOR)}/v1/connectors/{ACCOUNT}/webhooks"
    double.notify(hook_url, secret=SECRET, client_secret=CLIENT_SECRET)
    created = webhook_body("store/order/created", 4101)

    answer = await double.send_webhook(
        hook_url, created, secret=SECRET, client_secret=CLIENT_SECRET
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["queued"] == ["4101"]

    async def the_order() -> list[dict[str, Any]]:
        return [o for o in await bigcommerce_orders(system) if o.get("external_id") == "4101"]

    [summary] = await eventually(the_order, timeout_s=60, message="the BigCommerce order")
    order_id = summary["order_id"]
    view = await system.wait_status(order_id, "FULFILLING")
    assert view["channel"] == "bigcommerce" and view["external_id"] == "4101"
    assert [(li["sku"], li["quantity"], li["unit_price"]) for li in view["lines"]] == [
        (skus[0], 2, "12.50"),
        (skus[1], 1, "15.00"),
    ]
    assert view["payment"]["status"] == "paid_externally"
    assert await system.payments(order_id) == [], "BigCommerce captured it: no gateway"
    totals = view["totals"]
    assert (totals["shipping"], totals["tax"], totals["total"]) == ("4.95", "3.71", "48.66")

    # BigCommerce delivers the same webhook again: one more fetch at most, still one order.
    again = await double.send_webhook(hook_url, created, secret=SECRET, client_secret=CLIENT_SECRET)
    assert again.status_code == 200, again.text

    [fulfilment] = await system.fulfilments(order_id)
    shipped = await system.ship(
        fulfilment["fulfilment_id"], carrier="ups", tracking_number="1Z999AA10123456784"
    )
    assert shipped.status_code == 200, shipped.text

    async def the_shipments() -> list[dict[str, Any]]:
        return list(double.shipments.get(4101, []))

    [shipment] = await eventually(the_shipments, timeout_s=60, message="the shipment pushed")
    assert shipment["tracking_number"] == "1Z999AA10123456784"
    assert shipment["tracking_carrier"] == "ups"
    assert shipment["order_address_id"] == 41011
    assert sorted((i["order_product_id"], i["quantity"]) for i in shipment["items"]) == [
        (41011, 2),
        (41012, 1),
    ]
    assert double.orders[4101]["status_id"] == 2  # Shipped in BigCommerce

    # BigCommerce's statusUpdated webhook for that shipment comes back: fetched, ignored.
    await eventually(
        lambda: _true(any(n[1] == 4101 and n[2] == 200 for n in double.notified)),
        timeout_s=30,
        message="the statusUpdated webhook accepted",
    )
    await eventually(
        lambda: _true(double.order_fetches(4101) >= 2),
        timeout_s=30,
        message="the order fetched again after its status changed",
    )
    await asyncio.sleep(2)  # time for a second shipment push, were there one
    assert len(double.shipments[4101]) == 1
    assert double.order_fetches(4101) <= 3  # created (+ its redelivery at most) + statusUpdated
    assert len(await the_order()) == 1
    assert (await system.order(order_id))["status"] in ("SHIPPED", "DELIVERED", "COMPLETED")


async def _true(value: bool) -> bool:
    return value
