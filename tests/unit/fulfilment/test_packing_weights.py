"""Parcel weight: items plus tare, and the scale's reading checked against it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.fulfilment.packing.weights import (
    HoldReason,
    WeightCheck,
    WeightTolerance,
    WeightVerdict,
    check_parcel_weight,
    parcel_weight_g,
)
from services.fulfilment.warehouse.model import Dimensions, Item

MUG = Item("mug", "400001", Dimensions(120, 100, 90), 350)
PEN = Item("pen", "400002", Dimensions(140, 10, 10), 12)


def test_parcel_weight_is_the_items_plus_the_box_tare() -> None:
    assert parcel_weight_g([(MUG, 2), (PEN, 3)], tare_weight_g=180) == 2 * 350 + 3 * 12 + 180
    assert parcel_weight_g([], tare_weight_g=180) == 180


def test_parcel_weight_rejects_negative_numbers() -> None:
    with pytest.raises(ValueError):
        parcel_weight_g([(MUG, -1)], tare_weight_g=180)
    with pytest.raises(ValueError):
        parcel_weight_g([(MUG, 1)], tare_weight_g=-1)


def test_a_reading_within_the_absolute_tolerance_is_accepted_up_to_the_bound() -> None:
    tolerance = WeightTolerance(absolute_g=20)
    assert check_parcel_weight(1_000, 1_020, tolerance).verdict is WeightVerdict.ACCEPT
    assert check_parcel_weight(1_000, 980, tolerance).verdict is WeightVerdict.ACCEPT
    assert check_parcel_weight(1_000, 1_021, tolerance).verdict is WeightVerdict.HOLD
    assert check_parcel_weight(1_000, 979, tolerance).verdict is WeightVerdict.HOLD


def test_the_larger_of_absolute_and_percent_applies() -> None:
    tolerance = WeightTolerance(absolute_g=20, percent=Decimal("2.5"))
    assert tolerance.allowed_g(400) == 20  # 2.5 % is 10 g
    assert tolerance.allowed_g(4_000) == 100  # 2.5 % is 100 g
    assert tolerance.allowed_g(4_039) == 100  # 100.975 g, rounded down
    assert check_parcel_weight(4_000, 4_100, tolerance).verdict is WeightVerdict.ACCEPT
    assert check_parcel_weight(4_000, 4_101, tolerance).verdict is WeightVerdict.HOLD


def test_a_mismatch_holds_the_parcel_with_the_reason_and_the_numbers() -> None:
    check = check_parcel_weight(1_500, 1_150, WeightTolerance(absolute_g=30, percent=Decimal(1)))
    assert check == WeightCheck(
        verdict=WeightVerdict.HOLD,
        expected_g=1_500,
        measured_g=1_150,
        tolerance_g=30,
        reason=HoldReason.WEIGHT_MISMATCH,
    )
    assert check.held
    assert check.reason == "weight_mismatch"
    assert check.difference_g == -350


def test_an_accepted_reading_has_no_reason() -> None:
    check = check_parcel_weight(1_500, 1_510, WeightTolerance(absolute_g=30))
    assert not check.held
    assert check.reason is None
    assert check.tolerance_g == 30


def test_no_tolerance_means_exactly_the_expected_weight() -> None:
    assert check_parcel_weight(800, 800, WeightTolerance()).verdict is WeightVerdict.ACCEPT
    assert check_parcel_weight(800, 801, WeightTolerance()).verdict is WeightVerdict.HOLD


def test_negative_tolerances_and_weights_are_rejected() -> None:
    with pytest.raises(ValueError):
        WeightTolerance(absolute_g=-1)
    with pytest.raises(ValueError):
        WeightTolerance(percent=Decimal("-0.1"))
    with pytest.raises(ValueError):
        check_parcel_weight(100, -5, WeightTolerance())
    with pytest.raises(ValueError):
        check_parcel_weight(-100, 5, WeightTolerance())
