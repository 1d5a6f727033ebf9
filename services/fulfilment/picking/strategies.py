"""Picking strategies, free of I/O: fulfilments waiting in a warehouse become pick lists.

First every line is allocated to bins. Each SKU's bins are taken in walking order
(`Bin.sequence`), the earliest with stock first, and a line splits over several bins when the
first does not hold enough. Stock is shared: what one fulfilment takes is gone for the next, in
the order the fulfilments are given. Units no bin holds are reported as a `ShortLine`, never
dropped: for every line, the units on pick lists plus the units short equal the units ordered.

Then the allocated picks become lists, by strategy:

    single_order  one list per fulfilment
    batch         several fulfilments on one cart (`orders_per_batch` totes), one walk
    zone          per round of `orders_per_batch` fulfilments, one list per zone; fulfilments
                  picked in several zones are listed for consolidation before packing

Waves come first when asked for (`release_waves`, `plan_waves`): fulfilments are released by
cut-off time, then priority (express first), then carrier, and each wave is picked by one of
the strategies above.

A list's stops are in walking order, one per bin and SKU, each saying how many units go to which
fulfilment: into its own tote on the cart when sorting while picking, or in bulk to be sorted
after picking.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from services.fulfilment.domain import Line
from services.fulfilment.warehouse.model import Bin

StockByBin = Mapping[str, Sequence[tuple[Bin, int]]]
"""Where each SKU lies: SKU -> (bin, units available) pairs (`BinStock` or plain tuples)."""


class Strategy(StrEnum):
    SINGLE_ORDER = "single_order"
    BATCH = "batch"
    ZONE = "zone"


class SortMode(StrEnum):
    """When a multi-order list's units are sorted to their fulfilments."""

    WHILE_PICKING = "while_picking"  # one tote per fulfilment on the cart, filled at the bin
    AFTER_PICKING = "after_picking"  # picked in bulk, sorted at the pack station


class ServiceLevel(StrEnum):
    EXPRESS = "express"
    STANDARD = "standard"
    ECONOMY = "economy"

    @property
    def priority(self) -> int:
        """Lower goes first."""
        return _PRIORITY[self]


_PRIORITY: dict[ServiceLevel, int] = {
    ServiceLevel.EXPRESS: 0,
    ServiceLevel.STANDARD: 1,
    ServiceLevel.ECONOMY: 2,
}


@dataclass(frozen=True)
class PickOrder:
    """One fulfilment waiting to be picked, with what decides its wave."""

    fulfilment_id: str
    order_id: str
    lines: tuple[Line, ...]
    carrier: str = ""
    service_level: ServiceLevel = ServiceLevel.STANDARD
    cutoff: datetime | None = None  # when the carrier collects it; None: no deadline, last

    def __post_init__(self) -> None:
        for line in self.lines:
            if line.quantity <= 0:
                raise ValueError(
                    f"fulfilment {self.fulfilment_id}: {line.sku} has quantity {line.quantity}"
                )


@dataclass(frozen=True)
class Put:
    """Units of a stop that go to one fulfilment; `tote` is its tote on the cart when sorting
    while picking, None when the units are sorted after picking."""

    fulfilment_id: str
    order_id: str
    quantity: int
    tote: int | None


@dataclass(frozen=True)
class PickStop:
    """Take `quantity` units of `sku` from `bin`, shared out as `puts` say (in tote order)."""

    bin: Bin
    sku: str
    puts: tuple[Put, ...]

    @property
    def quantity(self) -> int:
        return sum(put.quantity for put in self.puts)


@dataclass(frozen=True)
class Tote:
    number: int
    fulfilment_id: str
    order_id: str


@dataclass(frozen=True)
class PickList:
    """One picker's walk. `totes` is empty when sorting after picking; `zone` is set for zone
    picking, `wave` when the list belongs to a released wave."""

    list_id: str
    strategy: Strategy
    sort: SortMode
    stops: tuple[PickStop, ...]
    fulfilment_ids: tuple[str, ...]
    totes: tuple[Tote, ...]
    zone: str | None = None
    wave: int | None = None

    @property
    def units(self) -> int:
        return sum(stop.quantity for stop in self.stops)


