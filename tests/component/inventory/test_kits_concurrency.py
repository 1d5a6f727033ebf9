"""Kit orders racing orders of their bare components for little stock: no component is ever
oversold, every kit reserved has every component of every unit, and no deadlock."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

import pytest

from shared.contracts.inventory import StockReservationFailed, StockReserved
from tests.component.inventory.support import (
    assert_stock_consistent,
    define_sku,
    receive,
    reserve,
    stock_of,
)
from tests.support.component import ComponentHarness

pytestmark = pytest.mark.component

# GIFT = 2 x MUG + 1 x SPOON; DUO = 1 x MUG + 2 x PLATE.
KITS = {"GIFT": {"MUG": 2, "SPOON": 1}, "DUO": {"MUG": 1, "PLATE": 2}}
STOCK = {
    ("MUG", "east"): 30,
    ("MUG", "west"): 20,
    ("SPOON", "east"): 10,
    ("SPOON", "west"): 12,
    ("PLATE", "east"): 16,
    ("PLATE", "west"): 9,
}


async def test_200_concurrent_kit_and_component_orders_never_oversell_a_component(
    inventory: ComponentHarness,
):
    for sku in ("MUG", "SPOON", "PLATE", "GIFT", "DUO"):
        await define_sku(inventory, sku)
    for (sku, location), quantity in STOCK.items():
        await receive(inventory, sku, location, quantity)
    for kit, components in KITS.items():
        async with inventory.http() as client:
            body = {"components": [{"sku": c, "quantity": n} for c, n in components.items()]}
            response = await client.put(f"/v1/kits/{kit}", json=body)
        assert response.status_code == 201, response.text
    await inventory.clear_outbox()

    rng = random.Random(16)
    orders = []
    for n in range(200):
        skus = rng.sample(["GIFT", "DUO", "MUG", "SPOON", "PLATE"], rng.randint(1, 3))
        orders.append(reserve(f"o-{n:03d}", *((sku, rng.randint(1, 2)) for sku in skus)))
    await asyncio.gather(*(inventory.deliver(o, correlation_id=o.order_id) for o in orders))

    reserved = await inventory.emitted_contracts(StockReserved.TYPE)
    failed = await inventory.emitted_contracts(StockReservationFailed.TYPE)
    assert inventory.dead_letters == []
    assert {e.order_id for e in reserved} | {e.order_id for e in failed} == {
        o.order_id for o in orders
    }
    assert len(reserved) + len(failed) == 200
    assert reserved and failed  # the stock ran out along the way
    assert {f.reason for f in failed} == {"insufficient_stock"}

    # Every reserved order holds every unit of every line; a kit's line all its components.
    by_order = {o.order_id: o for o in orders}
    held: dict[str, int] = defaultdict(int)
    for answer in reserved:
        per_line: dict[str, int] = defaultdict(int)
        for allocation in answer.allocations:
            per_line[allocation.line_id] += allocation.quantity
            held[allocation.sku] += allocation.quantity
        expected = {}
        for line in by_order[answer.order_id].lines:
            if line.sku in KITS:
                for component, per_kit in KITS[line.sku].items():
                    expected[f"{line.line_id}/{component}"] = line.quantity * per_kit
            else:
                expected[line.line_id] = line.quantity
        assert per_line == expected, answer.order_id
    # A refused order holds nothing.
    refused = [f.order_id for f in failed]
    rows = await inventory.fetch(
        "SELECT count(*) AS n FROM reservations WHERE order_id = ANY($1::text[])", refused
    )
    assert rows[0]["n"] == 0

    for sku in ("MUG", "SPOON", "PLATE"):
        stock = await stock_of(inventory, sku)
        on_hand = sum(q for (s, _), q in STOCK.items() if s == sku)
        assert stock["on_hand"] == on_hand
        assert stock["reserved"] == held[sku] <= on_hand, sku
        for location in stock["locations"]:
            assert 0 <= location["reserved"] <= location["on_hand"], (sku, location)
    deadlocks = await inventory.pool.fetchval(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )
    assert deadlocks == 0
    await assert_stock_consistent(inventory)  # reserved = open reservations = ledger sums

    # What is left of each kit is what its components still make.
    for kit, components in KITS.items():
        stock = await stock_of(inventory, kit)
        for location in stock["locations"]:
            here = {
                sku: next(
                    row["available"]
                    for row in (await stock_of(inventory, sku))["locations"]
                    if row["location"] == location["location"]
                )
                for sku in components
            }
            assert location["available"] == min(here[c] // n for c, n in components.items())
