"""Inventory decisions as plain Python: allocation, adjustments, release and commit plans.

Nothing here touches the database or the network. The store loads the locked stock rows and
reservations, these functions decide, and the handlers save what they decided.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

# Ledger reasons written by the saga's commands (adjustments bring their own reason).
RESERVED = "reserved"
RELEASED = "released"
COMMITTED = "committed"
WRITTEN_OFF = "written_off"  # a reservation's status once all of it was written off
SHORT_PICK = "short_pick"  # the ledger reason of units written off after a short pick

UNKNOWN_SKU = "unknown_sku"
INSUFFICIENT_STOCK = "insufficient_stock"
ORDER_RELEASED = "order_released"


class StockCounts:
    """Stock on hand and reserved, and what of it is still available to promise."""

    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class StockLevel(StockCounts):
    sku: str
    location: str
    on_hand: int
    reserved: int


@dataclass(frozen=True)
class LineRequest:
    line_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class Placement:
    """Part (or all) of one order line, reserved at one location. A line of a kit's component
    names the kit line it belongs to (services/inventory/kits)."""

    line_id: str
    sku: str
    location: str
    quantity: int
    kit_sku: str | None = None
    kit_line_id: str | None = None
    per_kit: int | None = None


@dataclass(frozen=True)
class Shortfall:
    line_id: str
    sku: str
    requested: int
    available: int
    component: str | None = None  # a kit line short of this component (counted in kits)


@dataclass(frozen=True)
class Reserved:
    placements: tuple[Placement, ...]


@dataclass(frozen=True)
class Refused:
    reason: str
    shortfalls: tuple[Shortfall, ...]


@dataclass(frozen=True)
class StockChange:
    """A change of one stock row, written with one ledger row."""

    sku: str
    location: str
    on_hand_delta: int
    reserved_delta: int
    reason: str


# --- allocation -------------------------------------------------------------------------------


def allocate(
    lines: Sequence[LineRequest], stock: Iterable[StockLevel], known_skus: Iterable[str]
) -> Reserved | Refused:
    """Decide where each line of an order is reserved, all or nothing.

    One location that can ship the whole order is preferred (the one with the most of the
    order's SKUs available, then by name). Otherwise lines are spread over as few locations as
    a greedy choice finds: each round takes the location that can ship the most remaining lines
    whole; a line no location can ship whole is split, taking the most from the fullest one.
    """
    stock = list(stock)
    refused = refusal(lines, stock, known_skus)
    if refused is not None:
        return refused
    if not lines:
        return Reserved(())
    available = _available(lines, stock)

    single = _best_single_location(lines, available)
    if single is not None:
        return Reserved(
            tuple(Placement(line.line_id, line.sku, single, line.quantity) for line in lines)
        )
    return Reserved(_split(lines, available))


def refusal(
    lines: Sequence[LineRequest], stock: Iterable[StockLevel], known_skus: Iterable[str]
) -> Refused | None:
    """Why `allocate` would refuse the order from this stock (unknown SKUs first, then the
    short lines), or None when the stock can fill it: for other allocation rules (routing)."""
    _require_unique_line_ids(lines)
    known = set(known_skus)
    unknown = [line for line in lines if line.sku not in known]
    if unknown:
        return Refused(
            UNKNOWN_SKU,
            tuple(Shortfall(line.line_id, line.sku, line.quantity, 0) for line in unknown),
        )
    shortfalls = _shortfalls(lines, _available(lines, stock))
    return Refused(INSUFFICIENT_STOCK, shortfalls) if shortfalls else None


def _available(
    lines: Sequence[LineRequest], stock: Iterable[StockLevel]
) -> dict[tuple[str, str], int]:
    """Units available per (location, SKU) of the order's SKUs, where there are any."""
    wanted = {line.sku for line in lines}
    return {
        (level.location, level.sku): level.available
        for level in stock
        if level.sku in wanted and level.available > 0
    }


def _require_unique_line_ids(lines: Sequence[LineRequest]) -> None:
    seen: set[str] = set()
    for line in lines:
        if line.line_id in seen:
            raise ValueError(f"line id {line.line_id!r} appears twice in one order")
        seen.add(line.line_id)


def _shortfalls(
    lines: Sequence[LineRequest], available: Mapping[tuple[str, str], int]
) -> tuple[Shortfall, ...]:
    """Lines that cannot be filled; lines of one SKU are served in order from its total."""
    left: dict[str, int] = defaultdict(int)
    for (_, sku), quantity in available.items():
        left[sku] += quantity
    short = []
    for line in lines:
        if line.quantity > left[line.sku]:
            short.append(Shortfall(line.line_id, line.sku, line.quantity, left[line.sku]))
        left[line.sku] -= min(line.quantity, left[line.sku])
    return tuple(short)


def _demand(lines: Iterable[LineRequest]) -> dict[str, int]:
    demand: dict[str, int] = defaultdict(int)
    for line in lines:
        demand[line.sku] += line.quantity
    return dict(demand)


def _locations(available: Mapping[tuple[str, str], int]) -> list[str]:
    return sorted({location for location, _ in available})


def _best_single_location(
    lines: Sequence[LineRequest], available: Mapping[tuple[str, str], int]
) -> str | None:
    demand = _demand(lines)
    candidates = [
        location
        for location in _locations(available)
        if all(available.get((location, sku), 0) >= quantity for sku, quantity in demand.items())
    ]
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda location: (-sum(available.get((location, sku), 0) for sku in demand), location),
    )


