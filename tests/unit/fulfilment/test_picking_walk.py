"""Walking distance: the rectilinear metric, with and without cross aisles, and bin steps."""

from __future__ import annotations

import pytest

from services.fulfilment.domain import Line
from services.fulfilment.picking.strategies import PickingPolicy, PickOrder, Strategy, plan_picking
from services.fulfilment.picking.walk import (
    DEPOT,
    NO_WALK,
    Floor,
    Point,
    Walk,
    distance_m,
    total_walk,
    walk_bins,
    walk_list,
)
from services.fulfilment.warehouse.model import Bin

CROSS_AISLES = (0.0, 20.0)


def _bin(sequence: int, x: float, y: float) -> Bin:
    return Bin(code=f"B{sequence}", zone="A", sequence=sequence, x_m=x, y_m=y)


def test_plain_rectilinear_distance_is_manhattan() -> None:
    assert distance_m(Point(1, 2), Point(4, -2)) == 7.0
    assert distance_m(Point(4, -2), Point(1, 2)) == 7.0
    assert distance_m(Point(3, 3), Point(3, 3)) == 0.0


def test_along_one_aisle_only_y_counts() -> None:
    assert distance_m(Point(6, 2), Point(6, 15), CROSS_AISLES) == 13.0


def test_changing_aisles_goes_round_by_the_nearer_cross_aisle() -> None:
    # Near the front: out to y = 0, across 3 m, back in.
    assert distance_m(Point(3, 2), Point(6, 4), CROSS_AISLES) == 2 + 3 + 4
    # Near the back: by y = 20.
    assert distance_m(Point(3, 18), Point(6, 17), CROSS_AISLES) == 2 + 3 + 3
    # Never shorter than Manhattan.
    assert distance_m(Point(3, 10), Point(9, 11), CROSS_AISLES) >= distance_m(
        Point(3, 10), Point(9, 11)
    )


def test_a_walk_starts_and_ends_at_the_depot() -> None:
    bins = [_bin(1, 3, 2), _bin(2, 3, 5)]
    assert walk_bins(bins) == Walk(metres=5 + 3 + 8, bin_steps=1, stops=2)


def test_a_walk_may_end_at_the_pack_station() -> None:
    floor = Floor(depot=DEPOT, pack_station=Point(10, 0))
    assert walk_bins([_bin(1, 3, 2)], floor).metres == 5 + (7 + 2)


def test_a_walk_from_another_start_with_cross_aisles() -> None:
    floor = Floor(depot=Point(6, 0), cross_aisles_y=CROSS_AISLES)
    bins = [_bin(1, 3, 2), _bin(40, 9, 19)]
    assert walk_bins(bins, floor).metres == (3 + 2) + (18 + 6 + 1) + (19 + 3)
    assert walk_bins(bins, floor).bin_steps == 39


def test_bin_steps_count_backtracking_and_repeat_bins_cost_nothing() -> None:
    bins = [_bin(5, 1, 0), _bin(9, 1, 4), _bin(9, 1, 4), _bin(2, 1, 1)]
    walk = walk_bins(bins)
    assert walk.bin_steps == 4 + 0 + 7
    assert walk.metres == 1 + 4 + 0 + 3 + 2
    assert walk.stops == 4


def test_no_stops_no_walk() -> None:
    assert walk_bins([]) == NO_WALK


def test_walk_of_a_pick_list_and_totals() -> None:
    stock = {"mug": [(_bin(1, 2, 0), 5)], "cup": [(_bin(2, 4, 0), 5)]}
    plan = plan_picking(
        [
            PickOrder("f1", "order-1", (Line("mug", 1),)),
            PickOrder("f2", "order-2", (Line("cup", 1),)),
        ],
        stock,
        PickingPolicy(Strategy.SINGLE_ORDER),
    )
    walks = [walk_list(pick_list) for pick_list in plan.lists]
    assert walks == [Walk(4.0, 0, 1), Walk(8.0, 0, 1)]
    assert total_walk(walks) == Walk(12.0, 0, 2)
    assert total_walk([]) == NO_WALK


@pytest.mark.parametrize("y", [0.0, 7.5, 20.0])
def test_changing_aisles_from_a_cross_aisle_needs_no_detour(y: float) -> None:
    detour = 0 if y in CROSS_AISLES else 2 * min(y, 20 - y)
    assert distance_m(Point(3, y), Point(9, y), CROSS_AISLES) == 6 + detour
