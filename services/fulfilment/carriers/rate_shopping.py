"""Rate shopping (pure): the cheapest rate that keeps the order's promise, a shipping method
(`economy` < `standard` < `express`; a faster service meets a slower method) and/or a delivery
date, counted in business days from the ship date (weekends and given holidays skipped).

Ties on price go to fewer delivery days, then carrier name, service, rate id. When nothing keeps
the promise the refusal is `no_rate_meets_promise`, naming the fastest rate (cheapest among the
fastest) as the alternative; no rates at all is `no_rates`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from services.fulfilment.carriers.base import Rate


class ShippingMethod(StrEnum):
    ECONOMY = "economy"
    STANDARD = "standard"
    EXPRESS = "express"


_RANK: dict[ShippingMethod, int] = {
    ShippingMethod.ECONOMY: 0,
    ShippingMethod.STANDARD: 1,
    ShippingMethod.EXPRESS: 2,
}

_METHODS = frozenset(method.value for method in ShippingMethod)

# The class of a rate whose service is not named after a method (nor in `classes`): by the
# business days it promises; no promise at all is economy.
EXPRESS_MAX_DAYS = 1
STANDARD_MAX_DAYS = 3


class RateShoppingRefusal(StrEnum):
    NO_RATES = "no_rates"
    NO_RATE_MEETS_PROMISE = "no_rate_meets_promise"


@dataclass(frozen=True)
class Promise:
    """What the order was promised; nothing set: any rate will do."""

    method: ShippingMethod | None = None
    deliver_by: date | None = None


class NoRateMeetsPromise(Exception):
    """`code` is stable; `alternative` is the fastest rate there is (None without rates)."""

    def __init__(self, code: RateShoppingRefusal, message: str, alternative: Rate | None) -> None:
        super().__init__(message)
        self.code = code
        self.alternative = alternative


def add_business_days(start: date, days: int, holidays: Collection[date] = ()) -> date:
    """The date `days` business days after `start` (Monday to Friday, not a holiday)."""
    if days < 0:
        raise ValueError(f"business days are >= 0, not {days}")
    current = start
    for _ in range(days):
        current += timedelta(days=1)
        while current.weekday() >= 5 or current in holidays:
            current += timedelta(days=1)
    return current


def service_class(
    rate: Rate, classes: Mapping[str, ShippingMethod] | None = None
) -> ShippingMethod:
    """The method a rate provides: `classes["carrier/service"]` or `classes["service"]` when
    given, else the service's own name when it is a method, else by its delivery days."""
    classes = classes or {}
    service = rate.service.strip().lower()
    for key in (f"{rate.carrier}/{service}", service):
        if key in classes:
            return classes[key]
    if service in _METHODS:
        return ShippingMethod(service)
    if rate.delivery_days is not None and rate.delivery_days <= EXPRESS_MAX_DAYS:
        return ShippingMethod.EXPRESS
    if rate.delivery_days is not None and rate.delivery_days <= STANDARD_MAX_DAYS:
        return ShippingMethod.STANDARD
    return ShippingMethod.ECONOMY


def delivery_date(rate: Rate, ship_date: date, holidays: Collection[date] = ()) -> date | None:
    """When the rate delivers if shipped on `ship_date`; None when the carrier does not say."""
    if rate.delivery_days is None:
        return None
    return add_business_days(ship_date, rate.delivery_days, holidays)


def meets(
    rate: Rate,
    promise: Promise,
    *,
    ship_date: date | None = None,
    classes: Mapping[str, ShippingMethod] | None = None,
    holidays: Collection[date] = (),
) -> bool:
    if promise.method is not None and (_RANK[service_class(rate, classes)] < _RANK[promise.method]):
        return False
    if promise.deliver_by is not None:
        if ship_date is None:
            raise ValueError("a promised delivery date needs the ship date")
        arrives = delivery_date(rate, ship_date, holidays)
        if arrives is None or arrives > promise.deliver_by:
            return False
    return True


def choose_rate(
    rates: Sequence[Rate],
    promise: Promise,
    *,
    ship_date: date | None = None,
    classes: Mapping[str, ShippingMethod] | None = None,
    holidays: Collection[date] = (),
) -> Rate:
    """The cheapest rate meeting `promise`; NoRateMeetsPromise when none does. All rates must
    be in one currency (convert first)."""
    currencies = {rate.currency for rate in rates}
    if len(currencies) > 1:
        raise ValueError(f"rates in several currencies cannot be compared: {sorted(currencies)}")
    if not rates:
        raise NoRateMeetsPromise(RateShoppingRefusal.NO_RATES, "no carrier offers a rate", None)
    fitting = [
        rate
        for rate in rates
        if meets(rate, promise, ship_date=ship_date, classes=classes, holidays=holidays)
    ]
    if fitting:
        return min(fitting, key=_cheapest)
    fastest = min(rates, key=_fastest)
    raise NoRateMeetsPromise(
        RateShoppingRefusal.NO_RATE_MEETS_PROMISE,
        f"no rate meets {_describe(promise)}; the fastest is {_describe_rate(fastest)}",
        fastest,
    )


def _days(rate: Rate) -> float:
    return math.inf if rate.delivery_days is None else rate.delivery_days


def _cheapest(rate: Rate) -> tuple[Decimal, float, str, str, str]:
    return (rate.amount, _days(rate), rate.carrier, rate.service, rate.rate_id)


def _fastest(rate: Rate) -> tuple[float, Decimal, str, str, str]:
    return (_days(rate), rate.amount, rate.carrier, rate.service, rate.rate_id)


def _describe(promise: Promise) -> str:
    parts = []
    if promise.method is not None:
        parts.append(f"{promise.method.value} shipping")
    if promise.deliver_by is not None:
        parts.append(f"delivery by {promise.deliver_by.isoformat()}")
    return " and ".join(parts)


def _describe_rate(rate: Rate) -> str:
    days = "unknown days" if rate.delivery_days is None else f"{rate.delivery_days} business days"
    return f"{rate.carrier} {rate.service} ({days}, {rate.amount} {rate.currency})"
