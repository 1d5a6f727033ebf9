"""The KPIs' pure part: the filter, percentiles and rates, time buckets, the shipping promise,
and the report assembled from the rows the store's queries return.

Definitions (the README's "KPIs" says the same):
- orders and revenue: orders *placed* in the period (their first status), per bucket, channel and
  currency — amounts of different currencies are never added; revenue leaves out orders that
  were cancelled or rejected;
- time to ship / to deliver: per shipment (parcel) that left / was delivered in the period, hours
  from its order's confirmation; p50 and p90 interpolate like SQL's percentile_cont;
- on time: a shipment that left within the promise (`ship_promise_hours`, per channel
  overridable) of its order's confirmation;
- cancellation rate: orders placed in the period that were cancelled, over those placed;
- return rate: units in returns requested in the period (not refused) over units shipped in it,
  per SKU; by reason: units per return reason;
- refunds, backorders, stock-outs, low-stock alerts: those that happened in the period.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

Bucket = Literal["day", "hour"]
BUCKETS: tuple[Bucket, ...] = ("day", "hour")
DEFAULT_DAYS = 7
MAX_DAYS = 366
MAX_HOUR_BUCKET_DAYS = 14
_CHANNEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
UNSPECIFIED = "unspecified"


class FilterError(ValueError):
    """A filter value that cannot be used; `field` names the query parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class KpiFilter:
    """The period [start, end) in UTC (whole days: `first_day` to `last_day`), a channel or all,
    and the bucket of the time series."""

    first_day: date
    last_day: date
    channel: str | None = None
    bucket: Bucket = "day"

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(), UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last_day + timedelta(days=1), time(), UTC)

    def as_params(self) -> dict[str, str]:
        """The query parameters that give this filter again (links, the CSV's)."""
        params = {"from": self.first_day.isoformat(), "to": self.last_day.isoformat()}
        if self.channel:
            params["channel"] = self.channel
        if self.bucket != "day":
            params["bucket"] = self.bucket
        return params


def _day(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise FilterError(name, f"{value!r} is not a date (YYYY-MM-DD)") from None


def parse_filter(
    *,
    first: str | None,
    last: str | None,
    channel: str | None,
    bucket: str | None,
    today: date,
) -> KpiFilter:
    """The filter from the query parameters `from`, `to` (days, both included), `channel` and
    `bucket`; by default the last 7 days up to today, all channels, by day."""
    last_day = _day("to", last) if last else today
    first_day = _day("from", first) if first else last_day - timedelta(days=DEFAULT_DAYS - 1)
    if first_day > last_day:
        raise FilterError("from", "must not be after `to`")
    days = (last_day - first_day).days + 1
    if days > MAX_DAYS:
        raise FilterError("from", f"the period is at most {MAX_DAYS} days")
    chosen = (bucket or "day").strip()
    if chosen not in BUCKETS:
        raise FilterError("bucket", "must be day or hour")
    if chosen == "hour" and days > MAX_HOUR_BUCKET_DAYS:
        raise FilterError("bucket", f"hours are shown for at most {MAX_HOUR_BUCKET_DAYS} days")
    name = (channel or "").strip() or None
    if name is not None and not _CHANNEL.match(name):
        raise FilterError("channel", "not a channel name")
    return KpiFilter(first_day, last_day, name, "hour" if chosen == "hour" else "day")


def bucket_starts(kpi_filter: KpiFilter) -> list[datetime]:
    """Every bucket of the period, in order (empty ones too: a chart shows the gaps)."""
    step = timedelta(hours=1) if kpi_filter.bucket == "hour" else timedelta(days=1)
    found = []
    at = kpi_filter.start
    while at < kpi_filter.end:
        found.append(at)
        at += step
    return found


def bucket_of(at: datetime, bucket: Bucket) -> datetime:
    at = at.astimezone(UTC)
    if bucket == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


# --- maths ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) with linear interpolation between the closest ranks (as SQL's
    percentile_cont); None for no values."""
    if not 0 <= q <= 1:
        raise ValueError("q is between 0 and 1")
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    fraction = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * fraction


def rate(part: int | float, whole: int | float) -> float | None:
    """part / whole, None when there is no whole."""
    if whole <= 0:
        return None
    return part / whole


def hours_between(earlier: datetime, later: datetime) -> float:
    """Hours from `earlier` to `later`, never below 0 (clocks of two services may disagree)."""
    return max(0.0, (later - earlier).total_seconds() / 3600)


@dataclass(frozen=True)
class Durations:
    count: int
    p50_hours: float | None
    p90_hours: float | None


def durations(hours: Sequence[float]) -> Durations:
    return Durations(len(hours), percentile(hours, 0.5), percentile(hours, 0.9))


@dataclass(frozen=True)
class ShipPromise:
    """Hours from confirmation within which an order's shipments should leave."""

    default_hours: float = 48.0
    by_channel: Mapping[str, float] = field(default_factory=dict)

    def hours(self, channel: str) -> float:
        return self.by_channel.get(channel, self.default_hours)

    def on_time(self, channel: str, confirmed_at: datetime, shipped_at: datetime) -> bool:
        return shipped_at - confirmed_at <= timedelta(hours=self.hours(channel))


