"""Picking strategies: allocation to bins, single-order, batch, zone and wave lists, on a generated
warehouse (every line picked exactly once, walking order, shorts reported, less walking when
batched) and on small hand-made floors."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

import pytest

from services.fulfilment.domain import Line
from services.fulfilment.picking.strategies import (
    PickingPolicy,
    PickList,
    PickOrder,
    PickPlan,
    ServiceLevel,
    SortMode,
    Strategy,
    WavePolicy,
    pick_list_id,
    plan_picking,
    plan_waves,
    release_waves,
)
from services.fulfilment.picking.walk import Floor, total_walk, walk_list
from services.fulfilment.warehouse.generate import (
    Warehouse,
    generate_orders,
    generate_warehouse,
)
from services.fulfilment.warehouse.model import Bin, BinStock

ORDERS = 100


@pytest.fixture(scope="module")
def warehouse() -> Warehouse:
    return generate_warehouse(seed=7)


@pytest.fixture(scope="module")
def orders(warehouse: Warehouse) -> tuple[PickOrder, ...]:
    return generate_orders(warehouse, ORDERS, seed=11)


def _plans(name: str, warehouse: Warehouse, orders: Sequence[PickOrder]) -> list[PickPlan]:
    """Every way of planning, by name; waves give one plan per wave."""
    stock = warehouse.stock
    policies = {
        "single_order": PickingPolicy(Strategy.SINGLE_ORDER),
        "batch": PickingPolicy(Strategy.BATCH, 8),
        "batch_sort_after": PickingPolicy(Strategy.BATCH, 6, SortMode.AFTER_PICKING),
        "batch_as_given": PickingPolicy(Strategy.BATCH, 8, group_nearby_orders=False),
        "zone": PickingPolicy(Strategy.ZONE, 10),
        "zone_sort_after": PickingPolicy(Strategy.ZONE, 10, SortMode.AFTER_PICKING),
    }
    if name.startswith("waves_"):
        inner = policies[name.removeprefix("waves_")]
        return [wave.plan for wave in plan_waves(orders, stock, WavePolicy(max_orders=15), inner)]
    return [plan_picking(orders, stock, policies[name])]


PLANNINGS = [
    "single_order",
    "batch",
    "batch_sort_after",
    "batch_as_given",
    "zone",
    "zone_sort_after",
    "waves_single_order",
    "waves_batch",
    "waves_zone",
]


def _lists(plans: Iterable[PickPlan]) -> list[PickList]:
    return [pick_list for plan in plans for pick_list in plan.lists]


def _picked(plans: Iterable[PickPlan]) -> Counter[tuple[str, str]]:
    units: Counter[tuple[str, str]] = Counter()
    for pick_list in _lists(plans):
        for stop in pick_list.stops:
            for put in stop.puts:
                units[(put.fulfilment_id, stop.sku)] += put.quantity
    return units


def _short(plans: Iterable[PickPlan]) -> Counter[tuple[str, str]]:
    units: Counter[tuple[str, str]] = Counter()
    for plan in plans:
        for line in plan.short:
            units[(line.fulfilment_id, line.sku)] += line.missing
    return units


def _ordered(orders: Iterable[PickOrder]) -> Counter[tuple[str, str]]:
    units: Counter[tuple[str, str]] = Counter()
    for order in orders:
        for line in order.lines:
            units[(order.fulfilment_id, line.sku)] += line.quantity
    return units


def _taken_from_bins(plans: Iterable[PickPlan]) -> Counter[tuple[str, str]]:
    """Units taken per (SKU, bin code)."""
    units: Counter[tuple[str, str]] = Counter()
    for pick_list in _lists(plans):
        for stop in pick_list.stops:
            units[(stop.sku, stop.bin.code)] += stop.quantity
    return units


# --- on the generated warehouse, every way of planning --------------------------------------


@pytest.mark.parametrize("planning", PLANNINGS)
def test_every_unit_ordered_is_picked_once_or_reported_short(
    planning: str, warehouse: Warehouse, orders: tuple[PickOrder, ...]
) -> None:
    plans = _plans(planning, warehouse, orders)
    picked, short = _picked(plans), _short(plans)
    assert picked + short == _ordered(orders)
    assert all(quantity > 0 for quantity in picked.values())
    assert sum(picked.values()) > 0.9 * sum(_ordered(orders).values())


@pytest.mark.parametrize("planning", PLANNINGS)
def test_stops_are_in_walking_order_one_per_bin_and_sku(
    planning: str, warehouse: Warehouse, orders: tuple[PickOrder, ...]
) -> None:
    for pick_list in _lists(_plans(planning, warehouse, orders)):
        assert pick_list.stops
        sequences = [stop.bin.sequence for stop in pick_list.stops]
        assert sequences == sorted(sequences)
        places = [(stop.bin.code, stop.sku) for stop in pick_list.stops]
        assert len(places) == len(set(places))
        for stop in pick_list.stops:
            assert stop.puts and all(put.quantity > 0 for put in stop.puts)
            assert {put.fulfilment_id for put in stop.puts} <= set(pick_list.fulfilment_ids)


@pytest.mark.parametrize("planning", PLANNINGS)
def test_picks_come_from_bins_holding_the_stock_nearest_first(
    planning: str, warehouse: Warehouse, orders: tuple[PickOrder, ...]
) -> None:
    taken = _taken_from_bins(_plans(planning, warehouse, orders))
    for (sku, code), units in taken.items():
        places = sorted(warehouse.stock[sku], key=lambda place: place.bin.sequence)
        held = {place.bin.code: place.quantity for place in places}
        assert units <= held[code]
        # A later bin is only touched once every earlier bin of the SKU is emptied.
        for place in places:
            if place.bin.code == code:
                break
            assert taken[(sku, place.bin.code)] == place.quantity


@pytest.mark.parametrize("planning", PLANNINGS)
def test_short_lines_are_reported_only_when_every_bin_is_empty(
    planning: str, warehouse: Warehouse, orders: tuple[PickOrder, ...]
) -> None:
    plans = _plans(planning, warehouse, orders)
    taken = _taken_from_bins(plans)
    short = [line for plan in plans for line in plan.short]
    assert any(line.unpickable for line in short), "the generated orders include unstocked SKUs"
    for line in short:
        assert 0 < line.missing <= line.ordered
        for place in warehouse.stock[line.sku]:
            assert taken[(line.sku, place.bin.code)] == place.quantity


@pytest.mark.parametrize("planning", PLANNINGS)
def test_list_ids_are_unique_and_planning_is_deterministic(
    planning: str, warehouse: Warehouse, orders: tuple[PickOrder, ...]
) -> None:
    lists = _lists(_plans(planning, warehouse, orders))
    assert len({pick_list.list_id for pick_list in lists}) == len(lists)
    assert _plans(planning, warehouse, orders) == _plans(planning, warehouse, orders)


def test_single_order_makes_one_list_per_fulfilment(
    warehouse: Warehouse, orders: tuple[PickOrder, ...]
) -> None:
    (plan,) = _plans("single_order", warehouse, orders)
    with_units = {fulfilment_id for fulfilment_id, _ in _picked([plan])}
    assert [pl.fulfilment_ids for pl in plan.lists] == [
        (o.fulfilment_id,) for o in orders if o.fulfilment_id in with_units
    ]
    for pick_list in plan.lists:
        assert pick_list.strategy is Strategy.SINGLE_ORDER
        assert [tote.number for tote in pick_list.totes] == [1]


@pytest.mark.parametrize("planning", ["batch", "batch_as_given", "waves_batch"])
def test_batch_fills_carts_and_puts_each_unit_into_its_fulfilments_tote(
    planning: str, warehouse: Warehouse, orders: tuple[PickOrder, ...]
) -> None:
    lists = _lists(_plans(planning, warehouse, orders))
    for pick_list in lists:
        assert pick_list.strategy is Strategy.BATCH
        assert 1 <= len(pick_list.fulfilment_ids) <= 8
        tote_of = {tote.fulfilment_id: tote.number for tote in pick_list.totes}
        assert list(tote_of) == list(pick_list.fulfilment_ids)
        assert sorted(tote_of.values()) == list(range(1, len(tote_of) + 1))
        for stop in pick_list.stops:
            assert all(put.tote == tote_of[put.fulfilment_id] for put in stop.puts)
    assert any(len(pl.fulfilment_ids) == 8 for pl in lists)


def test_batch_sorted_after_picking_has_no_totes(
    warehouse: Warehouse, orders: tuple[PickOrder, ...]
) -> None:
    for pick_list in _lists(_plans("batch_sort_after", warehouse, orders)):
        assert pick_list.sort is SortMode.AFTER_PICKING
        assert pick_list.totes == ()
        assert all(put.tote is None for stop in pick_list.stops for put in stop.puts)
        assert len(pick_list.fulfilment_ids) <= 6


@pytest.mark.parametrize("planning", ["zone", "zone_sort_after", "waves_zone"])
def test_zone_lists_stay_in_their_zone_and_name_what_to_consolidate(
    planning: str, warehouse: Warehouse, orders: tuple[PickOrder, ...]
) -> None:
    plans = _plans(planning, warehouse, orders)
    by_id = {pl.list_id: pl for pl in _lists(plans)}
    zones_of: dict[str, set[str]] = defaultdict(set)
    totes_of: dict[str, set[int]] = defaultdict(set)
    for pick_list in by_id.values():
        assert pick_list.strategy is Strategy.ZONE
        assert pick_list.zone is not None
        assert {stop.bin.zone for stop in pick_list.stops} == {pick_list.zone}
        for fulfilment_id in pick_list.fulfilment_ids:
            zones_of[fulfilment_id].add(pick_list.zone)
        for tote in pick_list.totes:
            totes_of[tote.fulfilment_id].add(tote.number)
    consolidations = [c for plan in plans for c in plan.consolidations]
    assert {c.fulfilment_id for c in consolidations} == {
        fid for fid, zones in zones_of.items() if len(zones) > 1
    }
    assert consolidations, "some generated orders span zones"
    for c in consolidations:
        assert set(c.zones) == zones_of[c.fulfilment_id]
        assert [by_id[list_id].zone for list_id in c.list_ids] == list(c.zones)
        assert all(c.fulfilment_id in by_id[list_id].fulfilment_ids for list_id in c.list_ids)
    # A fulfilment has the same tote in every zone, so its totes can be matched up.
    assert all(len(numbers) == 1 for numbers in totes_of.values())


def test_batch_and_zone_walk_less_per_order_than_single_order(
    warehouse: Warehouse, orders: tuple[PickOrder, ...]
) -> None:
    def metres_per_order(planning: str, floor_of: Callable[[PickList], Floor]) -> float:
        lists = _lists(_plans(planning, warehouse, orders))
        return total_walk(walk_list(pl, floor_of(pl)) for pl in lists).metres / len(orders)

    def own_zone(pick_list: PickList) -> Floor:
        return warehouse.zone_floor(pick_list.zone or "")

    for floor in (warehouse.floor, Floor(warehouse.floor.depot)):  # aisles; plain Manhattan

        def whole(_: PickList, floor: Floor = floor) -> Floor:
            return floor

        single = metres_per_order("single_order", whole)
        assert metres_per_order("batch", whole) < single / 2
        assert metres_per_order("zone", whole) < single / 2
        assert metres_per_order("zone", own_zone) < single / 2
        assert metres_per_order("waves_batch", whole) < single


# --- hand-made floors -----------------------------------------------------------------------


def _bin(code: str, sequence: int, zone: str = "A") -> Bin:
    return Bin(code=code, zone=zone, sequence=sequence, x_m=float(sequence), y_m=0.0)


def _order(
    fulfilment_id: str,
    *lines: tuple[str, int],
    carrier: str = "dhl",
    service: ServiceLevel = ServiceLevel.STANDARD,
    cutoff: datetime | None = None,
) -> PickOrder:
    return PickOrder(
        fulfilment_id=fulfilment_id,
        order_id=f"order-{fulfilment_id}",
        lines=tuple(Line(sku, quantity) for sku, quantity in lines),
        carrier=carrier,
        service_level=service,
        cutoff=cutoff,
    )


def _at(hour: int) -> datetime:
    return datetime(2026, 1, 5, hour, tzinfo=UTC)


def test_two_skus_in_one_bin_are_two_stops_at_the_same_bin() -> None:
    shared = _bin("A-01", 4)
    stock = {"mug": [(shared, 5)], "cup": [(shared, 5)]}
    plan = plan_picking([_order("f1", ("mug", 1), ("cup", 2))], stock)
    (pick_list,) = plan.lists
    assert [(s.bin.code, s.sku, s.quantity) for s in pick_list.stops] == [
        ("A-01", "cup", 2),
        ("A-01", "mug", 1),
    ]
    walk = walk_list(pick_list)
    assert walk.metres == 8.0  # out to x = 4 and back, once
    assert walk.bin_steps == 0


def test_a_sku_in_two_bins_is_taken_nearest_first_and_split_when_partial() -> None:
    near, far = _bin("A-05", 5), _bin("A-09", 9)
    stock = {"mug": [BinStock(far, 10), BinStock(near, 2)]}  # listed far first on purpose
    plan = plan_picking([_order("f1", ("mug", 5)), _order("f2", ("mug", 10))], stock)
    first, second = plan.lists
    assert [(s.bin.code, s.quantity) for s in first.stops] == [("A-05", 2), ("A-09", 3)]
    assert [(s.bin.code, s.quantity) for s in second.stops] == [("A-09", 7)]
    (short,) = plan.short
    assert (short.fulfilment_id, short.sku, short.ordered, short.missing) == ("f2", "mug", 10, 3)
    assert not short.unpickable


def test_a_line_no_bin_holds_is_unpickable_and_its_fulfilment_gets_no_list() -> None:
    stock = {"mug": [(_bin("A-01", 1), 0)], "cup": [(_bin("A-02", 2), 3)]}
    orders = [_order("f1", ("mug", 2)), _order("f2", ("teapot", 1), ("cup", 1))]
    for strategy in Strategy:
        plan = plan_picking(orders, stock, PickingPolicy(strategy))
        assert [(line.fulfilment_id, line.sku, line.missing) for line in plan.short] == [
            ("f1", "mug", 2),
            ("f2", "teapot", 1),
        ]
        assert all(line.unpickable for line in plan.short)
        assert [pl.fulfilment_ids for pl in plan.lists] == [("f2",)]


def test_stock_given_is_not_changed_by_planning() -> None:
    stock = {"mug": [(_bin("A-01", 1), 3)]}
    plan_picking([_order("f1", ("mug", 3))], stock)
    assert stock == {"mug": [(_bin("A-01", 1), 3)]}


def test_a_batch_stop_shared_by_two_fulfilments_puts_units_into_each_tote() -> None:
    stock = {"mug": [(_bin("A-03", 3), 10)], "cup": [(_bin("A-01", 1), 10)]}
    orders = [_order("f1", ("mug", 2)), _order("f2", ("cup", 1), ("mug", 3))]
    plan = plan_picking(orders, stock, PickingPolicy(Strategy.BATCH, group_nearby_orders=False))
    (pick_list,) = plan.lists
    assert pick_list.fulfilment_ids == ("f1", "f2")
    cup, mug = pick_list.stops
    assert (cup.sku, [(p.fulfilment_id, p.tote, p.quantity) for p in cup.puts]) == (
        "cup",
        [("f2", 2, 1)],
    )
    assert (mug.sku, mug.quantity, [(p.fulfilment_id, p.tote, p.quantity) for p in mug.puts]) == (
        "mug",
        5,
        [("f1", 1, 2), ("f2", 2, 3)],
    )


def test_batch_groups_fulfilments_near_on_the_path() -> None:
    stock = {sku: [(_bin(f"A-{n:02d}", n), 5)] for n, sku in enumerate("abcd", start=1)}
    orders = [_order("f1", ("a", 1)), _order("f2", ("d", 1)), _order("f3", ("b", 1))]
    plan = plan_picking(orders, stock, PickingPolicy(Strategy.BATCH, orders_per_batch=2))
    assert [pl.fulfilment_ids for pl in plan.lists] == [("f1", "f3"), ("f2",)]


def test_zone_picking_splits_a_round_by_zone_and_lists_the_consolidation() -> None:
    stock = {
        "mug": [(_bin("A-01", 1, "A"), 5)],
        "cup": [(_bin("B-01", 11, "B"), 5)],
        "jug": [(_bin("B-02", 12, "B"), 5)],
    }
    orders = [_order("f1", ("mug", 1), ("cup", 1)), _order("f2", ("jug", 1))]
    plan = plan_picking(orders, stock, PickingPolicy(Strategy.ZONE, group_nearby_orders=False))
    zone_a, zone_b = plan.lists
    assert (zone_a.zone, zone_a.fulfilment_ids) == ("A", ("f1",))
    assert (zone_b.zone, zone_b.fulfilment_ids) == ("B", ("f1", "f2"))
    assert [t.number for t in zone_b.totes] == [1, 2]
    (consolidation,) = plan.consolidations
    assert consolidation.fulfilment_id == "f1"
    assert consolidation.zones == ("A", "B")
    assert consolidation.list_ids == (zone_a.list_id, zone_b.list_id)


def test_waves_split_at_the_cutoff_and_release_the_earliest_first() -> None:
    orders = [
        _order("late", ("mug", 1), cutoff=_at(17)),
        _order("none", ("mug", 1), cutoff=None),
        _order("early", ("mug", 1), cutoff=_at(12)),
        _order("late2", ("mug", 1), cutoff=_at(17)),
    ]
    waves = release_waves(orders)
    assert [(w.number, w.cutoff, [o.fulfilment_id for o in w.orders]) for w in waves] == [
        (1, _at(12), ["early"]),
        (2, _at(17), ["late", "late2"]),
        (3, None, ["none"]),
    ]


def test_waves_put_express_first() -> None:
    orders = [
        _order("s1", ("mug", 1), cutoff=_at(15)),
        _order("s2", ("mug", 1), cutoff=_at(15)),
        _order("e1", ("mug", 1), cutoff=_at(15), service=ServiceLevel.EXPRESS),
        _order("x1", ("mug", 1), cutoff=_at(15), service=ServiceLevel.ECONOMY),
        _order("u1", ("mug", 1), cutoff=_at(15), carrier="ups", service=ServiceLevel.EXPRESS),
    ]
    waves = release_waves(orders, WavePolicy(max_orders=2))
    assert [(w.carrier, [o.fulfilment_id for o in w.orders]) for w in waves] == [
        ("dhl", ["e1", "s1"]),  # express first within the carrier's group...
        ("ups", ["u1"]),  # ...and a wave holding express before one that holds none
        ("dhl", ["s2", "x1"]),
    ]
    merged = release_waves(orders, WavePolicy(max_orders=10, split_by_carrier=False))
    assert [(w.carrier, [o.fulfilment_id for o in w.orders]) for w in merged] == [
        (None, ["e1", "u1", "s1", "s2", "x1"])
    ]


def test_earlier_waves_take_the_stock_first() -> None:
    stock = {"mug": [(_bin("A-01", 1), 1)]}
    orders = [
        _order("standard", ("mug", 1), cutoff=_at(15)),
        _order("express", ("mug", 1), cutoff=_at(15), service=ServiceLevel.EXPRESS),
    ]
    first, second = plan_waves(orders, stock, WavePolicy(max_orders=1))
    assert [pl.fulfilment_ids for pl in first.plan.lists] == [("express",)]
    assert first.plan.lists[0].wave == 1
    assert second.plan.lists == ()
    assert [line.fulfilment_id for line in second.plan.short] == ["standard"]


def test_list_ids_are_deterministic_and_ignore_tote_order() -> None:
    a = pick_list_id(Strategy.BATCH, SortMode.WHILE_PICKING, None, ["f1", "f2"])
    assert a == pick_list_id(Strategy.BATCH, SortMode.WHILE_PICKING, None, ["f2", "f1"])
    assert a != pick_list_id(Strategy.ZONE, SortMode.WHILE_PICKING, "A", ["f1", "f2"])


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="quantity 0"):
        _order("f1", ("mug", 0))
    with pytest.raises(ValueError, match="given twice"):
        plan_picking([_order("f1", ("mug", 1)), _order("f1", ("cup", 1))], {})
    with pytest.raises(ValueError, match="quantity -1"):
        plan_picking([_order("f1", ("mug", 1))], {"mug": [(_bin("A-01", 1), -1)]})
    with pytest.raises(ValueError, match="at least 1"):
        PickingPolicy(Strategy.BATCH, orders_per_batch=0)
    with pytest.raises(ValueError, match="at least 1"):
        WavePolicy(max_orders=0)
