"""Short picks through inventory's real consumer on a real Postgres: the missing units are
written off at the short location (out of on hand and the order's reservation, ledger reason
`short_pick`) and reserved again elsewhere (ReallocateStock), or only written off
(WriteOffShortPick); each applied once per short id, also through crashes and re-sends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.contracts.common import Allocation, SkuQuantity
from shared.contracts.inventory import (
    ShortPickWrittenOff,
    StockCommitted,
    StockReallocated,
    StockReallocationFailed,
    StockReleased,
)
from shared.contracts.order_intake import (
    CommitStock,
    ReallocateStock,
    ReleaseStock,
    WriteOffShortPick,
)
from tests.component.inventory.support import (
    assert_stock_consistent,
    define_sku,
    receive,
    reserve,
    stock_of,
)
from tests.support.component import ComponentHarness
from tests.support.crash import CrashOnce, crash_once_for

pytestmark = pytest.mark.component


@pytest.fixture
async def stocked(inventory: ComponentHarness) -> ComponentHarness:
    """A: 5 at east, 3 at west; the order o-1 holds 2 x A at east (line o-1-l1)."""
    await define_sku(inventory, "A")
    await receive(inventory, "A", "east", 5)
    await receive(inventory, "A", "west", 3)
    await inventory.deliver(reserve("o-1", ("A", 2)), correlation_id="o-1")
    await inventory.clear_outbox()
    return inventory


@pytest.fixture
def crash_once(stocked: ComponentHarness, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrashOnce]:
    yield from crash_once_for(stocked, monkeypatch)


def reallocate(quantity: int = 2, short_id: str = "s-1") -> ReallocateStock:
    return ReallocateStock(
        order_id="o-1",
        short_id=short_id,
        fulfilment_id="f-east",
        location="east",
        sku="A",
        quantity=quantity,
        bin="E-01",
    )


async def levels(h: ComponentHarness) -> dict[str, tuple[int, int]]:
    stock = await stock_of(h, "A")
    return {row["location"]: (row["on_hand"], row["reserved"]) for row in stock["locations"]}


async def test_reallocation_writes_off_at_the_short_location_and_reserves_elsewhere(
    stocked: ComponentHarness, crash_once: CrashOnce
):
    command = reallocate()
    crash_once("before_db_commit")  # rolled back, handled again
    await stocked.deliver(command, correlation_id="o-1")
    crash_once("after_db_commit")  # committed; the redelivery is dropped by the inbox
    sent = await stocked.deliver(command, correlation_id="o-1")
    await stocked.deliver(command, correlation_id="o-1", envelope=sent)  # redelivered as is
    await stocked.deliver(command, correlation_id="o-1")  # the saga re-sends it
    assert crash_once.crashed == ["before_db_commit", "after_db_commit"]

    answers = await stocked.emitted_contracts(StockReallocated.TYPE)
    assert len(answers) == 3 and answers[0] == answers[1] == answers[2]
    assert answers[0] == StockReallocated(
        order_id="o-1",
        short_id="s-1",
        sku="A",
        location="east",
        written_off=2,
        allocations=(Allocation(line_id="o-1-l1", sku="A", location="west", quantity=2),),
    )
    # east: 2 written off (5 -> 3 on hand, nothing reserved); west: 2 reserved of 3.
    assert await levels(stocked) == {"east": (3, 0), "west": (3, 2)}
    rows = await stocked.fetch(
        "SELECT location, quantity, committed, released, written_off, status FROM reservations"
        " WHERE order_id = 'o-1' ORDER BY location"
    )
    assert [tuple(r) for r in rows] == [
        ("east", 2, 0, 0, 2, "written_off"),
        ("west", 2, 0, 0, 0, "reserved"),
    ]
    ledger = await stocked.fetch(
        "SELECT location, on_hand_delta, reserved_delta, reason, reference, detail"
        " FROM stock_ledger WHERE reference = 's-1' ORDER BY id"
    )
    assert [tuple(r) for r in ledger] == [
        ("east", -2, -2, "short_pick", "s-1", "bin E-01 found empty (fulfilment f-east)"),
        ("west", 0, 2, "reserved", "s-1", "re-allocated after a short pick at east"),
    ]
    await assert_stock_consistent(stocked)

    # The new fulfilment ships from west: its commit takes the re-allocated reservation.
    await stocked.deliver(
        CommitStock(
            order_id="o-1",
            fulfilment_id="f-west",
            location="west",
            lines=(SkuQuantity(sku="A", quantity=2),),
        ),
        correlation_id="o-1",
    )
    assert len(await stocked.emitted(StockCommitted.TYPE)) == 1
    assert await levels(stocked) == {"east": (3, 0), "west": (1, 0)}
    await assert_stock_consistent(stocked)
    assert not stocked.dead_letters


async def test_a_location_the_line_already_holds_grows_its_reservation(
    inventory: ComponentHarness,
):
    await define_sku(inventory, "A")
    for location, quantity in (("east", 2), ("west", 4), ("north", 1)):
        await receive(inventory, "A", location, quantity)
    # No location has 5: split, the fullest first (4 at west, 1 at east).
    await inventory.deliver(reserve("o-2", ("A", 5)), correlation_id="o-2")
    await inventory.clear_outbox()
    short = ReallocateStock(
        order_id="o-2",
        short_id="s-2",
        fulfilment_id="f-west",
        location="west",
        sku="A",
        quantity=1,
        bin="W-01",
    )
    await inventory.deliver(short, correlation_id="o-2")
    [answer] = await inventory.emitted_contracts(StockReallocated.TYPE)
    assert answer.allocations == (
        Allocation(line_id="o-2-l1", sku="A", location="east", quantity=1),
    )
    rows = await inventory.fetch(
        "SELECT location, quantity, written_off, status FROM reservations WHERE order_id = 'o-2'"
        " ORDER BY location"
    )
    assert [tuple(r) for r in rows] == [
        ("east", 2, 0, "reserved"),  # the line's reservation there grew by the unit
        ("west", 4, 1, "reserved"),
    ]
    await assert_stock_consistent(inventory)


async def test_reallocation_fails_when_no_other_location_has_the_units_yet_writes_them_off(
    stocked: ComponentHarness,
):
    await define_sku(stocked, "B")
    await receive(stocked, "B", "east", 2)
    await stocked.deliver(reserve("o-b", ("B", 2)), correlation_id="o-b")
    await stocked.clear_outbox()
    command = ReallocateStock(
        order_id="o-b",
        short_id="s-b",
        fulfilment_id="f-east",
        location="east",
        sku="B",
        quantity=2,
        bin="E-02",
    )
    await stocked.deliver(command, correlation_id="o-b")
    await stocked.deliver(command, correlation_id="o-b")  # re-sent: the same answer
    first, again = await stocked.emitted_contracts(StockReallocationFailed.TYPE)
    assert (
        first
        == again
        == StockReallocationFailed(
            order_id="o-b",
            short_id="s-b",
            sku="B",
            location="east",
            written_off=2,
            requested=2,
            available=0,
            reason="insufficient_stock",
        )
    )
    stock = await stock_of(stocked, "B")
    assert (stock["on_hand"], stock["reserved"]) == (0, 0)
    await assert_stock_consistent(stocked)


async def test_a_released_order_gets_nothing_reserved_again(stocked: ComponentHarness):
    await stocked.deliver(ReleaseStock(order_id="o-1", reason="cancelled"), correlation_id="o-1")
    await stocked.clear_outbox()
    await stocked.deliver(reallocate(), correlation_id="o-1")
    [failure] = await stocked.emitted_contracts(StockReallocationFailed.TYPE)
    assert (failure.reason, failure.written_off) == ("order_released", 0)
    assert await levels(stocked) == {"east": (5, 0), "west": (3, 0)}
    await assert_stock_consistent(stocked)


async def test_a_write_off_takes_the_units_and_a_release_gives_back_only_the_rest(
    stocked: ComponentHarness, crash_once: CrashOnce
):
    command = WriteOffShortPick(
        order_id="o-1",
        short_id="s-w",
        fulfilment_id="f-east",
        location="east",
        sku="A",
        quantity=1,
        bin="E-01",
    )
    crash_once("before_db_commit")
    await stocked.deliver(command, correlation_id="o-1")
    crash_once("after_db_commit")
    sent = await stocked.deliver(command, correlation_id="o-1")  # a re-send: answered again
    await stocked.deliver(command, correlation_id="o-1", envelope=sent)  # redelivered: dropped
    assert crash_once.crashed == ["before_db_commit", "after_db_commit"]
    answers = await stocked.emitted_contracts(ShortPickWrittenOff.TYPE)
    assert len(answers) == 2 and answers[0] == answers[1]
    assert answers[0] == ShortPickWrittenOff(
        order_id="o-1", short_id="s-w", sku="A", location="east", written_off=1
    )
    assert await levels(stocked) == {"east": (4, 1), "west": (3, 0)}
    await stocked.deliver(
        ReleaseStock(order_id="o-1", reason="shipped short"), correlation_id="o-1"
    )
    [released] = await stocked.emitted_contracts(StockReleased.TYPE)
    assert [(a.location, a.quantity) for a in released.released] == [("east", 1)]
    assert await levels(stocked) == {"east": (4, 0), "west": (3, 0)}
    await assert_stock_consistent(stocked)
    assert not stocked.dead_letters
