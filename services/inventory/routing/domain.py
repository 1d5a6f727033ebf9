"""Where an order ships from: routing strategies and rules over location records, as plain
Python (no I/O).

`route` decides like `stock.domain.allocate` (all or nothing, the same `Reserved | Refused`)
but over the locations a policy allows, in the order a strategy prefers, and says why:

1. Candidates: the locations holding stock of the order's SKUs, minus inactive ones and those
   that do not ship to the destination's country (`ships_to`; empty: anywhere). A location with
   no record is a candidate with priority 100, no country, shipping anywhere.
2. A rule that matches the order (its channel, its destination's country) keeps only the
   rule's locations, and its list is then the preference order.
3. The strategy (the channel's, else the global one) chooses among the candidates:
   - `single_location_first` (the default): `allocate`'s rule — one location that can ship the
     whole order (the one with most of the order's SKUs available, then by name), else a greedy
     split over few locations.
   - `nearest`: locations in the customer's country first, the one whose postal code shares the
     longest leading prefix with the customer's first (postal codes are hierarchical: 10115 and
     10178 are both central Berlin); abroad, by great-circle distance from the location (its
     coordinates, else its country's centre) to the centre of the customer's country. A
     location that can ship the whole order is taken over a split within the same reach: first
     among the domestic ones, and if they cannot fill the order together, among all.
   - `fewest_parcels`: the fewest locations that can ship the order together (an exact search
     over subsets up to `EXACT_SEARCH_LIMIT` candidates, greedy beyond), ties to the cheaper.
   - `lowest_cost`: `priority` is the cost: the cheapest location that can ship everything, else
     filled from the cheapest up.
   When splitting, each line goes whole to the first location (in the strategy's order) that can
   take it, else it is split, taking from the preferred locations first.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time
from typing import Literal, get_args

from services.inventory.routing import places
from services.inventory.stock.domain import (
    LineRequest,
    Placement,
    Refused,
    Reserved,
    StockLevel,
    allocate,
    refusal,
)

LocationKind = Literal["warehouse", "store", "3pl", "dropship_supplier"]
LOCATION_KINDS: tuple[str, ...] = get_args(LocationKind)
Strategy = Literal["single_location_first", "nearest", "fewest_parcels", "lowest_cost"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
DEFAULT_STRATEGY: Strategy = "single_location_first"
DEFAULT_PRIORITY = 100
EXACT_SEARCH_LIMIT = 12  # 2^12 subsets at most: well under a millisecond
_NAMED_EXCLUSIONS = 3  # how many excluded locations an explanation names


@dataclass(frozen=True)
class LocationRecord:
    """A stock location as routing sees it; `code` is the location name of the stock rows."""

    code: str
    name: str = ""
    kind: LocationKind = "warehouse"
    country: str | None = None
    postal_code: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    priority: int = DEFAULT_PRIORITY  # lower: cheaper, preferred
    ships_to: tuple[str, ...] = ()  # country codes; empty: anywhere
    cutoff_local: time | None = None
    timezone: str = "UTC"
    active: bool = True

    def ships_to_country(self, country: str) -> bool:
        return not self.ships_to or country in self.ships_to

    @property
    def point(self) -> tuple[float, float] | None:
        """Where it is: its coordinates, else the centre of its country, else unknown."""
        if self.latitude is not None and self.longitude is not None:
            return (self.latitude, self.longitude)
        return places.centre(self.country)


@dataclass(frozen=True)
class Destination:
    """Where the order goes, as far as routing needs it."""

    country: str
    postal_code: str | None = None

    def __str__(self) -> str:
        return f"{self.country} {self.postal_code}" if self.postal_code else self.country


@dataclass(frozen=True)
class RoutingRule:
    """Orders of `channel` (any channel when None) to `countries` (anywhere when empty) ship
    only from `locations`, preferred in that order."""

    locations: tuple[str, ...]
    channel: str | None = None
    countries: frozenset[str] = frozenset()

    def applies_to(self, channel: str, destination: Destination | None) -> bool:
        if self.channel is not None and self.channel != channel:
            return False
        if self.countries:
            return destination is not None and destination.country in self.countries
        return True

    def __str__(self) -> str:
        scope = []
        if self.channel is not None:
            scope.append(f"channel {self.channel}")
        if self.countries:
            scope.append("to " + "/".join(sorted(self.countries)))
        return f"rule {' '.join(scope) or 'for every order'}: {', '.join(self.locations)}"


@dataclass(frozen=True)
class RoutingPolicy:
    """The strategy for each channel (`strategy` for the rest) and the rules (the first one
    that applies to an order counts)."""

    strategy: Strategy = DEFAULT_STRATEGY
    channels: Mapping[str, Strategy] = field(default_factory=dict)
    rules: tuple[RoutingRule, ...] = ()

    def strategy_for(self, channel: str) -> Strategy:
        return self.channels.get(channel, self.strategy)

    def rule_for(self, channel: str, destination: Destination | None) -> RoutingRule | None:
        return next((rule for rule in self.rules if rule.applies_to(channel, destination)), None)


@dataclass(frozen=True)
class RoutingExplanation:
    strategy: str
    locations: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Routed:
    """The decision (as `allocate`'s) and why."""

    decision: Reserved | Refused
    explanation: RoutingExplanation


# --- candidates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidates:
    """The locations an order may ship from, in the rule's order when a rule applies (else by
    code), and why the others may not."""

    records: tuple[LocationRecord, ...]
    excluded: tuple[tuple[str, str], ...]  # (code, why), by code
    rule: RoutingRule | None

    @property
    def codes(self) -> set[str]:
        return {record.code for record in self.records}


def _candidates(
    codes: Iterable[str],
    locations: Mapping[str, LocationRecord],
    destination: Destination | None,
    rule: RoutingRule | None,
) -> _Candidates:
    kept: list[LocationRecord] = []
    excluded: list[tuple[str, str]] = []
    for code in sorted(set(codes)):
        record = locations.get(code) or LocationRecord(code)
        if not record.active:
            excluded.append((code, "inactive"))
        elif destination is not None and not record.ships_to_country(destination.country):
            excluded.append((code, f"does not ship to {destination.country}"))
        elif rule is None or code in rule.locations:
            kept.append(record)
    if rule is not None:
        kept.sort(key=lambda record: rule.locations.index(record.code))
    return _Candidates(tuple(kept), tuple(excluded), rule)


# --- ranking ------------------------------------------------------------------------------


def _postal_prefix(a: str | None, b: str | None) -> str:
    """The leading characters two postal codes share (case, spaces and dashes ignored)."""
    if not a or not b:
        return ""
    x, y = _postal(a), _postal(b)
    n = 0
    while n < min(len(x), len(y)) and x[n] == y[n]:
        n += 1
    return x[:n]


def _postal(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


@dataclass(frozen=True)
class _Nearness:
    """How near a location is to the destination, comparable (smaller is nearer)."""

    record: LocationRecord
    domestic: bool
    shared_prefix: str
    km: float  # abroad: to the centre of the destination's country; inf when unknown

    @property
    def key(self) -> tuple[int, int, float, int, str]:
        return (
            0 if self.domestic else 1,
            -len(self.shared_prefix),
            self.km,
            self.record.priority,
            self.record.code,
        )

    def describe(self) -> str:
        if self.domestic:
            if self.shared_prefix:
                return f"same country, postal code starts {self.shared_prefix} like the customer's"
            return "same country"
        where = self.record.country or "country unknown"
        if math.isinf(self.km):
            return f"{where}, distance unknown"
        return f"{where}, {round(self.km)} km"


def _nearness(record: LocationRecord, destination: Destination) -> _Nearness:
    domestic = record.country == destination.country
    if domestic:
        return _Nearness(
            record, True, _postal_prefix(record.postal_code, destination.postal_code), 0.0
        )
    here, there = record.point, places.centre(destination.country)
    km = places.distance_km(here, there) if here and there else math.inf
    return _Nearness(record, False, "", km)


def _by_cost(records: Iterable[LocationRecord]) -> list[LocationRecord]:
    return sorted(records, key=lambda record: (record.priority, record.code))


def _ranked(
    candidates: _Candidates, strategy: Strategy, destination: Destination | None
) -> list[LocationRecord]:
    if candidates.rule is not None:
        return list(candidates.records)
    if strategy == "nearest" and destination is not None:
        return [
            n.record
            for n in sorted(
                (_nearness(record, destination) for record in candidates.records),
                key=lambda n: n.key,
            )
        ]
    return _by_cost(candidates.records)


def rank_locations(
    codes: Iterable[str],
    locations: Mapping[str, LocationRecord],
    *,
    policy: RoutingPolicy,
    channel: str,
    destination: Destination | None,
) -> list[str]:
    """The locations among `codes` an order of `channel` to `destination` may ship from, most
    preferred first: the rule's order when a rule applies; `nearest` by nearness; the other
    strategies by priority, then code (`single_location_first` prefers by stock, which this
    order leaves out)."""
    strategy = policy.strategy_for(channel)
    candidates = _candidates(codes, locations, destination, policy.rule_for(channel, destination))
    return [record.code for record in _ranked(candidates, strategy, destination)]


# --- routing ------------------------------------------------------------------------------

Available = dict[tuple[str, str], int]  # (location, sku) -> units available


@dataclass(frozen=True)
class _Plan:
    placements: tuple[Placement, ...]
    reason: str


def route(
    lines: Sequence[LineRequest],
    stock: Iterable[StockLevel],
    known_skus: Iterable[str],
    locations: Mapping[str, LocationRecord],
    *,
    policy: RoutingPolicy,
    channel: str,
    destination: Destination | None,
) -> Routed:
    """Decide where each line of an order is reserved, all or nothing, by the policy, and why.

    `stock`: the rows of the order's SKUs (as for `allocate`); `locations`: the records of
    (at least) their locations, by code; `destination`: None when the order did not say (no
    location is then excluded for where it ships to)."""
    levels = list(stock)
    strategy = policy.strategy_for(channel)
    candidates = _candidates(
        (level.location for level in levels),
        locations,
        destination,
        policy.rule_for(channel, destination),
    )
    usable = [level for level in levels if level.location in candidates.codes]
    wanted = {line.sku for line in lines}
    refused = refusal(lines, usable, known_skus)
    if refused is not None:
        reason = f"{strategy}: not enough stock where the order may ship from"
        return Routed(
            refused,
            RoutingExplanation(strategy, (), _with_context(reason, candidates, levels, wanted)),
        )
    if not lines:
        return Routed(Reserved(()), RoutingExplanation(strategy, (), f"{strategy}: no lines"))

    available: Available = {
        (level.location, level.sku): level.available
        for level in usable
        if level.sku in wanted and level.available > 0
    }
    if strategy == "single_location_first" and candidates.rule is None:
        plan = _single_location_first(lines, usable, known_skus)
    else:
        plan = _STRATEGIES[strategy](lines, available, candidates, destination)
    chosen = tuple(dict.fromkeys(p.location for p in plan.placements))
    return Routed(
        Reserved(plan.placements),
        RoutingExplanation(
            strategy, chosen, _with_context(plan.reason, candidates, levels, wanted)
        ),
    )


def _with_context(
    reason: str, candidates: _Candidates, levels: Sequence[StockLevel], wanted: set[str]
) -> str:
    """The reason, after the rule that applied, and naming excluded locations that had stock."""
    if candidates.rule is not None:
        reason = f"{candidates.rule}; {reason}"
    holding = {level.location for level in levels if level.sku in wanted and level.available > 0}
    excluded = [f"{code} ({why})" for code, why in candidates.excluded if code in holding]
    if excluded:
        named = ", ".join(excluded[:_NAMED_EXCLUSIONS])
        more = len(excluded) - _NAMED_EXCLUSIONS
        reason += f"; not used: {named}" + (f" and {more} more" if more > 0 else "")
    return reason


def _single_location_first(
    lines: Sequence[LineRequest], usable: Sequence[StockLevel], known_skus: Iterable[str]
) -> _Plan:
    decision = allocate(lines, usable, known_skus)
    assert isinstance(decision, Reserved), "refusal() said the stock can fill the order"
    chosen = list(dict.fromkeys(p.location for p in decision.placements))
    if len(chosen) == 1:
        reason = f"single_location_first: {chosen[0]} can ship the whole order"
    else:
        reason = (
            f"single_location_first: no location can ship the whole order, split over"
            f" {', '.join(chosen)}"
        )
    return _Plan(decision.placements, reason)


def _nearest(
    lines: Sequence[LineRequest],
    available: Available,
    candidates: _Candidates,
    destination: Destination | None,
) -> _Plan:
    if candidates.rule is not None or destination is None:
        ranking = _ranked(candidates, "nearest", destination)
        plan = _whole_or_fill(lines, available, ranking)
        why = (
            "in the rule's order" if candidates.rule is not None else "no destination: by priority"
        )
        return _Plan(plan.placements, f"nearest ({why}): {plan.reason}")

    nearness = sorted(
        (_nearness(record, destination) for record in candidates.records), key=lambda n: n.key
    )
    described = {n.record.code: n.describe() for n in nearness}
    domestic = [n.record for n in nearness if n.domestic]
    everywhere = [n.record for n in nearness]
    ranking = everywhere
    if domestic and _covers(lines, available, domestic):
        ranking = domestic
    placements = _whole_or_fill(lines, available, ranking).placements
    chosen = list(dict.fromkeys(p.location for p in placements))
    shown = ", ".join(f"{code} ({described[code]})" for code in chosen)
    split = "" if len(chosen) == 1 else " (no location as near can ship the whole order)"
    return _Plan(placements, f"nearest to {destination}: {shown}{split}")


def _lowest_cost(
    lines: Sequence[LineRequest],
    available: Available,
    candidates: _Candidates,
    destination: Destination | None,
) -> _Plan:
    ranking = _ranked(candidates, "lowest_cost", destination)
    plan = _whole_or_fill(lines, available, ranking)
    if candidates.rule is not None:
        return _Plan(plan.placements, f"lowest_cost (in the rule's order): {plan.reason}")
    priority = {record.code: record.priority for record in ranking}
    chosen = list(dict.fromkeys(p.location for p in plan.placements))
    shown = ", ".join(f"{code} (priority {priority[code]})" for code in chosen)
    if len(chosen) == 1:
        return _Plan(
            plan.placements, f"lowest_cost: {shown} is the cheapest that can ship the whole order"
        )
    return _Plan(
        plan.placements,
        f"lowest_cost: no location can ship the whole order, filled from the cheapest: {shown}",
    )


def _single_location_first_by_rule(
    lines: Sequence[LineRequest],
    available: Available,
    candidates: _Candidates,
    destination: Destination | None,
) -> _Plan:
    plan = _whole_or_fill(lines, available, list(candidates.records))
    return _Plan(plan.placements, f"single_location_first (in the rule's order): {plan.reason}")


def _fewest_parcels(
    lines: Sequence[LineRequest],
    available: Available,
    candidates: _Candidates,
    destination: Destination | None,
) -> _Plan:
    ranking = _ranked(candidates, "fewest_parcels", destination)
    holding = [r for r in ranking if any(loc == r.code for loc, _ in available)]
    if len(holding) <= EXACT_SEARCH_LIMIT:
        chosen, how = _smallest_covering_set(lines, available, holding), "exact"
    else:
        chosen, how = _greedy_covering_set(lines, available, holding), "greedy"
    placements = _fill(lines, available, chosen)
    codes = [record.code for record in chosen]
    parcels = "1 parcel" if len(codes) == 1 else f"{len(codes)} parcels"
    order = " in the rule's order" if candidates.rule is not None else ""
    search = "" if how == "exact" else f" (greedy over {len(holding)} locations)"
    return _Plan(placements, f"fewest_parcels{order}: {parcels} from {', '.join(codes)}{search}")


_STRATEGIES: dict[
    str,
    Callable[
        [Sequence[LineRequest], Available, _Candidates, Destination | None],
        _Plan,
    ],
] = {
    "single_location_first": _single_location_first_by_rule,
    "nearest": _nearest,
    "fewest_parcels": _fewest_parcels,
    "lowest_cost": _lowest_cost,
}


# --- plans --------------------------------------------------------------------------------


def _demand(lines: Iterable[LineRequest]) -> dict[str, int]:
    demand: dict[str, int] = defaultdict(int)
    for line in lines:
        demand[line.sku] += line.quantity
    return dict(demand)


def _covers(
    lines: Sequence[LineRequest], available: Available, records: Iterable[LocationRecord]
) -> bool:
    """Together, these locations hold enough of every SKU the order wants."""
    codes = {record.code for record in records}
    held: dict[str, int] = defaultdict(int)
    for (location, sku), units in available.items():
        if location in codes:
            held[sku] += units
    return all(held[sku] >= quantity for sku, quantity in _demand(lines).items())


def _whole_or_fill(
    lines: Sequence[LineRequest], available: Available, ranking: Sequence[LocationRecord]
) -> _Plan:
    """The first location in `ranking` that can ship the whole order, else filled in order."""
    demand = _demand(lines)
    for record in ranking:
        if all(available.get((record.code, sku), 0) >= n for sku, n in demand.items()):
            return _Plan(
                tuple(
                    Placement(line.line_id, line.sku, record.code, line.quantity) for line in lines
                ),
                f"{record.code} can ship the whole order",
            )
    placements = _fill(lines, available, ranking)
    chosen = ", ".join(dict.fromkeys(p.location for p in placements))
    return _Plan(placements, f"no location can ship the whole order, split over {chosen}")


def _fill(
    lines: Sequence[LineRequest], available: Available, ranking: Sequence[LocationRecord]
) -> tuple[Placement, ...]:
    """Each line whole at the first location in `ranking` that can take it, else split, taking
    from the first locations first. The ranking's locations must hold enough together."""
    left = dict(available)
    rank = {record.code: index for index, record in enumerate(ranking)}
    placed: dict[tuple[str, str], int] = defaultdict(int)
    by_id = {line.line_id: line for line in lines}
    for line in lines:
        whole = next(
            (r.code for r in ranking if left.get((r.code, line.sku), 0) >= line.quantity), None
        )
        takes = (
            [(whole, line.quantity)]
            if whole is not None
            else _take_in_order(line.sku, line.quantity, left, ranking)
        )
        for location, units in takes:
            left[(location, line.sku)] = left.get((location, line.sku), 0) - units
            placed[(line.line_id, location)] += units
    position = {line.line_id: index for index, line in enumerate(lines)}
    return tuple(
        Placement(line_id, by_id[line_id].sku, location, units)
        for (line_id, location), units in sorted(
            placed.items(), key=lambda item: (position[item[0][0]], rank[item[0][1]])
        )
    )


def _take_in_order(
    sku: str, quantity: int, left: Mapping[tuple[str, str], int], ranking: Sequence[LocationRecord]
) -> list[tuple[str, int]]:
    takes = []
    for record in ranking:
        if quantity == 0:
            break
        units = min(quantity, left.get((record.code, sku), 0))
        if units > 0:
            takes.append((record.code, units))
            quantity -= units
    if quantity > 0:
        raise ValueError(f"the locations cannot fill {sku}: {quantity} short")
    return takes


def _smallest_covering_set(
    lines: Sequence[LineRequest], available: Available, ranking: Sequence[LocationRecord]
) -> list[LocationRecord]:
    """The fewest locations that hold the order together; among as few, the first in the
    ranking's (lexicographic) order, so cheaper locations win ties."""
    for size in range(1, len(ranking) + 1):
        for subset in itertools.combinations(ranking, size):
            if _covers(lines, available, subset):
                return list(subset)
    raise ValueError("the locations cannot fill the order together")


def _greedy_covering_set(
    lines: Sequence[LineRequest], available: Available, ranking: Sequence[LocationRecord]
) -> list[LocationRecord]:
    """Add the location that covers the most of what is still missing, until nothing is (ties:
    the first in the ranking); then in ranking order."""
    missing = _demand(lines)
    chosen: list[LocationRecord] = []
    remaining = list(ranking)
    while any(n > 0 for n in missing.values()):
        gains = [_gain(record, missing, available) for record in remaining]
        best_gain = max(gains, default=0)
        if best_gain == 0:
            raise ValueError("the locations cannot fill the order together")
        best = remaining[gains.index(best_gain)]  # the first of equals
        chosen.append(best)
        remaining.remove(best)
        for sku, n in missing.items():
            missing[sku] = n - min(n, available.get((best.code, sku), 0))
    order = {record.code: index for index, record in enumerate(ranking)}
    return sorted(chosen, key=lambda record: order[record.code])


def _gain(record: LocationRecord, missing: Mapping[str, int], available: Available) -> int:
    return sum(min(n, available.get((record.code, sku), 0)) for sku, n in missing.items())
