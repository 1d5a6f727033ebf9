"""Choosing boxes for a fulfilment's units, free of I/O.

`choose_boxes` returns the smallest catalogue box (by inner volume, then cost) that takes every
unit; when none does, several boxes: as few as it finds, then each shrunk to the smallest box that
still takes its share. Every box in a plan carries a placement proof (each unit's corner position
and one of its six axis-aligned orientations) and `verify` checks that proof: every unit inside the
box, no two units overlapping, the gross weight (units plus tare) within the box's limit. The
chooser only returns plans that `verify` passes, so it never names a box that is too small. An
item that fits no box on its own, in any orientation or by weight, is refused (`item_fits_no_box`).

Why our own heuristic and not a library: the PyPI packages for 3D bin packing are either
unmaintained (py3dbp: last release 2020, open reports of units placed outside the bin and on top
of each other, float/Decimal coordinates) or young single-author projects without a track record
(packvium, packer3d, 3dbinpacking); OR-Tools is well kept but a large native dependency for what
is a small problem per order. The heuristic here is small and exact in integer millimetres:

    extreme-point first-fit decreasing with orientations. Units are taken largest first; each
    goes to the first free corner point (lowest, then nearest the back, then the left) where one
    of its orientations fits inside the box without touching a placed unit. Placing a unit adds
    the corner points at its three far faces, also slid back along each axis until they meet a
    unit or a wall (the extreme points of Crainic, Perboli and Tadei, 2008). A failed attempt is
    retried with other unit orders and orientation preferences before the box is given up.

Like any heuristic it can miss a packing that exists (then a larger box or one more box is
chosen); it never claims one that does not. Placements prove that the units fit; they say nothing
about load order, stacking strength or how stable a unit is where it lies.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from services.fulfilment.packing.weights import parcel_weight_g
from services.fulfilment.warehouse.model import Dimensions, Item

# --- catalogue and plan ----------------------------------------------------------------------


class Orientation(StrEnum):
    """Which of the item's own sides (l: length, w: width, h: height) lies along the box's length,
    width and height, in that order. `lwh` is the item as its dimensions are given."""

    LWH = "lwh"
    LHW = "lhw"
    WLH = "wlh"
    WHL = "whl"
    HLW = "hlw"
    HWL = "hwl"


def oriented(dimensions: Dimensions, orientation: Orientation) -> Dimensions:
    """An item's extent along the box's length, width and height when turned to `orientation`."""
    sides = {"l": dimensions.length_mm, "w": dimensions.width_mm, "h": dimensions.height_mm}
    along_length, along_width, along_height = (sides[side] for side in orientation.value)
    return Dimensions(along_length, along_width, along_height)


@dataclass(frozen=True)
class BoxType:
    """A catalogue entry. `max_weight_g` bounds the gross weight: contents plus `tare_weight_g`.
    `outer`, when known, is what a carrier rates; `cost` (per box) breaks ties of volume."""

    code: str
    inner: Dimensions
    max_weight_g: int
    tare_weight_g: int
    cost: Decimal | None = None
    outer: Dimensions | None = None

    def __post_init__(self) -> None:
        if min(self.inner.length_mm, self.inner.width_mm, self.inner.height_mm) <= 0:
            raise ValueError(f"box {self.code} has inner dimensions {self.inner}")
        if self.tare_weight_g < 0 or self.max_weight_g <= self.tare_weight_g:
            raise ValueError(
                f"box {self.code}: max weight {self.max_weight_g} g must exceed its tare "
                f"{self.tare_weight_g} g"
            )

    @property
    def volume_mm3(self) -> int:
        return self.inner.volume_mm3

    @property
    def payload_g(self) -> int:
        """The most its contents may weigh."""
        return self.max_weight_g - self.tare_weight_g


def box_rank(box: BoxType) -> tuple[int, bool, Decimal, str]:
    """Smaller first: by inner volume, then cost (a box without a cost after one with), then code."""
    return (box.volume_mm3, box.cost is None, box.cost or Decimal(0), box.code)


@dataclass(frozen=True)
class Unit:
    """One physical unit: the `number`-th (from 1) unit of its SKU in what is being packed."""

    sku: str
    number: int
    item: Item


@dataclass(frozen=True, order=True)
class Position:
    """A unit's corner nearest the box's inner corner, in millimetres along its length, width
    and height."""

    x_mm: int
    y_mm: int
    z_mm: int


@dataclass(frozen=True)
class Placement:
    unit: Unit
    position: Position
    orientation: Orientation

    @property
    def extent(self) -> Dimensions:
        """The space the unit takes along the box's length, width and height."""
        return oriented(self.unit.item.dimensions, self.orientation)

    @property
    def far_corner(self) -> Position:
        extent = self.extent
        return Position(
            self.position.x_mm + extent.length_mm,
            self.position.y_mm + extent.width_mm,
            self.position.z_mm + extent.height_mm,
        )


