"""Many orders at once against little stock: never oversold, never negative, no deadlock."""

from __future__ import annotations

import asyncio
import random

import pytest

from shared.contracts.inventory import AvailabilityChanged, StockReservationFailed, StockReserved
from shared.envelope import Envelope
from tests.component.inventory.support import (
    assert_stock_consistent,
    define_sku,
    receive,
    reserve,
    stock_of,
)
from tests.support.component import ComponentHarness, FakeRecord

pytestmark = pytest.mark.component


async def test_200_concurrent_single_unit_orders_against_50_units(inventory: ComponentHarness):
    await define_sku(inventory, "HOT")
    await receive(inventory, "HOT", "east", 30)
    await receive(inventory, "HOT", "west", 20)
    await inventory.clear_outbox()

    orders = [f"o-{n:03d}" for n in range(200)]
    await asyncio.gather(
        *(inventory.deliver(reserve(order, ("HOT", 1)), correlation_id=order) for order in orders)
    )

    reserved = await inventory.emitted_contracts(StockReserved.TYPE)
    failed = await inventory.emitted_contracts(StockReservationFailed.TYPE)
    assert len(reserved) == 50
    assert len(failed) == 150
    assert {f.reason for f in failed} == {"insufficient_stock"}
    assert {e.order_id for e in reserved} | {e.order_id for e in failed} == set(orders)
    stock = await stock_of(inventory, "HOT")
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (50, 50, 0)
    for location in stock["locations"]:
        assert location["on_hand"] == location["available"] + location["reserved"]
        assert location["available"] == 0
    assert inventory.dead_letters == []
    await assert_stock_consistent(inventory)


async def test_orders_locking_skus_in_opposite_orders_do_not_deadlock(inventory: ComponentHarness):
    for sku in ("A", "B", "C"):
        await define_sku(inventory, sku)
        await receive(inventory, sku, "east", 40)
        await receive(inventory, sku, "west", 40)
    rng = random.Random(7)
    orders = []
    for n in range(60):
        skus = ["A", "B", "C"]
        rng.shuffle(skus)
        orders.append(reserve(f"o-{n:02d}", *((sku, 1 + n % 3) for sku in skus)))
    await asyncio.gather(*(inventory.deliver(o, correlation_id=o.order_id) for o in orders))

    reserved = await inventory.emitted_contracts(StockReserved.TYPE)
    failed = await inventory.emitted_contracts(StockReservationFailed.TYPE)
    assert len(reserved) + len(failed) == 60
    assert inventory.dead_letters == []
    for sku in ("A", "B", "C"):
        held = sum(a.quantity for r in reserved for a in r.allocations if a.sku == sku)
        assert (await stock_of(inventory, sku))["reserved"] == held <= 80
    deadlocks = await inventory.pool.fetchval(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )
    assert deadlocks == 0
    await assert_stock_consistent(inventory)


async def test_a_batch_in_one_transaction_announces_each_sku_once(inventory: ComponentHarness):
    await define_sku(inventory, "A")
    await receive(inventory, "A", "east", 10)
    await inventory.clear_outbox()
    records = [
        FakeRecord(
            topic=command.TOPIC,
            value=Envelope.wrap(command, correlation_id=command.order_id).to_bytes(),
            offset=offset,
        )
        for offset, command in enumerate(
            [reserve("o-1", ("A", 2)), reserve("o-2", ("A", 3)), reserve("o-3", ("A", 1))], 1
        )
    ]
    await inventory.consumer.handle_records(records)
    assert len(await inventory.emitted(StockReserved.TYPE)) == 3
    assert await inventory.emitted_contracts(AvailabilityChanged.TYPE) == [
        AvailabilityChanged(sku="A", on_hand=10, reserved=6, available=4, available_to_promise=4)
    ]
