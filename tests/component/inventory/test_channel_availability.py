"""Per-channel availability on `oms.channel.availability.v1`: one message per channel for every
change of a SKU's available stock, written to the outbox in the change's own transaction."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.inventory.app import build
from services.inventory.settings import InventorySettings
from shared.contracts.order_intake import ReleaseStock
from shared.envelope import Envelope, decode
from shared.topics import CHANNEL_AVAILABILITY, INVENTORY_COMMANDS
from tests.component.inventory.support import define_sku, new_order_id, reserve
from tests.support.component import ComponentHarness, FakeRecord, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component

SAFETY = {"shopify": 0, "woocommerce": 0, "amazon": 2, "ebay": 1}


@contextlib.asynccontextmanager
async def api(h: ComponentHarness) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP API with the service's start-up hooks applied, as in a running process."""
    async with h.http() as client:
        transport = client._transport
        assert isinstance(transport, httpx.ASGITransport)
        runtime = transport.app.state.runtime  # type: ignore[attr-defined]
        for hook in h.spec.on_start:
            await hook(runtime)
        yield client


async def adjust(h: ComponentHarness, sku: str, delta: int, location: str = "berlin") -> None:
    async with api(h) as client:
        response = await client.post(
            "/v1/stock/adjustments",
            json={"sku": sku, "location": location, "delta": delta, "reason": "receipt"},
        )
    assert response.status_code == 200, response.text


async def channel_rows(h: ComponentHarness) -> list[dict[str, Any]]:
    rows = await h.fetch("SELECT topic, msg_key, payload FROM outbox ORDER BY id")
    found = []
    for row in rows:
        envelope = decode(bytes(row["payload"]))
        if envelope.type == "ChannelAvailabilityChanged":
            found.append({"topic": row["topic"], "key": row["msg_key"], **envelope.payload})
    return found


def per_channel(rows: list[dict[str, Any]], sku: str) -> dict[str, int]:
    return {r["channel"]: r["available"] for r in rows if r["sku"] == sku}


@pytest.fixture
async def inventory(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


async def test_a_stock_adjustment_publishes_each_channel_less_its_safety_stock(
    inventory: ComponentHarness,
):
    await define_sku(inventory, "MUG-1")
    await inventory.clear_outbox()
    await adjust(inventory, "MUG-1", 10)
    rows = await channel_rows(inventory)
    assert {r["topic"] for r in rows} == {CHANNEL_AVAILABILITY}
    assert {r["key"] for r in rows} == {"MUG-1"}
    assert per_channel(rows, "MUG-1") == {"shopify": 10, "woocommerce": 10, "amazon": 8, "ebay": 9}
    assert {(r["channel"], r["safety_stock"]) for r in rows} == set(SAFETY.items())
    assert all(r["warehouse_available"] == 10 for r in rows)
    # in the same transaction as the change: the totals it was derived from are there too
    assert len(await inventory.emitted("AvailabilityChanged")) == 1


async def test_selling_the_last_units_makes_every_channel_zero(inventory: ComponentHarness):
    await define_sku(inventory, "LAST-1")
    await adjust(inventory, "LAST-1", 3)
    await inventory.clear_outbox()
    order_id = new_order_id()
    await inventory.deliver(reserve(order_id, ("LAST-1", 3)), correlation_id=order_id)
    rows = await channel_rows(inventory)
    assert per_channel(rows, "LAST-1") == {"shopify": 0, "woocommerce": 0, "amazon": 0, "ebay": 0}
    assert len(rows) == 4, "one message per channel per change"

    await inventory.clear_outbox()
    await inventory.deliver(ReleaseStock(order_id=order_id, reason="test"), correlation_id=order_id)
    assert per_channel(await channel_rows(inventory), "LAST-1") == {
        "shopify": 3,
        "woocommerce": 3,
        "amazon": 1,
        "ebay": 2,
    }


async def test_a_batch_publishes_only_the_final_availability(inventory: ComponentHarness):
    await define_sku(inventory, "BATCH-1")
    await adjust(inventory, "BATCH-1", 5)
    await inventory.clear_outbox()
    first, second = new_order_id(), new_order_id()
    records = [
        FakeRecord(
            INVENTORY_COMMANDS,
            Envelope.wrap(reserve(order_id, ("BATCH-1", 2)), correlation_id=order_id).to_bytes(),
            offset=offset,
        )
        for offset, order_id in enumerate((first, second), start=1)
    ]
    await inventory.consumer.handle_records(records)
    rows = await channel_rows(inventory)
    assert len(rows) == 4
    assert per_channel(rows, "BATCH-1") == {"shopify": 1, "woocommerce": 1, "amazon": 0, "ebay": 0}


async def test_safety_stock_comes_from_the_settings(infra: Infra):
    settings = InventorySettings(channel_safety_stock={"amazon": 5, "shop": 0})
    async for inventory in start_harness(infra, build(settings)):
        await define_sku(inventory, "CFG-1")
        await adjust(inventory, "CFG-1", 4)
        assert per_channel(await channel_rows(inventory), "CFG-1") == {"amazon": 0, "shop": 4}


def test_negative_safety_stock_is_refused():
    with pytest.raises(ValueError, match="must not be negative"):
        InventorySettings(channel_safety_stock={"amazon": -1})
