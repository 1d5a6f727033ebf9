"""The saga's commands to inventory through the real consumer on a real Postgres."""

from __future__ import annotations

import pytest

from shared.contracts.common import Allocation, ShortLine, SkuQuantity
from shared.contracts.inventory import (
    AvailabilityChanged,
    RoutingDecision,
    StockCommitted,
    StockReleased,
    StockReservationFailed,
    StockReserved,
)
from shared.contracts.order_intake import CommitStock, ReleaseStock
from tests.component.inventory.support import (
    assert_stock_consistent,
    define_sku,
    receive,
    reserve,
    stock_of,
)
from tests.support.component import ComponentHarness

pytestmark = pytest.mark.component


@pytest.fixture
async def stocked(inventory: ComponentHarness) -> ComponentHarness:
    """A: 5 at east, 3 at west; B: 4 at east."""
    for sku in ("A", "B"):
        await define_sku(inventory, sku)
    await receive(inventory, "A", "east", 5)
    await receive(inventory, "A", "west", 3)
    await receive(inventory, "B", "east", 4)
    await inventory.clear_outbox()
    return inventory


async def test_reserving_holds_stock_at_one_location_and_answers_with_the_allocation(
    stocked: ComponentHarness,
):
    envelope = await stocked.deliver(reserve("o-1", ("A", 2), ("B", 1)), correlation_id="o-1")
    [answer] = await stocked.emitted(StockReserved.TYPE)
    assert answer.correlation_id == "o-1"
    assert answer.causation_id == str(envelope.message_id)
    assert answer.contract() == StockReserved(
        order_id="o-1",
        allocations=(
            Allocation(line_id="o-1-l1", sku="A", location="east", quantity=2),
            Allocation(line_id="o-1-l2", sku="B", location="east", quantity=1),
        ),
        routing=RoutingDecision(
            strategy="single_location_first",
            locations=("east",),
            reason="single_location_first: east can ship the whole order",
        ),
    )
    stock = await stock_of(stocked, "A")
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (8, 2, 6)
    rows = await stocked.fetch(
        "SELECT line_id, location, quantity, status FROM reservations ORDER BY line_id"
    )
    assert [tuple(r) for r in rows] == [
        ("o-1-l1", "east", 2, "reserved"),
        ("o-1-l2", "east", 1, "reserved"),
    ]
    availability = await stocked.emitted_contracts(AvailabilityChanged.TYPE)
    assert availability == [
        AvailabilityChanged(sku="A", on_hand=8, reserved=2, available=6, available_to_promise=6),
        AvailabilityChanged(sku="B", on_hand=4, reserved=1, available=3, available_to_promise=3),
    ]
    ledger = await stocked.fetch(
        "SELECT reason, order_id, reserved_delta FROM stock_ledger"
        " WHERE order_id = 'o-1' ORDER BY sku"
    )
    assert [tuple(r) for r in ledger] == [("reserved", "o-1", 2), ("reserved", "o-1", 1)]
    await assert_stock_consistent(stocked)


async def test_a_line_is_split_across_locations_when_no_location_has_enough(
    stocked: ComponentHarness,
):
    await stocked.deliver(reserve("o-1", ("A", 7)), correlation_id="o-1")
    [answer] = await stocked.emitted_contracts(StockReserved.TYPE)
    assert {(a.location, a.quantity) for a in answer.allocations} == {("east", 5), ("west", 2)}
    stock = await stock_of(stocked, "A")
    assert [(loc["location"], loc["reserved"]) for loc in stock["locations"]] == [
        ("east", 5),
        ("west", 2),
    ]
    await assert_stock_consistent(stocked)


async def test_a_short_order_reserves_nothing_and_names_the_short_lines(
    stocked: ComponentHarness,
):
    await stocked.deliver(reserve("o-1", ("A", 1), ("B", 5)), correlation_id="o-1")
    [answer] = await stocked.emitted_contracts(StockReservationFailed.TYPE)
    assert answer == StockReservationFailed(
        order_id="o-1",
        reason="insufficient_stock",
        short_lines=(ShortLine(line_id="o-1-l2", sku="B", requested=5, available=4),),
    )
    assert (await stock_of(stocked, "A"))["reserved"] == 0
    assert await stocked.fetch("SELECT * FROM reservations") == []
    assert await stocked.emitted(AvailabilityChanged.TYPE) == []


