"""The KPIs over HTTP: the page (`GET /kpis`, charts and tables), one table as CSV
(`GET /kpis.csv?kpi=...`) and the whole report as JSON (`GET /v1/kpis`, what `oms report`
prints). All need ORDERS_READ; none holds personal data (the read model has none)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.console.reporting import charts, domain, store
from services.console.reporting.domain import FilterError, KpiFilter, KpiReport, ShipPromise
from services.console.reporting.tables import (
    TABLE_NAMES,
    Cell,
    Table,
    display,
    is_number,
    kpi_tables,
    to_csv,
)
from services.console.settings import ConsoleSettings
from services.console.web.pages import render
from shared.platform.auth import Permission, Principal, requires
from shared.platform.errors import ApiError
from shared.platform.service import RuntimeDep

router = APIRouter(tags=["console KPIs"], include_in_schema=False)
api_router = APIRouter(prefix="/v1", tags=["KPIs"])

_FROM = Query(
    default=None, alias="from", description="first day (YYYY-MM-DD), default 6 days before `to`"
)
_TO = Query(default=None, alias="to", description="last day (YYYY-MM-DD), default today (UTC)")
_CHANNEL = Query(default=None, description="one channel; default all")
_BUCKET = Query(default=None, description="day (default) or hour (periods up to 14 days)")


async def kpi_filter_of(
    first: str | None = _FROM,
    last: str | None = _TO,
    channel: str | None = _CHANNEL,
    bucket: str | None = _BUCKET,
) -> KpiFilter:
    """The KPI routes' filter from their query parameters (a 422 naming the one refused)."""
    try:
        return domain.parse_filter(
            first=first, last=last, channel=channel, bucket=bucket, today=datetime.now(UTC).date()
        )
    except FilterError as exc:
        raise ApiError(422, "invalid_filter", str(exc), field=exc.field) from exc


def promise_of(settings: ConsoleSettings) -> ShipPromise:
    return ShipPromise(settings.ship_promise_hours, dict(settings.ship_promise_hours_by_channel))


async def _report(request: Request, runtime: RuntimeDep, kpi_filter: KpiFilter) -> KpiReport:
    settings: ConsoleSettings = request.app.state.console_settings
    async with runtime.pool.acquire() as conn:
        facts = await store.kpi_facts(conn, kpi_filter)
    return domain.build_report(facts, kpi_filter, promise_of(settings))


def _label(at: datetime, bucket: str) -> str:
    return at.strftime("%m-%d %Hh" if bucket == "hour" else "%m-%d")


def report_charts(report: KpiReport) -> dict[str, str]:
    """The page's charts: orders per bucket stacked by channel, and time to ship per bucket."""
    bucket = report.filter.bucket
    labels = [_label(b, bucket) for b in report.buckets]
    index = {b: i for i, b in enumerate(report.buckets)}
    channels = sorted({v.channel for v in report.volume})
    counts = {c: [0.0] * len(labels) for c in channels}
    for row in report.volume:
        if row.bucket in index:
            counts[row.channel][index[row.bucket]] += row.orders
    total = sum(t.orders for t in report.volume_totals)
    volume = charts.bar_chart(
        "chart-volume",
        f"Orders placed by {bucket} and channel",
        f"{total} orders from {report.filter.first_day} to {report.filter.last_day}, one bar per"
        f" {bucket}, stacked by channel; the table beside it has the figures and the revenue.",
        labels,
        [charts.Series(c, counts[c]) for c in channels],
        unit="orders",
    )
    series = report.shipping.series
    to_ship = charts.line_chart(
        "chart-to-ship",
        f"Time to ship by {bucket}, hours from confirmation",
        f"Median (p50) and p90 hours from an order's confirmation to each shipment leaving, for"
        f" {report.shipping.to_ship.count} shipments; the promise is"
        f" {report.promise.default_hours:g} hours.",
        labels,
        [
            charts.Series("p50", [b.to_ship.p50_hours for b in series]),
            charts.Series("p90", [b.to_ship.p90_hours for b in series]),
        ],
        unit="hours",
    )
    return {"volume": volume, "to_ship": to_ship}


def volume_pivot(report: KpiReport) -> Table:
    """The volume chart's figures: orders per bucket (rows) and channel (columns)."""
    bucket = report.filter.bucket
    channels = sorted({v.channel for v in report.volume})
    counts: dict[tuple[datetime, str], int] = {}
    for row in report.volume:
        counts[(row.bucket, row.channel)] = counts.get((row.bucket, row.channel), 0) + row.orders
    rows: list[list[Cell]] = []
    for at in report.buckets:
        per_channel = [counts.get((at, c), 0) for c in channels]
        rows.append([_label(at, bucket), *per_channel, sum(per_channel)])
    return Table(
        "volume_by_channel",
        f"Orders by {bucket} and channel",
        (bucket, *channels, "all"),
        rows,
    )


@router.get("/kpis", response_class=HTMLResponse)
async def kpis_page(
    request: Request,
    runtime: RuntimeDep,
    principal: Principal = requires(Permission.ORDERS_READ),
    kpi_filter: KpiFilter = Depends(kpi_filter_of),
) -> Response:
    """The KPI page: the period's figures, two charts with their tables, CSV links."""
    report = await _report(request, runtime, kpi_filter)
    return render(
        request,
        "kpis.html",
        principal,
        report=report,
        tables=kpi_tables(report),
        charts=report_charts(report),
        volume_pivot=volume_pivot(report),
        revenue=domain.revenue_by_currency(report.volume_totals),
        params=kpi_filter.as_params(),
        display=display,
        is_number=is_number,
    )


@router.get("/kpis.csv")
async def kpis_csv(
    request: Request,
    runtime: RuntimeDep,
    kpi: str | None = Query(default=None, description="the table: volume, shipping, ..."),
    _: Principal = requires(Permission.ORDERS_READ),
    kpi_filter: KpiFilter = Depends(kpi_filter_of),
) -> Response:
    """One table of the report as CSV (`kpi` names it; the page links each)."""
    if kpi not in TABLE_NAMES:
        raise ApiError(422, "invalid_filter", f"kpi: one of {', '.join(TABLE_NAMES)}", field="kpi")
    report = await _report(request, runtime, kpi_filter)
    table = kpi_tables(report)[kpi]
    filename = f"kpi-{kpi}-{kpi_filter.first_day}-{kpi_filter.last_day}.csv"
    return Response(
        to_csv(table),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@api_router.get("/kpis")
async def kpis_json(
    request: Request,
    runtime: RuntimeDep,
    _: Principal = requires(Permission.ORDERS_READ),
    kpi_filter: KpiFilter = Depends(kpi_filter_of),
) -> dict[str, Any]:
    """The KPIs of the period as JSON: amounts as strings per currency, rates 0..1, hours."""
    return domain.report_json(await _report(request, runtime, kpi_filter))
