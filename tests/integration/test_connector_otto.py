"""OTTO Market end to end, every service a real process on real Kafka and Postgres, OTTO a
local double: an order placed on OTTO is polled by the connector, becomes an OMS order paid
externally with OTTO's total, ships, and OTTO receives exactly one shipment naming the order's
position items; the stock left goes back to OTTO."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support import otto_double
from tests.support.connector import start_system_with_connector
from tests.support.env import Infra
from tests.support.otto_double import OttoDouble
from tests.support.services import eventually
from tests.support.system import System
from tests.unit.channels import otto_payloads as payloads

pytestmark = pytest.mark.integration

ACCOUNT = "otto-de"
SALES_ORDER = "7c0e9a52-4b1d-4f7e-9a3c-2d5e8f1a6b90"
MUG, TEE = "OT-MUG", "OT-TEE"


@pytest.fixture(scope="module")
def otto() -> Iterator[OttoDouble]:
    with OttoDouble().serving() as double:
        yield double


@pytest.fixture(scope="module")
async def system(infra: Infra, otto: OttoDouble) -> AsyncIterator[System]:
    started = await start_system_with_connector(
        infra,
        accounts=[
            {
                "name": ACCOUNT,
                "channel": "otto",
                "api_base": otto.base_url,
                "credentials": {
                    "client_id": otto_double.CLIENT_ID,
                    "client_secret": otto_double.CLIENT_SECRET,
                },
                "options": {"ship_from_city": "Hamburg", "ship_from_zip_code": "22179"},
                "poll_interval_s": 3600,  # polled by the test (POST /v1/connectors/.../poll)
                "stock_push_interval_s": 1,
                "first_poll_lookback_s": 7 * 86400,
            }
        ],
        overrides={
            "inventory": {
                "OMS_CHANNEL_SAFETY_STOCK": (
                    '{"shopify": 0, "woocommerce": 0, "amazon": 2, "ebay": 1, "otto": 0}'
                )
            }
        },
    )
    yield started
    await started.close()


async def poll(system: System) -> int:
    response = await system.client.post(
        f"{system.url('channel_connector')}/v1/connectors/{ACCOUNT}/poll"
    )
    assert response.status_code == 200, response.text
    handed_on: int = response.json()["handed_on"]
    return handed_on


async def otto_orders(system: System) -> list[dict[str, Any]]:
    response = await system.client.get(
        f"{system.url('order_intake')}/v1/orders", params={"channel": "otto"}
    )
    assert response.status_code == 200, response.text
    return [o for o in response.json()["orders"] if o["external_id"] == SALES_ORDER]


async def test_an_otto_order_is_polled_shipped_and_told_to_otto_exactly_once(
    system: System, otto: OttoDouble
):
    await system.stock_up(MUG, ("berlin", 5))
    await system.stock_up(TEE, ("berlin", 4))
    changed = datetime.now(UTC) - timedelta(minutes=1)
    items = payloads.items_of(SALES_ORDER, [(MUG, 2, "19.99"), (TEE, 3, "19.99")])
    otto.add_order(
        payloads.order(
            SALES_ORDER, items=items, last_modified=changed.isoformat(timespec="milliseconds")
        )
    )
    position_item_ids = [item["positionItemId"] for item in items]

    assert await poll(system) == 1
    [order] = await eventually(lambda: otto_orders(system), timeout_s=60, message="the OTTO order")
    order_id = order["order_id"]
    view = await system.wait_status(order_id, "FULFILLING")
    # OTTO charged 5 x 19.99 + 4.95 delivery, VAT included: the OMS total is the same.
    assert view["totals"]["total"] == "104.90"
    assert view["totals"]["tax"] == "16.75"
    assert await system.payments(order_id) == [], "OTTO took the money: no authorisation"

    [fulfilment] = await system.fulfilments(order_id)
    shipped = await system.ship(
        fulfilment["fulfilment_id"], carrier="dhl", tracking_number="00340434161094042557"
    )
    assert shipped.status_code == 200, shipped.text
    await system.wait_status(order_id, "SHIPPED", "DELIVERED", "COMPLETED")

    [shipment] = await eventually(
        lambda: asyncio.sleep(0, otto.shipments), timeout_s=60, message="OTTO's shipment"
    )
    assert (shipment.carrier, shipment.tracking_number) == ("DHL", "00340434161094042557")
    assert sorted(p["positionItemId"] for p in shipment.position_items) == sorted(position_item_ids)
    assert {p["salesOrderId"] for p in shipment.position_items} == {SALES_ORDER}
    assert set(otto.statuses(SALES_ORDER).values()) == {"SENT"}

    # The order changed on OTTO (sent): polled again it is a new version, ignored by intake.
    assert await poll(system) == 1
    await asyncio.sleep(3)
    assert len(await otto_orders(system)) == 1
    assert len(otto.shipments) == 1 and len(otto.calls("POST", "/v1/shipments")) == 1
    done = await system.order(order_id)
    assert done["payment"]["status"] == "paid_externally"

    # What is left goes back to OTTO as its quantities.
    await eventually(
        lambda: asyncio.sleep(0, otto.quantities.get(MUG) == 3 and otto.quantities.get(TEE) == 1),
        timeout_s=60,
        message=f"OTTO's quantities (now {otto.quantities})",
    )
