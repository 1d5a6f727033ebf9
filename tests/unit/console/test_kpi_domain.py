"""The KPIs' pure maths: the filter, percentiles, rates, buckets, the promise, the report."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.console.reporting import domain
from services.console.reporting.domain import (
    ChannelOrders,
    FilterError,
    KpiFacts,
    KpiFilter,
    ReasonCount,
    ShipmentTimes,
    ShipPromise,
    SkuUnits,
    VolumeRow,
)

TODAY = date(2026, 3, 15)
T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


def test_the_filter_defaults_to_the_last_seven_days_by_day() -> None:
    f = domain.parse_filter(first=None, last=None, channel=None, bucket=None, today=TODAY)
    assert (f.first_day, f.last_day, f.channel, f.bucket) == (date(2026, 3, 9), TODAY, None, "day")
    assert f.start == datetime(2026, 3, 9, tzinfo=UTC)
    assert f.end == datetime(2026, 3, 16, tzinfo=UTC), "the last day is included"
    assert f.as_params() == {"from": "2026-03-09", "to": "2026-03-15"}


@pytest.mark.parametrize(
    ("first", "last", "channel", "bucket", "field"),
    [
        ("03/01/2026", None, None, None, "from"),
        (None, "tomorrow", None, None, "to"),
        ("2026-03-10", "2026-03-09", None, None, "from"),
        ("2024-01-01", "2026-03-01", None, None, "from"),
        (None, None, None, "week", "bucket"),
        ("2026-01-01", "2026-03-01", None, "hour", "bucket"),
        (None, None, "web shop", None, "channel"),
        (None, None, "x" * 65, None, "channel"),
    ],
)
def test_a_bad_filter_names_its_field(
    first: str | None, last: str | None, channel: str | None, bucket: str | None, field: str
) -> None:
    with pytest.raises(FilterError) as refused:
        domain.parse_filter(first=first, last=last, channel=channel, bucket=bucket, today=TODAY)
    assert refused.value.field == field


def test_hour_buckets_cover_the_period_and_empty_channel_means_all() -> None:
    f = domain.parse_filter(
        first="2026-03-01", last="2026-03-02", channel=" ", bucket="hour", today=TODAY
    )
    assert f.channel is None
    starts = domain.bucket_starts(f)
    assert len(starts) == 48 and starts[1] - starts[0] == timedelta(hours=1)
    assert domain.bucket_of(datetime(2026, 3, 1, 13, 59, tzinfo=UTC), "hour").hour == 13
    assert domain.bucket_of(datetime(2026, 3, 1, 13, 59, tzinfo=UTC), "day").hour == 0


@pytest.mark.parametrize(
    "values", [[5.0], [1.0, 2.0], [3.0, 1.0, 2.0, 10.0, 7.5], list(range(101))]
)
def test_percentiles_interpolate_like_percentile_cont(values: list[float]) -> None:
    if len(values) > 1:
        cuts = statistics.quantiles(values, n=10, method="inclusive")
        assert domain.percentile(values, 0.5) == pytest.approx(statistics.median(values))
        assert domain.percentile(values, 0.9) == pytest.approx(cuts[8])
    else:
        assert domain.percentile(values, 0.5) == domain.percentile(values, 0.9) == values[0]
    assert domain.percentile(values, 0) == min(values)
    assert domain.percentile(values, 1) == max(values)


def test_no_values_no_percentile_no_whole_no_rate() -> None:
    assert domain.percentile([], 0.5) is None
    assert domain.rate(3, 0) is None
    assert domain.rate(1, 4) == 0.25
    with pytest.raises(ValueError):
        domain.percentile([1.0], 1.5)


def test_the_promise_is_per_channel_and_on_time_includes_its_last_minute() -> None:
    promise = ShipPromise(48, {"amazon": 24})
    assert promise.hours("amazon") == 24 and promise.hours("web") == 48
    assert promise.on_time("amazon", T0, T0 + timedelta(hours=24))
    assert not promise.on_time("amazon", T0, T0 + timedelta(hours=24, seconds=1))
    assert promise.on_time("web", T0, T0 + timedelta(hours=30))


def test_a_shipment_before_its_confirmation_counts_as_no_time() -> None:
    assert domain.hours_between(T0, T0 - timedelta(hours=2)) == 0


def facts(**changes: object) -> KpiFacts:
    base: dict[str, object] = {
        "volume": [],
        "shipped": [],
        "delivered": [],
        "orders_by_channel": [],
        "cancel_reasons": [],
        "returns": 0,
        "units_by_sku": [],
        "return_reasons": [],
        "refunds": [],
        "backordered_orders": 0,
        "backorders": [],
        "stock_outs": [],
        "low_stock": [],
    }
    base.update(changes)
    return KpiFacts(**base)  # type: ignore[arg-type]


def test_the_report_never_adds_two_currencies() -> None:
    day = datetime(2026, 3, 10, tzinfo=UTC)
    report = domain.build_report(
        facts(
            volume=[
                VolumeRow(day, "web", "EUR", 2, Decimal("20.00")),
                VolumeRow(day + timedelta(days=1), "web", "EUR", 1, Decimal("5.50")),
                VolumeRow(day, "web", "USD", 1, Decimal("7.00")),
                VolumeRow(day, "ebay", "EUR", 1, Decimal("1.00")),
            ]
        ),
        KpiFilter(date(2026, 3, 10), date(2026, 3, 11)),
        ShipPromise(),
    )
    assert [(t.channel, t.currency, t.orders, t.revenue) for t in report.volume_totals] == [
        ("ebay", "EUR", 1, Decimal("1.00")),
        ("web", "EUR", 3, Decimal("25.50")),
        ("web", "USD", 1, Decimal("7.00")),
    ]
    by_currency = domain.revenue_by_currency(report.volume_totals)
    assert [(c.currency, c.revenue) for c in by_currency] == [
        ("EUR", Decimal("26.50")),
        ("USD", Decimal("7.00")),
    ]
    assert domain.report_json(report)["volume"]["totals"][1]["revenue"] == "25.50"


def test_shipping_rates_and_series_per_channel_and_bucket() -> None:
    f = KpiFilter(date(2026, 3, 10), date(2026, 3, 11))
    shipped = [
        ShipmentTimes("amazon", T0, T0 + timedelta(hours=10)),
        ShipmentTimes("amazon", T0, T0 + timedelta(hours=30)),  # late for amazon's 24 h
        ShipmentTimes("web", T0, T0 + timedelta(hours=30)),
    ]
    s = domain.shipping(shipped, [], ShipPromise(48, {"amazon": 24}), f)
    assert (s.to_ship.count, s.to_ship.p50_hours, s.on_time) == (3, 30.0, 2)
    assert s.on_time_rate == pytest.approx(2 / 3)
    amazon = s.by_channel[0]
    assert (amazon.channel, amazon.on_time, amazon.on_time_rate) == ("amazon", 1, 0.5)
    assert [b.to_ship.count for b in s.series] == [1, 2], "10 h on the 10th, 30 h on the 11th"
    assert s.to_deliver.count == 0 and s.to_deliver.p50_hours is None


def test_cancellations_and_returns_rates_and_shares() -> None:
    report = domain.build_report(
        facts(
            orders_by_channel=[ChannelOrders("web", 8, 2, 1), ChannelOrders("amazon", 2, 0, 0)],
            cancel_reasons=[ReasonCount("customer_request", 1), ReasonCount("unspecified", 1)],
            returns=2,
            units_by_sku=[SkuUnits("MUG", 10, 3), SkuUnits("CUP", 10, 0), SkuUnits("PEN", 0, 1)],
            return_reasons=[ReasonCount("damaged", 3), ReasonCount("wrong_size", 1)],
        ),
        KpiFilter(date(2026, 3, 10), date(2026, 3, 10)),
        ShipPromise(),
    )
    c = report.cancellations
    assert (c.placed, c.cancelled, c.rejected, c.rate) == (10, 2, 1, 0.2)
    assert [(x.channel, x.rate) for x in c.by_channel] == [("amazon", 0.0), ("web", 0.25)]
    assert [(x.reason, x.share) for x in c.reasons] == [
        ("customer_request", 0.5),
        ("unspecified", 0.5),
    ]
    r = report.returns
    assert (r.units_shipped, r.units_returned, r.rate) == (20, 4, 0.2)
    assert [(x.sku, x.rate) for x in r.by_sku] == [("MUG", 0.3), ("PEN", None), ("CUP", 0.0)]
    assert [(x.reason, x.share) for x in r.by_reason] == [("damaged", 0.75), ("wrong_size", 0.25)]
