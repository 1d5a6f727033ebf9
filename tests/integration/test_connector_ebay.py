"""eBay both ways, every service a real process on real Kafka and Postgres, the channel connector
serving one eBay account against the local eBay double: an order placed on eBay is polled
(`POST /v1/connectors/{account}/poll`), becomes an OMS order paid on eBay, is shipped in the
warehouse, and eBay receives exactly one shipping fulfillment with the order's line items and
quantities; the quantity eBay sells follows the stock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.support.connector import start_system_with_connector
from tests.support.ebay_double import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, EbayDouble
from tests.support.env import Infra
from tests.support.services import eventually
from tests.support.system import CONNECTOR, System
from tests.unit.channels import payloads

pytestmark = pytest.mark.integration

ACCOUNT = "ebay-gb"
SKUS = ("CH-EBAY-MUG", "CH-EBAY-TEE")
EXTERNAL_ID = "12-40017-00001"


@pytest.fixture(scope="module")
def double() -> Iterator[EbayDouble]:
    with EbayDouble(token_ttl_s=7200).serving() as running:
        yield running


@pytest.fixture(scope="module")
async def system(infra: Infra, double: EbayDouble) -> AsyncIterator[System]:
    started = await start_system_with_connector(
        infra,
        accounts=[
            {
                "name": ACCOUNT,
                "channel": "ebay",
                "api_base": double.base_url,
                "credentials": {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "refresh_token": REFRESH_TOKEN,
                },
                "options": {"marketplace_id": "EBAY_GB"},
                "poll_interval_s": 3600,  # polled by the test, through the API
                "stock_push_interval_s": 0.5,
            }
        ],
    )
    yield started
    await started.close()


async def poll(system: System) -> int:
    answer = await system.client.post(f"{system.url(CONNECTOR)}/v1/connectors/{ACCOUNT}/poll")
    assert answer.status_code == 200, answer.text
    handed_on: int = answer.json()["handed_on"]
    return handed_on


async def ebay_orders(system: System) -> list[dict[str, Any]]:
    response = await system.client.get(
        f"{system.url('order_intake')}/v1/orders", params={"channel": "ebay"}
    )
    assert response.status_code == 200, response.text
    return [o for o in response.json()["orders"] if o["external_id"] == EXTERNAL_ID]


async def test_an_ebay_order_is_polled_shipped_and_fulfilled_once_on_ebay(
    system: System, double: EbayDouble
) -> None:
    await system.stock_up(SKUS[0], ("berlin", 5))
    await system.stock_up(SKUS[1], ("berlin", 4))
    for sku in SKUS:
        double.add_inventory_item(sku, 0)
    # 3 mugs (line 10000000001) and 2 T-shirts (line 10000000002), paid on eBay.
    double.add_order(payloads.ebay_order(EXTERNAL_ID, skus=SKUS))

    assert await poll(system) == 1
    [order] = await eventually(lambda: ebay_orders(system), timeout_s=60, message="the order")
    order_id = order["order_id"]
    view = await system.wait_status(order_id, "FULFILLING")
    assert view["totals"]["total"] == "61.47"
    assert view["payment"]["status"] == "paid_externally"
    assert await system.payments(order_id) == [], "eBay took the money: no authorisation"
    assert await poll(system) == 0  # seen again through the overlap: not handed on twice

    [fulfilment] = await system.fulfilments(order_id)
    shipped = await system.ship(
        fulfilment["fulfilment_id"], carrier="royal_mail", tracking_number="JD014600003828383627"
    )
    assert shipped.status_code == 200, shipped.text

    async def fulfilled_on_ebay() -> list[Any]:
        return double.fulfillments_of(EXTERNAL_ID)

    [on_ebay] = await eventually(fulfilled_on_ebay, timeout_s=60, message="eBay's fulfillment")
    assert sorted(on_ebay.lines) == [("10000000001", 3), ("10000000002", 2)]
    assert (on_ebay.carrier, on_ebay.tracking_number) == ("RoyalMail", "JD014600003828383627")
    assert double.orders[EXTERNAL_ID]["orderFulfillmentStatus"] == "FULFILLED"

    pushes = await system.client.get(
        f"{system.url(CONNECTOR)}/v1/connectors/pushes",
        params={"order_id": order_id, "kind": "shipment"},
    )
    assert pushes.status_code == 200, pushes.text
    [push] = pushes.json()["pushes"]
    assert (push["status"], push["channel_reference"]) == ("done", on_ebay.id)

    # eBay's order changed (fulfilled): polled again, order-intake ignores the new version.
    assert await poll(system) == 1
    await asyncio.sleep(2)
    assert len(await ebay_orders(system)) == 1
    assert len(double.fulfillment_posts) == 1, "exactly one createShippingFulfillment"

    # What eBay sells follows the stock: 5 - 3 shipped, less eBay's safety stock of 1.
    async def quantities() -> bool:
        return double.quantities.get(SKUS[0]) == 1 and double.quantities.get(SKUS[1]) == 1

    await eventually(quantities, timeout_s=30, message="eBay's quantities")
