"""Replenishment on a real database: safety stock per SKU and channel in the channel messages,
LowStock once per crossing of the reorder point (through reservations, releases, batches and
redeliveries), and the suggestions with purchase orders and backorders."""

from __future__ import annotations

from typing import Any

import pytest

from shared.contracts.common import SkuQuantity
from shared.contracts.inventory import LowStock, StockRecovered
from shared.contracts.order_intake import CommitStock, ReleaseStock
from shared.envelope import Envelope, decode
from shared.topics import INVENTORY_COMMANDS, INVENTORY_EVENTS
from tests.component.inventory.support import (
    assert_stock_consistent,
    define_sku,
    new_order_id,
    receive,
    reserve,
)
from tests.support.component import ComponentHarness, FakeRecord

pytestmark = pytest.mark.component


async def channel_rows(h: ComponentHarness, sku: str) -> dict[str, tuple[int, int]]:
    """The latest ChannelAvailabilityChanged per channel: (available, safety_stock)."""
    found = {}
    for envelope in await h.emitted("ChannelAvailabilityChanged"):
        if envelope.payload["sku"] == sku:
            found[envelope.payload["channel"]] = (
                envelope.payload["available"],
                envelope.payload["safety_stock"],
            )
    return found


async def put(h: ComponentHarness, path: str, body: dict[str, Any]) -> Any:
    async with h.http() as client:
        return await client.put(path, json=body)


async def crossings(h: ComponentHarness) -> list[tuple[str, str, str, int]]:
    """(type, sku, location, available) of every LowStock and StockRecovered emitted."""
    rows = await h.fetch(
        "SELECT topic, msg_key, payload FROM outbox WHERE msg_type IN ('LowStock',"
        " 'StockRecovered') ORDER BY id"
    )
    found = []
    for row in rows:
        envelope = decode(bytes(row["payload"]))
        assert (row["topic"], row["msg_key"]) == (INVENTORY_EVENTS, envelope.payload["sku"])
        found.append(
            (
                envelope.type,
                envelope.payload["sku"],
                envelope.payload["location"],
                envelope.payload["available"],
            )
        )
    return found


# --- safety stock per SKU and channel ---------------------------------------------------------


async def test_a_sku_safety_stock_overrides_the_channel_default(inventory: ComponentHarness):
    await define_sku(inventory, "MUG-1")
    await define_sku(inventory, "MUG-2")
    await receive(inventory, "MUG-1", "berlin", 10)
    await inventory.clear_outbox()

    response = await put(inventory, "/v1/skus/MUG-1/safety-stock", {"channels": {"amazon": 5}})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "sku": "MUG-1",
        "overrides": {"amazon": 5},
        "channels": {"amazon": 5, "ebay": 1, "shopify": 0, "woocommerce": 0},
    }
    # the channels hear it at once, though the stock did not change
    assert await channel_rows(inventory, "MUG-1") == {
        "amazon": (5, 5),
        "ebay": (9, 1),
        "shopify": (10, 0),
        "woocommerce": (10, 0),
    }

    await inventory.clear_outbox()
    order_id = new_order_id()
    await inventory.deliver(reserve(order_id, ("MUG-1", 3)), correlation_id=order_id)
    assert await channel_rows(inventory, "MUG-1") == {
        "amazon": (2, 5),
        "ebay": (6, 1),
        "shopify": (7, 0),
        "woocommerce": (7, 0),
    }
    # another SKU keeps the defaults
    await receive(inventory, "MUG-2", "berlin", 10)
    assert (await channel_rows(inventory, "MUG-2"))["amazon"] == (8, 2)

    async with inventory.http() as client:
        got = await client.get("/v1/skus/MUG-1/safety-stock")
        assert got.json()["overrides"] == {"amazon": 5}
        await inventory.clear_outbox()
        deleted = await client.delete("/v1/skus/MUG-1/safety-stock")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["overrides"] == {}
    assert (await channel_rows(inventory, "MUG-1"))["amazon"] == (5, 2), "back to the default"


