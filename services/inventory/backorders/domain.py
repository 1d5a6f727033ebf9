"""Backorder decisions as plain Python: reserving an order with a queue, filling the queue when
stock arrives, and when the queued units are expected.

Fairness: stock that arrives goes to the queue before anyone else. An order reserving a SKU
with units queued is served only from what is left beyond the queued demand, so a new order
never takes stock an older backorder waits for, even in the moment between the stock arriving
and the queue being filled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from services.inventory.stock.domain import (
    INSUFFICIENT_STOCK,
    LineRequest,
    Placement,
    Refused,
    Reserved,
    StockChange,
    StockLevel,
)

BACKORDER_FILLED = "backorder_filled"  # the ledger reason of units reserved from the queue
UNASSIGNED = "unassigned"  # where an order waits when no location has or expects the SKU


class Policy(StrEnum):
    DENY = "deny"
    BACKORDER = "backorder"
    PREORDER = "preorder"


@dataclass(frozen=True)
class SkuDemand:
    """A SKU's backorder policy and what is already promised of it: `queued` units waiting in
    its queue, `incoming` units on open purchase orders."""

    sku: str
    policy: Policy = Policy.DENY
    release_date: date | None = None
    fill_whole_first: bool = False
    queued: int = 0
    incoming: int = 0

    @property
    def sells_incoming(self) -> bool:
        return self.policy != Policy.DENY


@dataclass(frozen=True)
class Incoming:
    """Units of a SKU still to come on one open purchase order."""

    sku: str
    location: str
    expected_on: date
    quantity: int


@dataclass(frozen=True)
class QueuedLine:
    """Units of an order line to wait in the SKU's queue."""

    line_id: str
    sku: str
    location: str
    quantity: int
    kind: str
    expected_on: date | None


@dataclass(frozen=True)
class Backordered:
    """Reserve `placements` now; queue the rest."""

    placements: tuple[Placement, ...]
    queued: tuple[QueuedLine, ...]

    @property
    def expected_on(self) -> date | None:
        """When the whole order is expected: the latest of its lines (None if one is unknown)."""
        dates = [line.expected_on for line in self.queued]
        if not dates or any(d is None for d in dates):
            return None
        return max(d for d in dates if d is not None)


Allocator = Callable[[Sequence[LineRequest], Sequence[StockLevel], set[str]], Reserved | Refused]


def demand_may_queue(demand: Mapping[str, SkuDemand]) -> bool:
    """Some of the SKUs may be backordered or pre-ordered."""
    return any(d.policy != Policy.DENY for d in demand.values())


def deny_kit_components(
    demand: Mapping[str, SkuDemand], components: Iterable[str]
) -> dict[str, SkuDemand]:
    """The demand with the SKUs an order takes as kit components denied backorders: a kit
    waits for nothing (its value is told to the saga with its reservation, which a later
    fill of the queue does not carry)."""
    denied = set(components)
    return {
        sku: replace(d, policy=Policy.DENY) if sku in denied else d for sku, d in demand.items()
    }


def available_to_promise(on_hand: int, reserved: int, demand: SkuDemand) -> int:
    """On hand less reserved less the queued demand, plus what is incoming where the SKU may be
    sold before it arrives (below 0 when more is promised than there is and is coming)."""
    incoming = demand.incoming if demand.sells_incoming else 0
    return on_hand - reserved - demand.queued + incoming


# --- reserving an order ----------------------------------------------------------------------


def reserve(
    lines: Sequence[LineRequest],
    stock: Sequence[StockLevel],
    known: set[str],
    demand: Mapping[str, SkuDemand],
    incoming: Sequence[Incoming],
    allocate: Allocator,
) -> Reserved | Refused | Backordered:
    """Reserve the order from the stock not spoken for by older backorders. When it is short,
    and every SKU it is short of may be backordered, reserve what there is and queue the rest
    (each line short by its missing units, lines of one SKU served in order); else refuse as
    `allocate` does."""
    free = spoken_for_taken(stock, demand)
    decision = allocate(lines, free, known)
    if not isinstance(decision, Refused) or decision.reason != INSUFFICIENT_STOCK:
        return decision
    short_skus = {shortfall.sku for shortfall in decision.shortfalls}
    if any(_policy(demand, sku) == Policy.DENY for sku in short_skus):
        return decision

    left: dict[str, int] = defaultdict(int)
    for level in free:
        left[level.sku] += max(level.available, 0)
    now_lines: list[LineRequest] = []
    wanting: list[LineRequest] = []
    for line in lines:
        take = min(line.quantity, left[line.sku])
        left[line.sku] -= take
        if take:
            now_lines.append(replace(line, quantity=take))
        if line.quantity > take:
            wanting.append(replace(line, quantity=line.quantity - take))
    now = allocate(now_lines, free, known) if now_lines else Reserved(())
    if isinstance(now, Refused):  # the allocator disagrees with the totals: refuse, not guess
        return decision
    return Backordered(now.placements, _queue(wanting, now.placements, stock, demand, incoming))


