"""Kits as plain Python: a kit's line expands into its components' lines (allocated all or
nothing with the order), the answer names the kit, definitions refuse nesting, and a kit's
stock is what its scarcest component makes at each location."""

from __future__ import annotations

import itertools
import random

import pytest

from services.inventory.kits.domain import (
    COMPONENT_IS_KIT,
    DUPLICATE_COMPONENT,
    KIT_CONTAINS_ITSELF,
    KIT_IS_COMPONENT,
    UNKNOWN_COMPONENT,
    Component,
    Kit,
    check_definition,
    expand,
    kit_levels,
    kit_total,
)
from services.inventory.stock.domain import (
    INSUFFICIENT_STOCK,
    LineRequest,
    Placement,
    Refused,
    Reserved,
    Shortfall,
    StockLevel,
    allocate,
)

GIFT = Kit("GIFT", (Component("MUG", 2), Component("SPOON", 1)))
KITS = {"GIFT": GIFT}


def stock(location: str, sku: str, on_hand: int, reserved: int = 0) -> StockLevel:
    return StockLevel(sku, location, on_hand, reserved)


# --- expansion --------------------------------------------------------------------------------


def test_a_kit_line_becomes_one_line_per_component_in_place():
    lines = [
        LineRequest("l1", "TEA", 1),
        LineRequest("l2", "GIFT", 3),
        LineRequest("l3", "MUG", 1),
    ]
    expansion = expand(lines, KITS)
    assert expansion.lines == (
        LineRequest("l1", "TEA", 1),
        LineRequest("l2/MUG", "MUG", 6),
        LineRequest("l2/SPOON", "SPOON", 3),
        LineRequest("l3", "MUG", 1),
    )
    assert {
        line_id: (p.kit_sku, p.kit_line_id, p.per_kit) for line_id, p in expansion.parts.items()
    } == {
        "l2/MUG": ("GIFT", "l2", 2),
        "l2/SPOON": ("GIFT", "l2", 1),
    }


def test_an_order_without_kits_is_left_as_it_is():
    lines = [LineRequest("l1", "MUG", 2)]
    expansion = expand(lines, KITS)
    assert expansion.lines == tuple(lines)
    decision = allocate(expansion.lines, [stock("east", "MUG", 5)], {"MUG"})
    assert expansion.answer(decision) == decision


def test_two_lines_of_one_kit_get_distinct_component_lines():
    expansion = expand([LineRequest("l1", "GIFT", 1), LineRequest("l2", "GIFT", 2)], KITS)
    assert [line.line_id for line in expansion.lines] == [
        "l1/MUG",
        "l1/SPOON",
        "l2/MUG",
        "l2/SPOON",
    ]


def test_the_placements_of_a_kit_name_the_kit_its_line_and_units_per_kit():
    expansion = expand([LineRequest("l1", "GIFT", 2), LineRequest("l2", "TEA", 1)], KITS)
    levels = [stock("east", "MUG", 4), stock("east", "SPOON", 2), stock("east", "TEA", 1)]
    decision = expansion.answer(allocate(expansion.lines, levels, {"MUG", "SPOON", "TEA"}))
    assert decision == Reserved(
        (
            Placement("l1/MUG", "MUG", "east", 4, "GIFT", "l1", 2),
            Placement("l1/SPOON", "SPOON", "east", 2, "GIFT", "l1", 1),
            Placement("l2", "TEA", "east", 1),
        )
    )


def test_components_may_come_from_different_locations():
    expansion = expand([LineRequest("l1", "GIFT", 1)], KITS)
    levels = [stock("east", "MUG", 2), stock("west", "SPOON", 1)]
    decision = expansion.answer(allocate(expansion.lines, levels, {"MUG", "SPOON"}))
    assert isinstance(decision, Reserved)
    assert [(p.sku, p.location, p.quantity) for p in decision.placements] == [
        ("MUG", "east", 2),
        ("SPOON", "west", 1),
    ]


def test_a_kit_short_of_a_component_is_refused_whole_naming_the_kit_line_and_the_component():
    expansion = expand([LineRequest("l1", "GIFT", 3), LineRequest("l2", "TEA", 1)], KITS)
    levels = [stock("east", "MUG", 5), stock("east", "SPOON", 10), stock("east", "TEA", 1)]
    decision = expansion.answer(allocate(expansion.lines, levels, {"MUG", "SPOON", "TEA"}))
    # 5 mugs make 2 gifts of the 3 ordered; nothing of the order is reserved.
    assert decision == Refused(
        INSUFFICIENT_STOCK, (Shortfall("l1", "GIFT", 3, 2, component="MUG"),)
    )