def _split(
    lines: Sequence[LineRequest], available: Mapping[tuple[str, str], int]
) -> tuple[Placement, ...]:
    left = dict(available)
    locations = _locations(available)
    open_lines: dict[str, int] = {line.line_id: line.quantity for line in lines}
    by_id = {line.line_id: line for line in lines}
    placed: dict[tuple[str, str], int] = defaultdict(int)

    while open_lines:
        best: tuple[tuple[int, int], str, list[str]] | None = None
        for location in locations:
            whole = _lines_fillable_whole(location, open_lines, by_id, left)
            if not whole:
                continue
            score = (len(whole), sum(open_lines[line_id] for line_id in whole))
            if best is None or score > best[0]:
                best = (score, location, whole)
        if best is not None:
            _, location, whole = best
            for line_id in whole:
                _place(by_id[line_id], location, open_lines[line_id], left, placed)
                del open_lines[line_id]
            continue
        # No location can ship any remaining line whole: split the first one, fullest first.
        line_id = next(iter(open_lines))
        line = by_id[line_id]
        location = min(
            (loc for loc in locations if left.get((loc, line.sku), 0) > 0),
            key=lambda loc: (-left[(loc, line.sku)], loc),
        )
        quantity = min(open_lines[line_id], left[(location, line.sku)])
        _place(line, location, quantity, left, placed)
        open_lines[line_id] -= quantity

    position = {line.line_id: index for index, line in enumerate(lines)}
    return tuple(
        Placement(line_id, by_id[line_id].sku, location, quantity)
        for (line_id, location), quantity in sorted(
            placed.items(), key=lambda item: (position[item[0][0]], item[0][1])
        )
    )


def _lines_fillable_whole(
    location: str,
    open_lines: Mapping[str, int],
    by_id: Mapping[str, LineRequest],
    left: Mapping[tuple[str, str], int],
) -> list[str]:
    here = {sku: quantity for (loc, sku), quantity in left.items() if loc == location}
    whole = []
    for line_id, quantity in open_lines.items():
        sku = by_id[line_id].sku
        if here.get(sku, 0) >= quantity:
            here[sku] -= quantity
            whole.append(line_id)
    return whole


def _place(
    line: LineRequest,
    location: str,
    quantity: int,
    left: dict[tuple[str, str], int],
    placed: dict[tuple[str, str], int],
) -> None:
    left[(location, line.sku)] -= quantity
    placed[(line.line_id, location)] += quantity


def reservation_changes(placements: Iterable[Placement]) -> tuple[StockChange, ...]:
    """What reserving the placements does to the stock rows (one change per row)."""
    per_row: dict[tuple[str, str], int] = defaultdict(int)
    for placement in placements:
        per_row[(placement.sku, placement.location)] += placement.quantity
    return tuple(
        StockChange(sku, location, 0, quantity, RESERVED)
        for (sku, location), quantity in sorted(per_row.items())
    )


# --- adjustments ------------------------------------------------------------------------------


class InsufficientStock(Exception):
    def __init__(self, level: StockLevel, delta: int) -> None:
        super().__init__(
            f"{level.sku} at {level.location}: on hand {level.on_hand} with {level.reserved}"
            f" reserved cannot change by {delta}"
        )
        self.level = level
        self.delta = delta


