"""Backorder decisions: reserving with a queue, filling it, expected dates, available to
promise."""

from __future__ import annotations

from datetime import date

import pytest

from services.inventory.backorders.domain import (
    UNASSIGNED,
    Backordered,
    Incoming,
    Policy,
    QueueEntry,
    SkuDemand,
    available_to_promise,
    expected_arrival,
    fill_changes,
    plan_fill,
    reserve,
    spoken_for_taken,
)
from services.inventory.stock.domain import (
    INSUFFICIENT_STOCK,
    LineRequest,
    Placement,
    Refused,
    Reserved,
    StockLevel,
    allocate,
)

KNOWN = {"A", "B"}


def level(sku: str, location: str, on_hand: int, reserved: int = 0) -> StockLevel:
    return StockLevel(sku, location, on_hand, reserved)


def backorderable(sku: str, queued: int = 0, **fields: object) -> SkuDemand:
    return SkuDemand(sku, Policy.BACKORDER, queued=queued, **fields)  # type: ignore[arg-type]


def test_an_order_with_stock_is_reserved_as_before() -> None:
    decision = reserve(
        [LineRequest("l1", "A", 2)], [level("A", "east", 5)], KNOWN, {}, [], allocate
    )
    assert decision == Reserved((Placement("l1", "A", "east", 2),))


def test_short_of_a_denied_sku_is_refused_as_before() -> None:
    decision = reserve(
        [LineRequest("l1", "A", 7)],
        [level("A", "east", 5)],
        KNOWN,
        {"A": SkuDemand("A", Policy.DENY)},
        [],
        allocate,
    )
    assert isinstance(decision, Refused) and decision.reason == INSUFFICIENT_STOCK


def test_short_of_a_backorderable_sku_reserves_what_is_there_and_queues_the_rest() -> None:
    decision = reserve(
        [LineRequest("l1", "A", 7), LineRequest("l2", "B", 1)],
        [level("A", "east", 5), level("B", "east", 3)],
        KNOWN,
        {"A": backorderable("A"), "B": SkuDemand("B")},
        [Incoming("A", "west", date(2026, 12, 20), 10)],
        allocate,
    )
    assert isinstance(decision, Backordered)
    assert decision.placements == (
        Placement("l1", "A", "east", 5),
        Placement("l2", "B", "east", 1),
    )
    [queued] = decision.queued
    assert (queued.line_id, queued.sku, queued.quantity) == ("l1", "A", 2)
    assert (queued.location, queued.expected_on, queued.kind) == (
        "west",
        date(2026, 12, 20),
        "backorder",
    )
    assert decision.expected_on == date(2026, 12, 20)


def test_one_denied_sku_short_refuses_the_whole_order_even_if_another_may_wait() -> None:
    decision = reserve(
        [LineRequest("l1", "A", 7), LineRequest("l2", "B", 9)],
        [level("A", "east", 5), level("B", "east", 3)],
        KNOWN,
        {"A": backorderable("A"), "B": SkuDemand("B")},
        [],
        allocate,
    )
    assert isinstance(decision, Refused)
    assert [s.sku for s in decision.shortfalls] == ["A", "B"]


def test_stock_older_backorders_wait_for_is_not_given_to_a_new_order() -> None:
    """5 arrived, 3 are owed to the queue: a new order for 4 gets 2 and waits for 2."""
    decision = reserve(
        [LineRequest("l1", "A", 4)],
        [level("A", "east", 5)],
        KNOWN,
        {"A": backorderable("A", queued=3)},
        [],
        allocate,
    )
    assert isinstance(decision, Backordered)
    assert decision.placements == (Placement("l1", "A", "east", 2),)
    assert [(q.quantity, q.location, q.expected_on) for q in decision.queued] == [(2, "east", None)]
    assert decision.expected_on is None


def test_spoken_for_stock_is_taken_from_the_fullest_locations_first() -> None:
    levels = spoken_for_taken(
        [level("A", "east", 2), level("A", "west", 5, 1), level("B", "east", 4)],
        {"A": backorderable("A", queued=5)},
    )
    assert levels == [
        level("A", "east", 2, 1),
        level("A", "west", 5, 5),
        level("B", "east", 4),
    ]