def spoken_for_taken(
    stock: Iterable[StockLevel], demand: Mapping[str, SkuDemand]
) -> list[StockLevel]:
    """The stock rows with the units older backorders wait for counted as reserved (from the
    locations with the most available first), so nobody else is given them."""
    levels = sorted(stock, key=lambda level: (level.sku, -level.available, level.location))
    owed = {sku: d.queued for sku, d in demand.items() if d.queued > 0}
    free: list[StockLevel] = []
    for level in levels:
        take = min(owed.get(level.sku, 0), max(level.available, 0))
        if take:
            owed[level.sku] -= take
            level = replace(level, reserved=level.reserved + take)
        free.append(level)
    return sorted(free, key=lambda level: (level.sku, level.location))


def _policy(demand: Mapping[str, SkuDemand], sku: str) -> Policy:
    found = demand.get(sku)
    return found.policy if found else Policy.DENY


def _queue(
    wanting: Sequence[LineRequest],
    placements: Sequence[Placement],
    stock: Sequence[StockLevel],
    demand: Mapping[str, SkuDemand],
    incoming: Sequence[Incoming],
) -> tuple[QueuedLine, ...]:
    queued_before = {sku: d.queued for sku, d in demand.items()}
    order_location = placements[0].location if placements else None
    lines = []
    for line in wanting:
        ahead = queued_before.get(line.sku, 0)
        queued_before[line.sku] = ahead + line.quantity
        sku_demand = demand.get(line.sku, SkuDemand(line.sku))
        arrival = expected_arrival(line.sku, ahead, line.quantity, incoming)
        location = (
            arrival[1]
            if arrival
            else order_location or _where_the_sku_is(line.sku, stock) or UNASSIGNED
        )
        expected = arrival[0] if arrival else None
        kind = "backorder"
        if sku_demand.policy == Policy.PREORDER:
            kind = "preorder"
            release = sku_demand.release_date
            expected = max(expected, release) if expected and release else (expected or release)
        lines.append(QueuedLine(line.line_id, line.sku, location, line.quantity, kind, expected))
    return tuple(lines)


def _where_the_sku_is(sku: str, stock: Sequence[StockLevel]) -> str | None:
    rows = [level for level in stock if level.sku == sku]
    if not rows:
        return None
    return min(rows, key=lambda level: (-level.on_hand, level.location)).location


def expected_arrival(
    sku: str, ahead: int, quantity: int, incoming: Sequence[Incoming]
) -> tuple[date, str] | None:
    """When and where the units `ahead + 1 .. ahead + quantity` of the SKU's queue arrive: the
    purchase order (earliest first) that brings the last of them; None if none does."""
    covered = 0
    for po_line in sorted(
        (i for i in incoming if i.sku == sku), key=lambda i: (i.expected_on, i.location)
    ):
        covered += po_line.quantity
        if covered >= ahead + quantity:
            return po_line.expected_on, po_line.location
    return None


# --- filling the queue -----------------------------------------------------------------------


@dataclass(frozen=True)
class QueueEntry:
    """One order line waiting in a SKU's queue (`seq` is its place)."""

    seq: int
    order_id: str
    line_id: str
    sku: str
    location: str
    position: int
    quantity: int
    filled: int

    @property
    def wanting(self) -> int:
        return self.quantity - self.filled


@dataclass(frozen=True)
class Fill:
    """Units of the SKU reserved for one queued line at one location."""

    entry: QueueEntry
    location: str
    quantity: int


@dataclass(frozen=True)
class FillPlan:
    fills: tuple[Fill, ...]

    def filled(self) -> dict[tuple[str, str], int]:
        """Units filled per (order id, line id)."""
        per_line: dict[tuple[str, str], int] = defaultdict(int)
        for fill in self.fills:
            per_line[(fill.entry.order_id, fill.entry.line_id)] += fill.quantity
        return dict(per_line)


def plan_fill(
    sku: str, queue: Sequence[QueueEntry], stock: Iterable[StockLevel], *, whole_first: bool
) -> FillPlan:
    """Reserve the SKU's available stock for its queue, oldest first; each line from the
    location it waits at first, then from the fullest. With `whole_first`, lines the stock can
    fill whole go first (oldest first), then what is left tops up the oldest in part."""
    left = {level.location: level.available for level in stock if level.sku == sku}
    entries = sorted((e for e in queue if e.sku == sku and e.wanting > 0), key=lambda e: e.seq)
    order = entries
    if whole_first:
        total = sum(max(n, 0) for n in left.values())
        whole = []
        for entry in entries:
            if entry.wanting <= total:
                whole.append(entry)
                total -= entry.wanting
        order = whole + [e for e in entries if e not in whole]
    fills: list[Fill] = []
    for entry in order:
        wanting = entry.wanting
        for location in _fill_from(entry.location, left):
            if wanting == 0:
                break
            take = min(wanting, left[location])
            if take > 0:
                fills.append(Fill(entry, location, take))
                left[location] -= take
                wanting -= take
    return FillPlan(tuple(fills))


def fill_changes(sku: str, placements: Iterable[Placement]) -> list[StockChange]:
    """What reserving filled units does to the SKU's stock rows (one change per row)."""
    per_location: dict[str, int] = defaultdict(int)
    for placement in placements:
        per_location[placement.location] += placement.quantity
    return [
        StockChange(sku, location, 0, quantity, BACKORDER_FILLED)
        for location, quantity in sorted(per_location.items())
    ]


def _fill_from(waits_at: str, left: Mapping[str, int]) -> list[str]:
    others = sorted((loc for loc in left if loc != waits_at), key=lambda loc: (-left[loc], loc))
    return ([waits_at] if waits_at in left else []) + others