@dataclass(frozen=True)
class ShortLine:
    """Units of a line that no bin holds. `missing == ordered`: the line is unpickable; less:
    the rest of it is on a pick list."""

    fulfilment_id: str
    order_id: str
    sku: str
    ordered: int
    missing: int

    @property
    def unpickable(self) -> bool:
        return self.missing == self.ordered


@dataclass(frozen=True)
class Consolidation:
    """A fulfilment picked in several zones: its totes from `list_ids` meet before packing."""

    fulfilment_id: str
    order_id: str
    zones: tuple[str, ...]
    list_ids: tuple[str, ...]


@dataclass(frozen=True)
class PickPlan:
    strategy: Strategy
    lists: tuple[PickList, ...]
    short: tuple[ShortLine, ...]
    consolidations: tuple[Consolidation, ...] = ()


@dataclass(frozen=True)
class PickingPolicy:
    """How to pick. `orders_per_batch`: totes on a batch cart, or fulfilments per zone round.
    `group_nearby_orders`: batch fulfilments whose picks lie close on the path (by the mean
    `Bin.sequence` of their picks) rather than in the order given."""

    strategy: Strategy = Strategy.SINGLE_ORDER
    orders_per_batch: int = 8
    sort: SortMode = SortMode.WHILE_PICKING
    group_nearby_orders: bool = True

    def __post_init__(self) -> None:
        if self.orders_per_batch < 1:
            raise ValueError(f"orders_per_batch must be at least 1, not {self.orders_per_batch}")


@dataclass(frozen=True)
class WavePolicy:
    """At most `max_orders` fulfilments a wave; one carrier a wave if `split_by_carrier`."""

    max_orders: int = 40
    split_by_carrier: bool = True

    def __post_init__(self) -> None:
        if self.max_orders < 1:
            raise ValueError(f"max_orders must be at least 1, not {self.max_orders}")


@dataclass(frozen=True)
class Wave:
    """Fulfilments released together, express first. `carrier` is None unless waves are split
    by carrier."""

    number: int  # release order, from 1
    cutoff: datetime | None
    carrier: str | None
    orders: tuple[PickOrder, ...]


@dataclass(frozen=True)
class WavePlan:
    wave: Wave
    plan: PickPlan


# --- planning -------------------------------------------------------------------------------


def plan_picking(
    orders: Sequence[PickOrder], stock: StockByBin, policy: PickingPolicy = PickingPolicy()
) -> PickPlan:
    """Allocate `orders` (in the order given) to the bins of `stock` and make their pick lists."""
    return _plan(orders, _Shelves(stock), policy, wave=None)


def release_waves(
    orders: Sequence[PickOrder], policy: WavePolicy = WavePolicy()
) -> tuple[Wave, ...]:
    """Group fulfilments into waves: same cut-off (and carrier, if split by carrier), at most
    `max_orders` each, express first within a group. Waves are released by cut-off (none:
    last), then by their most urgent service level, then carrier."""
    _check_unique(orders)
    groups: dict[tuple[datetime | None, str | None], list[PickOrder]] = defaultdict(list)
    for order in orders:
        carrier = order.carrier if policy.split_by_carrier else None
        groups[(order.cutoff, carrier)].append(order)
    timed: list[tuple[datetime, int, str, int, Wave]] = []
    untimed: list[tuple[int, str, int, Wave]] = []
    for (cutoff, carrier), members in groups.items():
        urgent_first = sorted(members, key=lambda order: order.service_level.priority)
        for start in range(0, len(urgent_first), policy.max_orders):
            chunk = tuple(urgent_first[start : start + policy.max_orders])
            wave = Wave(number=0, cutoff=cutoff, carrier=carrier, orders=chunk)
            rank = (chunk[0].service_level.priority, carrier or "", start, wave)
            if cutoff is None:
                untimed.append(rank)
            else:
                timed.append((cutoff, *rank))
    released = [entry[-1] for entry in sorted(timed, key=_without_wave)]
    released += [entry[-1] for entry in sorted(untimed, key=_without_wave)]
    return tuple(replace(wave, number=n) for n, wave in enumerate(released, start=1))


