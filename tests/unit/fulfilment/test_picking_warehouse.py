"""The generated warehouse and orders the picking tests and the measurement run on."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest

from services.fulfilment.picking.strategies import ServiceLevel
from services.fulfilment.picking.walk import Point, distance_m
from services.fulfilment.warehouse.generate import (
    CUTOFFS,
    Layout,
    Warehouse,
    ean13,
    generate_bins,
    generate_orders,
    generate_warehouse,
)


@pytest.fixture(scope="module")
def warehouse() -> Warehouse:
    return generate_warehouse(seed=7)


def test_the_same_seed_makes_the_same_warehouse_and_orders(warehouse: Warehouse) -> None:
    assert generate_warehouse(seed=7) == warehouse
    assert generate_orders(warehouse, 50, seed=3) == generate_orders(warehouse, 50, seed=3)
    assert generate_warehouse(seed=8).stock != warehouse.stock
    assert generate_orders(warehouse, 50, seed=4) != generate_orders(warehouse, 50, seed=3)


def test_four_zones_of_a_few_hundred_bins_in_walking_order(warehouse: Warehouse) -> None:
    bins = warehouse.bins
    assert len(bins) == 320
    assert [b.sequence for b in bins] == list(range(1, len(bins) + 1))
    assert len({b.code for b in bins}) == len(bins)
    assert Counter(b.zone for b in bins) == {"A": 80, "B": 80, "C": 80, "D": 80}
    assert [b.zone for b in bins] == sorted(b.zone for b in bins)  # a zone after another


def test_the_walking_path_is_a_serpentine(warehouse: Warehouse) -> None:
    layout = warehouse.layout
    for here, there in pairwise(warehouse.bins):
        step = distance_m(Point(here.x_m, here.y_m), Point(there.x_m, there.y_m))
        if here.x_m == there.x_m:  # the other side of the bay, or the next bay
            assert step in (0.0, pytest.approx(layout.bay_width_m))
        else:  # round the end of the aisle into the next, at the same end
            assert (step, here.y_m) == (layout.aisle_pitch_m, there.y_m)
    first_aisle = [b.y_m for b in warehouse.bins[: 2 * layout.bays_per_aisle]]
    second_aisle = [b.y_m for b in warehouse.bins[2 * layout.bays_per_aisle :][:20]]
    assert first_aisle == sorted(first_aisle)
    assert second_aisle == sorted(second_aisle, reverse=True)


def test_a_smaller_layout() -> None:
    bins = generate_bins(Layout(zones=2, aisles_per_zone=1, bays_per_aisle=3))
    assert [b.code for b in bins] == [
        "A-01-01L", "A-01-01R", "A-01-02L", "A-01-02R", "A-01-03L", "A-01-03R",
        "B-02-03L", "B-02-03R", "B-02-02L", "B-02-02R", "B-02-01L", "B-02-01R",
    ]  # fmt: skip
    with pytest.raises(ValueError):
        Layout(zones=0)


def test_skus_lie_in_one_or_two_bins_some_bins_hold_two_skus(warehouse: Warehouse) -> None:
    bins = {b.code: b for b in warehouse.bins}
    places_per_sku = Counter(len(places) for places in warehouse.stock.values())
    assert places_per_sku == {1: 200, 2: 40}
    skus_per_bin = Counter(p.bin.code for places in warehouse.stock.values() for p in places)
    assert max(skus_per_bin.values()) >= 2
    for places in warehouse.stock.values():
        assert all(bins[p.bin.code] == p.bin and p.quantity >= 0 for p in places)
    assert set(warehouse.stock) == set(warehouse.items) == set(warehouse.skus_by_popularity)


def test_some_popular_skus_are_out_of_stock_and_stock_follows_popularity(
    warehouse: Warehouse,
) -> None:
    units = {sku: sum(p.quantity for p in places) for sku, places in warehouse.stock.items()}
    out = [sku for sku, n in units.items() if n == 0]
    assert len(out) == 3
    assert all(warehouse.skus_by_popularity.index(sku) < 40 for sku in out)
    top, bottom = warehouse.skus_by_popularity[0], warehouse.skus_by_popularity[-1]
    assert units[top] > 3 * units[bottom]


def test_barcodes_are_unique_valid_ean13(warehouse: Warehouse) -> None:
    barcodes = [item.barcode for item in warehouse.items.values()]
    assert len(set(barcodes)) == len(barcodes)
    assert all(ean13(code[:12]) == code for code in barcodes)
    assert ean13("400638133393") == "4006381333931"
    with pytest.raises(ValueError):
        ean13("12345")


def test_orders_have_one_to_five_distinct_skus_skewed_to_the_popular(
    warehouse: Warehouse,
) -> None:
    orders = generate_orders(warehouse, 400, seed=5)
    assert len({o.fulfilment_id for o in orders}) == len({o.order_id for o in orders}) == 400
    line_counts = Counter(len(o.lines) for o in orders)
    assert set(line_counts) == {1, 2, 3, 4, 5}
    assert line_counts[1] > line_counts[5]
    for order in orders:
        skus = [line.sku for line in order.lines]
        assert len(skus) == len(set(skus))
        assert all(
            sku in warehouse.items and line.quantity >= 1
            for sku, line in zip(skus, order.lines, strict=True)
        )
        assert order.cutoff is not None and order.cutoff.time() == CUTOFFS[order.carrier]
    lines = [line.sku for o in orders for line in o.lines]
    popular = set(warehouse.skus_by_popularity[:24])  # the top tenth
    assert sum(sku in popular for sku in lines) > 0.4 * len(lines)
    levels = Counter(o.service_level for o in orders)
    assert (
        levels[ServiceLevel.EXPRESS] > 0
        and levels[ServiceLevel.STANDARD] > levels[ServiceLevel.EXPRESS]
    )
