"""WooCommerce both ways, every service a real process on Kafka and Postgres, the connector
serving a WooCommerce account whose API is the local double: a signed order webhook in, shipped
in the OMS, and the store got exactly one tracking note and was completed once; the stock the
OMS has for the store reached its products and variations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.support.connector import start_system_with_connector
from tests.support.env import Infra
from tests.support.services import eventually
from tests.support.system import System
from tests.support.woocommerce_double import CONSUMER_KEY, CONSUMER_SECRET, WooCommerceDouble
from tests.unit.channels import payloads

pytestmark = pytest.mark.integration

ORDER_ID = 9101
SKUS = ("WC-INT-SOCK", "WC-INT-MUG")


@pytest.fixture(scope="module")
def woo() -> Iterator[WooCommerceDouble]:
    with WooCommerceDouble().serving() as served:
        yield served


@pytest.fixture(scope="module")
async def system(infra: Infra, woo: WooCommerceDouble) -> AsyncIterator[System]:
    started = await start_system_with_connector(
        infra,
        accounts=[
            {
                "name": "woo-main",
                "channel": "woocommerce",
                "api_base": woo.base_url,
                "credentials": {"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET},
                "stock_push_interval_s": 0.5,
            }
        ],
        overrides={"order_intake": {"OMS_WOOCOMMERCE_WEBHOOK_SECRET": payloads.WOOCOMMERCE_SECRET}},
    )
    yield started
    await started.close()


async def connector_get(system: System, path: str, **params: str) -> Any:
    response = await system.client.get(f"{system.url('channel_connector')}{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_webhook_order_shipped_in_the_oms_is_noted_and_completed_once_on_the_store(
    system: System, woo: WooCommerceDouble
) -> None:
    sock, mug = SKUS
    for sku in SKUS:
        await system.stock_up(sku, ("berlin", 10))
    sock_variation = woo.add_variation("WC-INT-SOCKS", sock)
    mug_product = woo.add_product(mug)
    order = payloads.woocommerce_order(order_id=ORDER_ID, skus=SKUS)
    woo.add_order(order)

    raw = payloads.body(order)
    response = await system.client.post(
        f"{system.url('order_intake')}/v1/channels/woocommerce/orders",
        content=raw,
        headers=payloads.woocommerce_headers(raw),
    )
    assert response.status_code in (200, 202), response.text
    order_id = response.json()["order_id"]
    await system.wait_status(order_id, "FULFILLING")

    [fulfilment] = await system.fulfilments(order_id)
    shipped = await system.ship(
        fulfilment["fulfilment_id"], carrier="dhl", tracking_number="JJD000390009"
    )
    assert shipped.status_code == 200, shipped.text
    await system.wait_status(order_id, "SHIPPED", "DELIVERED", "COMPLETED")

    async def completed() -> bool:
        return woo.order(ORDER_ID)["status"] == "completed"

    await eventually(completed, timeout_s=60, message="the WooCommerce order completed")
    await asyncio.sleep(2)  # time for a duplicate to show, were one sent
    [(noted_order, note, customer_note)] = woo.notes_added
    assert noted_order == ORDER_ID and customer_note is True
    assert "dhl" in note and "JJD000390009" in note
    assert woo.status_changes == [(ORDER_ID, "completed")]
    [push] = (
        await connector_get(system, "/v1/connectors/pushes", kind="shipment", order_id=order_id)
    )["pushes"]
    assert (push["status"], push["attempts"], push["account"]) == ("done", 1, "woo-main")

    # The stock the OMS has for the store reached the product and the variation.
    async def stock_pushed() -> list[tuple[int, int]]:
        levels = {
            level["sku"]: level
            for level in (await connector_get(system, "/v1/connectors/stock", account="woo-main"))[
                "levels"
            ]
        }
        pushed = [
            (product_id, levels[sku]["pushed_quantity"])
            for sku, product_id in ((sock, sock_variation), (mug, mug_product))
            if sku in levels and levels[sku]["pushed_quantity"] == levels[sku]["quantity"]
        ]
        return pushed if len(pushed) == 2 else []

    pushed = await eventually(stock_pushed, timeout_s=60, message="stock pushed to WooCommerce")
    for product_id, quantity in pushed:
        assert woo.products[product_id]["stock_quantity"] == quantity
        assert woo.products[product_id]["manage_stock"] is True
    assert woo.products[mug_product]["stock_quantity"] == (await system.stock(mug))["available"]
