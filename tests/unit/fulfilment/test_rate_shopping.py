"""Rate shopping: cheapest rate keeping the shipping method and/or the promised date."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.fulfilment.carriers.base import Rate
from services.fulfilment.carriers.rate_shopping import (
    NoRateMeetsPromise,
    Promise,
    RateShoppingRefusal,
    ShippingMethod,
    add_business_days,
    choose_rate,
    service_class,
)

FRIDAY = date(2026, 3, 6)
MONDAY = date(2026, 3, 9)


def rate(carrier: str, service: str, amount: str, days: int | None) -> Rate:
    return Rate(carrier, service, Decimal(amount), "EUR", days, f"{carrier}/{service}")


ECONOMY = rate("table_rate", "economy", "4.72", 5)
STANDARD = rate("table_rate", "standard", "5.90", 3)
EXPRESS = rate("table_rate", "express", "12.98", 1)
UPS_GROUND = rate("ups", "Ground", "5.50", 3)
DHL_NEXT_DAY = rate("dhl", "Next Day", "11.00", 1)
RATES = [ECONOMY, STANDARD, EXPRESS, UPS_GROUND, DHL_NEXT_DAY]


@pytest.mark.parametrize(
    ("method", "chosen"),
    [
        (None, ECONOMY),
        (ShippingMethod.ECONOMY, ECONOMY),
        (ShippingMethod.STANDARD, UPS_GROUND),  # 3 days: standard by its days
        (ShippingMethod.EXPRESS, DHL_NEXT_DAY),
    ],
)
def test_cheapest_rate_meeting_the_method(method: ShippingMethod | None, chosen: Rate) -> None:
    assert choose_rate(RATES, Promise(method=method)) == chosen


def test_a_faster_service_meets_a_slower_method_when_cheaper() -> None:
    cheap_express = rate("budget", "express", "3.00", 1)
    assert choose_rate([ECONOMY, STANDARD, cheap_express], Promise(ShippingMethod.ECONOMY)) == (
        cheap_express
    )


def test_service_class() -> None:
    assert service_class(EXPRESS) is ShippingMethod.EXPRESS
    assert service_class(rate("x", " Standard ", "1", 9)) is ShippingMethod.STANDARD  # by name
    assert service_class(DHL_NEXT_DAY) is ShippingMethod.EXPRESS
    assert service_class(UPS_GROUND) is ShippingMethod.STANDARD
    assert service_class(rate("x", "Parcel", "1", 4)) is ShippingMethod.ECONOMY
    assert service_class(rate("x", "Parcel", "1", None)) is ShippingMethod.ECONOMY
    classes = {"ups/ground": ShippingMethod.ECONOMY, "parcel": ShippingMethod.EXPRESS}
    assert service_class(UPS_GROUND, classes) is ShippingMethod.ECONOMY
    assert service_class(rate("x", "Parcel", "1", 4), classes) is ShippingMethod.EXPRESS


def test_add_business_days_skips_weekends_and_holidays() -> None:
    assert add_business_days(FRIDAY, 0) == FRIDAY
    assert add_business_days(FRIDAY, 1) == MONDAY
    assert add_business_days(FRIDAY, 3) == date(2026, 3, 11)
    assert add_business_days(date(2026, 3, 7), 1) == MONDAY  # shipped on a Saturday
    assert add_business_days(MONDAY, 5) == date(2026, 3, 16)
    assert add_business_days(FRIDAY, 1, holidays={MONDAY}) == date(2026, 3, 10)
    with pytest.raises(ValueError):
        add_business_days(FRIDAY, -1)


def test_promised_date_in_business_days_from_the_ship_date() -> None:
    # Shipped Friday, due Wednesday: 3 business days (Mon, Tue, Wed) are enough.
    due = date(2026, 3, 11)
    assert choose_rate(RATES, Promise(deliver_by=due), ship_date=FRIDAY) == UPS_GROUND
    # Due Monday: only 1-day services.
    assert choose_rate(RATES, Promise(deliver_by=MONDAY), ship_date=FRIDAY) == DHL_NEXT_DAY
    # Monday a holiday: nothing arrives by Monday.
    with pytest.raises(NoRateMeetsPromise):
        choose_rate(RATES, Promise(deliver_by=MONDAY), ship_date=FRIDAY, holidays={MONDAY})


def test_method_and_date_together() -> None:
    promise = Promise(ShippingMethod.EXPRESS, deliver_by=date(2026, 3, 20))
    assert choose_rate(RATES, promise, ship_date=FRIDAY) == DHL_NEXT_DAY


def test_rates_without_days_never_meet_a_date() -> None:
    unknown = rate("post", "letter", "1.00", None)
    promise = Promise(deliver_by=date(2027, 1, 1))
    assert choose_rate([unknown, STANDARD], promise, ship_date=FRIDAY) == STANDARD
    assert choose_rate([unknown, STANDARD], Promise()) == unknown


def test_ties_go_to_fewer_days_then_carrier_name() -> None:
    slow = rate("zeta", "standard", "5.00", 3)
    fast = rate("zeta", "express", "5.00", 2)
    named_a = rate("alpha", "express", "5.00", 2)
    assert choose_rate([slow, fast], Promise()) == fast
    assert choose_rate([slow, fast, named_a], Promise()) == named_a
    assert choose_rate([named_a, fast, slow], Promise()) == named_a  # order does not matter


def test_no_rate_meets_the_promise_names_the_fastest() -> None:
    ship_date = FRIDAY
    with pytest.raises(NoRateMeetsPromise) as refused:
        choose_rate([ECONOMY, STANDARD], Promise(ShippingMethod.EXPRESS), ship_date=ship_date)
    assert (
        refused.value.code == RateShoppingRefusal.NO_RATE_MEETS_PROMISE == "no_rate_meets_promise"
    )
    assert refused.value.alternative == STANDARD
    assert "table_rate standard (3 business days, 5.90 EUR)" in str(refused.value)


def test_the_alternative_is_the_cheapest_of_the_fastest() -> None:
    pricey = rate("dhl", "express", "20.00", 1)
    with pytest.raises(NoRateMeetsPromise) as refused:
        choose_rate([*RATES, pricey], Promise(deliver_by=FRIDAY), ship_date=FRIDAY)
    assert refused.value.alternative == DHL_NEXT_DAY


def test_no_rates_at_all() -> None:
    with pytest.raises(NoRateMeetsPromise) as refused:
        choose_rate([], Promise())
    assert refused.value.code == RateShoppingRefusal.NO_RATES
    assert refused.value.alternative is None


def test_refuses_mixed_currencies_and_a_date_without_ship_date() -> None:
    dollars = Rate("ups", "Ground", Decimal("5"), "USD", 3, "u")
    with pytest.raises(ValueError):
        choose_rate([STANDARD, dollars], Promise())
    with pytest.raises(ValueError):
        choose_rate(RATES, Promise(deliver_by=MONDAY))
