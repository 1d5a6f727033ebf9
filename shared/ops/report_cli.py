"""`oms report`: the console's KPIs on the terminal — orders and revenue per channel and
currency, time to ship and deliver, on-time shipping, cancellations, returns, refunds,
backorders and stock-outs of a period. It reads the console's `GET /v1/kpis`
(OMS_CONSOLE_URL) and prints it on 80 columns (`--json`: the answer as it is)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import typer

from shared.ops.client import OpsClient
from shared.ops.terminal import ops_client, print_json

WIDTH = 80
Row = Sequence[str]


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def table(
    headers: Row, rows: Sequence[Row], widths: Sequence[int], *, left: int = 1, indent: int = 2
) -> list[str]:
    """Fixed columns (the first `left` ones left-aligned, the rest right-aligned), each cell
    cut to its width; a line never exceeds WIDTH."""
    lines = []
    for row in (headers, *rows):
        cells = []
        for index, (cell, width) in enumerate(zip(row, widths, strict=True)):
            cut = _cut(cell, width)
            cells.append(cut.ljust(width) if index < left else cut.rjust(width))
        lines.append(_cut(" " * indent + "  ".join(cells).rstrip(), WIDTH))
    return lines


def _int(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} h"


def _amount(value: str) -> str:
    return f"{Decimal(value):,.2f}"


def render(kpis: dict[str, Any], top: int = 10) -> list[str]:
    """The report as lines of at most 80 characters (pure: the JSON in, text out)."""
    f = kpis["filter"]
    promise = kpis["ship_promise"]
    overrides = ", ".join(f"{c} {h:g} h" for c, h in sorted(promise["by_channel"].items()))
    out = [
        _cut(f"KPIs {f['from']} to {f['to']} (UTC), {f['channel'] or 'all channels'}", WIDTH),
        _cut(
            f"ship promise {promise['default_hours']:g} h from confirmation"
            + (f" ({overrides})" if overrides else ""),
            WIDTH,
        ),
        "",
        "Orders and revenue (cancelled and rejected orders earn none)",
    ]
    totals = kpis["volume"]["totals"]
    out += table(
        ("channel", "currency", "orders", "revenue"),
        [(t["channel"], t["currency"], _int(t["orders"]), _amount(t["revenue"])) for t in totals]
        or [("none", "", "", "")],
        (24, 8, 10, 18),
        left=2,
    )
    s = kpis["shipping"]
    out += [
        "",
        "Shipping (hours from the order's confirmation)",
        f"  time to ship     p50 {_hours(s['to_ship']['p50_hours']):>9}"
        f"  p90 {_hours(s['to_ship']['p90_hours']):>9}  {_int(s['to_ship']['count'])} shipments",
        f"  time to deliver  p50 {_hours(s['to_deliver']['p50_hours']):>9}"
        f"  p90 {_hours(s['to_deliver']['p90_hours']):>9}"
        f"  {_int(s['to_deliver']['count'])} deliveries",
        f"  on time          {_pct(s['on_time_rate'])} ({_int(s['on_time'])})",
    ]
    if s["by_channel"]:
        out += table(
            ("channel", "shipments", "p50", "p90", "promise", "on time"),
            [
                (
                    b["channel"],
                    _int(b["to_ship"]["count"]),
                    _hours(b["to_ship"]["p50_hours"]),
                    _hours(b["to_ship"]["p90_hours"]),
                    f"{b['promise_hours']:g} h",
                    _pct(b["on_time_rate"]),
                )
                for b in s["by_channel"]
            ],
            (18, 10, 9, 9, 8, 9),
        )
    c = kpis["cancellations"]
    out += [
        "",
        "Cancellations (orders placed in the period)",
        f"  {_int(c['placed'])} placed, {_int(c['cancelled'])} cancelled ({_pct(c['rate'])}),"
        f" {_int(c['rejected'])} rejected",
    ]
    if c["reasons"]:
        out += table(
            ("reason", "orders", "share"),
            [(r["reason"], _int(r["orders"]), _pct(r["share"])) for r in c["reasons"][:top]],
            (40, 10, 9),
        )
    r = kpis["returns"]
    out += [
        "",
        "Returns (units returned over units shipped)",
        f"  {_int(r['returns'])} returns, {_int(r['units_returned'])} of"
        f" {_int(r['units_shipped'])} units ({_pct(r['rate'])})",
    ]
    returned = [x for x in r["by_sku"] if x["units_returned"]][:top]
    if returned:
        out += table(
            ("sku", "shipped", "returned", "rate"),
            [
                (x["sku"], _int(x["units_shipped"]), _int(x["units_returned"]), _pct(x["rate"]))
                for x in returned
            ],
            (36, 10, 10, 9),
        )
    if r["by_reason"]:
        out += table(
            ("reason", "units", "share"),
            [(x["reason"], _int(x["units"]), _pct(x["share"])) for x in r["by_reason"][:top]],
            (40, 10, 9),
        )
    refunds = kpis["refunds"]["by_kind"]
    out += ["", "Refunds"]
    out += table(
        ("kind", "currency", "refunds", "amount"),
        [(x["kind"], x["currency"], _int(x["count"]), _amount(x["amount"])) for x in refunds]
        or [("none", "", "", "")],
        (24, 8, 10, 18),
        left=2,
    )
    b = kpis["backorders"]
    out += ["", f"Backorders: {_int(b['orders'])} orders, {_int(b['units'])} units"]
    if b["by_sku"]:
        out += table(
            ("sku", "orders", "units"),
            [(x["sku"], _int(x["orders"]), _int(x["units"])) for x in b["by_sku"][:top]],
            (40, 10, 10),
        )
    so = kpis["stock_outs"]
    out += [
        "",
        f"Stock-outs: {_int(so['stock_outs'])} on {_int(so['skus'])} SKUs,"
        f" {_int(so['out_now'])} still out; {_int(so['low_stock_alerts'])} low-stock alerts",
    ]
    if so["by_sku"]:
        out += table(
            ("sku", "stock-outs", "out now"),
            [
                (x["sku"], _int(x["stock_outs"]), "yes" if x["out_now"] else "no")
                for x in so["by_sku"][:top]
            ],
            (40, 10, 8),
        )
    return out


def report(
    first: str | None = typer.Option(
        None, "--from", help="first day, YYYY-MM-DD (default: 6 days before --to)"
    ),
    last: str | None = typer.Option(
        None, "--to", help="last day, YYYY-MM-DD (default: today, UTC)"
    ),
    channel: str | None = typer.Option(None, "--channel", help="one channel (default: all)"),
    top: int = typer.Option(10, "--top", min=1, max=200, help="rows per SKU and reason table"),
    as_json: bool = typer.Option(False, "--json", help="print the console's answer as JSON"),
) -> None:
    """The KPIs of a period from the console (OMS_CONSOLE_URL): orders and revenue, shipping
    times and the promise, cancellations, returns, refunds, backorders, stock-outs."""
    params: dict[str, str | int | float | bool] = {}
    for name, value in (("from", first), ("to", last), ("channel", channel)):
        if value:
            params[name] = value
    with ops_client(OpsClient) as client:
        kpis = client.request("console", "GET", "/v1/kpis", params=params)
    if as_json:
        print_json(kpis)
        return
    typer.echo("\n".join(render(kpis, top)))
