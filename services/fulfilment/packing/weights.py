"""Parcel weights, free of I/O: what a packed parcel should weigh (its items plus the box's tare)
and the check of the weight the pack station's scale measured against it.

A measured weight within the tolerance is accepted; outside it the parcel is put on hold with the
stable reason `weight_mismatch`, the expected and measured weights and the tolerance that applied,
so a person can look for a missing, extra or wrong item before the parcel leaves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from services.fulfilment.warehouse.model import Item


def parcel_weight_g(lines: Iterable[tuple[Item, int]], tare_weight_g: int) -> int:
    """The weight of a parcel holding `quantity` units of each item, box included."""
    if tare_weight_g < 0:
        raise ValueError(f"a box's tare weight cannot be negative ({tare_weight_g} g)")
    total = tare_weight_g
    for item, quantity in lines:
        if quantity < 0:
            raise ValueError(f"{item.sku} has quantity {quantity}")
        total += item.weight_g * quantity
    return total


@dataclass(frozen=True)
class WeightTolerance:
    """How far a measured weight may stray from the expected one: the larger of `absolute_g` and
    `percent` of the expected weight (rounded down to whole grams)."""

    absolute_g: int = 0
    percent: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if self.absolute_g < 0:
            raise ValueError(f"the absolute tolerance cannot be negative ({self.absolute_g} g)")
        if self.percent < 0:
            raise ValueError(f"the percent tolerance cannot be negative ({self.percent} %)")

    def allowed_g(self, expected_g: int) -> int:
        by_percent = (Decimal(expected_g) * self.percent / 100).to_integral_value(ROUND_FLOOR)
        return max(self.absolute_g, int(by_percent))


class WeightVerdict(StrEnum):
    ACCEPT = "accept"
    HOLD = "hold"


class HoldReason(StrEnum):
    """Stable codes for why a parcel is held at the pack station."""

    WEIGHT_MISMATCH = "weight_mismatch"


@dataclass(frozen=True)
class WeightCheck:
    """The outcome of weighing one parcel; `reason` is set exactly when the verdict is hold."""

    verdict: WeightVerdict
    expected_g: int
    measured_g: int
    tolerance_g: int
    reason: HoldReason | None = None

    @property
    def difference_g(self) -> int:
        """Measured minus expected: positive when the parcel is heavier than it should be."""
        return self.measured_g - self.expected_g

    @property
    def held(self) -> bool:
        return self.verdict is WeightVerdict.HOLD


def check_parcel_weight(
    expected_g: int, measured_g: int, tolerance: WeightTolerance
) -> WeightCheck:
    """Compares the scale's reading with the expected weight; the bounds themselves are accepted."""
    if expected_g < 0:
        raise ValueError(f"an expected weight cannot be negative ({expected_g} g)")
    if measured_g < 0:
        raise ValueError(f"a measured weight cannot be negative ({measured_g} g)")
    allowed = tolerance.allowed_g(expected_g)
    if abs(measured_g - expected_g) <= allowed:
        return WeightCheck(WeightVerdict.ACCEPT, expected_g, measured_g, allowed)
    return WeightCheck(
        WeightVerdict.HOLD, expected_g, measured_g, allowed, reason=HoldReason.WEIGHT_MISMATCH
    )
