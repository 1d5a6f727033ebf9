"""The distance a picker walks along a pick list, free of I/O.

The walk starts at the depot, visits the stops in the list's order and ends at the pack station
(the depot, unless the floor names another). Distances are rectilinear over the floor
coordinates (`Bin.x_m`, `Bin.y_m`, in metres): a picker moves along aisles and cross aisles,
never diagonally through racks.

    no cross aisles given   |dx| + |dy| (Manhattan): a lower bound of the real walk
    cross aisles given      same x (the same aisle): |dy|; otherwise the picker leaves by a
                            cross aisle at y = c, and walks |dx| + min over c (|y1-c| + |y2-c|)

The second is exact for a parallel-aisle floor whose bins carry the x of the aisle they are
picked from; the first ignores the detour to the end of an aisle, and so flatters lists with
many aisle changes (single-order lists most).

`bin_steps` counts positions along the walking path (`Bin.sequence`) between the first and the
last stop, backtracking included: a measure that knows nothing of the floor's geometry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from services.fulfilment.picking.strategies import PickList
from services.fulfilment.warehouse.model import Bin

_SAME_AISLE_M = 1e-6


@dataclass(frozen=True)
class Point:
    x_m: float
    y_m: float


DEPOT = Point(0.0, 0.0)


@dataclass(frozen=True)
class Floor:
    """What a walk needs to know of the floor: where it starts and ends, and the cross aisles
    (their y) a picker changes aisles by; none: plain Manhattan distances."""

    depot: Point = DEPOT
    pack_station: Point | None = None  # where the walk ends; None: back at the depot
    cross_aisles_y: tuple[float, ...] = ()

    @property
    def end(self) -> Point:
        return self.pack_station or self.depot


@dataclass(frozen=True)
class Walk:
    metres: float
    bin_steps: int
    stops: int

    def __add__(self, other: Walk) -> Walk:
        return Walk(
            self.metres + other.metres, self.bin_steps + other.bin_steps, self.stops + other.stops
        )


NO_WALK = Walk(0.0, 0, 0)


def distance_m(a: Point, b: Point, cross_aisles_y: Sequence[float] = ()) -> float:
    """Metres from `a` to `b` (see the module docstring for the metric)."""
    dx = abs(a.x_m - b.x_m)
    if not cross_aisles_y or dx < _SAME_AISLE_M:
        return dx + abs(a.y_m - b.y_m)
    return dx + min(abs(a.y_m - c) + abs(b.y_m - c) for c in cross_aisles_y)


def walk_bins(bins: Sequence[Bin], floor: Floor = Floor()) -> Walk:
    """Depot, each bin in the order given, pack station. No bins: no walk."""
    if not bins:
        return NO_WALK
    points = [floor.depot, *(Point(b.x_m, b.y_m) for b in bins), floor.end]
    metres = sum(distance_m(a, b, floor.cross_aisles_y) for a, b in pairwise(points))
    steps = sum(abs(a.sequence - b.sequence) for a, b in pairwise(bins))
    return Walk(metres, steps, len(bins))


def walk_list(pick_list: PickList, floor: Floor = Floor()) -> Walk:
    return walk_bins([stop.bin for stop in pick_list.stops], floor)


def total_walk(walks: Iterable[Walk]) -> Walk:
    return sum(walks, NO_WALK)