async def test_safety_stock_refuses_unknown_channels_and_skus(inventory: ComponentHarness):
    await define_sku(inventory, "MUG-1")
    unknown_channel = await put(inventory, "/v1/skus/MUG-1/safety-stock", {"channels": {"etsy": 1}})
    assert unknown_channel.status_code == 422
    assert unknown_channel.json()["error"]["code"] == "unknown_channel"
    negative = await put(inventory, "/v1/skus/MUG-1/safety-stock", {"channels": {"amazon": -1}})
    assert negative.status_code == 422
    unknown_sku = await put(inventory, "/v1/skus/NOPE/safety-stock", {"channels": {"amazon": 1}})
    assert unknown_sku.status_code == 404
    assert unknown_sku.json()["error"]["code"] == "unknown_sku"


# --- low stock --------------------------------------------------------------------------------


async def watch(h: ComponentHarness, sku: str, location: str, **body: Any) -> dict[str, Any]:
    response = await put(h, f"/v1/skus/{sku}/reorder/{location}", body)
    assert response.status_code in (200, 201), response.text
    found: dict[str, Any] = response.json()
    return found


async def test_low_stock_fires_once_per_crossing_until_the_stock_recovers(
    inventory: ComponentHarness,
):
    await define_sku(inventory, "TEA")
    await receive(inventory, "TEA", "berlin", 20)
    view = await watch(inventory, "TEA", "berlin", reorder_point=10)
    assert (view["reorder_point"], view["reorder_point_source"], view["low"]) == (
        10,
        "explicit",
        False,
    )

    orders = [new_order_id() for _ in range(5)]
    for order_id in orders:  # 20 -> 17 -> 14 -> 11 -> 8 -> 5
        await inventory.deliver(reserve(order_id, ("TEA", 3)), correlation_id=order_id)
    assert await crossings(inventory) == [("LowStock", "TEA", "berlin", 8)], "once"
    [low] = await inventory.emitted_contracts(LowStock.TYPE)
    assert (low.reorder_point, low.reorder_point_source, low.on_hand, low.reserved) == (
        10,
        "explicit",
        20,
        12,
    )

    # released back to 11: above the point, not above the point plus the margin of 1
    for order_id in orders[4], orders[3]:
        await inventory.deliver(ReleaseStock(order_id=order_id, reason="t"), correlation_id="t")
    assert len(await crossings(inventory)) == 1, "still low, no flapping"

    await inventory.deliver(ReleaseStock(order_id=orders[2], reason="t"), correlation_id="t")
    assert (await crossings(inventory))[1:] == [("StockRecovered", "TEA", "berlin", 14)]
    [recovered] = await inventory.emitted_contracts(StockRecovered.TYPE)
    assert recovered.reorder_point == 10

    later = new_order_id()
    await inventory.deliver(reserve(later, ("TEA", 4)), correlation_id=later)  # 14 -> 10
    assert (await crossings(inventory))[2:] == [("LowStock", "TEA", "berlin", 10)], "again"
    [state] = await inventory.fetch(
        "SELECT low_since IS NOT NULL AS low, low_point FROM reorder_settings"
    )
    assert (state["low"], state["low_point"]) == (True, 10)
    await assert_stock_consistent(inventory)


async def test_a_redelivered_or_resent_command_does_not_alert_twice(inventory: ComponentHarness):
    await define_sku(inventory, "JAM")
    await receive(inventory, "JAM", "berlin", 6)
    await watch(inventory, "JAM", "berlin", reorder_point=2)
    order_id = new_order_id()
    envelope = await inventory.deliver(reserve(order_id, ("JAM", 5)), correlation_id=order_id)
    await inventory.deliver(
        reserve(order_id, ("JAM", 5)), correlation_id=order_id, envelope=envelope
    )
    # the saga re-sends its command with a new message id: answered again, nothing changes
    await inventory.deliver(reserve(order_id, ("JAM", 5)), correlation_id=order_id)
    assert await crossings(inventory) == [("LowStock", "JAM", "berlin", 1)]
    assert len(await inventory.emitted("StockReserved")) == 2, "answered again once"
    [low] = await inventory.emitted(LowStock.TYPE)
    assert low.correlation_id == order_id