# --- what the store's queries return ----------------------------------------------------------


@dataclass(frozen=True)
class VolumeRow:
    bucket: datetime
    channel: str
    currency: str
    orders: int
    revenue: Decimal


@dataclass(frozen=True)
class ShipmentTimes:
    """A shipment's order channel, its order's confirmation and when it left or arrived."""

    channel: str
    confirmed_at: datetime
    at: datetime


@dataclass(frozen=True)
class ChannelOrders:
    channel: str
    placed: int
    cancelled: int
    rejected: int


@dataclass(frozen=True)
class ReasonCount:
    reason: str
    count: int


@dataclass(frozen=True)
class SkuUnits:
    sku: str
    shipped: int
    returned: int


@dataclass(frozen=True)
class RefundRow:
    kind: str
    currency: str
    count: int
    amount: Decimal


@dataclass(frozen=True)
class BackorderRow:
    sku: str
    orders: int
    units: int


@dataclass(frozen=True)
class StockOutRow:
    sku: str
    stock_outs: int
    out_now: bool


@dataclass(frozen=True)
class LowStockRow:
    sku: str
    location: str
    alerts: int


@dataclass(frozen=True)
class KpiFacts:
    volume: Sequence[VolumeRow]
    shipped: Sequence[ShipmentTimes]
    delivered: Sequence[ShipmentTimes]
    orders_by_channel: Sequence[ChannelOrders]
    cancel_reasons: Sequence[ReasonCount]
    returns: int
    units_by_sku: Sequence[SkuUnits]
    return_reasons: Sequence[ReasonCount]
    refunds: Sequence[RefundRow]
    backordered_orders: int
    backorders: Sequence[BackorderRow]
    stock_outs: Sequence[StockOutRow]
    low_stock: Sequence[LowStockRow]
    channels: Sequence[str] = ()


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeTotal:
    channel: str
    currency: str
    orders: int
    revenue: Decimal


@dataclass(frozen=True)
class ShippingByChannel:
    channel: str
    promise_hours: float
    to_ship: Durations
    on_time: int
    on_time_rate: float | None


@dataclass(frozen=True)
class ShippingBucket:
    bucket: datetime
    to_ship: Durations


@dataclass(frozen=True)
class Shipping:
    to_ship: Durations
    to_deliver: Durations
    on_time: int
    on_time_rate: float | None
    by_channel: Sequence[ShippingByChannel]
    series: Sequence[ShippingBucket]


@dataclass(frozen=True)
class ChannelCancellations:
    channel: str
    placed: int
    cancelled: int
    rejected: int
    rate: float | None


@dataclass(frozen=True)
class ReasonShare:
    reason: str
    count: int
    share: float | None