@dataclass(frozen=True)
class PackedBox:
    """One box of a plan: the units it holds and where each lies (the placement proof)."""

    box: BoxType
    placements: tuple[Placement, ...]

    @property
    def units(self) -> tuple[Unit, ...]:
        return tuple(placement.unit for placement in self.placements)

    @property
    def contents_weight_g(self) -> int:
        return sum(placement.unit.item.weight_g for placement in self.placements)

    @property
    def gross_weight_g(self) -> int:
        """What the parcel weighs: its units plus the box's tare."""
        return parcel_weight_g(
            ((placement.unit.item, 1) for placement in self.placements), self.box.tare_weight_g
        )

    def quantities(self) -> dict[str, int]:
        """Units per SKU, sorted by SKU: what the pack station expects to scan into this box."""
        return dict(sorted(Counter(unit.sku for unit in self.units).items()))


@dataclass(frozen=True)
class PackingPlan:
    boxes: tuple[PackedBox, ...]

    @property
    def box_count(self) -> int:
        return len(self.boxes)

    @property
    def total_volume_mm3(self) -> int:
        return sum(packed.box.volume_mm3 for packed in self.boxes)


# --- refusals and verification --------------------------------------------------------------


class PackingRefusal(StrEnum):
    """Stable codes for orders that cannot be packed (also the HTTP error codes)."""

    ITEM_FITS_NO_BOX = "item_fits_no_box"


