"""Box choice: awkward shapes, weight limits, refusals, the placement proof and `verify`."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

import pytest

from services.fulfilment.packing import boxes
from services.fulfilment.packing.boxes import (
    BoxType,
    FaultKind,
    NothingToPack,
    Orientation,
    PackedBox,
    PackingPlan,
    PackingRefusal,
    PackingRefused,
    Placement,
    Position,
    Unit,
    UnverifiedPlan,
    box_rank,
    choose_boxes,
    oriented,
    pack_into,
    units_of,
    verify,
)
from services.fulfilment.warehouse.model import Dimensions, Item


def item(sku: str, length: int, width: int, height: int, weight_g: int = 100) -> Item:
    return Item(sku, f"BC-{sku}", Dimensions(length, width, height), weight_g)


SMALL = BoxType("S", Dimensions(200, 150, 100), max_weight_g=5_000, tare_weight_g=150)
MEDIUM = BoxType("M", Dimensions(300, 200, 150), max_weight_g=10_000, tare_weight_g=250)
LARGE = BoxType("L", Dimensions(400, 300, 300), max_weight_g=20_000, tare_weight_g=500)
CATALOGUE = (LARGE, SMALL, MEDIUM)  # deliberately not in size order


def codes(plan: PackingPlan) -> list[str]:
    return [packed.box.code for packed in plan.boxes]


def assert_sound(plan: PackingPlan, lines: list[tuple[Item, int]]) -> None:
    assert verify(plan, lines) == ()
    placed = Counter((unit.sku, unit.number) for packed in plan.boxes for unit in packed.units)
    assert all(count == 1 for count in placed.values())
    assert sum(placed.values()) == sum(quantity for _, quantity in lines)
    for packed in plan.boxes:
        assert packed.gross_weight_g <= packed.box.max_weight_g


# --- orientations ----------------------------------------------------------------------------


def test_the_six_orientations_are_the_six_permutations_of_the_sides() -> None:
    dimensions = Dimensions(10, 20, 30)
    extents = {oriented(dimensions, orientation) for orientation in Orientation}
    assert len(extents) == 6
    assert oriented(dimensions, Orientation.LWH) == dimensions
    assert oriented(dimensions, Orientation.HLW) == Dimensions(30, 10, 20)


# --- choosing one box ------------------------------------------------------------------------


def test_a_small_item_goes_in_the_smallest_box() -> None:
    lines = [(item("mug", 120, 100, 90), 1)]
    plan = choose_boxes(lines, CATALOGUE)
    assert codes(plan) == ["S"]
    assert_sound(plan, lines)


def test_equal_volumes_are_decided_by_cost_and_a_box_without_cost_comes_last() -> None:
    dear = BoxType("dear", Dimensions(200, 150, 100), 5_000, 150, cost=Decimal("0.90"))
    cheap = BoxType("cheap", Dimensions(100, 300, 100), 5_000, 150, cost=Decimal("0.40"))
    unpriced = BoxType("unpriced", Dimensions(150, 200, 100), 5_000, 150)
    lines = [(item("cube", 90, 90, 90), 1)]
    assert codes(choose_boxes(lines, [unpriced, dear, cheap])) == ["cheap"]
    assert codes(choose_boxes(lines, [unpriced, dear])) == ["dear"]
    assert sorted([unpriced, dear, cheap], key=box_rank) == [cheap, dear, unpriced]


def test_a_long_thin_item_lies_along_the_only_box_long_enough() -> None:
    lines = [(item("rod", 10, 10, 380), 1)]
    plan = choose_boxes(lines, CATALOGUE)
    assert codes(plan) == ["L"]
    (placement,) = plan.boxes[0].placements
    assert placement.extent.length_mm == 380  # along the box's 400 mm length
    assert_sound(plan, lines)


def test_a_long_item_given_upright_is_laid_down_to_fit_a_smaller_box() -> None:
    lines = [(item("poster_tube", 60, 60, 290), 1)]  # no box is 290 mm tall but M is 300 long
    plan = choose_boxes(lines, CATALOGUE)
    assert codes(plan) == ["M"]
    (placement,) = plan.boxes[0].placements
    assert placement.orientation is not Orientation.LWH
    assert placement.extent == Dimensions(290, 60, 60)


def test_an_item_that_fits_only_turned_on_its_side() -> None:
    tray = BoxType("tray", Dimensions(300, 100, 50), 5_000, 100)
    lines = [(item("frame", 40, 90, 290), 1)]  # as given: 290 tall, the tray is 50
    plan = choose_boxes(lines, [tray])
    (placement,) = plan.boxes[0].placements
    assert placement.extent == Dimensions(290, 90, 40)
    assert_sound(plan, lines)


def test_a_flat_item_and_a_stack_of_them() -> None:
    lines = [(item("print", 280, 190, 5), 1)]
    assert codes(choose_boxes(lines, CATALOGUE)) == ["M"]  # S's 200 x 150 floor is too small
    stack = [(item("print", 280, 190, 5), 30)]  # 150 mm of prints: exactly M's height
    plan = choose_boxes(stack, CATALOGUE)
    assert codes(plan) == ["M"]
    assert_sound(plan, stack)


def test_many_small_items_fill_a_box_exactly() -> None:
    exact = BoxType("exact", Dimensions(120, 90, 60), 10_000, 100)
    lines = [(item("brick", 20, 30, 40, weight_g=50), 27)]  # 27 x 24,000 mm3 = 648,000 mm3
    plan = choose_boxes(lines, [LARGE, exact])
    assert codes(plan) == ["exact"]
    assert sum(u.item.dimensions.volume_mm3 for u in plan.boxes[0].units) == exact.volume_mm3
    assert_sound(plan, lines)


def test_mixed_shapes_fill_a_cube_exactly() -> None:
    cube = BoxType("cube", Dimensions(100, 100, 100), 10_000, 100)
    lines = [
        (item("cube_half", 50, 50, 50), 2),
        (item("slab", 50, 100, 100), 1),
        (item("bar", 100, 50, 50), 1),
    ]
    plan = choose_boxes(lines, [LARGE, cube])
    assert codes(plan) == ["cube"]
    assert_sound(plan, lines)


def test_a_box_one_millimetre_too_small_is_never_chosen() -> None:
    snug = BoxType("snug", Dimensions(100, 100, 100), 10_000, 100)
    tight = BoxType("tight", Dimensions(100, 100, 99), 10_000, 100)
    lines = [(item("block", 100, 100, 100), 1)]
    assert codes(choose_boxes(lines, [tight, snug])) == ["snug"]
    assert pack_into(tight, units_of(lines)) is None


# --- weight ----------------------------------------------------------------------------------


def test_weight_exactly_at_the_box_limit_is_allowed() -> None:
    lines = [(item("anvil", 100, 100, 50, weight_g=SMALL.payload_g), 1)]
    plan = choose_boxes(lines, [SMALL])
    assert plan.boxes[0].gross_weight_g == SMALL.max_weight_g
    assert_sound(plan, lines)


def test_one_gram_over_the_limit_of_every_box_is_refused() -> None:
    lines = [(item("anvil", 100, 100, 50, weight_g=SMALL.payload_g + 1), 1)]
    with pytest.raises(PackingRefused) as refused:
        choose_boxes(lines, [SMALL])
    assert refused.value.code is PackingRefusal.ITEM_FITS_NO_BOX
    assert refused.value.sku == "anvil"
    assert "weighs" in str(refused.value)


def test_items_too_heavy_together_for_one_box_go_in_two() -> None:
    lines = [(item("kettlebell", 150, 150, 150, weight_g=4_000), 3)]  # 12 kg; M takes 9.75 kg
    plan = choose_boxes(lines, [SMALL, MEDIUM])
    assert plan.box_count == 2
    assert sorted(len(packed.units) for packed in plan.boxes) == [1, 2]
    assert_sound(plan, lines)


def test_the_gross_weight_is_the_items_plus_the_tare() -> None:
    lines = [(item("a", 50, 50, 50, weight_g=300), 2), (item("b", 40, 40, 40, weight_g=120), 1)]
    plan = choose_boxes(lines, CATALOGUE)
    assert plan.boxes[0].contents_weight_g == 720
    assert plan.boxes[0].gross_weight_g == 720 + plan.boxes[0].box.tare_weight_g


# --- several boxes ---------------------------------------------------------------------------


def test_when_no_box_takes_everything_the_fewest_boxes_each_as_small_as_it_can_be() -> None:
    # M takes three of these (95 along its length), S exactly one; L is not in the catalogue.
    lines = [(item("crate", 190, 140, 95, weight_g=500), 4)]
    plan = choose_boxes(lines, [SMALL, MEDIUM])
    assert sorted(codes(plan)) == ["M", "S"]
    assert plan.total_volume_mm3 == MEDIUM.volume_mm3 + SMALL.volume_mm3
    assert_sound(plan, lines)


def test_each_box_lists_the_units_it_holds() -> None:
    lines = [(item("crate", 190, 140, 95, weight_g=500), 4), (item("pen", 140, 10, 10), 2)]
    plan = choose_boxes(lines, [SMALL, MEDIUM])
    held = Counter[str]()
    for packed in plan.boxes:
        held.update(packed.quantities())
    assert held == {"crate": 4, "pen": 2}


# --- refusals and bad input ------------------------------------------------------------------


def test_an_item_too_big_for_every_box_is_refused_by_name() -> None:
    lines = [(item("mug", 80, 80, 90), 1), (item("canoe", 4_000, 700, 350, weight_g=20_000), 1)]
    with pytest.raises(PackingRefused) as refused:
        choose_boxes(lines, CATALOGUE)
    assert refused.value.code == "item_fits_no_box"
    assert refused.value.sku == "canoe"
    assert "canoe" in str(refused.value)


def test_an_empty_catalogue_refuses_every_item() -> None:
    with pytest.raises(PackingRefused) as refused:
        choose_boxes([(item("mug", 80, 80, 90), 1)], [])
    assert refused.value.code is PackingRefusal.ITEM_FITS_NO_BOX


def test_nothing_to_pack_and_bad_quantities() -> None:
    with pytest.raises(NothingToPack):
        choose_boxes([], CATALOGUE)
    with pytest.raises(ValueError):
        choose_boxes([(item("mug", 80, 80, 90), 0)], CATALOGUE)
    with pytest.raises(ValueError):
        choose_boxes([(item("mug", 80, 80, 90), 1), (item("mug", 80, 80, 91), 1)], CATALOGUE)


def test_a_box_must_carry_more_than_its_own_tare() -> None:
    with pytest.raises(ValueError):
        BoxType("bad", Dimensions(10, 10, 10), max_weight_g=100, tare_weight_g=100)
    with pytest.raises(ValueError):
        BoxType("flat", Dimensions(10, 10, 0), max_weight_g=100, tare_weight_g=10)


def test_units_are_numbered_per_sku_across_lines() -> None:
    mug = item("mug", 80, 80, 90)
    units = units_of([(mug, 2), (item("pen", 140, 10, 10), 1), (mug, 1)])
    assert [(unit.sku, unit.number) for unit in units] == [
        ("mug", 1),
        ("mug", 2),
        ("pen", 1),
        ("mug", 3),
    ]


def test_the_same_order_gets_the_same_plan() -> None:
    lines = [(item("crate", 190, 140, 95), 4), (item("pen", 140, 10, 10), 5)]
    assert choose_boxes(lines, CATALOGUE) == choose_boxes(lines, CATALOGUE)


def test_a_placement_that_fails_verification_is_never_returned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def distrust(packed: PackedBox, box_index: int = 0) -> tuple[boxes.PlanFault, ...]:
        return (boxes.PlanFault(FaultKind.OVERLAP, box_index, "distrusted"),)

    monkeypatch.setattr(boxes, "verify_box", distrust)
    with pytest.raises(UnverifiedPlan):
        choose_boxes([(item("mug", 80, 80, 90), 1)], CATALOGUE)


# --- verify ----------------------------------------------------------------------------------

BLOCK = item("block", 50, 40, 30, weight_g=1_000)


def placed(number: int, x: int, y: int, z: int, turn: Orientation = Orientation.LWH) -> Placement:
    return Placement(Unit("block", number, BLOCK), Position(x, y, z), turn)


def one_box(*placements: Placement, box: BoxType = SMALL) -> PackingPlan:
    return PackingPlan((PackedBox(box, placements),))


def kinds(plan: PackingPlan, expected: list[tuple[Item, int]] | None = None) -> list[FaultKind]:
    return [fault.kind for fault in verify(plan, expected)]


def test_verify_accepts_units_that_touch_but_do_not_overlap() -> None:
    plan = one_box(
        placed(1, 0, 0, 0), placed(2, 50, 0, 0), placed(3, 0, 40, 0), placed(4, 0, 0, 30)
    )
    assert verify(plan, [(BLOCK, 4)]) == ()


def test_verify_catches_overlapping_units() -> None:
    assert kinds(one_box(placed(1, 0, 0, 0), placed(2, 49, 39, 29))) == [FaultKind.OVERLAP]
    assert kinds(one_box(placed(1, 0, 0, 0), placed(2, 0, 0, 0))) == [FaultKind.OVERLAP]
    # the second block turned upright pokes into the first
    upright = placed(2, 45, 0, 0, Orientation.HWL)
    assert kinds(one_box(placed(1, 0, 0, 0), upright)) == [FaultKind.OVERLAP]


def test_verify_catches_units_outside_the_box() -> None:
    assert kinds(one_box(placed(1, 151, 0, 0))) == [FaultKind.OUT_OF_BOUNDS]  # 151 + 50 > 200
    assert kinds(one_box(placed(1, 0, 0, -1))) == [FaultKind.OUT_OF_BOUNDS]
    # 50 x 40 x 30 stood on its end is 50 tall: fits the 100 mm height, then not at z = 60
    assert kinds(one_box(placed(1, 0, 0, 50, Orientation.WHL))) == []
    assert kinds(one_box(placed(1, 0, 0, 60, Orientation.WHL))) == [FaultKind.OUT_OF_BOUNDS]


def test_verify_catches_weight_empty_boxes_and_unit_bookkeeping() -> None:
    four_kilos = [placed(n, 50 * (n - 1), 0, 0) for n in range(1, 5)]  # + 150 g tare: 4,150 g
    assert kinds(one_box(*four_kilos)) == []
    assert kinds(one_box(*four_kilos, placed(5, 0, 40, 0))) == [FaultKind.OVER_WEIGHT]
    assert kinds(PackingPlan((PackedBox(SMALL, ()),))) == [FaultKind.EMPTY_BOX]
    twice = PackingPlan(
        (PackedBox(SMALL, (placed(1, 0, 0, 0),)), PackedBox(SMALL, (placed(1, 0, 0, 0),)))
    )
    assert kinds(twice) == [FaultKind.UNIT_REPEATED]
    assert kinds(one_box(placed(1, 0, 0, 0)), [(BLOCK, 2)]) == [FaultKind.UNIT_MISSING]
    assert kinds(one_box(placed(1, 0, 0, 0), placed(2, 50, 0, 0)), [(BLOCK, 1)]) == [
        FaultKind.UNIT_UNEXPECTED
    ]


# --- property: random orders -----------------------------------------------------------------

RANDOM_CATALOGUE = (
    BoxType("XS", Dimensions(150, 100, 60), 2_000, 80),
    SMALL,
    BoxType("S2", Dimensions(250, 120, 100), 6_000, 160, cost=Decimal("0.50")),
    MEDIUM,
    LARGE,
)


def random_lines(rng: random.Random) -> list[tuple[Item, int]]:
    """One to four SKUs of one to four units; now and then one longer than any box."""
    lines = []
    for index in range(rng.randint(1, 4)):
        longest = rng.randint(410, 500) if rng.random() < 0.03 else rng.randint(5, 170)
        sides = [longest, rng.randint(5, 120), rng.randint(2, 90)]
        rng.shuffle(sides)
        weight_g = rng.randint(1, 3_000)
        lines.append((item(f"sku{index}", *sides, weight_g=weight_g), rng.randint(1, 4)))
    return lines


@pytest.mark.parametrize("seed", range(6))
def test_every_plan_for_random_orders_is_sound_and_minimal(seed: int) -> None:
    rng = random.Random(seed)
    ranked = sorted(RANDOM_CATALOGUE, key=box_rank)
    for _ in range(30):
        lines = random_lines(rng)
        try:
            plan = choose_boxes(lines, RANDOM_CATALOGUE)
        except PackingRefused as refused:
            # only when the refused item truly fits no box on its own
            (refused_item,) = {i for i, _ in lines if i.sku == refused.sku}
            assert not any(boxes.fits_alone(refused_item, box) for box in RANDOM_CATALOGUE)
            continue
        assert_sound(plan, lines)
        units = units_of(lines)
        if plan.box_count == 1:
            chosen = plan.boxes[0].box
            for smaller in ranked[: ranked.index(chosen)]:
                assert pack_into(smaller, units) is None, f"{smaller.code} would have done"
        else:
            for box in RANDOM_CATALOGUE:
                assert pack_into(box, units) is None, f"{box.code} takes everything"
            for packed in plan.boxes:
                for smaller in ranked[: ranked.index(packed.box)]:
                    assert pack_into(smaller, packed.units) is None


def test_verify_finds_exactly_the_overlaps_a_pairwise_comparison_finds() -> None:
    rng = random.Random(7)
    for _ in range(40):
        placements = tuple(
            placed(
                number,
                rng.randint(0, 150),
                rng.randint(0, 110),
                rng.randint(0, 70),
                rng.choice(list(Orientation)),
            )
            for number in range(1, rng.randint(2, 12))
        )
        pairwise = 0
        for i, a in enumerate(placements):
            for b in placements[i + 1 :]:
                a_far, b_far = a.far_corner, b.far_corner
                if (
                    a.position.x_mm < b_far.x_mm
                    and b.position.x_mm < a_far.x_mm
                    and a.position.y_mm < b_far.y_mm
                    and b.position.y_mm < a_far.y_mm
                    and a.position.z_mm < b_far.z_mm
                    and b.position.z_mm < a_far.z_mm
                ):
                    pairwise += 1
        found = kinds(one_box(*placements, box=LARGE)).count(FaultKind.OVERLAP)
        assert found == pairwise