async def test_an_unknown_sku_is_refused(stocked: ComponentHarness):
    await stocked.deliver(reserve("o-1", ("A", 1), ("GHOST", 2)), correlation_id="o-1")
    [answer] = await stocked.emitted_contracts(StockReservationFailed.TYPE)
    assert answer.reason == "unknown_sku"
    assert answer.short_lines == (
        ShortLine(line_id="o-1-l2", sku="GHOST", requested=2, available=0),
    )
    assert (await stock_of(stocked, "A"))["reserved"] == 0


async def test_a_re_sent_reserve_answers_the_same_without_reserving_again(
    stocked: ComponentHarness,
):
    command = reserve("o-1", ("A", 4))
    await stocked.deliver(command, correlation_id="o-1")
    await stocked.deliver(command, correlation_id="o-1")  # new message id, as a saga re-sends
    first, second = await stocked.emitted_contracts(StockReserved.TYPE)
    assert first == second
    assert (await stock_of(stocked, "A"))["reserved"] == 4
    assert len(await stocked.fetch("SELECT * FROM stock_ledger WHERE order_id = 'o-1'")) == 1
    await assert_stock_consistent(stocked)


async def test_a_re_sent_reserve_repeats_a_failure_even_after_stock_arrived(
    stocked: ComponentHarness,
):
    command = reserve("o-1", ("A", 10))
    await stocked.deliver(command, correlation_id="o-1")
    await receive(stocked, "A", "east", 20)
    await stocked.deliver(command, correlation_id="o-1")
    first, second = await stocked.emitted_contracts(StockReservationFailed.TYPE)
    assert first == second
    assert first.reason == "insufficient_stock"
    assert await stocked.emitted(StockReserved.TYPE) == []
    assert (await stock_of(stocked, "A"))["reserved"] == 0


async def test_release_returns_the_stock_and_a_re_sent_release_changes_nothing(
    stocked: ComponentHarness,
):
    await stocked.deliver(reserve("o-1", ("A", 7), ("B", 2)), correlation_id="o-1")
    [reserved] = await stocked.emitted_contracts(StockReserved.TYPE)
    await stocked.clear_outbox()

    release = ReleaseStock(order_id="o-1", reason="payment_declined")
    await stocked.deliver(release, correlation_id="o-1")
    await stocked.deliver(release, correlation_id="o-1")

    first, second = await stocked.emitted_contracts(StockReleased.TYPE)
    assert first == second
    assert set(first.released) == set(reserved.allocations)
    for sku, on_hand in (("A", 8), ("B", 4)):
        stock = await stock_of(stocked, sku)
        assert (stock["on_hand"], stock["reserved"], stock["available"]) == (on_hand, 0, on_hand)
    statuses = await stocked.fetch("SELECT DISTINCT status FROM reservations")
    assert [r["status"] for r in statuses] == ["released"]
    # Availability is announced for the release only, not for the no-op repeat.
    assert [a.sku for a in await stocked.emitted_contracts(AvailabilityChanged.TYPE)] == ["A", "B"]
    ledger = await stocked.fetch(
        "SELECT reason, detail FROM stock_ledger WHERE order_id = 'o-1' AND reason = 'released'"
    )
    assert {tuple(r) for r in ledger} == {("released", "payment_declined")}
    await assert_stock_consistent(stocked)


async def test_releasing_an_order_with_nothing_reserved_still_answers(stocked: ComponentHarness):
    await stocked.deliver(ReleaseStock(order_id="o-9", reason="cancelled"), correlation_id="o-9")
    [answer] = await stocked.emitted(StockReleased.TYPE)
    assert answer.correlation_id == "o-9"
    assert answer.contract() == StockReleased(order_id="o-9", released=())
    assert await stocked.emitted(AvailabilityChanged.TYPE) == []


async def test_a_reserve_arriving_after_the_release_is_refused(stocked: ComponentHarness):
    await stocked.deliver(ReleaseStock(order_id="o-1", reason="gave_up"), correlation_id="o-1")
    await stocked.deliver(reserve("o-1", ("A", 1)), correlation_id="o-1")
    [answer] = await stocked.emitted_contracts(StockReservationFailed.TYPE)
    assert answer == StockReservationFailed(order_id="o-1", reason="order_released")
    assert (await stock_of(stocked, "A"))["reserved"] == 0
    assert await stocked.fetch("SELECT * FROM reservations") == []