@dataclass(frozen=True)
class Cancellations:
    placed: int
    cancelled: int
    rejected: int
    rate: float | None
    by_channel: Sequence[ChannelCancellations]
    reasons: Sequence[ReasonShare]


@dataclass(frozen=True)
class SkuReturns:
    sku: str
    units_shipped: int
    units_returned: int
    rate: float | None


@dataclass(frozen=True)
class Returns:
    returns: int
    units_shipped: int
    units_returned: int
    rate: float | None
    by_sku: Sequence[SkuReturns]
    by_reason: Sequence[ReasonShare]


@dataclass(frozen=True)
class RefundTotal:
    currency: str
    count: int
    amount: Decimal


@dataclass(frozen=True)
class Refunds:
    totals: Sequence[RefundTotal]
    by_kind: Sequence[RefundRow]


@dataclass(frozen=True)
class Backorders:
    orders: int
    units: int
    by_sku: Sequence[BackorderRow]


@dataclass(frozen=True)
class StockOuts:
    stock_outs: int
    skus: int
    out_now: int
    by_sku: Sequence[StockOutRow]
    low_stock_alerts: int
    low_stock: Sequence[LowStockRow]


@dataclass(frozen=True)
class KpiReport:
    filter: KpiFilter
    promise: ShipPromise
    buckets: Sequence[datetime]
    volume: Sequence[VolumeRow]
    volume_totals: Sequence[VolumeTotal]
    shipping: Shipping
    cancellations: Cancellations
    returns: Returns
    refunds: Refunds
    backorders: Backorders
    stock_outs: StockOuts
    channels: Sequence[str] = ()


def volume_totals(rows: Iterable[VolumeRow]) -> list[VolumeTotal]:
    """Orders and revenue per channel and currency over the whole period."""
    orders: dict[tuple[str, str], int] = defaultdict(int)
    revenue: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        orders[(row.channel, row.currency)] += row.orders
        revenue[(row.channel, row.currency)] += row.revenue
    return [VolumeTotal(c, cur, orders[(c, cur)], revenue[(c, cur)]) for c, cur in sorted(orders)]


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    orders: int
    revenue: Decimal


def revenue_by_currency(totals: Iterable[VolumeTotal]) -> list[CurrencyTotal]:
    """Orders and revenue per currency over every channel (a currency's amounts only)."""
    orders: dict[str, int] = defaultdict(int)
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for total in totals:
        orders[total.currency] += total.orders
        revenue[total.currency] += total.revenue
    return [CurrencyTotal(c, orders[c], revenue[c]) for c in sorted(orders)]


def shipping(
    shipped: Sequence[ShipmentTimes],
    delivered: Sequence[ShipmentTimes],
    promise: ShipPromise,
    kpi_filter: KpiFilter,
) -> Shipping:
    to_ship = [hours_between(s.confirmed_at, s.at) for s in shipped]
    on_time = [promise.on_time(s.channel, s.confirmed_at, s.at) for s in shipped]
    per_channel: dict[str, list[int]] = defaultdict(list)
    for index, shipment in enumerate(shipped):
        per_channel[shipment.channel].append(index)
    by_channel = []
    for channel in sorted(per_channel):
        indexes = per_channel[channel]
        kept = sum(on_time[i] for i in indexes)
        by_channel.append(
            ShippingByChannel(
                channel,
                promise.hours(channel),
                durations([to_ship[i] for i in indexes]),
                kept,
                rate(kept, len(indexes)),
            )
        )
    per_bucket: dict[datetime, list[float]] = defaultdict(list)
    for shipment, hours in zip(shipped, to_ship, strict=True):
        per_bucket[bucket_of(shipment.at, kpi_filter.bucket)].append(hours)
    series = [
        ShippingBucket(b, durations(per_bucket.get(b, []))) for b in bucket_starts(kpi_filter)
    ]
    kept_total = sum(on_time)
    return Shipping(
        to_ship=durations(to_ship),
        to_deliver=durations([hours_between(d.confirmed_at, d.at) for d in delivered]),
        on_time=kept_total,
        on_time_rate=rate(kept_total, len(shipped)),
        by_channel=by_channel,
        series=series,
    )