def test_a_bare_component_line_and_a_kit_share_the_component_stock():
    lines = [LineRequest("l1", "MUG", 3), LineRequest("l2", "GIFT", 1)]
    expansion = expand(lines, KITS)
    levels = [stock("east", "MUG", 4), stock("east", "SPOON", 1)]
    decision = expansion.answer(allocate(expansion.lines, levels, {"MUG", "SPOON"}))
    # 3 mugs for l1 leave 1: half a gift.
    assert decision == Refused(
        INSUFFICIENT_STOCK, (Shortfall("l2", "GIFT", 1, 0, component="MUG"),)
    )


@pytest.mark.parametrize("seed", range(30))
def test_a_kit_order_reserves_every_component_of_every_kit_or_nothing(seed: int):
    rng = random.Random(seed)
    kits = {
        "K1": Kit("K1", (Component("A", rng.randint(1, 3)), Component("B", rng.randint(1, 2)))),
        "K2": Kit("K2", (Component("B", 1), Component("C", rng.randint(1, 4)))),
    }
    lines = [
        LineRequest(f"l{n}", rng.choice(["K1", "K2", "A", "C"]), rng.randint(1, 3))
        for n in range(1, rng.randint(2, 5))
    ]
    levels = [
        stock(location, sku, rng.randint(0, 8))
        for location, sku in itertools.product(["east", "west"], ["A", "B", "C"])
    ]
    expansion = expand(lines, kits)
    decision = expansion.answer(allocate(expansion.lines, levels, {"A", "B", "C"}))
    if isinstance(decision, Refused):
        assert all(s.line_id in {line.line_id for line in lines} for s in decision.shortfalls)
        return
    reserved = {line.line_id: 0 for line in expansion.lines}
    for placement in decision.placements:
        reserved[placement.line_id] += placement.quantity
    for line in expansion.lines:
        assert reserved[line.line_id] == line.quantity
    for line in lines:
        for component in kits[line.sku].components if line.sku in kits else ():
            assert reserved[f"{line.line_id}/{component.sku}"] == line.quantity * component.per_kit
    on_hand = {(level.location, level.sku): level.on_hand for level in levels}
    for (location, sku), held in on_hand.items():
        taken = sum(
            p.quantity for p in decision.placements if (p.location, p.sku) == (location, sku)
        )
        assert taken <= held


# --- definitions ------------------------------------------------------------------------------


def problem_of(kit: Kit, *, known=("MUG", "SPOON", "TEA", "GIFT"), kits=(), containing=()):
    problem = check_definition(kit, known_skus=known, kits=kits, containing_kits=containing)
    return None if problem is None else (problem.code, problem.component, problem.index)


def test_a_kit_of_defined_skus_is_fine():
    assert problem_of(GIFT) is None


def test_a_component_must_be_defined():
    kit = Kit("GIFT", (Component("MUG", 1), Component("CUP", 1)))
    assert problem_of(kit) == (UNKNOWN_COMPONENT, "CUP", 1)


def test_a_component_is_listed_once():
    kit = Kit("GIFT", (Component("MUG", 1), Component("MUG", 2)))
    assert problem_of(kit) == (DUPLICATE_COMPONENT, "MUG", 1)


def test_a_kit_is_not_its_own_component():
    assert problem_of(Kit("GIFT", (Component("GIFT", 1),))) == (KIT_CONTAINS_ITSELF, "GIFT", 0)


def test_kits_do_not_nest_either_way():
    assert problem_of(Kit("BIG", (Component("GIFT", 1),)), known=("GIFT",), kits=("GIFT",)) == (
        COMPONENT_IS_KIT,
        "GIFT",
        0,
    )
    assert problem_of(GIFT, containing=("BIG",)) == (KIT_IS_COMPONENT, None, None)


# --- availability -----------------------------------------------------------------------------


def test_a_kit_is_available_as_often_as_its_scarcest_component_allows_per_location():
    levels = [
        stock("east", "MUG", 7, reserved=2),  # 5 available: 2 gifts (3 on hand)
        stock("east", "SPOON", 4, reserved=1),  # 3 available
        stock("west", "MUG", 10),
        stock("west", "SPOON", 1),  # 1 gift
        stock("north", "MUG", 9),  # no spoon at all: no gift
        stock("east", "TEA", 100),  # not a component
    ]
    assert kit_levels(GIFT, levels) == [
        StockLevel("GIFT", "east", 3, 1),
        StockLevel("GIFT", "north", 0, 0),
        StockLevel("GIFT", "west", 1, 0),
    ]
    total = kit_total(GIFT, levels)
    assert (total.on_hand, total.reserved, total.available) == (4, 1, 3)


def test_kit_availability_is_not_pooled_across_locations():
    # Two mugs east and a spoon west make a kit only by shipping two parcels: the order can
    # reserve them (components may come from different locations), but no one location can
    # assemble one, and availability is per location summed.
    levels = [stock("east", "MUG", 2), stock("west", "SPOON", 1)]
    assert kit_total(GIFT, levels).available == 0


def test_a_kit_without_any_component_stock_has_none():
    total = kit_total(GIFT, [])
    assert (total.sku, total.on_hand, total.reserved, total.available) == ("GIFT", 0, 0, 0)
