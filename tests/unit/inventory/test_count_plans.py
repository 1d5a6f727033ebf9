"""Cycle counts decided on plain values: deltas, zero deltas, counts below reserved."""

from __future__ import annotations

import pytest

from services.inventory.counts.domain import (
    BelowReserved,
    CountedLine,
    CountedStock,
    CountPlan,
    plan_count,
)
from services.inventory.stock.domain import StockChange, StockLevel

LEVELS = [
    StockLevel("A", "east", 10, 2),
    StockLevel("A", "west", 50, 0),
    StockLevel("B", "east", 4, 0),
]


def test_each_sku_changes_by_counted_minus_on_hand_and_matches_write_nothing():
    plan = plan_count(
        "east", [CountedLine("A", 7), CountedLine("B", 4), CountedLine("C", 3)], LEVELS
    )
    assert isinstance(plan, CountPlan)
    assert plan.lines == (
        CountedStock("A", before=10, reserved=2, counted=7),
        CountedStock("B", before=4, reserved=0, counted=4),
        CountedStock("C", before=0, reserved=0, counted=3),
    )
    assert [line.delta for line in plan.lines] == [-3, 0, 3]
    assert plan.changes == (
        StockChange("A", "east", -3, 0, "count"),
        StockChange("C", "east", 3, 0, "count"),
    )
    assert plan.lines[0].detail("cycle_count") == "cycle_count: counted 7, system had 10"


def test_a_count_below_reserved_refuses_the_whole_count_naming_each_such_line():
    levels = [*LEVELS, StockLevel("B", "west", 6, 5)]
    refused = plan_count("west", [CountedLine("A", 40), CountedLine("B", 4)], levels)
    assert refused == BelowReserved("west", (CountedStock("B", 6, 5, 4),))


def test_counting_exactly_what_is_reserved_is_allowed():
    plan = plan_count("east", [CountedLine("A", 2)], LEVELS)
    assert isinstance(plan, CountPlan)
    assert plan.changes == (StockChange("A", "east", -8, 0, "count"),)


@pytest.mark.parametrize(
    "lines", [[CountedLine("A", 1), CountedLine("A", 2)], [CountedLine("A", -1)]]
)
def test_a_sku_is_counted_once_and_never_below_zero(lines: list[CountedLine]):
    with pytest.raises(ValueError):
        plan_count("east", lines, LEVELS)
