"""Adjustments, releases and commits decided on plain values."""

from __future__ import annotations

import pytest

from services.inventory.stock.domain import (
    CannotCommit,
    InsufficientStock,
    ReservationState,
    StockChange,
    StockLevel,
    adjust,
    plan_commit,
    plan_release,
    totals,
)


def reservation(
    line_id: str, sku: str, location: str, quantity: int, position: int = 0, **done: int
) -> ReservationState:
    return ReservationState("o-1", line_id, sku, location, position, quantity, **done)


# --- adjustments ---------------------------------------------------------------------------


def test_an_adjustment_changes_on_hand_and_keeps_reserved():
    assert adjust(StockLevel("A", "east", 5, 2), 3) == StockLevel("A", "east", 8, 2)
    assert adjust(StockLevel("A", "east", 5, 2), -3) == StockLevel("A", "east", 2, 2)


@pytest.mark.parametrize("delta", [-4, -6])
def test_an_adjustment_never_takes_on_hand_below_reserved_or_zero(delta: int):
    with pytest.raises(InsufficientStock):
        adjust(StockLevel("A", "east", 5, 2), delta)


def test_a_zero_adjustment_is_refused():
    with pytest.raises(ValueError):
        adjust(StockLevel("A", "east", 5, 2), 0)


# --- reservations ---------------------------------------------------------------------------


def test_a_reservation_s_status_follows_what_is_left_of_it():
    assert reservation("l1", "A", "east", 3).status == "reserved"
    assert reservation("l1", "A", "east", 3, committed=1).status == "reserved"
    assert reservation("l1", "A", "east", 3, committed=3).status == "committed"
    assert reservation("l1", "A", "east", 3, released=3).status == "released"
    assert reservation("l1", "A", "east", 3, committed=1, released=2).status == "committed"
    with pytest.raises(ValueError):
        reservation("l1", "A", "east", 3).commit(4)


def test_release_returns_everything_outstanding_to_stock():
    plan = plan_release(
        [
            reservation("l1", "A", "east", 3),
            reservation("l2", "A", "east", 2, position=1, committed=1),
            reservation("l3", "B", "west", 4, position=2, released=4),
        ]
    )
    assert [(r.line_id, r.released, r.status) for r in plan.reservations] == [
        ("l1", 3, "released"),
        ("l2", 1, "committed"),
    ]
    assert plan.stock_changes == (StockChange("A", "east", 0, -4, "released"),)


def test_release_with_nothing_reserved_is_an_empty_plan():
    plan = plan_release([])
    assert plan.reservations == ()
    assert plan.stock_changes == ()


# --- commits --------------------------------------------------------------------------------


def test_commit_turns_the_reservation_at_the_location_into_a_deduction():
    plan = plan_commit(
        "east",
        [("A", 3)],
        [reservation("l1", "A", "east", 3), reservation("l2", "B", "west", 1, position=1)],
        [StockLevel("A", "east", 10, 3)],
    )
    assert [(r.line_id, r.committed, r.status) for r in plan.reservations] == [
        ("l1", 3, "committed")
    ]
    assert plan.stock_changes == (StockChange("A", "east", -3, -3, "committed"),)


def test_a_partial_commit_leaves_the_rest_reserved():
    plan = plan_commit(
        "east", [("A", 1)], [reservation("l1", "A", "east", 3)], [StockLevel("A", "east", 3, 3)]
    )
    assert [(r.committed, r.status) for r in plan.reservations] == [(1, "reserved")]
    assert plan.stock_changes == (StockChange("A", "east", -1, -1, "committed"),)


def test_lines_of_one_sku_are_summed_and_consume_reservations_in_line_order():
    plan = plan_commit(
        "east",
        [("A", 2), ("A", 2)],
        [reservation("l2", "A", "east", 3, position=1), reservation("l1", "A", "east", 2)],
        [StockLevel("A", "east", 5, 5)],
    )
    assert [(r.line_id, r.committed) for r in plan.reservations] == [("l1", 2), ("l2", 2)]
    assert plan.stock_changes == (StockChange("A", "east", -4, -4, "committed"),)


def test_shipping_from_another_location_deducts_free_stock_and_releases_the_reservation():
    plan = plan_commit(
        "west",
        [("A", 2)],
        [reservation("l1", "A", "east", 2)],
        [StockLevel("A", "east", 5, 2), StockLevel("A", "west", 4, 0)],
    )
    assert [(r.line_id, r.released, r.status) for r in plan.reservations] == [("l1", 2, "released")]
    assert plan.stock_changes == (
        StockChange("A", "east", 0, -2, "released"),
        StockChange("A", "west", -2, 0, "committed"),
    )


def test_shipping_what_is_neither_reserved_nor_available_cannot_be_committed():
    with pytest.raises(CannotCommit, match="only 1 is available"):
        plan_commit(
            "east", [("A", 3)], [reservation("l1", "A", "east", 1)], [StockLevel("A", "east", 2, 1)]
        )


def test_totals_sum_locations_per_sku():
    result = totals(
        [StockLevel("A", "east", 5, 2), StockLevel("A", "west", 3, 3), StockLevel("B", "x", 1, 0)]
    )
    assert [(t.sku, t.on_hand, t.reserved, t.available) for t in result.values()] == [
        ("A", 8, 5, 3),
        ("B", 1, 0, 1),
    ]