async def test_a_batch_checks_each_sku_once_at_its_final_level(inventory: ComponentHarness):
    await define_sku(inventory, "OIL")
    await receive(inventory, "OIL", "berlin", 10)
    await watch(inventory, "OIL", "berlin", reorder_point=5)
    first, second, third = new_order_id(), new_order_id(), new_order_id()
    records = [
        FakeRecord(
            INVENTORY_COMMANDS,
            Envelope.wrap(message, correlation_id=order_id).to_bytes(),
            offset=offset,
        )
        for offset, (order_id, message) in enumerate(
            [
                (first, reserve(first, ("OIL", 3))),  # 7
                (second, reserve(second, ("OIL", 3))),  # 4: low
                (first, ReleaseStock(order_id=first, reason="t")),  # 7
                (third, reserve(third, ("OIL", 4))),  # 3: low
            ],
            start=100,
        )
    ]
    await inventory.consumer.handle_records(records)
    assert await crossings(inventory) == [("LowStock", "OIL", "berlin", 3)]


async def test_stock_already_below_a_new_reorder_point_alerts_at_once(
    inventory: ComponentHarness,
):
    await define_sku(inventory, "SALT")
    await receive(inventory, "SALT", "berlin", 3)
    view = await watch(inventory, "SALT", "berlin", reorder_point=5)
    assert view["low"] is True
    assert await crossings(inventory) == [("LowStock", "SALT", "berlin", 3)]
    # replaced with a lower point: the same state, recovered as soon as it is above it
    view = await watch(inventory, "SALT", "berlin", reorder_point=1)
    assert view["low"] is False
    assert (await crossings(inventory))[1:] == [("StockRecovered", "SALT", "berlin", 3)]
    # a location without stock is at 0
    assert (await watch(inventory, "SALT", "paris", reorder_point=0))["low"] is True


async def test_a_reorder_point_from_velocity(inventory: ComponentHarness):
    await define_sku(inventory, "RICE")
    await receive(inventory, "RICE", "berlin", 40)
    await ship(inventory, "RICE", "berlin", 14)  # 2 a day over the last 7 days
    view = await watch(inventory, "RICE", "berlin", lead_time_days=5, safety_units=2)
    assert (view["reorder_point"], view["reorder_point_source"]) == (2 * 5 + 2, "velocity")
    assert view["velocity_per_day"] == 2.0
    order_id = new_order_id()
    await inventory.deliver(reserve(order_id, ("RICE", 14)), correlation_id=order_id)  # 26 -> 12
    [low] = await inventory.emitted_contracts(LowStock.TYPE)
    assert (low.available, low.reorder_point, low.reorder_point_source) == (12, 12, "velocity")
    assert (low.velocity_per_day, low.days_of_cover) == (2.0, 6.0)


async def test_reorder_settings_can_be_read_and_removed(inventory: ComponentHarness):
    await define_sku(inventory, "CUP")
    await watch(inventory, "CUP", "berlin", reorder_point=4, cover_days=30)
    async with inventory.http() as client:
        listed = await client.get("/v1/skus/CUP/reorder")
        assert [
            (v["location"], v["reorder_point"], v["cover_days"], v["lead_time_days"])
            for v in listed.json()["locations"]
        ] == [("berlin", 4, 30, 7)]
        assert (await client.delete("/v1/skus/CUP/reorder/berlin")).status_code == 204
        gone = await client.delete("/v1/skus/CUP/reorder/berlin")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_watched"
        assert (await client.get("/v1/skus/CUP/reorder")).json()["locations"] == []
        unknown = await client.put("/v1/skus/NOPE/reorder/berlin", json={})
        assert unknown.status_code == 404


# --- suggestions ------------------------------------------------------------------------------


async def ship(h: ComponentHarness, sku: str, location: str, quantity: int) -> str:
    """Reserve and commit `quantity` of the SKU at the location: units shipped (the ledger's
    `committed` rows the velocity counts)."""
    order_id = new_order_id()
    await h.deliver(reserve(order_id, (sku, quantity)), correlation_id=order_id)
    await h.deliver(
        CommitStock(
            order_id=order_id,
            fulfilment_id=f"f-{order_id}",
            location=location,
            lines=(SkuQuantity(sku=sku, quantity=quantity),),
        ),
        correlation_id=order_id,
    )
    return order_id