class PackingRefused(Exception):
    def __init__(self, code: PackingRefusal, sku: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.sku = sku


class NothingToPack(ValueError):
    pass


class FaultKind(StrEnum):
    OUT_OF_BOUNDS = "out_of_bounds"
    OVERLAP = "overlap"
    OVER_WEIGHT = "over_weight"
    EMPTY_BOX = "empty_box"
    UNIT_REPEATED = "unit_repeated"
    UNIT_MISSING = "unit_missing"
    UNIT_UNEXPECTED = "unit_unexpected"


@dataclass(frozen=True)
class PlanFault:
    """What is wrong with a plan; `box_index` is None for faults of the plan as a whole."""

    kind: FaultKind
    box_index: int | None
    detail: str


class UnverifiedPlan(RuntimeError):
    """A plan the chooser built failed `verify`: a bug in the heuristic, never returned."""

    def __init__(self, faults: Sequence[PlanFault]) -> None:
        super().__init__("; ".join(f"{fault.kind.value}: {fault.detail}" for fault in faults))
        self.faults = tuple(faults)


def _overlapping_pairs(placements: Sequence[Placement]) -> list[tuple[int, int]]:
    """Index pairs (in placement order) of units sharing some volume; faces may touch. A sweep
    along the box's length, so only units whose lengthwise spans meet are compared."""
    spans = sorted(
        (placement.position, placement.far_corner, index)
        for index, placement in enumerate(placements)
    )
    pairs: list[tuple[int, int]] = []
    for i, (near, far, index) in enumerate(spans):
        for other_near, other_far, other_index in spans[i + 1 :]:
            if other_near.x_mm >= far.x_mm:
                break
            if (
                near.x_mm < other_far.x_mm
                and near.y_mm < other_far.y_mm
                and other_near.y_mm < far.y_mm
                and near.z_mm < other_far.z_mm
                and other_near.z_mm < far.z_mm
            ):
                pairs.append((min(index, other_index), max(index, other_index)))
    return sorted(pairs)


def _label(unit: Unit) -> str:
    return f"{unit.sku} #{unit.number}"


def verify_box(packed: PackedBox, box_index: int = 0) -> tuple[PlanFault, ...]:
    """Faults of one box: units outside it, units overlapping, too heavy, empty."""
    faults: list[PlanFault] = []
    inner = packed.box.inner
    if not packed.placements:
        faults.append(PlanFault(FaultKind.EMPTY_BOX, box_index, f"box {packed.box.code} is empty"))
    for placement in packed.placements:
        near, far = placement.position, placement.far_corner
        if min(near.x_mm, near.y_mm, near.z_mm) < 0 or (
            far.x_mm > inner.length_mm or far.y_mm > inner.width_mm or far.z_mm > inner.height_mm
        ):
            faults.append(
                PlanFault(
                    FaultKind.OUT_OF_BOUNDS,
                    box_index,
                    f"{_label(placement.unit)} at {near} turned {placement.orientation.value} "
                    f"does not lie inside box {packed.box.code}",
                )
            )
    for first, second in _overlapping_pairs(packed.placements):
        a, b = packed.placements[first], packed.placements[second]
        faults.append(
            PlanFault(
                FaultKind.OVERLAP,
                box_index,
                f"{_label(a.unit)} and {_label(b.unit)} overlap in box {packed.box.code}",
            )
        )
    if packed.gross_weight_g > packed.box.max_weight_g:
        faults.append(
            PlanFault(
                FaultKind.OVER_WEIGHT,
                box_index,
                f"box {packed.box.code} weighs {packed.gross_weight_g} g, more than its "
                f"{packed.box.max_weight_g} g",
            )
        )
    return tuple(faults)


def verify(
    plan: PackingPlan, expected: Sequence[tuple[Item, int]] | None = None
) -> tuple[PlanFault, ...]:
    """Every fault of `plan` (none: it is sound). Each box is checked with `verify_box`; no unit may
    be placed twice; given `expected` (the order lines), each of its units is placed exactly once
    and nothing else is."""
    faults: list[PlanFault] = []
    for index, packed in enumerate(plan.boxes):
        faults.extend(verify_box(packed, index))
    placed = Counter((unit.sku, unit.number) for packed in plan.boxes for unit in packed.units)
    for (sku, number), count in sorted(placed.items()):
        if count > 1:
            faults.append(
                PlanFault(FaultKind.UNIT_REPEATED, None, f"{sku} #{number} is placed {count} times")
            )
    if expected is not None:
        wanted = {(unit.sku, unit.number) for unit in units_of(expected)}
        for sku, number in sorted(wanted - placed.keys()):
            faults.append(PlanFault(FaultKind.UNIT_MISSING, None, f"{sku} #{number} is not placed"))
        for sku, number in sorted(placed.keys() - wanted):
            faults.append(
                PlanFault(FaultKind.UNIT_UNEXPECTED, None, f"{sku} #{number} was not ordered")
            )
    return tuple(faults)


# --- the heuristic ---------------------------------------------------------------------------


def units_of(lines: Iterable[tuple[Item, int]]) -> list[Unit]:
    """The units of order lines, numbered from 1 per SKU; a SKU may appear on several lines."""
    units: list[Unit] = []
    items: dict[str, Item] = {}
    counts: Counter[str] = Counter()
    for item, quantity in lines:
        if quantity <= 0:
            raise ValueError(f"{item.sku} has quantity {quantity}")
        if items.setdefault(item.sku, item) != item:
            raise ValueError(f"{item.sku} is given with two different descriptions")
        dimensions = item.dimensions
        if min(dimensions.length_mm, dimensions.width_mm, dimensions.height_mm) <= 0:
            raise ValueError(f"{item.sku} has dimensions {dimensions}")
        if item.weight_g < 0:
            raise ValueError(f"{item.sku} has weight {item.weight_g} g")
        for _ in range(quantity):
            counts[item.sku] += 1
            units.append(Unit(item.sku, counts[item.sku], item))
    return units


def _distinct_orientations(dimensions: Dimensions) -> list[Orientation]:
    """One orientation per distinct extent: a cube has one, a square-ended bar three."""
    seen: set[Dimensions] = set()
    distinct: list[Orientation] = []
    for orientation in Orientation:
        extent = oriented(dimensions, orientation)
        if extent not in seen:
            seen.add(extent)
            distinct.append(orientation)
    return distinct


def _fits_inside(extent: Dimensions, space: Dimensions) -> bool:
    return (
        extent.length_mm <= space.length_mm
        and extent.width_mm <= space.width_mm
        and extent.height_mm <= space.height_mm
    )


def _fits_in_shape(item: Item, box: BoxType) -> bool:
    return any(
        _fits_inside(oriented(item.dimensions, orientation), box.inner)
        for orientation in Orientation
    )


def fits_alone(item: Item, box: BoxType) -> bool:
    """Whether one unit of `item` goes into an empty `box`, in some orientation, by weight too."""
    return item.weight_g <= box.payload_g and _fits_in_shape(item, box)


_Point = tuple[int, int, int]
_Cuboid = tuple[int, int, int, int, int, int]  # near x, y, z; far x, y, z

# Unit orders tried in turn: biggest first, longest first, broadest face first.
_UNIT_ORDERS: tuple[Callable[[Unit], tuple[int, ...]], ...] = (
    lambda unit: (-unit.item.dimensions.volume_mm3, -max(_sides(unit))),
    lambda unit: (-max(_sides(unit)), -unit.item.dimensions.volume_mm3),
    lambda unit: (-_sides(unit)[2] * _sides(unit)[1], -unit.item.dimensions.volume_mm3),
)


def _sides(unit: Unit) -> tuple[int, int, int]:
    """The unit's sides, shortest first."""
    d = unit.item.dimensions
    shortest, middle, longest = sorted((d.length_mm, d.width_mm, d.height_mm))
    return (shortest, middle, longest)


def _orientation_preferences(
    dimensions: Dimensions, space: Dimensions
) -> tuple[list[Orientation], ...]:
    """Orientation orders tried in turn: each of the unit's sides along the box's side of the
    same rank (shortest along shortest) first; then the reverse."""
    distinct = _distinct_orientations(dimensions)
    box_axis_rank = sorted(range(3), key=lambda axis: _axis(space, axis))

    def alignment(orientation: Orientation) -> tuple[int, ...]:
        extent = oriented(dimensions, orientation)
        return tuple(_axis(extent, axis) for axis in box_axis_rank)

    flat_and_aligned = sorted(distinct, key=alignment)
    return (flat_and_aligned, list(reversed(flat_and_aligned)))


def _axis(dimensions: Dimensions, axis: int) -> int:
    return (dimensions.length_mm, dimensions.width_mm, dimensions.height_mm)[axis]


def _inside_any(point: _Point, cuboids: Sequence[_Cuboid]) -> bool:
    x, y, z = point
    return any(c[0] <= x < c[3] and c[1] <= y < c[4] and c[2] <= z < c[5] for c in cuboids)


def _slide_back(point: _Point, axis: int, cuboids: Sequence[_Cuboid]) -> _Point:
    """`point` moved toward 0 along `axis` until it meets a placed unit's far face or the wall."""
    others = [a for a in range(3) if a != axis]
    stop = 0
    for cuboid in cuboids:
        if cuboid[axis + 3] <= point[axis] and all(
            cuboid[a] <= point[a] < cuboid[a + 3] for a in others
        ):
            stop = max(stop, cuboid[axis + 3])
    moved = list(point)
    moved[axis] = stop
    return (moved[0], moved[1], moved[2])


def _new_points(cuboid: _Cuboid, cuboids: Sequence[_Cuboid]) -> set[_Point]:
    near = cuboid[:3]
    points: set[_Point] = set()
    for axis in range(3):
        corner = list(near)
        corner[axis] = cuboid[axis + 3]
        point = (corner[0], corner[1], corner[2])
        points.add(point)
        for other in range(3):
            if other != axis:
                points.add(_slide_back(point, other, cuboids))
    return points


def _collides(candidate: _Cuboid, cuboids: Sequence[_Cuboid]) -> bool:
    """Whether `candidate` overlaps a placed unit; the latest first, as it lies nearest."""
    return any(
        candidate[0] < c[3]
        and c[0] < candidate[3]
        and candidate[1] < c[4]
        and c[1] < candidate[4]
        and candidate[2] < c[5]
        and c[2] < candidate[5]
        for c in reversed(cuboids)
    )


def _first_spot(
    unit: Unit,
    points: Sequence[_Point],
    orientations: Sequence[Orientation],
    cuboids: Sequence[_Cuboid],
    bounds: _Point,
    blocked: dict[_Point, set[_Point]],
) -> tuple[_Point, Orientation, _Cuboid] | None:
    """The first point and orientation where `unit` fits. `blocked` remembers, per extent, the
    points already found taken: placed units never move, so such a point stays taken."""
    extents: list[tuple[Orientation, _Point]] = []
    for orientation in orientations:
        turned = oriented(unit.item.dimensions, orientation)
        extents.append((orientation, (turned.length_mm, turned.width_mm, turned.height_mm)))
    for point in points:
        x, y, z = point
        for orientation, extent in extents:
            taken = blocked.setdefault(extent, set())
            if point in taken:
                continue
            far = (x + extent[0], y + extent[1], z + extent[2])
            cuboid = (x, y, z, *far)
            outside = far[0] > bounds[0] or far[1] > bounds[1] or far[2] > bounds[2]
            if outside or _collides(cuboid, cuboids):
                taken.add(point)
            else:
                return point, orientation, cuboid
    return None


def _bottom_back_left(point: _Point) -> tuple[int, int, int]:
    return (point[2], point[1], point[0])


def _place(
    box: BoxType,
    units: Sequence[Unit],
    orientations: Mapping[str, Sequence[Orientation]],
    *,
    skip_misfits: bool,
) -> list[Placement] | None:
    """Extreme-point first fit of `units` in that order. A unit that finds no place, or would take
    the contents over the box's payload, ends the attempt (None) or, with `skip_misfits`, is left
    out. `orientations` lists, per SKU, the orientations to try in order."""
    bounds = (box.inner.length_mm, box.inner.width_mm, box.inner.height_mm)
    placements: list[Placement] = []
    cuboids: list[_Cuboid] = []
    points: set[_Point] = {(0, 0, 0)}
    blocked: dict[_Point, set[_Point]] = {}
    # A corner with less room than the shortest side of any unit along some axis takes nothing.
    shortest = min(min(_sides(unit)) for unit in units) if units else 0
    weight_g = 0
    for unit in units:
        spot = None
        if weight_g + unit.item.weight_g <= box.payload_g:
            candidates = sorted(points, key=_bottom_back_left)
            spot = _first_spot(unit, candidates, orientations[unit.sku], cuboids, bounds, blocked)
        if spot is None:
            if skip_misfits:
                continue
            return None
        point, orientation, cuboid = spot
        placements.append(Placement(unit, Position(*point), orientation))
        cuboids.append(cuboid)
        weight_g += unit.item.weight_g
        points = {p for p in points if not _inside_any(p, [cuboid])}
        for new_point in _new_points(cuboid, cuboids):
            within = all(new_point[axis] + shortest <= bounds[axis] for axis in range(3))
            if within and not _inside_any(new_point, cuboids):
                points.add(new_point)
    return placements


def _attempts(
    box: BoxType, units: Sequence[Unit]
) -> Iterable[tuple[list[Unit], dict[str, list[Orientation]]]]:
    """The (unit order, orientations per SKU) pairs the heuristic tries, without repeats."""
    preferences: dict[str, tuple[list[Orientation], ...]] = {}
    for unit in units:
        if unit.sku not in preferences:
            preferences[unit.sku] = _orientation_preferences(unit.item.dimensions, box.inner)
    tried: set[tuple[tuple[tuple[str, int], ...], int]] = set()
    for order in _UNIT_ORDERS:
        ordered = sorted(units, key=lambda unit: (*order(unit), unit.sku, unit.number))
        keys = tuple((unit.sku, unit.number) for unit in ordered)
        for preference in range(2):
            if (keys, preference) in tried:
                continue
            tried.add((keys, preference))
            yield ordered, {sku: orders[preference] for sku, orders in preferences.items()}


def pack_into(box: BoxType, units: Sequence[Unit]) -> PackedBox | None:
    """Every one of `units` in `box`, with a verified placement; None when the heuristic finds
    none (then the units may or may not fit, but no placement is claimed)."""
    if not units:
        return None
    if sum(unit.item.weight_g for unit in units) > box.payload_g:
        return None
    if sum(unit.item.dimensions.volume_mm3 for unit in units) > box.volume_mm3:
        return None
    if not all(fits_alone(unit.item, box) for unit in units):
        return None
    for ordered, orientations in _attempts(box, units):
        placements = _place(box, ordered, orientations, skip_misfits=False)
        if placements is not None:
            packed = PackedBox(box, tuple(placements))
            if not verify_box(packed):
                return packed
    return None


def _packed_volume(packed: PackedBox) -> int:
    return sum(unit.item.dimensions.volume_mm3 for unit in packed.units)


def _fill(box: BoxType, units: Sequence[Unit]) -> PackedBox | None:
    """As much of `units` as the heuristic gets into `box` (by unit volume), verified; None when
    not even one unit goes in."""
    best: PackedBox | None = None
    for ordered, orientations in _attempts(box, units):
        placements = _place(box, ordered, orientations, skip_misfits=True)
        if not placements:
            continue
        packed = PackedBox(box, tuple(placements))
        if verify_box(packed):
            continue
        if best is None or (_packed_volume(packed), len(placements)) > (
            _packed_volume(best),
            len(best.placements),
        ):
            best = packed
    return best


def _refusal(item: Item, boxes: Sequence[BoxType]) -> PackingRefused:
    d = item.dimensions
    size = f"{d.length_mm} x {d.width_mm} x {d.height_mm} mm"
    if not boxes:
        reason = "the box catalogue is empty"
    elif any(_fits_in_shape(item, box) for box in boxes):
        reason = f"it weighs {item.weight_g} g, more than any box it fits in may carry"
    else:
        reason = f"it is {size}, larger than every box in every orientation"
    return PackingRefused(
        PackingRefusal.ITEM_FITS_NO_BOX, item.sku, f"{item.sku} fits no box: {reason}"
    )


def _several_boxes(units: Sequence[Unit], boxes: Sequence[BoxType]) -> PackingPlan:
    """Greedy: each next box is the one that takes the most of what is left (by unit volume; the
    smaller box on a tie), then every box is shrunk to the smallest that still takes its units."""
    remaining = list(units)
    filled: list[PackedBox] = []
    largest_first = sorted(boxes, key=lambda box: box.volume_mm3, reverse=True)
    while remaining:
        left_volume = sum(unit.item.dimensions.volume_mm3 for unit in remaining)
        best: PackedBox | None = None
        for box in largest_first:
            if best is not None and min(box.volume_mm3, left_volume) < _packed_volume(best):
                break
            packed = _fill(box, remaining)
            if packed is None:
                continue
            score = (_packed_volume(packed), len(packed.placements))
            better = best is None or score > (_packed_volume(best), len(best.placements))
            tie = best is not None and score == (_packed_volume(best), len(best.placements))
            if better or (tie and best is not None and box_rank(box) < box_rank(best.box)):
                best = packed
        if best is None:  # every unit fits some box alone (checked first), so one always goes in
            detail = f"no box takes any of {len(remaining)} units left"
            raise UnverifiedPlan([PlanFault(FaultKind.UNIT_MISSING, None, detail)])
        filled.append(best)
        taken = set(best.units)
        remaining = [unit for unit in remaining if unit not in taken]
    return PackingPlan(tuple(_shrink(packed, boxes) for packed in filled))


def _shrink(packed: PackedBox, boxes: Sequence[BoxType]) -> PackedBox:
    for box in boxes:
        if box_rank(box) >= box_rank(packed.box):
            break
        smaller = pack_into(box, packed.units)
        if smaller is not None:
            return smaller
    return packed


def choose_boxes(lines: Sequence[tuple[Item, int]], catalogue: Sequence[BoxType]) -> PackingPlan:
    """The boxes for `lines` (item, quantity): the smallest single box that takes every unit, or
    else as few boxes as the heuristic finds, each the smallest for its share. Raises
    PackingRefused (`item_fits_no_box`) for an item no box takes on its own, NothingToPack for no
    units; the plan returned has passed `verify`."""
    units = units_of(lines)
    if not units:
        raise NothingToPack("there is nothing to pack")
    boxes = sorted(catalogue, key=box_rank)
    for item in sorted({unit.item for unit in units}, key=lambda item: item.sku):
        if not any(fits_alone(item, box) for box in boxes):
            raise _refusal(item, boxes)
    plan: PackingPlan | None = None
    for box in boxes:
        packed = pack_into(box, units)
        if packed is not None:
            plan = PackingPlan((packed,))
            break
    if plan is None:
        plan = _several_boxes(units, boxes)
    faults = verify(plan, lines)
    if faults:
        raise UnverifiedPlan(faults)
    return plan
