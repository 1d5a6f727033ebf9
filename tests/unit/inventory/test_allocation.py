"""Allocation of an order's lines to stock locations: pure, deterministic, all or nothing."""

from __future__ import annotations

import itertools

import pytest

from services.inventory.stock.domain import (
    INSUFFICIENT_STOCK,
    UNKNOWN_SKU,
    LineRequest,
    Placement,
    Refused,
    Reserved,
    Shortfall,
    StockChange,
    StockLevel,
    allocate,
    reservation_changes,
)


def line(line_id: str, sku: str, quantity: int) -> LineRequest:
    return LineRequest(line_id, sku, quantity)


def stock(location: str, sku: str, on_hand: int, reserved: int = 0) -> StockLevel:
    return StockLevel(sku, location, on_hand, reserved)


def placed(result: Reserved | Refused) -> list[tuple[str, str, int]]:
    assert isinstance(result, Reserved), result
    return [(p.line_id, p.location, p.quantity) for p in result.placements]


def test_one_location_that_holds_the_whole_order_is_preferred_over_a_split():
    lines = [line("l1", "A", 2), line("l2", "B", 1)]
    levels = [
        stock("east", "A", 10),  # plenty of A, no B: would need a split
        stock("north", "B", 10),
        stock("west", "A", 2),
        stock("west", "B", 1),
    ]
    assert placed(allocate(lines, levels, {"A", "B"})) == [("l1", "west", 2), ("l2", "west", 1)]


def test_among_locations_that_can_fill_the_order_the_one_with_most_available_wins():
    lines = [line("l1", "A", 2)]
    levels = [stock("east", "A", 5), stock("west", "A", 9), stock("north", "A", 3)]
    assert placed(allocate(lines, levels, {"A"})) == [("l1", "west", 2)]


def test_a_tie_on_availability_is_broken_by_location_name():
    lines = [line("l1", "A", 2)]
    levels = [stock("west", "A", 5), stock("east", "A", 5)]
    assert placed(allocate(lines, levels, {"A"})) == [("l1", "east", 2)]


def test_reserved_stock_is_not_available():
    lines = [line("l1", "A", 3)]
    levels = [stock("east", "A", 10, reserved=8), stock("west", "A", 4, reserved=0)]
    assert placed(allocate(lines, levels, {"A"})) == [("l1", "west", 3)]


def test_lines_are_spread_over_locations_whole_when_no_single_location_can_fill_the_order():
    lines = [line("l1", "A", 5), line("l2", "B", 5), line("l3", "C", 1)]
    levels = [
        stock("east", "A", 5),
        stock("east", "C", 1),
        stock("west", "B", 5),
        stock("north", "A", 1),
        stock("north", "B", 1),
        stock("north", "C", 1),
    ]
    assert placed(allocate(lines, levels, {"A", "B", "C"})) == [
        ("l1", "east", 5),
        ("l2", "west", 5),
        ("l3", "east", 1),
    ]


def test_a_line_no_location_holds_whole_is_split_taking_most_from_the_fullest():
    lines = [line("l1", "A", 10)]
    levels = [stock("east", "A", 6), stock("west", "A", 7), stock("north", "A", 2)]
    # 7 from west (fullest), then the remaining 3 fit whole at east.
    assert placed(allocate(lines, levels, {"A"})) == [("l1", "east", 3), ("l1", "west", 7)]


def test_split_uses_few_locations():
    lines = [line("l1", "A", 4), line("l2", "B", 4), line("l3", "C", 4)]
    levels = [
        stock("big", "A", 4),
        stock("big", "B", 4),
        stock("small-1", "C", 4),
        stock("small-2", "A", 4),
        stock("small-3", "B", 4),
    ]
    result = placed(allocate(lines, levels, {"A", "B", "C"}))
    assert {location for _, location, _ in result} == {"big", "small-1"}


def test_lines_of_the_same_sku_share_a_location_s_stock():
    lines = [line("l1", "A", 3), line("l2", "A", 3)]
    levels = [stock("east", "A", 4), stock("west", "A", 3)]
    result = placed(allocate(lines, levels, {"A"}))
    assert sum(q for _, _, q in result) == 6
    per_location: dict[str, int] = {}
    for _, location, quantity in result:
        per_location[location] = per_location.get(location, 0) + quantity
    assert per_location["east"] <= 4
    assert per_location["west"] <= 3


def test_the_result_does_not_depend_on_the_order_stock_is_listed_in():
    lines = [line("l1", "A", 5), line("l2", "B", 3), line("l3", "A", 2)]
    levels = [
        stock("east", "A", 4),
        stock("east", "B", 3),
        stock("west", "A", 4),
        stock("south", "B", 2),
        stock("south", "A", 1),
    ]
    results = {
        allocate(lines, list(permutation), {"A", "B"})
        for permutation in itertools.permutations(levels)
    }
    assert len(results) == 1
    assert isinstance(next(iter(results)), Reserved)


def test_all_or_nothing_one_short_line_refuses_the_whole_order_and_names_only_that_line():
    lines = [line("l1", "A", 1), line("l2", "B", 5)]
    levels = [stock("east", "A", 10), stock("east", "B", 2), stock("west", "B", 1)]
    result = allocate(lines, levels, {"A", "B"})
    assert result == Refused(INSUFFICIENT_STOCK, (Shortfall("l2", "B", 5, 3),))


def test_short_lines_of_one_sku_are_served_in_line_order():
    lines = [line("l1", "A", 3), line("l2", "A", 4)]
    result = allocate(lines, [stock("east", "A", 5)], {"A"})
    assert result == Refused(INSUFFICIENT_STOCK, (Shortfall("l2", "A", 4, 2),))


def test_a_sku_without_any_stock_is_short_with_nothing_available():
    result = allocate([line("l1", "A", 1)], [stock("east", "A", 3, reserved=3)], {"A"})
    assert result == Refused(INSUFFICIENT_STOCK, (Shortfall("l1", "A", 1, 0),))


def test_unknown_skus_are_refused_with_nothing_available():
    lines = [line("l1", "A", 1), line("l2", "NOPE", 2)]
    result = allocate(lines, [stock("east", "A", 3)], {"A"})
    assert result == Refused(UNKNOWN_SKU, (Shortfall("l2", "NOPE", 2, 0),))


def test_an_order_without_lines_reserves_nothing():
    assert allocate([], [stock("east", "A", 3)], {"A"}) == Reserved(())


def test_duplicate_line_ids_are_a_bug_of_the_sender():
    with pytest.raises(ValueError, match="l1"):
        allocate([line("l1", "A", 1), line("l1", "A", 1)], [stock("east", "A", 3)], {"A"})


def test_reservation_changes_sum_placements_per_stock_row():
    placements = [
        Placement("l1", "A", "east", 2),
        Placement("l2", "A", "east", 3),
        Placement("l2", "A", "west", 1),
    ]
    assert reservation_changes(placements) == (
        StockChange("A", "east", 0, 5, "reserved"),
        StockChange("A", "west", 0, 1, "reserved"),
    )
