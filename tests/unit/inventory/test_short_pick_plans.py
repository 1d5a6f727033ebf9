"""Short picks decided on plain values: the missing units written off the order's reservation
at the short location, then reserved again elsewhere by the allocation rule."""

from __future__ import annotations

import pytest

from services.inventory.stock.domain import (
    INSUFFICIENT_STOCK,
    Placement,
    Refused,
    ReservationState,
    Reserved,
    StockChange,
    StockLevel,
    plan_short_write_off,
    reallocate_short,
)


def reservation(
    line_id: str, sku: str, location: str, quantity: int, position: int = 0, **done: int
) -> ReservationState:
    return ReservationState("o-1", line_id, sku, location, position, quantity, **done)


def test_a_write_off_takes_the_units_out_of_the_reservation_and_stock_on_hand():
    plan = plan_short_write_off(
        "berlin",
        "A",
        3,
        [
            reservation("l1", "A", "berlin", 2, position=0),
            reservation("l2", "A", "berlin", 4, position=1, committed=1),
            reservation("l2", "A", "hamburg", 5, position=1),
            reservation("l3", "B", "berlin", 1, position=2),
        ],
    )
    assert plan.per_line == (("l1", 2), ("l2", 1))
    assert plan.written_off == 3
    assert [(r.line_id, r.written_off, r.outstanding, r.status) for r in plan.reservations] == [
        ("l1", 2, 0, "written_off"),
        ("l2", 1, 2, "reserved"),
    ]
    # Out of on hand and out of reserved: what is available does not change.
    assert plan.stock_changes == (StockChange("A", "berlin", -3, -3, "short_pick"),)


def test_a_write_off_never_takes_more_than_the_order_holds_there():
    plan = plan_short_write_off(
        "berlin", "A", 5, [reservation("l1", "A", "berlin", 3, committed=1, released=0)]
    )
    assert plan.written_off == 2
    assert plan.stock_changes == (StockChange("A", "berlin", -2, -2, "short_pick"),)
    nothing = plan_short_write_off(
        "berlin", "A", 1, [reservation("l1", "A", "berlin", 1, released=1)]
    )
    assert (nothing.written_off, nothing.stock_changes, nothing.reservations) == (0, (), ())
    with pytest.raises(ValueError):
        plan_short_write_off("berlin", "A", 0, [])


def test_a_reservation_partly_committed_and_written_off_is_committed_when_done():
    done = reservation("l1", "A", "berlin", 3, committed=2).write_off(1)
    assert (done.outstanding, done.status) == (0, "committed")
    with pytest.raises(ValueError):
        reservation("l1", "A", "berlin", 1).write_off(2)


STOCK = [
    StockLevel("A", "berlin", 10, 7),
    StockLevel("A", "hamburg", 5, 1),
    StockLevel("A", "munich", 9, 0),
]


def test_reallocation_prefers_one_location_and_never_the_short_one():
    decision = reallocate_short("A", 3, "berlin", (("l1", 3),), STOCK, {"A"})
    assert decision == Reserved((Placement("l1", "A", "munich", 3),))
    split = reallocate_short("A", 6, "munich", (("l1", 2), ("l2", 4)), STOCK, {"A"})
    assert isinstance(split, Reserved)
    assert sum(p.quantity for p in split.placements) == 6
    assert {p.location for p in split.placements} <= {"hamburg", "berlin"}
    assert {p.line_id for p in split.placements} == {"l1", "l2"}


def test_reallocation_is_all_or_nothing_and_puts_extra_units_on_the_last_line():
    refused = reallocate_short("A", 14, "berlin", (("l1", 14),), STOCK, {"A"})  # 4 + 9
    assert isinstance(refused, Refused) and refused.reason == INSUFFICIENT_STOCK
    beyond = reallocate_short("A", 4, "berlin", (("l1", 1), ("l2", 0)), STOCK, {"A"})
    assert isinstance(beyond, Reserved)
    assert [(p.line_id, p.quantity) for p in beyond.placements] == [("l1", 1), ("l2", 3)]
    with pytest.raises(ValueError):
        reallocate_short("A", 1, "berlin", (), STOCK, {"A"})
