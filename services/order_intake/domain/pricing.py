"""Order totals, computed one way in one place: lines, discount, shipping, tax, total.

    subtotal = sum(quantity * unit_price)
    discount = promo code applied to the subtotal (never more than the subtotal)
    shipping = by shipping method; standard shipping is free from FREE_SHIPPING_FROM
    tax      = (subtotal - discount + shipping) * the destination country's rate
    total    = subtotal - discount + shipping + tax

Every amount is rounded to the currency's minor unit (half up). Prices are tax-exclusive. The
shipping fees, free-shipping threshold, promo codes and tax rates are the built-in defaults of a
small seller; a real rate/tax engine plugs in here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from shared.money import round_money

SHIPPING_FEES: dict[str, Decimal] = {
    "standard": Decimal("4.95"),
    "express": Decimal("9.95"),
    "pickup": Decimal("0"),
}
FREE_SHIPPING_FROM = Decimal("50")

# promo code -> (kind, value): "percent" of the subtotal, or a "fixed" amount off.
PROMO_CODES: dict[str, tuple[str, Decimal]] = {
    "WELCOME10": ("percent", Decimal("10")),
    "FLAT5": ("fixed", Decimal("5")),
}

TAX_RATES: dict[str, Decimal] = {
    "AT": Decimal("0.20"),
    "BE": Decimal("0.21"),
    "DE": Decimal("0.19"),
    "ES": Decimal("0.21"),
    "FR": Decimal("0.20"),
    "GB": Decimal("0.20"),
    "IE": Decimal("0.23"),
    "IT": Decimal("0.22"),
    "NL": Decimal("0.21"),
    "PL": Decimal("0.23"),
    "SE": Decimal("0.25"),
}


class PricingError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PricedLine:
    sku: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class Totals:
    currency: str
    subtotal: Decimal
    discount: Decimal
    shipping: Decimal
    tax: Decimal
    total: Decimal

    def as_dict(self) -> dict[str, str]:
        return {
            "currency": self.currency,
            "subtotal": str(self.subtotal),
            "discount": str(self.discount),
            "shipping": str(self.shipping),
            "tax": str(self.tax),
            "total": str(self.total),
        }


MAX_AMOUNT = Decimal(10) ** 12
"""The largest line total, shipping, tax or order total accepted (money columns are
numeric(18, 4), and Decimal's context would fail on far larger values)."""


def line_total(
    quantity: int, unit_price: Decimal, currency: str, what: str = "line total"
) -> Decimal:
    return round_money(_bounded(unit_price * quantity, what), currency)


def _bounded(amount: Decimal, what: str) -> Decimal:
    if not amount.is_finite() or abs(amount) > MAX_AMOUNT:
        raise PricingError("amount_too_large", f"{what} must be at most {MAX_AMOUNT:f}")
    return amount


def compute_totals(
    lines: Sequence[PricedLine],
    *,
    currency: str,
    country: str,
    shipping_method: str = "standard",
    promo_code: str | None = None,
    shipping_override: Decimal | None = None,
    tax_override: Decimal | None = None,
) -> Totals:
    """Totals of an order. Channels that priced shipping and tax themselves pass the overrides."""
    subtotal = round_money(
        _bounded(
            sum(
                (
                    line_total(
                        li.quantity, li.unit_price, currency, f"lines.{i}: quantity x unit_price"
                    )
                    for i, li in enumerate(lines)
                ),
                Decimal(0),
            ),
            "subtotal",
        ),
        currency,
    )
    discount = _discount(subtotal, promo_code, currency)
    if shipping_override is not None:
        shipping = round_money(_bounded(shipping_override, "shipping"), currency)
    else:
        if shipping_method not in SHIPPING_FEES:
            raise PricingError(
                "unknown_shipping_method",
                f"shipping_method must be one of {', '.join(sorted(SHIPPING_FEES))}",
            )
        shipping = SHIPPING_FEES[shipping_method]
        if shipping_method == "standard" and subtotal - discount >= FREE_SHIPPING_FROM:
            shipping = Decimal(0)
        shipping = round_money(shipping, currency)
    if tax_override is not None:
        tax = round_money(_bounded(tax_override, "tax"), currency)
    else:
        rate = TAX_RATES.get(country.upper(), Decimal(0))
        tax = round_money((subtotal - discount + shipping) * rate, currency)
    total = _bounded(subtotal - discount + shipping + tax, "total")
    return Totals(currency, subtotal, discount, shipping, tax, round_money(total, currency))


def _discount(subtotal: Decimal, promo_code: str | None, currency: str) -> Decimal:
    if not promo_code:
        return round_money(Decimal(0), currency)
    promo = PROMO_CODES.get(promo_code.upper())
    if promo is None:
        raise PricingError("unknown_promo_code", f"promo code {promo_code!r} is not valid")
    kind, value = promo
    amount = subtotal * value / 100 if kind == "percent" else value
    return round_money(min(amount, subtotal), currency)