def test_a_sku_nobody_has_waits_unassigned_until_a_purchase_order_names_a_place() -> None:
    decision = reserve(
        [LineRequest("l1", "A", 1)], [], KNOWN, {"A": backorderable("A")}, [], allocate
    )
    assert isinstance(decision, Backordered)
    assert decision.placements == ()
    assert decision.queued[0].location == UNASSIGNED


def test_a_preorder_is_expected_on_its_release_date_at_the_earliest() -> None:
    demand = {"A": SkuDemand("A", Policy.PREORDER, release_date=date(2027, 1, 15))}
    early_po = [Incoming("A", "east", date(2027, 1, 2), 5)]
    decision = reserve([LineRequest("l1", "A", 1)], [], KNOWN, demand, early_po, allocate)
    assert isinstance(decision, Backordered)
    [queued] = decision.queued
    assert (queued.kind, queued.expected_on) == ("preorder", date(2027, 1, 15))


@pytest.mark.parametrize(
    ("ahead", "quantity", "expected"),
    [
        (0, 3, (date(2026, 12, 10), "east")),
        (2, 2, (date(2026, 12, 24), "west")),
        (5, 6, None),
    ],
)
def test_the_purchase_order_that_brings_the_last_unit_dates_the_line(
    ahead: int, quantity: int, expected: tuple[date, str] | None
) -> None:
    incoming = [
        Incoming("A", "west", date(2026, 12, 24), 6),
        Incoming("A", "east", date(2026, 12, 10), 3),
        Incoming("B", "east", date(2026, 12, 1), 100),
    ]
    assert expected_arrival("A", ahead, quantity, incoming) == expected


def entry(seq: int, order: str, quantity: int, filled: int = 0, at: str = "east") -> QueueEntry:
    return QueueEntry(seq, order, f"{order}-l1", "A", at, 0, quantity, filled)


def test_arriving_stock_goes_to_the_oldest_first_in_part() -> None:
    queue = [entry(3, "o3", 1), entry(1, "o1", 3), entry(2, "o2", 2)]
    plan = plan_fill("A", queue, [level("A", "east", 4)], whole_first=False)
    assert plan.filled() == {("o1", "o1-l1"): 3, ("o2", "o2-l1"): 1}


def test_whole_first_fills_whole_orders_before_topping_up_an_older_one() -> None:
    queue = [entry(1, "o1", 5), entry(2, "o2", 2), entry(3, "o3", 1)]
    plan = plan_fill("A", queue, [level("A", "east", 4)], whole_first=True)
    assert plan.filled() == {("o2", "o2-l1"): 2, ("o3", "o3-l1"): 1, ("o1", "o1-l1"): 1}


def test_a_line_is_filled_where_it_waits_first_then_from_the_fullest() -> None:
    queue = [entry(1, "o1", 6, filled=1, at="west")]
    stock = [level("A", "east", 3), level("A", "north", 4), level("A", "west", 2)]
    plan = plan_fill("A", queue, stock, whole_first=False)
    assert [(f.location, f.quantity) for f in plan.fills] == [("west", 2), ("north", 3)]
    changes = fill_changes(
        "A", [Placement("o1-l1", "A", f.location, f.quantity) for f in plan.fills]
    )
    assert [(c.location, c.reserved_delta, c.on_hand_delta) for c in changes] == [
        ("north", 3, 0),
        ("west", 2, 0),
    ]


def test_nothing_available_fills_nothing() -> None:
    plan = plan_fill("A", [entry(1, "o1", 2)], [level("A", "east", 3, 3)], whole_first=False)
    assert plan.fills == ()


def test_available_to_promise_counts_queued_demand_and_sellable_incoming() -> None:
    assert available_to_promise(10, 4, SkuDemand("A")) == 6
    assert available_to_promise(10, 4, SkuDemand("A", queued=3, incoming=20)) == 3
    assert available_to_promise(0, 0, backorderable("A", queued=3, incoming=20)) == 17
    assert available_to_promise(0, 0, backorderable("A", queued=3)) == -3


def test_reserving_with_an_allocator_that_refuses_the_available_part_refuses() -> None:
    def stingy(*_: object) -> Reserved | Refused:
        return Refused(INSUFFICIENT_STOCK, ())

    decision = reserve(
        [LineRequest("l1", "A", 2)],
        [level("A", "east", 1)],
        KNOWN,
        {"A": backorderable("A")},
        [],
        stingy,
    )
    assert isinstance(decision, Refused)
