"""CommitStock per shipment: a fulfilment that leaves in several parcels commits each parcel once
(deduped on `shipment_id or fulfilment_id`), and commits recorded before parcels stay valid."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.inventory.app import MIGRATIONS, build
from shared.contracts.common import SkuQuantity
from shared.contracts.inventory import StockCommitted, StockReleased
from shared.contracts.order_intake import CommitStock, ReleaseStock
from shared.platform.migrations import migrate
from tests.component.inventory.support import (
    assert_stock_consistent,
    define_sku,
    receive,
    reserve,
    stock_of,
)
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component


@pytest.fixture
async def stocked(inventory: ComponentHarness) -> ComponentHarness:
    """A: 6 at east; B: 2 at east."""
    await define_sku(inventory, "A")
    await define_sku(inventory, "B")
    await receive(inventory, "A", "east", 6)
    await receive(inventory, "B", "east", 2)
    await inventory.clear_outbox()
    return inventory


def commit(shipment_id: str | None, lines: dict[str, int], fid: str = "f-1") -> CommitStock:
    return CommitStock(
        order_id="o-1",
        fulfilment_id=fid,
        location="east",
        lines=tuple(SkuQuantity(sku=sku, quantity=n) for sku, n in lines.items()),
        shipment_id=shipment_id,
    )


async def test_each_parcel_of_a_fulfilment_commits_once(stocked: ComponentHarness):
    await stocked.deliver(reserve("o-1", ("A", 5), ("B", 1)), correlation_id="o-1")
    await stocked.clear_outbox()
    first = commit("p-1", {"A": 2})
    await stocked.deliver(first, correlation_id="o-1")
    await stocked.deliver(commit("p-2", {"A": 3, "B": 1}), correlation_id="o-1")
    # The saga re-sends the first parcel's command (a new message id): answered, not applied.
    await stocked.deliver(first, correlation_id="o-1")

    answers = await stocked.emitted_contracts(StockCommitted.TYPE)
    assert [(a.fulfilment_id, a.shipment_id) for a in answers] == [
        ("f-1", "p-1"),
        ("f-1", "p-2"),
        ("f-1", "p-1"),
    ]
    assert answers[0] == answers[2]
    a, b = await stock_of(stocked, "A"), await stock_of(stocked, "B")
    assert (a["on_hand"], a["reserved"], a["available"]) == (1, 0, 1)
    assert (b["on_hand"], b["reserved"], b["available"]) == (1, 0, 1)
    rows = await stocked.fetch(
        "SELECT shipment_id, fulfilment_id FROM committed_fulfilments ORDER BY shipment_id"
    )
    assert [tuple(r) for r in rows] == [("p-1", "f-1"), ("p-2", "f-1")]
    ledger = await stocked.fetch(
        "SELECT sku, on_hand_delta, reference, detail FROM stock_ledger"
        " WHERE reason = 'committed' ORDER BY id"
    )
    assert [tuple(r) for r in ledger] == [
        ("A", -2, "p-1", "fulfilment f-1"),
        ("A", -3, "p-2", "fulfilment f-1"),
        ("B", -1, "p-2", "fulfilment f-1"),
    ]
    await assert_stock_consistent(stocked)


async def test_a_release_after_one_parcel_gives_back_only_the_unshipped_rest(
    stocked: ComponentHarness,
):
    await stocked.deliver(reserve("o-1", ("A", 5)), correlation_id="o-1")
    await stocked.deliver(commit("p-1", {"A": 2}), correlation_id="o-1")
    await stocked.deliver(
        ReleaseStock(order_id="o-1", reason="rest cancelled"), correlation_id="o-1"
    )
    [released] = await stocked.emitted_contracts(StockReleased.TYPE)
    assert [(r.sku, r.quantity) for r in released.released] == [("A", 3)]
    a = await stock_of(stocked, "A")
    assert (a["on_hand"], a["reserved"], a["available"]) == (4, 0, 4)
    await assert_stock_consistent(stocked)


async def test_a_whole_fulfilment_commit_is_keyed_by_its_fulfilment_id(stocked: ComponentHarness):
    await stocked.deliver(reserve("o-1", ("A", 2)), correlation_id="o-1")
    await stocked.deliver(commit(None, {"A": 2}), correlation_id="o-1")
    # The same shipment named explicitly (shipment id = fulfilment id) is the same commit.
    await stocked.deliver(commit("f-1", {"A": 2}), correlation_id="o-1")
    first, second = await stocked.emitted_contracts(StockCommitted.TYPE)
    assert first == second and first.shipment_id is None
    assert (await stock_of(stocked, "A"))["on_hand"] == 4
    [row] = await stocked.fetch("SELECT shipment_id, fulfilment_id FROM committed_fulfilments")
    assert tuple(row) == ("f-1", "f-1")


@pytest.fixture
async def before_parcels(infra: Infra, tmp_path: Path) -> AsyncIterator[ComponentHarness]:
    """Inventory migrated only up to before parcels (0004 held back)."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    for path in MIGRATIONS.glob("*.sql"):
        if path.name < "0004":
            shutil.copy(path, folder / path.name)
    spec = build()
    spec.migrations = folder
    async for harness in start_harness(infra, spec):
        yield harness


async def test_commits_recorded_before_parcels_stay_valid(
    before_parcels: ComponentHarness, tmp_path: Path
):
    h = before_parcels
    # What the code of before parcels recorded: 6 x A received at east, 5 reserved for o-1...
    await h.pool.execute(
        "INSERT INTO skus (sku, name) VALUES ('A', 'A');"
        " INSERT INTO stock (sku, location, on_hand, reserved) VALUES ('A', 'east', 6, 5);"
        " INSERT INTO order_reservations (order_id, outcome, allocations, answered_at)"
        " VALUES ('o-1', 'reserved',"
        ' \'[{"line_id": "L1", "sku": "A", "location": "east", "quantity": 5}]\','
        " now());"
        " INSERT INTO reservations (order_id, line_id, location, sku, position, quantity)"
        " VALUES ('o-1', 'L1', 'east', 'A', 0, 5)"
    )
    # ... and for a commit of the whole fulfilment f-1.
    await h.pool.execute(
        "INSERT INTO committed_fulfilments (fulfilment_id, order_id, location, lines)"
        " VALUES ('f-1', 'o-1', 'east', '[{\"sku\": \"A\", \"quantity\": 2}]')"
    )
    for path in MIGRATIONS.glob("*.sql"):
        if path.name >= "0004":
            shutil.copy(path, tmp_path / "migrations")
    async with h.pool.acquire() as conn:
        applied = await migrate(conn, "inventory", tmp_path / "migrations")
    assert applied[0] == "service/0004_commit_per_shipment"
    await h.clear_outbox()

    await h.deliver(commit(None, {"A": 2}), correlation_id="o-1")  # re-sent after the upgrade
    [answer] = await h.emitted_contracts(StockCommitted.TYPE)
    assert (answer.fulfilment_id, answer.shipment_id) == ("f-1", None)
    assert (await stock_of(h, "A"))["on_hand"] == 6, "answered from the old row, not applied"
    await h.deliver(commit("p-2", {"A": 3}, fid="f-2"), correlation_id="o-1")
    rows = await h.fetch("SELECT shipment_id, fulfilment_id FROM committed_fulfilments ORDER BY 1")
    assert [tuple(r) for r in rows] == [("f-1", "f-1"), ("p-2", "f-2")]
    assert (await stock_of(h, "A"))["on_hand"] == 3
