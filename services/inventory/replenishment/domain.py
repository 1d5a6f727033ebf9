"""Replenishment decisions as plain Python: sales velocity, reorder points, days of cover, the
low-stock crossing (with its recovery margin) and the suggested order quantity.

Velocity is units shipped per day at a location. The 7 and 30 day figures are both shown; the
one that plans (reorder points, suggestions) is the higher of the two, so a SKU that started
selling faster is covered at once and one that slowed down keeps its cover until the month
shows it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

SHORT_WINDOW_DAYS = 7
LONG_WINDOW_DAYS = 30


@dataclass(frozen=True)
class Velocity:
    """Units shipped from a location in the last 7 and 30 days."""

    shipped_7d: int = 0
    shipped_30d: int = 0

    @property
    def per_day_7d(self) -> Fraction:
        return Fraction(self.shipped_7d, SHORT_WINDOW_DAYS)

    @property
    def per_day_30d(self) -> Fraction:
        return Fraction(self.shipped_30d, LONG_WINDOW_DAYS)

    @property
    def per_day(self) -> Fraction:
        """The velocity that plans: the higher of the two windows."""
        return max(self.per_day_7d, self.per_day_30d)


NO_SALES = Velocity()


@dataclass(frozen=True)
class ReorderRule:
    """How a SKU is replenished at a location. `reorder_point` None: derived from velocity."""

    lead_time_days: int
    cover_days: int
    safety_units: int = 0
    reorder_point: int | None = None


class PointSource(StrEnum):
    EXPLICIT = "explicit"
    VELOCITY = "velocity"


def reorder_point(rule: ReorderRule, velocity: Velocity) -> int:
    """The explicit point, else what sells during the lead time plus the safety units."""
    if rule.reorder_point is not None:
        return rule.reorder_point
    return math.ceil(velocity.per_day * rule.lead_time_days) + rule.safety_units


def point_source(rule: ReorderRule) -> PointSource:
    return PointSource.VELOCITY if rule.reorder_point is None else PointSource.EXPLICIT


def days_of_cover(available: int, velocity: Velocity) -> float | None:
    """How many days the available stock lasts at the planning velocity (None: nothing sells)."""
    if velocity.per_day == 0:
        return None
    return round(float(max(0, available) / velocity.per_day), 1)


def suggested_quantity(
    rule: ReorderRule,
    velocity: Velocity,
    *,
    available: int,
    incoming: int,
    backordered: int,
) -> int:
    """What to order so the stock covers the lead time and then `cover_days` (plus the safety
    units and the orders waiting for stock), and in any case ends above the reorder point;
    less what is available and already on its way. Never below 0."""
    horizon = rule.lead_time_days + rule.cover_days
    cover = math.ceil(velocity.per_day * horizon) + rule.safety_units
    target = max(cover, reorder_point(rule, velocity) + 1)
    return max(0, target + backordered - available - incoming)


# --- the low-stock crossing -------------------------------------------------------------------


class Crossing(StrEnum):
    LOW = "low"  # fell to or below the reorder point: LowStock
    RECOVERED = "recovered"  # back above the point plus the margin: StockRecovered


def recovery_margin(point: int, margin_percent: int) -> int:
    """Units above the reorder point the stock must reach before it counts as recovered: a
    percentage of the point, at least 1 when the point is above 0, so one unit released and
    reserved again does not alert twice."""
    if point <= 0:
        return 0
    return max(1, math.ceil(point * margin_percent / 100))


def crossing(*, is_low: bool, available: int, point: int, margin_percent: int) -> Crossing | None:
    """Whether this stock level changes the low-stock state of a SKU at a location: LOW once
    when it reaches the point, RECOVERED once when it is back above the point plus the margin,
    None in between and while nothing changes."""
    if not is_low:
        return Crossing.LOW if available <= point else None
    if available > point + recovery_margin(point, margin_percent):
        return Crossing.RECOVERED
    return None


# --- channels ---------------------------------------------------------------------------------


def effective_safety_stock(
    defaults: Mapping[str, int], overrides: Mapping[str, int]
) -> dict[str, int]:
    """Each configured channel's safety stock for one SKU: its override, else the default. An
    override of a channel no longer configured is ignored."""
    return {channel: overrides.get(channel, units) for channel, units in defaults.items()}


# --- suggestions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StockPosition:
    """What the suggestions know of a SKU at a location."""

    sku: str
    location: str
    on_hand: int
    reserved: int
    incoming: int
    backordered: int
    velocity: Velocity
    rule: ReorderRule
    configured: bool
    low: bool

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class Suggestion:
    position: StockPosition
    reorder_point: int
    point_source: PointSource
    days_of_cover: float | None
    quantity: int


def suggest(position: StockPosition) -> Suggestion:
    return Suggestion(
        position=position,
        reorder_point=reorder_point(position.rule, position.velocity),
        point_source=point_source(position.rule),
        days_of_cover=days_of_cover(position.available, position.velocity),
        quantity=suggested_quantity(
            position.rule,
            position.velocity,
            available=position.available,
            incoming=position.incoming,
            backordered=position.backordered,
        ),
    )


def suggestions(positions: Iterable[StockPosition], *, everything: bool) -> list[Suggestion]:
    """Most urgent first: fewest days of cover (what does not sell last), then the largest
    quantity. Only what needs ordering unless `everything`."""
    found = [suggest(position) for position in positions]
    if not everything:
        found = [s for s in found if s.quantity > 0]
    return sorted(found, key=_urgency)


def _urgency(s: Suggestion) -> tuple[bool, float, int, str, str]:
    cover = s.days_of_cover
    return (
        cover is None,
        cover if cover is not None else 0.0,
        -s.quantity,
        s.position.sku,
        s.position.location,
    )
