"""Rounding to a currency's minor unit, and splitting an amount without losing a cent."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

# ISO 4217 currencies whose minor unit is not 1/100.
_MINOR_DIGITS: dict[str, int] = {
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
}

ZERO = Decimal(0)


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-_MINOR_DIGITS.get(currency.upper(), 2))


def round_money(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def split(amount: Decimal, weights: Sequence[Decimal], currency: str) -> list[Decimal]:
    """`amount` shared out in proportion to `weights`, in whole minor units that add up to it
    exactly (largest remainder first; ties go to the earlier weight)."""
    if not weights:
        return []
    step = quantum(currency)
    total_weight = sum(weights, ZERO)
    if total_weight <= 0:
        shares = [ZERO] * len(weights)
        shares[-1] = amount
        return shares
    exact = [amount * w / total_weight for w in weights]
    floors = [e.quantize(step, rounding=ROUND_DOWN) for e in exact]
    left = int(((amount - sum(floors, ZERO)) / step).to_integral_value())
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in by_remainder[:left]:
        floors[i] += step
    return floors