def adjust(level: StockLevel, delta: int) -> StockLevel:
    """Stock on hand after an adjustment; never below zero nor below what is reserved."""
    if delta == 0:
        raise ValueError("an adjustment changes stock by a non-zero amount")
    on_hand = level.on_hand + delta
    if on_hand < 0 or on_hand < level.reserved:
        raise InsufficientStock(level, delta)
    return StockLevel(level.sku, level.location, on_hand, level.reserved)


# --- reservations after the fact: release and commit ---------------------------------------


@dataclass(frozen=True)
class ReservationState:
    order_id: str
    line_id: str
    sku: str
    location: str
    position: int
    quantity: int
    committed: int = 0
    released: int = 0
    written_off: int = 0  # short picks: the units were not there

    @property
    def outstanding(self) -> int:
        return self.quantity - self.committed - self.released - self.written_off

    @property
    def status(self) -> str:
        if self.outstanding > 0:
            return RESERVED
        if self.committed > 0:
            return COMMITTED
        return RELEASED if self.released > 0 else WRITTEN_OFF

    def commit(self, quantity: int) -> ReservationState:
        return self._with(committed=self.committed + quantity)

    def release(self, quantity: int) -> ReservationState:
        return self._with(released=self.released + quantity)

    def write_off(self, quantity: int) -> ReservationState:
        return self._with(written_off=self.written_off + quantity)

    def _with(
        self,
        *,
        committed: int | None = None,
        released: int | None = None,
        written_off: int | None = None,
    ) -> ReservationState:
        updated = replace(
            self,
            committed=self.committed if committed is None else committed,
            released=self.released if released is None else released,
            written_off=self.written_off if written_off is None else written_off,
        )
        if updated.outstanding < 0:
            raise ValueError(f"reservation {self.line_id}@{self.location} would go below zero")
        return updated


@dataclass(frozen=True)
class ReservationPlan:
    """Reservations after a release or commit, and the stock rows' changes."""

    reservations: tuple[ReservationState, ...]
    stock_changes: tuple[StockChange, ...]


def _in_order(reservations: Iterable[ReservationState]) -> list[ReservationState]:
    return sorted(reservations, key=lambda r: (r.position, r.location, r.line_id))


def _take_in_order(
    reservations: Iterable[ReservationState], quantity: int
) -> list[tuple[ReservationState, int]]:
    """Up to `quantity` units out of the reservations' outstanding units, line by line in
    order: each reservation that gives some, and how many."""
    taken: list[tuple[ReservationState, int]] = []
    for reservation in _in_order(reservations):
        if quantity == 0:
            break
        take = min(reservation.outstanding, quantity)
        if take > 0:
            taken.append((reservation, take))
            quantity -= take
    return taken


def plan_release(reservations: Iterable[ReservationState]) -> ReservationPlan:
    """Release everything still outstanding (nothing to do is a valid plan)."""
    updated = []
    per_row: dict[tuple[str, str], int] = defaultdict(int)
    for reservation in _in_order(reservations):
        if reservation.outstanding <= 0:
            continue
        per_row[(reservation.sku, reservation.location)] += reservation.outstanding
        updated.append(reservation.release(reservation.outstanding))
    return ReservationPlan(
        tuple(updated),
        tuple(
            StockChange(sku, location, 0, -quantity, RELEASED)
            for (sku, location), quantity in sorted(per_row.items())
        ),
    )


class CannotCommit(Exception):
    """What shipped is neither reserved nor available at the location: the stock is wrong."""


def plan_commit(
    location: str,
    shipped: Iterable[tuple[str, int]],
    reservations: Iterable[ReservationState],
    stock: Iterable[StockLevel],
) -> ReservationPlan:
    """Turn the order's reservation of what shipped from `location` into a deduction.

    Shipped units come out of the order's reservations at that location first. Units shipped
    beyond them (the parcel left from another location than reserved) come out of the
    location's free stock, and as much of the order's reservations of that SKU elsewhere is
    released, since the order no longer needs it.
    """
    per_sku: dict[str, int] = defaultdict(int)
    for sku, quantity in shipped:
        if quantity <= 0:
            raise ValueError(f"shipped quantity of {sku} must be positive")
        per_sku[sku] += quantity
    levels = {(level.sku, level.location): level for level in stock}
    current = {(r.line_id, r.location): r for r in reservations}
    changes: list[StockChange] = []

    for sku in sorted(per_sku):
        here = [r for r in current.values() if r.sku == sku and r.location == location]
        from_reservations = 0
        for reservation, take in _take_in_order(here, per_sku[sku]):
            current[(reservation.line_id, reservation.location)] = reservation.commit(take)
            from_reservations += take
        remaining = per_sku[sku] - from_reservations
        if remaining > 0:
            level = levels.get((sku, location), StockLevel(sku, location, 0, 0))
            # Committing reserved units leaves what is available unchanged.
            if level.available < remaining:
                raise CannotCommit(
                    f"{remaining} of {sku} shipped from {location} beyond the order's reservation,"
                    f" but only {level.available} is available there"
                )
            changes.extend(_release_elsewhere(sku, location, remaining, current))
        changes.append(StockChange(sku, location, -per_sku[sku], -from_reservations, COMMITTED))

    original = {(r.line_id, r.location): r for r in reservations}
    touched = tuple(r for key, r in current.items() if r != original[key])
    return ReservationPlan(
        tuple(_in_order(touched)),
        tuple(sorted(changes, key=lambda c: (c.sku, c.location))),
    )