def _without_wave(entry: tuple[object, ...]) -> tuple[object, ...]:
    return entry[:-1]


def plan_waves(
    orders: Sequence[PickOrder],
    stock: StockByBin,
    waves: WavePolicy = WavePolicy(),
    picking: PickingPolicy = PickingPolicy(strategy=Strategy.BATCH),
) -> tuple[WavePlan, ...]:
    """Release waves, then plan each with `picking`. Earlier waves take the stock first."""
    shelves = _Shelves(stock)
    return tuple(
        WavePlan(wave, _plan(wave.orders, shelves, picking, wave=wave.number))
        for wave in release_waves(orders, waves)
    )


_LIST_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:oms:pick-list")


def pick_list_id(
    strategy: Strategy, sort: SortMode, zone: str | None, fulfilment_ids: Iterable[str]
) -> str:
    """Deterministic: the same fulfilments planned the same way make the same list id."""
    key = "\x1f".join([strategy.value, sort.value, zone or "", *sorted(fulfilment_ids)])
    return str(uuid.uuid5(_LIST_NAMESPACE, key))


# --- allocation -----------------------------------------------------------------------------


class _Shelves:
    """The stock still free to allocate, per SKU its bins in walking order. A working copy:
    allocating never changes the caller's stock."""

    def __init__(self, stock: StockByBin) -> None:
        self._bins: dict[str, list[Bin]] = {}
        self._units: dict[tuple[str, str], int] = defaultdict(int)
        for sku, places in stock.items():
            bins: dict[str, Bin] = {}
            for bin_, quantity in places:
                if quantity < 0:
                    raise ValueError(f"{sku} in bin {bin_.code} has quantity {quantity}")
                bins[bin_.code] = bin_
                self._units[(sku, bin_.code)] += quantity
            self._bins[sku] = sorted(bins.values(), key=_walking_order)

    def take(self, sku: str, quantity: int) -> tuple[list[tuple[Bin, int]], int]:
        """Up to `quantity` units from the earliest bins with stock; and the units missing."""
        taken: list[tuple[Bin, int]] = []
        wanted = quantity
        for bin_ in self._bins.get(sku, ()):
            if wanted == 0:
                break
            units = min(wanted, self._units[(sku, bin_.code)])
            if units:
                self._units[(sku, bin_.code)] -= units
                taken.append((bin_, units))
                wanted -= units
        return taken, wanted


@dataclass(frozen=True)
class _Pick:
    bin: Bin
    sku: str
    quantity: int
    order: PickOrder


@dataclass(frozen=True)
class _Allocated:
    order: PickOrder
    picks: tuple[_Pick, ...]
    short: tuple[ShortLine, ...]

    @property
    def path_centre(self) -> float:
        return sum(pick.bin.sequence for pick in self.picks) / len(self.picks)

    @property
    def zones(self) -> tuple[str, ...]:
        return tuple(sorted({pick.bin.zone for pick in self.picks}))


def _allocate(order: PickOrder, shelves: _Shelves) -> _Allocated:
    picks: list[_Pick] = []
    short: list[ShortLine] = []
    for line in order.lines:
        taken, missing = shelves.take(line.sku, line.quantity)
        picks.extend(_Pick(bin_, line.sku, units, order) for bin_, units in taken)
        if missing:
            short.append(
                ShortLine(order.fulfilment_id, order.order_id, line.sku, line.quantity, missing)
            )
    return _Allocated(order, tuple(picks), tuple(short))


def _walking_order(bin_: Bin) -> tuple[int, str]:
    return (bin_.sequence, bin_.code)


def _check_unique(orders: Sequence[PickOrder]) -> None:
    seen: set[str] = set()
    for order in orders:
        if order.fulfilment_id in seen:
            raise ValueError(f"fulfilment {order.fulfilment_id} is given twice")
        seen.add(order.fulfilment_id)


# --- lists ----------------------------------------------------------------------------------


