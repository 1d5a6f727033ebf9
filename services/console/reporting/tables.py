"""The report as tables: the same figures the page shows beside its charts, the CSV export
(`GET /kpis.csv?kpi=<name>`) and `oms report` read. Pure."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from services.console.reporting.domain import KpiReport

Cell = str | int | float | Decimal | bool | None


TABLE_NAMES = (
    "volume",
    "volume_totals",
    "shipping",
    "time_to_ship",
    "delivery",
    "cancellations",
    "cancel_reasons",
    "returns",
    "return_reasons",
    "refunds",
    "backorders",
    "stock_outs",
    "low_stock",
)
"""The tables by name, in the order the page shows them (the CSV's `kpi`)."""


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[Cell]]


def _when(at: datetime, bucket: str) -> str:
    return at.strftime("%Y-%m-%d %H:00" if bucket == "hour" else "%Y-%m-%d")


def kpi_tables(report: KpiReport) -> dict[str, Table]:
    """Every table of the report by name (the CSV's `kpi`)."""
    bucket = report.filter.bucket
    s = report.shipping
    tables = [
        Table(
            "volume",
            f"Orders and revenue by {bucket} and channel",
            (bucket, "channel", "currency", "orders", "revenue"),
            [
                (_when(v.bucket, bucket), v.channel, v.currency, v.orders, v.revenue)
                for v in report.volume
            ],
        ),
        Table(
            "volume_totals",
            "Orders and revenue by channel",
            ("channel", "currency", "orders", "revenue"),
            [(t.channel, t.currency, t.orders, t.revenue) for t in report.volume_totals],
        ),
        Table(
            "shipping",
            "Time to ship and on-time shipping by channel",
            (
                "channel",
                "shipments",
                "p50_hours_to_ship",
                "p90_hours_to_ship",
                "promise_hours",
                "on_time",
                "on_time_rate",
            ),
            [
                (
                    b.channel,
                    b.to_ship.count,
                    b.to_ship.p50_hours,
                    b.to_ship.p90_hours,
                    b.promise_hours,
                    b.on_time,
                    b.on_time_rate,
                )
                for b in s.by_channel
            ]
            + [
                (
                    "all",
                    s.to_ship.count,
                    s.to_ship.p50_hours,
                    s.to_ship.p90_hours,
                    None,
                    s.on_time,
                    s.on_time_rate,
                )
            ],
        ),
        Table(
            "time_to_ship",
            f"Time to ship by {bucket} (hours from confirmation)",
            (bucket, "shipments", "p50_hours", "p90_hours"),
            [
                (_when(b.bucket, bucket), b.to_ship.count, b.to_ship.p50_hours, b.to_ship.p90_hours)
                for b in s.series
            ],
        ),
        Table(
            "delivery",
            "Time to deliver (hours from confirmation)",
            ("deliveries", "p50_hours", "p90_hours"),
            [(s.to_deliver.count, s.to_deliver.p50_hours, s.to_deliver.p90_hours)],
        ),
        Table(
            "cancellations",
            "Cancellations by channel",
            ("channel", "placed", "cancelled", "rejected", "cancellation_rate"),
            [
                (c.channel, c.placed, c.cancelled, c.rejected, c.rate)
                for c in report.cancellations.by_channel
            ]
            + [
                (
                    "all",
                    report.cancellations.placed,
                    report.cancellations.cancelled,
                    report.cancellations.rejected,
                    report.cancellations.rate,
                )
            ],
        ),
        Table(
            "cancel_reasons",
            "Cancellation reasons",
            ("reason", "orders", "share"),
            [(r.reason, r.count, r.share) for r in report.cancellations.reasons],
        ),
        Table(
            "returns",
            "Return rate by SKU",
            ("sku", "units_shipped", "units_returned", "return_rate"),
            [(r.sku, r.units_shipped, r.units_returned, r.rate) for r in report.returns.by_sku],
        ),
        Table(
            "return_reasons",
            "Returned units by reason",
            ("reason", "units", "share"),
            [(r.reason, r.count, r.share) for r in report.returns.by_reason],
        ),
        Table(
            "refunds",
            "Refunds",
            ("kind", "currency", "refunds", "amount"),
            [(r.kind, r.currency, r.count, r.amount) for r in report.refunds.by_kind],
        ),
        Table(
            "backorders",
            "Backorders by SKU",
            ("sku", "orders", "units"),
            [(b.sku, b.orders, b.units) for b in report.backorders.by_sku],
        ),
        Table(
            "stock_outs",
            "Stock-outs by SKU",
            ("sku", "stock_outs", "out_now"),
            [(x.sku, x.stock_outs, x.out_now) for x in report.stock_outs.by_sku],
        ),
        Table(
            "low_stock",
            "Low-stock alerts",
            ("sku", "location", "alerts"),
            [(x.sku, x.location, x.alerts) for x in report.stock_outs.low_stock],
        ),
    ]
    by_name = {t.name: t for t in tables}
    assert tuple(by_name) == TABLE_NAMES
    return by_name


def _csv_cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, float):
        return str(round(value, 6))
    if isinstance(value, int):
        return str(value)
    # A text a spreadsheet would take for a formula (a SKU or reason from a channel) is quoted.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def to_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.headers)
    for row in table.rows:
        writer.writerow([_csv_cell(cell) for cell in row])
    return out.getvalue()


def display(value: Cell, header: str = "") -> str:
    """A cell as the page shows it: rates and shares as percentages, hours with one decimal,
    amounts with two, nothing as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and header.endswith(("rate", "share")):
        return f"{value * 100:.1f} %"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def is_number(value: Cell) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)