def shares(counts: Iterable[ReasonCount]) -> list[ReasonShare]:
    """Each reason's count and its share of all, most frequent first."""
    rows = sorted(counts, key=lambda r: (-r.count, r.reason))
    whole = sum(r.count for r in rows)
    return [ReasonShare(r.reason, r.count, rate(r.count, whole)) for r in rows]


def cancellations(
    by_channel: Sequence[ChannelOrders], reasons: Sequence[ReasonCount]
) -> Cancellations:
    placed = sum(c.placed for c in by_channel)
    cancelled = sum(c.cancelled for c in by_channel)
    return Cancellations(
        placed=placed,
        cancelled=cancelled,
        rejected=sum(c.rejected for c in by_channel),
        rate=rate(cancelled, placed),
        by_channel=[
            ChannelCancellations(
                c.channel, c.placed, c.cancelled, c.rejected, rate(c.cancelled, c.placed)
            )
            for c in sorted(by_channel, key=lambda c: c.channel)
        ],
        reasons=shares(reasons),
    )


def returns(count: int, units: Sequence[SkuUnits], reasons: Sequence[ReasonCount]) -> Returns:
    shipped = sum(u.shipped for u in units)
    returned = sum(u.returned for u in units)
    by_sku = [
        SkuReturns(u.sku, u.shipped, u.returned, rate(u.returned, u.shipped))
        for u in sorted(units, key=lambda u: (-u.returned, u.sku))
    ]
    return Returns(count, shipped, returned, rate(returned, shipped), by_sku, shares(reasons))


def refunds(rows: Sequence[RefundRow]) -> Refunds:
    count: dict[str, int] = defaultdict(int)
    amount: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        count[row.currency] += row.count
        amount[row.currency] += row.amount
    return Refunds(
        totals=[RefundTotal(c, count[c], amount[c]) for c in sorted(count)],
        by_kind=sorted(rows, key=lambda r: (r.kind, r.currency)),
    )


def build_report(facts: KpiFacts, kpi_filter: KpiFilter, promise: ShipPromise) -> KpiReport:
    return KpiReport(
        filter=kpi_filter,
        promise=promise,
        buckets=bucket_starts(kpi_filter),
        volume=sorted(facts.volume, key=lambda r: (r.bucket, r.channel, r.currency)),
        volume_totals=volume_totals(facts.volume),
        shipping=shipping(facts.shipped, facts.delivered, promise, kpi_filter),
        cancellations=cancellations(facts.orders_by_channel, facts.cancel_reasons),
        returns=returns(facts.returns, facts.units_by_sku, facts.return_reasons),
        refunds=refunds(facts.refunds),
        backorders=Backorders(
            orders=facts.backordered_orders,
            units=sum(b.units for b in facts.backorders),
            by_sku=sorted(facts.backorders, key=lambda b: (-b.units, b.sku)),
        ),
        stock_outs=StockOuts(
            stock_outs=sum(s.stock_outs for s in facts.stock_outs),
            skus=len(facts.stock_outs),
            out_now=sum(1 for s in facts.stock_outs if s.out_now),
            by_sku=sorted(facts.stock_outs, key=lambda s: (-s.stock_outs, s.sku)),
            low_stock_alerts=sum(r.alerts for r in facts.low_stock),
            low_stock=sorted(facts.low_stock, key=lambda r: (-r.alerts, r.sku, r.location)),
        ),
        channels=sorted(facts.channels),
    )


# --- as JSON ----------------------------------------------------------------------------------


