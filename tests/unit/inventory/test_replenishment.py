"""Replenishment decisions: velocity, reorder points, days of cover, suggested quantities, the
channels' safety stock, and the low-stock crossing that fires once until the stock recovers."""

from __future__ import annotations

from fractions import Fraction

from services.inventory.replenishment.domain import (
    NO_SALES,
    Crossing,
    PointSource,
    ReorderRule,
    StockPosition,
    Velocity,
    crossing,
    days_of_cover,
    effective_safety_stock,
    point_source,
    recovery_margin,
    reorder_point,
    suggested_quantity,
    suggestions,
)

# --- velocity ---------------------------------------------------------------------------------


def test_velocity_is_units_shipped_per_day_in_each_window():
    velocity = Velocity(shipped_7d=14, shipped_30d=30)
    assert velocity.per_day_7d == 2
    assert velocity.per_day_30d == 1


def test_the_higher_window_plans():
    assert Velocity(shipped_7d=14, shipped_30d=30).per_day == 2, "selling faster lately"
    assert Velocity(shipped_7d=0, shipped_30d=60).per_day == 2, "slowed down: the month counts"
    assert NO_SALES.per_day == 0


def test_velocity_is_exact_not_rounded():
    assert Velocity(shipped_7d=1, shipped_30d=1).per_day == Fraction(1, 7)


# --- reorder point ----------------------------------------------------------------------------


def test_an_explicit_reorder_point_wins_over_velocity():
    rule = ReorderRule(lead_time_days=10, cover_days=14, safety_units=3, reorder_point=5)
    assert reorder_point(rule, Velocity(70, 300)) == 5
    assert point_source(rule) is PointSource.EXPLICIT


def test_a_derived_reorder_point_is_sales_over_the_lead_time_plus_safety():
    rule = ReorderRule(lead_time_days=5, cover_days=14, safety_units=3)
    assert reorder_point(rule, Velocity(shipped_7d=14, shipped_30d=30)) == 2 * 5 + 3
    assert point_source(rule) is PointSource.VELOCITY


def test_a_derived_point_rounds_up_part_units():
    rule = ReorderRule(lead_time_days=3, cover_days=0)
    assert reorder_point(rule, Velocity(shipped_7d=1, shipped_30d=1)) == 1  # 3/7 of a unit


def test_without_sales_the_derived_point_is_the_safety_units():
    assert reorder_point(ReorderRule(7, 14, safety_units=4), NO_SALES) == 4


# --- days of cover ----------------------------------------------------------------------------


def test_days_of_cover_is_available_over_velocity():
    assert days_of_cover(10, Velocity(shipped_7d=14, shipped_30d=0)) == 5.0
    assert days_of_cover(10, Velocity(shipped_7d=0, shipped_30d=90)) == 3.3
    assert days_of_cover(0, Velocity(shipped_7d=7)) == 0.0


def test_no_days_of_cover_when_nothing_sells():
    assert days_of_cover(10, NO_SALES) is None


# --- suggested quantity -----------------------------------------------------------------------


def test_the_suggestion_covers_lead_time_and_cover_days_less_what_is_there_and_coming():
    rule = ReorderRule(lead_time_days=5, cover_days=10, safety_units=0)
    velocity = Velocity(shipped_7d=14, shipped_30d=0)  # 2 a day: 30 over 15 days
    assert suggested_quantity(rule, velocity, available=8, incoming=4, backordered=0) == 18


def test_backordered_demand_and_safety_units_add_to_the_suggestion():
    rule = ReorderRule(lead_time_days=5, cover_days=10, safety_units=3)
    velocity = Velocity(shipped_7d=14, shipped_30d=0)
    assert suggested_quantity(rule, velocity, available=8, incoming=4, backordered=6) == 27


def test_nothing_to_order_when_enough_is_there_or_coming():
    rule = ReorderRule(lead_time_days=5, cover_days=10)
    velocity = Velocity(shipped_7d=14, shipped_30d=0)
    assert suggested_quantity(rule, velocity, available=20, incoming=20, backordered=0) == 0


