"""Magento both ways, every service a real process on Kafka and Postgres, the connector serving
a Magento account whose API is the local double: an order in Magento is polled into the OMS,
shipped there, and Magento received exactly one ship call on the right order items; the poll
cursor survives a restart of the connector without missing or repeating an order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.channel_connector.rules.magento import magento_time
from tests.support.connector import start_system_with_connector
from tests.support.env import Infra
from tests.support.magento_double import ACCESS_TOKEN, MagentoDouble
from tests.support.services import eventually
from tests.support.system import CONNECTOR, System
from tests.unit.channels.magento_payloads import magento_order

pytestmark = pytest.mark.integration

ACCOUNT = "magento-main"
SKUS = ("MG-INT-BAG", "MG-INT-TEE")
OVERLAP_S = 120  # the connector's default poll overlap


@pytest.fixture(scope="module")
def magento() -> Iterator[MagentoDouble]:
    with MagentoDouble().serving() as served:
        yield served


@pytest.fixture(scope="module")
async def system(infra: Infra, magento: MagentoDouble) -> AsyncIterator[System]:
    started = await start_system_with_connector(
        infra,
        accounts=[
            {
                "name": ACCOUNT,
                "channel": "magento",
                "api_base": magento.api_base,
                "credentials": {"access_token": ACCESS_TOKEN},
                "poll_interval_s": 3600,  # polled when the test says (and once at start)
                "first_poll_lookback_s": 3600,
            }
        ],
    )
    for sku in SKUS:
        await started.stock_up(sku, ("berlin", 20))
    yield started
    await started.close()


async def poll_now(system: System) -> int:
    response = await system.client.post(f"{system.url(CONNECTOR)}/v1/connectors/{ACCOUNT}/poll")
    assert response.status_code == 200, response.text
    handed_on: int = response.json()["handed_on"]
    return handed_on


async def the_account(system: System) -> dict[str, Any]:
    response = await system.client.get(f"{system.url(CONNECTOR)}/v1/connectors")
    assert response.status_code == 200, response.text
    [account] = [a for a in response.json()["accounts"] if a["name"] == ACCOUNT]
    return dict(account)


async def magento_orders(system: System) -> dict[str, list[str]]:
    """OMS order ids by Magento entity id."""
    response = await system.client.get(
        f"{system.url('order_intake')}/v1/orders", params={"channel": "magento"}
    )
    assert response.status_code == 200, response.text
    found: dict[str, list[str]] = {}
    for order in response.json()["orders"]:
        found.setdefault(order["external_id"], []).append(order["order_id"])
    return found


async def wait_for_order(system: System, entity_id: int) -> str:
    async def polled_in() -> list[str]:
        return (await magento_orders(system)).get(str(entity_id), [])

    [order_id] = await eventually(polled_in, timeout_s=60, message=f"Magento order {entity_id}")
    return order_id


async def test_a_polled_order_shipped_in_the_oms_is_shipped_once_on_magento(
    system: System, magento: MagentoDouble
) -> None:
    magento.add_order(magento_order(5001, skus=SKUS))
    await poll_now(system)
    order_id = await wait_for_order(system, 5001)
    view = await system.wait_status(order_id, "FULFILLING")
    assert view["totals"]["total"] == "98.77"  # Magento's grand_total
    assert view["payment"]["status"] == "paid_externally"  # invoiced in Magento

    [fulfilment] = await system.fulfilments(order_id)
    shipped = await system.ship(
        fulfilment["fulfilment_id"], carrier="ups", tracking_number="1Z999AA10123456784"
    )
    assert shipped.status_code == 200, shipped.text

    async def shipped_on_magento() -> bool:
        return magento.order(5001)["state"] == "complete"

    await eventually(shipped_on_magento, timeout_s=60, message="Magento order 5001 complete")
    await asyncio.sleep(2)  # time for a duplicate to show, were one sent
    [(entity_id, body)] = magento.ship_calls
    assert entity_id == 5001
    assert body["items"] == [
        {"order_item_id": 500111, "qty": 3},  # the bag
        {"order_item_id": 500112, "qty": 2},  # the configurable tee's parent item
    ]
    assert body["tracks"] == [
        {"track_number": "1Z999AA10123456784", "title": "ups", "carrier_code": "ups"}
    ]
    # The completed order polled again is not a new OMS order.
    await poll_now(system)
    assert (await magento_orders(system))["5001"] == [order_id]


async def test_the_poll_cursor_survives_a_connector_restart(
    system: System, magento: MagentoDouble
) -> None:
    magento.add_order(magento_order(5002, skus=SKUS))
    await poll_now(system)
    await wait_for_order(system, 5002)
    await poll_now(system)  # nothing new: the overlap sees the same versions again
    before = await the_account(system)
    cursor = datetime.fromisoformat(before["cursor_at"])
    searches = len(magento.order_searches)

    system.stop(CONNECTOR)
    magento.add_order(magento_order(5003, skus=SKUS))
    await system.start(CONNECTOR)
    await poll_now(system)
    await wait_for_order(system, 5003)

    after = await the_account(system)
    assert after["orders_handed_on"] == before["orders_handed_on"] + 1  # 5003, and only it
    # The restarted connector asked from its cursor (less the overlap), not from the lookback.
    assert magento.order_searches[searches] == magento_time(cursor - timedelta(seconds=OVERLAP_S))
    orders = await magento_orders(system)
    assert {entity: len(ids) for entity, ids in orders.items()} == {
        "5001": 1,
        "5002": 1,
        "5003": 1,
    }
