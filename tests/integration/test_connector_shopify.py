"""The channel connector serving a Shopify account, every service a real process on real Kafka
and Postgres, Shopify's Admin GraphQL API a local double: a webhook order shipped in the OMS is
fulfilled on Shopify exactly once with its lines and tracking number, and a burst of 1,000
stock changes reaches Shopify as a handful of pushes per SKU ending at the right quantity."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.support.connector import start_system_with_connector
from tests.support.env import Infra
from tests.support.services import eventually
from tests.support.shopify_double import LOCATION_ID, TEST_TOKEN, ShopifyDouble
from tests.support.system import System
from tests.unit.channels import payloads

pytestmark = pytest.mark.integration

log = logging.getLogger(__name__)

STOCK_PUSH_INTERVAL_S = 5.0  # the default: "at most one push per SKU and channel per few seconds"
HANDFUL = 6


@pytest.fixture(scope="module")
def double() -> Iterator[ShopifyDouble]:
    with ShopifyDouble().serving() as running:
        yield running


@pytest.fixture(scope="module")
async def system(infra: Infra, double: ShopifyDouble) -> AsyncIterator[System]:
    started = await start_system_with_connector(
        infra,
        accounts=[
            {
                "name": "shopify-main",
                "channel": "shopify",
                "api_base": double.base_url,
                "credentials": {"access_token": TEST_TOKEN},
                "options": {"location_id": LOCATION_ID},
                "stock_push_interval_s": STOCK_PUSH_INTERVAL_S,
                "requests_per_second": 20,
            }
        ],
        overrides={"order_intake": {"OMS_SHOPIFY_WEBHOOK_SECRET": payloads.SHOPIFY_SECRET}},
    )
    yield started
    await started.close()


async def test_a_shopify_order_shipped_in_the_oms_is_fulfilled_on_shopify_once(
    system: System, double: ShopifyDouble
) -> None:
    skus = ("SHC-MUG", "SHC-TEE")
    for sku in skus:
        double.add_variant(sku)
        await system.stock_up(sku, ("berlin", 10))
    shopify_id = 6300000000001
    order_gid = double.add_order(shopify_id, [(skus[0], 2), (skus[1], 1)])

    raw = payloads.body(payloads.shopify_order(order_id=shopify_id, skus=skus))
    response = await system.client.post(
        f"{system.url('order_intake')}/v1/channels/shopify/orders",
        content=raw,
        headers=payloads.shopify_headers(raw),
    )
    assert response.status_code in (200, 202), response.text
    order_id = response.json()["order_id"]
    await system.wait_status(order_id, "FULFILLING")
    [fulfilment] = await system.fulfilments(order_id)
    shipped = await system.ship(
        fulfilment["fulfilment_id"], carrier="dhl", tracking_number="JJD000390017"
    )
    assert shipped.status_code == 200, shipped.text

    def fulfillments() -> list[dict[str, Any]]:
        return [f for f in double.fulfillments if f["order"] == order_gid]

    async def told() -> list[dict[str, Any]]:
        return fulfillments()

    await eventually(told, timeout_s=60, message="the fulfillment on Shopify")
    await asyncio.sleep(2)  # a second push would have come by now
    [fulfillment] = fulfillments()
    creates = [
        call
        for call in double.calls_of("fulfillmentCreate")
        if call.variables["fulfillment"]["trackingInfo"].get("number") == "JJD000390017"
    ]
    assert len(creates) == 1
    assert sorted(fulfillment["lines"]) == [(skus[0], 2), (skus[1], 1)]
    assert fulfillment["tracking"]["number"] == "JJD000390017"
    assert fulfillment["tracking"]["company"] == "dhl"
    assert double.remaining(order_gid) == {skus[0]: 0, skus[1]: 0}


async def test_a_burst_of_stock_changes_is_a_handful_of_pushes_ending_at_the_right_quantity(
    system: System, double: ShopifyDouble
) -> None:
    skus = [f"SHB-{n}" for n in range(10)]
    for sku in skus:
        double.add_variant(sku, quantity=-1)
        await system.stock_up(sku, ("berlin", 500))
    rng = random.Random(17)
    changes = [(sku, rng.randint(-3, 5)) for sku in skus for _ in range(100)]
    rng.shuffle(changes)
    changes = [(sku, delta or 1) for sku, delta in changes]
    assert len(changes) == 1000

    async def adjust(sku: str, delta: int) -> None:
        r = await system.client.post(
            f"{system.url('inventory')}/v1/stock/adjustments",
            json={"sku": sku, "location": "berlin", "delta": delta, "reason": "correction"},
        )
        assert r.status_code == 200, r.text

    started = time.monotonic()
    for start in range(0, len(changes), 50):
        await asyncio.gather(*(adjust(sku, delta) for sku, delta in changes[start : start + 50]))
    burst_s = time.monotonic() - started

    expected: dict[str, int] = {}
    for sku in skus:
        r = await system.client.get(f"{system.url('inventory')}/v1/stock/{sku}")
        assert r.status_code == 200, r.text
        expected[sku] = r.json()["available_to_promise"]
    assert expected == {sku: 500 + sum(d for s, d in changes if s == sku) for sku in skus}

    async def settled() -> bool:
        return all(double.available(sku) == expected[sku] for sku in skus)

    await eventually(settled, timeout_s=90, message=f"Shopify at {expected}")
    settled_s = time.monotonic() - started
    await asyncio.sleep(STOCK_PUSH_INTERVAL_S * 2)  # nothing more after the last value
    assert {sku: double.available(sku) for sku in skus} == expected
    pushes = double.pushes_per_sku()
    counts = {sku: pushes[sku] for sku in skus}
    log.warning(
        "burst of 1000 changes on 10 SKUs in %.1fs, Shopify settled after %.1fs;"
        " inventorySetQuantities per SKU: %s; calls: %d",
        burst_s,
        settled_s,
        counts,
        len(double.set_quantity_calls),
    )
    assert all(count >= 1 for count in counts.values())
    # Coalescing: at most one push per SKU per interval while the changes come, one with the
    # last value, and the one of the level stock_up set. A burst inventory takes in within ~4
    # intervals is a handful of pushes; where inventory needs longer for the 1,000 changes (a
    # loaded machine: ~30 s here), one push per interval of it (logged above).
    bound = max(HANDFUL, math.ceil(settled_s / STOCK_PUSH_INTERVAL_S) + 2)
    assert max(counts.values()) <= bound, (counts, burst_s, settled_s)