def _hours(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _durations(d: Durations) -> dict[str, Any]:
    return {"count": d.count, "p50_hours": _hours(d.p50_hours), "p90_hours": _hours(d.p90_hours)}


def _money(amount: Decimal) -> str:
    return f"{amount:f}"


def report_json(report: KpiReport) -> dict[str, Any]:
    """The report as the JSON `GET /v1/kpis` answers: amounts as strings (never a float),
    one entry per currency, rates 0..1, durations in hours."""
    f = report.filter
    s = report.shipping
    c = report.cancellations
    r = report.returns
    return {
        "filter": {
            "from": f.first_day.isoformat(),
            "to": f.last_day.isoformat(),
            "start": f.start.isoformat(),
            "end": f.end.isoformat(),
            "channel": f.channel,
            "bucket": f.bucket,
        },
        "channels": list(report.channels),
        "ship_promise": {
            "default_hours": report.promise.default_hours,
            "by_channel": dict(report.promise.by_channel),
        },
        "volume": {
            "totals": [
                {
                    "channel": t.channel,
                    "currency": t.currency,
                    "orders": t.orders,
                    "revenue": _money(t.revenue),
                }
                for t in report.volume_totals
            ],
            "series": [
                {
                    "bucket": v.bucket.isoformat(),
                    "channel": v.channel,
                    "currency": v.currency,
                    "orders": v.orders,
                    "revenue": _money(v.revenue),
                }
                for v in report.volume
            ],
        },
        "shipping": {
            "to_ship": _durations(s.to_ship),
            "to_deliver": _durations(s.to_deliver),
            "on_time": s.on_time,
            "on_time_rate": _rate(s.on_time_rate),
            "by_channel": [
                {
                    "channel": b.channel,
                    "promise_hours": b.promise_hours,
                    "to_ship": _durations(b.to_ship),
                    "on_time": b.on_time,
                    "on_time_rate": _rate(b.on_time_rate),
                }
                for b in s.by_channel
            ],
            "series": [
                {"bucket": b.bucket.isoformat(), "to_ship": _durations(b.to_ship)} for b in s.series
            ],
        },
        "cancellations": {
            "placed": c.placed,
            "cancelled": c.cancelled,
            "rejected": c.rejected,
            "rate": _rate(c.rate),
            "by_channel": [
                {
                    "channel": b.channel,
                    "placed": b.placed,
                    "cancelled": b.cancelled,
                    "rejected": b.rejected,
                    "rate": _rate(b.rate),
                }
                for b in c.by_channel
            ],
            "reasons": [
                {"reason": x.reason, "orders": x.count, "share": _rate(x.share)} for x in c.reasons
            ],
        },
        "returns": {
            "returns": r.returns,
            "units_shipped": r.units_shipped,
            "units_returned": r.units_returned,
            "rate": _rate(r.rate),
            "by_sku": [
                {
                    "sku": x.sku,
                    "units_shipped": x.units_shipped,
                    "units_returned": x.units_returned,
                    "rate": _rate(x.rate),
                }
                for x in r.by_sku
            ],
            "by_reason": [
                {"reason": x.reason, "units": x.count, "share": _rate(x.share)} for x in r.by_reason
            ],
        },
        "refunds": {
            "totals": [
                {"currency": t.currency, "count": t.count, "amount": _money(t.amount)}
                for t in report.refunds.totals
            ],
            "by_kind": [
                {
                    "kind": k.kind,
                    "currency": k.currency,
                    "count": k.count,
                    "amount": _money(k.amount),
                }
                for k in report.refunds.by_kind
            ],
        },
        "backorders": {
            "orders": report.backorders.orders,
            "units": report.backorders.units,
            "by_sku": [
                {"sku": b.sku, "orders": b.orders, "units": b.units}
                for b in report.backorders.by_sku
            ],
        },
        "stock_outs": {
            "stock_outs": report.stock_outs.stock_outs,
            "skus": report.stock_outs.skus,
            "out_now": report.stock_outs.out_now,
            "by_sku": [
                {"sku": x.sku, "stock_outs": x.stock_outs, "out_now": x.out_now}
                for x in report.stock_outs.by_sku
            ],
            "low_stock_alerts": report.stock_outs.low_stock_alerts,
            "low_stock": [
                {"sku": x.sku, "location": x.location, "alerts": x.alerts}
                for x in report.stock_outs.low_stock
            ],
        },
    }