def _plan(
    orders: Sequence[PickOrder], shelves: _Shelves, policy: PickingPolicy, wave: int | None
) -> PickPlan:
    _check_unique(orders)
    allocated = [_allocate(order, shelves) for order in orders]
    short = tuple(line for a in allocated for line in a.short)
    to_pick = [a for a in allocated if a.picks]
    if policy.strategy is Strategy.SINGLE_ORDER:
        lists = [_pick_list(Strategy.SINGLE_ORDER, [a], policy.sort, None, wave) for a in to_pick]
        return PickPlan(policy.strategy, tuple(lists), short)
    rounds = _rounds(to_pick, policy)
    if policy.strategy is Strategy.BATCH:
        lists = [_pick_list(Strategy.BATCH, members, policy.sort, None, wave) for members in rounds]
        return PickPlan(policy.strategy, tuple(lists), short)
    lists = []
    consolidations: list[Consolidation] = []
    for members in rounds:
        by_zone = {
            zone: _pick_list(Strategy.ZONE, members, policy.sort, zone, wave)
            for zone in sorted({zone for a in members for zone in a.zones})
        }
        lists.extend(by_zone.values())
        consolidations.extend(
            Consolidation(
                a.order.fulfilment_id,
                a.order.order_id,
                a.zones,
                tuple(by_zone[zone].list_id for zone in a.zones),
            )
            for a in members
            if len(a.zones) > 1
        )
    return PickPlan(policy.strategy, tuple(lists), short, tuple(consolidations))


def _rounds(to_pick: list[_Allocated], policy: PickingPolicy) -> list[list[_Allocated]]:
    """Fulfilments that share a cart (batch) or a zone round, `orders_per_batch` at a time."""
    if policy.group_nearby_orders:
        to_pick = sorted(to_pick, key=lambda a: (a.path_centre, a.order.fulfilment_id))
    size = policy.orders_per_batch
    return [to_pick[start : start + size] for start in range(0, len(to_pick), size)]


def _pick_list(
    strategy: Strategy,
    members: Sequence[_Allocated],
    sort: SortMode,
    zone: str | None,
    wave: int | None,
) -> PickList:
    """The list for `members` (in tote order), of their picks in `zone` (None: everywhere).
    Tote numbers follow `members`, so a fulfilment has the same tote in every zone's list."""
    tote_of = {a.order.fulfilment_id: n for n, a in enumerate(members, start=1)}
    picks = [p for a in members for p in a.picks if zone is None or p.bin.zone == zone]
    present = {p.order.fulfilment_id for p in picks}
    on_list = [a.order for a in members if a.order.fulfilment_id in present]
    totes = (
        tuple(Tote(tote_of[o.fulfilment_id], o.fulfilment_id, o.order_id) for o in on_list)
        if sort is SortMode.WHILE_PICKING
        else ()
    )
    fulfilment_ids = tuple(o.fulfilment_id for o in on_list)
    return PickList(
        list_id=pick_list_id(strategy, sort, zone, fulfilment_ids),
        strategy=strategy,
        sort=sort,
        stops=_stops(picks, tote_of if sort is SortMode.WHILE_PICKING else None),
        fulfilment_ids=fulfilment_ids,
        totes=totes,
        zone=zone,
        wave=wave,
    )


def _stops(picks: Iterable[_Pick], tote_of: Mapping[str, int] | None) -> tuple[PickStop, ...]:
    """One stop per bin and SKU, in walking order; its puts in the order the picks came."""
    units: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    bins: dict[str, Bin] = {}
    orders: dict[str, PickOrder] = {}
    for pick in picks:
        units[(pick.bin.code, pick.sku)][pick.order.fulfilment_id] += pick.quantity
        bins[pick.bin.code] = pick.bin
        orders[pick.order.fulfilment_id] = pick.order
    stops = [
        PickStop(
            bin=bins[code],
            sku=sku,
            puts=tuple(
                Put(
                    fulfilment_id=fid,
                    order_id=orders[fid].order_id,
                    quantity=quantity,
                    tote=tote_of[fid] if tote_of is not None else None,
                )
                for fid, quantity in by_fulfilment.items()
            ),
        )
        for (code, sku), by_fulfilment in units.items()
    ]
    stops.sort(key=lambda stop: (*_walking_order(stop.bin), stop.sku))
    return tuple(stops)
