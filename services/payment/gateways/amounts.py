"""Money in the provider's minor units, from the OMS's decimal major units (no I/O).

Stripe wants integers in the currency's smallest unit: cents for USD (12.34 -> 1234), whole yen
for the zero-decimal currencies (JPY 1234 -> 1234), and for the three-decimal currencies
(BHD, JOD, KWD, OMR, TND) thousandths whose last digit is 0 (12.345 is refused: Stripe charges
those in steps of 0.010). ISK is zero-decimal for the customer but sent with two decimals that
must be 00. An amount with more precision than the currency has is refused, never rounded:
rounding would capture or refund a different sum than the order says.
"""

from __future__ import annotations

from decimal import Decimal

# Stripe's zero-decimal currencies (docs: "Supported currencies", minor units).
ZERO_DECIMAL = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
# Sent with two decimals, but only whole units may be charged.
WHOLE_UNITS_IN_TWO_DECIMALS = frozenset({"ISK"})


class AmountNotRepresentable(ValueError):
    """The amount has more precision than the currency can be charged in."""

    def __init__(self, amount: Decimal, currency: str) -> None:
        super().__init__(f"{amount} {currency} cannot be charged in {currency}'s minor units")
        self.amount = amount
        self.currency = currency


def exponent(currency: str) -> int:
    """How many decimals the provider's amounts of `currency` carry."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def to_minor_units(amount: Decimal, currency: str) -> int:
    """`amount` (major units) as the provider's integer; AmountNotRepresentable if it is not."""
    code = currency.upper()
    scaled = amount.scaleb(exponent(code))
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        raise AmountNotRepresentable(amount, code)
    minor = int(scaled)
    if code in THREE_DECIMAL and minor % 10 != 0:
        raise AmountNotRepresentable(amount, code)
    if code in WHOLE_UNITS_IN_TWO_DECIMALS and minor % 100 != 0:
        raise AmountNotRepresentable(amount, code)
    return minor


def from_minor_units(minor: int, currency: str) -> Decimal:
    """The provider's integer amount as a decimal in major units."""
    return Decimal(minor).scaleb(-exponent(currency))