def _release_elsewhere(
    sku: str,
    shipped_from: str,
    quantity: int,
    current: dict[tuple[str, str], ReservationState],
) -> list[StockChange]:
    elsewhere = [r for r in current.values() if r.sku == sku and r.location != shipped_from]
    per_location: dict[str, int] = defaultdict(int)
    for reservation, take in _take_in_order(elsewhere, quantity):
        current[(reservation.line_id, reservation.location)] = reservation.release(take)
        per_location[reservation.location] += take
    return [
        StockChange(sku, location, 0, -released, RELEASED)
        for location, released in sorted(per_location.items())
    ]


# --- short picks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShortWriteOff:
    """Units of one SKU written off at one location after a short pick: the order's
    reservations there after it, the stock row's change, and the units taken per order line."""

    reservations: tuple[ReservationState, ...]
    stock_changes: tuple[StockChange, ...]
    per_line: tuple[tuple[str, int], ...]

    @property
    def written_off(self) -> int:
        return sum(quantity for _, quantity in self.per_line)


def plan_short_write_off(
    location: str, sku: str, quantity: int, reservations: Iterable[ReservationState]
) -> ShortWriteOff:
    """Write off up to `quantity` units of `sku` at `location` from the order's outstanding
    reservations there (in line order): each leaves the reservation and stock on hand, so what
    is available does not change. Units beyond the order's reservation there are not written
    off: they are no units of this order's (an empty plan when nothing is outstanding)."""
    if quantity <= 0:
        raise ValueError(f"a short pick of {sku} misses a positive quantity, not {quantity}")
    here = [r for r in reservations if r.sku == sku and r.location == location]
    taken = _take_in_order(here, quantity)
    updated = [reservation.write_off(take) for reservation, take in taken]
    per_line = [(reservation.line_id, take) for reservation, take in taken]
    written_off = sum(take for _, take in taken)
    changes = (
        (StockChange(sku, location, -written_off, -written_off, SHORT_PICK),) if written_off else ()
    )
    return ShortWriteOff(tuple(updated), changes, tuple(per_line))


def reallocate_short(
    sku: str,
    quantity: int,
    short_location: str,
    line_ids: Sequence[tuple[str, int]],
    stock: Iterable[StockLevel],
    known_skus: Iterable[str],
) -> Reserved | Refused:
    """Reserve `quantity` units of `sku` again at other locations than `short_location`, by the
    allocation rule (one location if one can take them all, else as few as the greedy split
    finds), all or nothing. `line_ids`: the order lines the units were taken from, with how
    many each; units beyond them go to the last line."""
    if not line_ids:
        raise ValueError(f"no order line of {sku} to re-allocate")
    beyond = quantity - sum(n for _, n in line_ids)
    wanted = [*line_ids[:-1], (line_ids[-1][0], line_ids[-1][1] + beyond)]
    lines = [LineRequest(line_id, sku, n) for line_id, n in wanted if n > 0]
    elsewhere = [level for level in stock if level.location != short_location]
    return allocate(lines, elsewhere, known_skus)


# --- availability -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Availability(StockCounts):
    sku: str
    on_hand: int
    reserved: int


def totals(levels: Iterable[StockLevel]) -> dict[str, Availability]:
    """Stock of each SKU summed over its locations."""
    on_hand: dict[str, int] = defaultdict(int)
    reserved: dict[str, int] = defaultdict(int)
    for level in levels:
        on_hand[level.sku] += level.on_hand
        reserved[level.sku] += level.reserved
    return {sku: Availability(sku, on_hand[sku], reserved[sku]) for sku in sorted(on_hand)}
