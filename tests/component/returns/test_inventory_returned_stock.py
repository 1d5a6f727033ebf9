"""Inventory's handling of the returns saga's commands: restock and write-off, idempotent per
return and SKU."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.inventory.app import build
from shared.contracts.common import SkuQuantity
from shared.contracts.returns import RestockReturnedItems, WriteOffReturnedItems
from tests.component.inventory.support import (
    assert_stock_consistent,
    define_sku,
    receive,
    stock_of,
)
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component


@pytest.fixture
async def inventory(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


def restock(return_id: str, location: str, *lines: tuple[str, int]) -> RestockReturnedItems:
    return RestockReturnedItems(
        return_id=return_id,
        order_id="o-1",
        location=location,
        lines=tuple(SkuQuantity(sku=s, quantity=q) for s, q in lines),
    )


def write_off(return_id: str, *lines: tuple[str, int]) -> WriteOffReturnedItems:
    return WriteOffReturnedItems(
        return_id=return_id,
        order_id="o-1",
        location="berlin",
        lines=tuple(SkuQuantity(sku=s, quantity=q) for s, q in lines),
        reason="damaged on return",
    )


async def ledger(h: ComponentHarness, sku: str) -> list[tuple[str, str, int, str | None]]:
    rows = await h.fetch(
        "SELECT location, reason, on_hand_delta, reference FROM stock_ledger"
        " WHERE sku = $1 ORDER BY id",
        sku,
    )
    return [(r["location"], r["reason"], r["on_hand_delta"], r["reference"]) for r in rows]


async def test_restock_puts_items_back_on_hand_once(inventory: ComponentHarness):
    await define_sku(inventory, "A")
    await define_sku(inventory, "B")
    await receive(inventory, "A", "berlin", 5)
    await inventory.deliver(restock("r-1", "berlin", ("A", 2), ("B", 1)), correlation_id="r-1")
    # re-sent by the saga after a deadline (a new message id): nothing applied twice
    await inventory.deliver(restock("r-1", "berlin", ("A", 2), ("B", 1)), correlation_id="r-1")
    a, b = await stock_of(inventory, "A"), await stock_of(inventory, "B")
    assert (a["on_hand"], a["available"], b["on_hand"]) == (7, 7, 1)
    assert await ledger(inventory, "A") == [
        ("berlin", "receipt", 5, None),
        ("berlin", "return", 2, "r-1"),
    ]
    answers = await inventory.emitted_contracts("ReturnedItemsRestocked")
    assert len(answers) == 2
    assert all([(li.sku, li.quantity) for li in x.lines] == [("A", 2), ("B", 1)] for x in answers)
    availability = await inventory.emitted_contracts("AvailabilityChanged")
    assert {(x.sku, x.on_hand) for x in availability} >= {("A", 7), ("B", 1)}
    await assert_stock_consistent(inventory)


async def test_restock_at_a_new_location_creates_its_stock_row(inventory: ComponentHarness):
    await define_sku(inventory, "A")
    await inventory.deliver(restock("r-2", "returns-dc", ("A", 1)), correlation_id="r-2")
    stock = await stock_of(inventory, "A")
    assert [(loc["location"], loc["on_hand"]) for loc in stock["locations"]] == [("returns-dc", 1)]


async def test_write_off_records_the_damage_without_adding_sellable_stock(
    inventory: ComponentHarness,
):
    await define_sku(inventory, "A")
    await receive(inventory, "A", "berlin", 3)
    await inventory.deliver(write_off("r-3", ("A", 1)), correlation_id="r-3")
    await inventory.deliver(write_off("r-3", ("A", 1)), correlation_id="r-3")
    stock = await stock_of(inventory, "A")
    assert (stock["on_hand"], stock["available"]) == (3, 3)
    assert await ledger(inventory, "A") == [
        ("berlin", "receipt", 3, None),
        ("berlin", "return_damaged", 1, "r-3"),
        ("berlin", "damage", -1, "r-3"),
    ]
    answers = await inventory.emitted_contracts("ReturnedItemsWrittenOff")
    assert [[(li.sku, li.quantity) for li in x.lines] for x in answers] == [[("A", 1)]] * 2
    await assert_stock_consistent(inventory)


async def test_an_unknown_sku_is_refused_and_nothing_is_applied(inventory: ComponentHarness):
    await define_sku(inventory, "A")
    await inventory.deliver(restock("r-4", "berlin", ("A", 1), ("NOPE", 1)), correlation_id="r-4")
    [failed] = await inventory.emitted_contracts("ReturnedStockFailed")
    assert (failed.kind, failed.reason, failed.skus) == ("restock", "unknown_sku", ("NOPE",))
    assert await inventory.fetch("SELECT * FROM stock_ledger") == []
    assert await inventory.emitted("ReturnedItemsRestocked") == []