async def test_commit_deducts_what_shipped_and_leaves_nothing_reserved(stocked: ComponentHarness):
    await stocked.deliver(reserve("o-1", ("A", 2), ("B", 1)), correlation_id="o-1")
    await stocked.clear_outbox()
    commit = CommitStock(
        order_id="o-1",
        fulfilment_id="f-1",
        location="east",
        lines=(SkuQuantity(sku="A", quantity=2), SkuQuantity(sku="B", quantity=1)),
    )
    await stocked.deliver(commit, correlation_id="o-1")
    await stocked.deliver(commit, correlation_id="o-1")

    first, second = await stocked.emitted_contracts(StockCommitted.TYPE)
    assert (
        first
        == second
        == StockCommitted(order_id="o-1", fulfilment_id="f-1", location="east", lines=commit.lines)
    )
    a, b = await stock_of(stocked, "A"), await stock_of(stocked, "B")
    assert (a["on_hand"], a["reserved"], a["available"]) == (6, 0, 6)
    assert a["locations"][0] == {"location": "east", "on_hand": 3, "reserved": 0, "available": 3}
    assert (b["on_hand"], b["reserved"], b["available"]) == (3, 0, 3)
    statuses = await stocked.fetch("SELECT DISTINCT status FROM reservations")
    assert [r["status"] for r in statuses] == ["committed"]
    ledger = await stocked.fetch(
        "SELECT sku, on_hand_delta, reserved_delta, reference FROM stock_ledger"
        " WHERE reason = 'committed' ORDER BY sku"
    )
    assert [tuple(r) for r in ledger] == [("A", -2, -2, "f-1"), ("B", -1, -1, "f-1")]
    # Nothing was left to release afterwards.
    await stocked.deliver(ReleaseStock(order_id="o-1", reason="late"), correlation_id="o-1")
    [released] = await stocked.emitted_contracts(StockReleased.TYPE)
    assert released.released == ()
    await assert_stock_consistent(stocked)


async def test_commits_of_split_shipments_each_deduct_their_location(stocked: ComponentHarness):
    await stocked.deliver(reserve("o-1", ("A", 7)), correlation_id="o-1")
    for fulfilment_id, location, quantity in (("f-1", "east", 5), ("f-2", "west", 2)):
        await stocked.deliver(
            CommitStock(
                order_id="o-1",
                fulfilment_id=fulfilment_id,
                location=location,
                lines=(SkuQuantity(sku="A", quantity=quantity),),
            ),
            correlation_id="o-1",
        )
    stock = await stock_of(stocked, "A")
    assert [(loc["location"], loc["on_hand"], loc["reserved"]) for loc in stock["locations"]] == [
        ("east", 0, 0),
        ("west", 1, 0),
    ]
    await assert_stock_consistent(stocked)


async def test_a_commit_inventory_cannot_account_for_is_dead_lettered(stocked: ComponentHarness):
    await stocked.deliver(
        CommitStock(
            order_id="o-1",
            fulfilment_id="f-1",
            location="west",
            lines=(SkuQuantity(sku="A", quantity=50),),
        ),
        correlation_id="o-1",
    )
    [(_, headers)] = stocked.dead_letters
    assert headers["x-dlq-reason"] == "handler_failed"
    assert "CannotCommit" in headers["x-dlq-error"]
    assert (await stock_of(stocked, "A"))["on_hand"] == 8
    assert await stocked.emitted(StockCommitted.TYPE) == []


async def test_shipping_from_another_location_moves_the_deduction_there(
    stocked: ComponentHarness,
):
    await stocked.deliver(reserve("o-1", ("A", 2)), correlation_id="o-1")  # reserved at east
    await stocked.deliver(
        CommitStock(
            order_id="o-1",
            fulfilment_id="f-1",
            location="west",
            lines=(SkuQuantity(sku="A", quantity=2),),
        ),
        correlation_id="o-1",
    )
    stock = await stock_of(stocked, "A")
    assert [(loc["location"], loc["on_hand"], loc["reserved"]) for loc in stock["locations"]] == [
        ("east", 5, 0),
        ("west", 1, 0),
    ]
    [status] = await stocked.fetch("SELECT status FROM reservations")
    assert status["status"] == "released"
    await assert_stock_consistent(stocked)
