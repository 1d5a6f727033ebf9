from __future__ import annotations

from decimal import Decimal

import pytest

from services.order_intake.domain.pricing import PricedLine, PricingError, compute_totals
from shared.money import fits_currency, is_currency, round_money

D = Decimal


def test_totals_for_a_german_order_with_standard_shipping():
    totals = compute_totals(
        [PricedLine("A", 2, D("9.99")), PricedLine("B", 1, D("5.00"))], currency="EUR", country="DE"
    )
    assert totals.subtotal == D("24.98")
    assert totals.shipping == D("4.95")
    assert totals.discount == D("0.00")
    assert totals.tax == D("5.69")  # 19% of 29.93, half up
    assert totals.total == D("35.62")
    assert totals.total == totals.subtotal - totals.discount + totals.shipping + totals.tax


def test_free_standard_shipping_from_the_threshold_after_discount():
    lines = [PricedLine("A", 1, D("55.00"))]
    assert compute_totals(lines, currency="USD", country="US").shipping == D("0.00")
    discounted = compute_totals(lines, currency="USD", country="US", promo_code="WELCOME10")
    assert discounted.discount == D("5.50")
    assert discounted.shipping == D("4.95"), "49.50 after discount is below the threshold"


def test_fixed_discount_never_exceeds_the_subtotal():
    totals = compute_totals(
        [PricedLine("A", 1, D("3.00"))], currency="EUR", country="US", promo_code="flat5"
    )
    assert totals.discount == D("3.00")
    assert totals.total == D("4.95")


def test_zero_decimal_currency_rounds_to_whole_units():
    totals = compute_totals(
        [PricedLine("A", 3, D("333"))], currency="JPY", country="JP", shipping_method="express"
    )
    assert totals.subtotal == D("999")
    assert totals.shipping == D("10")
    assert totals.total == D("1009")


def test_channel_priced_shipping_and_tax_pass_through():
    totals = compute_totals(
        [PricedLine("A", 1, D("10"))],
        currency="GBP",
        country="GB",
        shipping_override=D("2.5"),
        tax_override=D("2.50"),
    )
    assert (totals.shipping, totals.tax, totals.total) == (D("2.50"), D("2.50"), D("15.00"))


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"promo_code": "NOPE"}, "unknown_promo_code"),
        ({"shipping_method": "teleport"}, "unknown_shipping_method"),
    ],
)
def test_unknown_codes_are_refused(kwargs, code):
    with pytest.raises(PricingError) as error:
        compute_totals([PricedLine("A", 1, D("1"))], currency="EUR", country="DE", **kwargs)
    assert error.value.code == code


def test_currency_rules():
    assert is_currency("EUR") and not is_currency("EURO") and not is_currency("XXX")
    assert fits_currency(D("1.99"), "EUR") and not fits_currency(D("1.999"), "EUR")
    assert fits_currency(D("1.999"), "KWD") and not fits_currency(D("1.5"), "JPY")
    assert fits_currency(D("1.50"), "EUR")
    assert round_money(D("0.125"), "EUR") == D("0.13")