async def test_suggestions_with_purchase_orders_and_backorders(inventory: ComponentHarness):
    for sku in ("FLOUR", "SUGAR", "YEAST"):
        await define_sku(inventory, sku)
    await receive(inventory, "FLOUR", "berlin", 100)
    await receive(inventory, "SUGAR", "berlin", 100)
    await receive(inventory, "YEAST", "berlin", 2)
    # FLOUR: 14 shipped this week, 46 more three weeks ago: 2 a day (7 days) vs 2 a day (30)
    await ship(inventory, "FLOUR", "berlin", 14)
    old = await ship(inventory, "FLOUR", "berlin", 46)
    await inventory.pool.execute(
        "UPDATE stock_ledger SET at = now() - interval '20 days' WHERE order_id = $1", old
    )
    # SUGAR: 7 shipped this week: 1 a day; plenty left
    await ship(inventory, "SUGAR", "berlin", 7)
    # YEAST: nothing shipped, 2 in stock, watched with an explicit point of 5
    await watch(inventory, "YEAST", "berlin", reorder_point=5)
    await watch(inventory, "FLOUR", "berlin", lead_time_days=10, cover_days=20)

    # incoming FLOUR: an open purchase order (part received), a received and a cancelled one
    await inventory.pool.execute(
        "INSERT INTO purchase_orders (po_id, location, expected_on, status) VALUES"
        " ('po-1', 'berlin', current_date + 5, 'open'),"
        " ('po-2', 'berlin', current_date - 5, 'received'),"
        " ('po-3', 'berlin', current_date + 5, 'cancelled'),"
        " ('po-4', 'hamburg', current_date + 5, 'open');"
        "INSERT INTO purchase_order_lines (po_id, sku, quantity, received) VALUES"
        " ('po-1', 'FLOUR', 10, 4), ('po-2', 'FLOUR', 50, 50), ('po-3', 'FLOUR', 70, 0),"
        " ('po-4', 'FLOUR', 80, 0);"
        "INSERT INTO backorders (order_id, line_id, sku, location, position, quantity, filled,"
        " kind, status) VALUES"
        " ('b-1', 'l-1', 'FLOUR', 'berlin', 0, 5, 2, 'backorder', 'queued'),"
        " ('b-2', 'l-1', 'FLOUR', 'berlin', 0, 9, 9, 'backorder', 'filled'),"
        " ('b-3', 'l-1', 'FLOUR', 'berlin', 0, 4, 0, 'backorder', 'released')"
    )

    async with inventory.http("viewer") as client:
        response = await client.get("/v1/replenishment/suggestions")
    assert response.status_code == 200, response.text
    rows = {r["sku"]: r for r in response.json()["suggestions"]}
    assert [r["sku"] for r in response.json()["suggestions"]] == ["FLOUR", "YEAST"]
    flour = rows["FLOUR"]
    assert {
        k: flour[k] for k in ("on_hand", "reserved", "available", "incoming", "backordered")
    } == {
        "on_hand": 40,
        "reserved": 0,
        "available": 40,
        "incoming": 6,
        "backordered": 3,
    }
    assert (flour["velocity_7d"], flour["velocity_30d"], flour["days_of_cover"]) == (2.0, 2.0, 20.0)
    assert (flour["reorder_point"], flour["reorder_point_source"]) == (20, "velocity")
    # 2 a day over 10 + 20 days = 60, + 3 backordered - 40 available - 6 incoming
    assert flour["suggested_quantity"] == 17
    assert flour["configured"] is True
    yeast = rows["YEAST"]
    assert (yeast["days_of_cover"], yeast["reorder_point"], yeast["suggested_quantity"]) == (
        None,
        5,
        4,
    )

    async with inventory.http("viewer") as client:
        everything = await client.get("/v1/replenishment/suggestions", params={"all": "true"})
        one = await client.get(
            "/v1/replenishment/suggestions", params={"sku": "SUGAR", "all": "true"}
        )
        elsewhere = await client.get("/v1/replenishment/suggestions", params={"location": "paris"})
    assert [r["sku"] for r in everything.json()["suggestions"]] == ["FLOUR", "SUGAR", "YEAST"]
    [sugar] = one.json()["suggestions"]
    # not watched: the default lead time (7) and cover (14) days, 1 a day
    assert (sugar["configured"], sugar["reorder_point"], sugar["suggested_quantity"]) == (
        False,
        7,
        0,
    )
    assert sugar["days_of_cover"] == 93.0
    assert elsewhere.json()["suggestions"] == []


async def test_suggestions_need_stock_read(inventory: ComponentHarness):
    async with inventory.anonymous() as client:
        assert (await client.get("/v1/replenishment/suggestions")).status_code == 401