def test_without_sales_an_explicit_point_is_still_topped_up_above_it():
    rule = ReorderRule(lead_time_days=5, cover_days=10, reorder_point=10)
    assert suggested_quantity(rule, NO_SALES, available=4, incoming=0, backordered=0) == 7
    assert suggested_quantity(rule, NO_SALES, available=11, incoming=0, backordered=0) == 0


# --- suggestions ------------------------------------------------------------------------------


def _position(sku: str, available: int, velocity: Velocity, **rule: int) -> StockPosition:
    return StockPosition(
        sku=sku,
        location="berlin",
        on_hand=available,
        reserved=0,
        incoming=0,
        backordered=0,
        velocity=velocity,
        rule=ReorderRule(lead_time_days=7, cover_days=14, **rule),
        configured=True,
        low=False,
    )


def test_suggestions_list_the_most_urgent_first_and_only_what_needs_ordering():
    found = suggestions(
        [
            _position("SLOW", 20, Velocity(shipped_7d=7)),  # 20 days of cover
            _position("FAST", 4, Velocity(shipped_7d=14)),  # 2 days
            _position("DEAD", 3, NO_SALES, reorder_point=5),  # no sales, below its point
            _position("FULL", 500, Velocity(shipped_7d=7)),  # nothing to order
        ],
        everything=False,
    )
    assert [(s.position.sku, s.days_of_cover) for s in found] == [
        ("FAST", 2.0),
        ("SLOW", 20.0),
        ("DEAD", None),
    ]
    assert [s.quantity for s in found] == [2 * 21 - 4, 21 - 20, 6 - 3]


def test_all_lists_what_needs_nothing_too():
    found = suggestions([_position("FULL", 500, Velocity(shipped_7d=7))], everything=True)
    assert [(s.position.sku, s.quantity, s.reorder_point) for s in found] == [("FULL", 0, 7)]


# --- safety stock per SKU ---------------------------------------------------------------------


def test_a_sku_override_replaces_the_channel_default_only_for_its_channel():
    defaults = {"amazon": 2, "ebay": 1, "shopify": 0}
    assert effective_safety_stock(defaults, {"amazon": 5}) == {"amazon": 5, "ebay": 1, "shopify": 0}
    assert effective_safety_stock(defaults, {}) == defaults


def test_an_override_of_a_channel_no_longer_configured_is_ignored():
    assert effective_safety_stock({"amazon": 2}, {"gone": 9}) == {"amazon": 2}


# --- the low-stock crossing -------------------------------------------------------------------


def test_the_recovery_margin_is_a_percentage_of_the_point_at_least_one_unit():
    assert recovery_margin(50, 10) == 5
    assert recovery_margin(5, 10) == 1
    assert recovery_margin(0, 10) == 0
    assert recovery_margin(5, 0) == 1


def run(levels: list[int], point: int, margin_percent: int = 10) -> list[Crossing]:
    """Feed successive available levels through the crossing rule, as the watcher would,
    remembering the state between them; return what was announced."""
    is_low = False
    announced = []
    for available in levels:
        change = crossing(
            is_low=is_low, available=available, point=point, margin_percent=margin_percent
        )
        if change is not None:
            announced.append(change)
            is_low = change is Crossing.LOW
    return announced


def test_low_stock_fires_once_when_crossing_the_point_not_again_until_it_recovers():
    # 20 units, reorder point 10: reservations take it down past the point and further
    assert run([20, 15, 11, 10, 8, 3, 0], point=10) == [Crossing.LOW]
    # ... back above the point plus the margin (10 + 1), then down again: a second crossing
    assert run([20, 10, 5, 12, 9], point=10) == [Crossing.LOW, Crossing.RECOVERED, Crossing.LOW]


def test_no_flapping_around_the_point():
    # one unit released and reserved again, over and over, just at the point
    assert run([12, 10, 11, 10, 11, 10, 11], point=10) == [Crossing.LOW]


def test_the_first_level_at_or_below_the_point_is_a_crossing():
    assert run([10], point=10) == [Crossing.LOW]
    assert run([11], point=10) == []


def test_a_point_of_zero_fires_when_sold_out_and_recovers_with_the_first_unit():
    assert run([3, 0, 0, 1, 0], point=0) == [Crossing.LOW, Crossing.RECOVERED, Crossing.LOW]
