"""The run's result as a terminal table (rich) and as JSON, and a comparison of several runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console, Group
from rich.table import Table


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text}{unit}"


def headline_rows(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The few numbers a run is about, as (what, value) pairs."""
    config = result["config"]
    throughput = result["throughput"]
    latency = result["latency"]
    rows = [
        (
            "run",
            f"{config['orders']:,} orders, rate {config['rate']}"
            + (
                f" (at most {config['max_in_flight']:,} in flight)"
                if config["rate"] == "max" and config.get("max_in_flight")
                else ""
            )
            + f", ingress {config['ingress']},"
            f" {config['replicas']} replica(s), warehouse {'on' if config['warehouse'] else 'off'}",
        ),
        (
            "load average before/after",
            f"{result['environment']['load_before']} / {result['environment']['load_after']}",
        ),
        ("submitted / refused", f"{fmt(result['submitted'])} / {fmt(result['refused'])}"),
        (
            "orders told to wait (429, retried) / retries",
            f"{fmt(result.get('throttled', {}).get('orders', 0))}"
            f" / {fmt(result.get('throttled', {}).get('retries', 0))}",
        ),
        ("feed rate achieved", fmt(result["feed_rate_per_s"], "/s")),
        (
            "CPU per order (services, warehouse, bench, this run's Postgres backends)",
            fmt(result.get("cpu_ms_per_order"), " ms"),
        ),
    ]
    for state in ("confirmed", "completed"):
        t = throughput.get(state)
        if not t or not t["count"]:
            continue
        rows.append(
            (
                f"orders/s to {state.upper()} (sustained | overall)",
                f"{fmt(t['sustained_per_s'])} | {fmt(t['overall_per_s'])}  ({fmt(t['count'])} orders)",
            )
        )
        for clock in ("event_time", "consume_time"):
            s = latency[state][clock]
            rows.append(
                (
                    f"latency to {state.upper()} ({clock.replace('_', ' ')})",
                    f"p50 {fmt(s['p50_ms'])}  p95 {fmt(s['p95_ms'])}  p99 {fmt(s['p99_ms'])}"
                    f"  max {fmt(s['max_ms'])} ms",
                )
            )
    accept = result.get("accept_latency")
    if accept and accept["count"]:
        rows.append(
            (
                "HTTP accept (202) latency",
                f"p50 {fmt(accept['p50_ms'])}  p99 {fmt(accept['p99_ms'])}  max {fmt(accept['max_ms'])} ms",
            )
        )
    outbox = result.get("outbox", {})
    duplicates = sum(o.get("messages", {}).get("duplicate", 0) for o in outbox.values())
    dead = sum(o.get("messages", {}).get("dead_letter", 0) for o in outbox.values())
    if outbox:
        rows.append(("redeliveries dropped by the inbox / dead letters", f"{duplicates} / {dead}"))
    correctness = result["correctness"]
    verdict = "PASSED" if correctness["passed"] else "FAILED"
    chaos = correctness.get("chaos")
    if chaos:
        facts = correctness["checks"].get("chaos invariants", {}).get("facts", {})
        by_service = ", ".join(f"{s} {n}" for s, n in sorted(chaos["kills_by_service"].items()))
        rows.append(
            (
                "chaos: kills / Kafka / Postgres crashes",
                f"{chaos['kills']} ({by_service}) / {chaos['kafka_restarts']}"
                f" / {chaos['postgres_restarts']}",
            )
        )
        rows.append(
            (
                "chaos: lost / duplicated / parked / cancelled / dead letters",
                " / ".join(
                    str(facts.get(k, "?"))
                    for k in ("lost", "duplicated", "parked", "cancelled", "dead_letters")
                ),
            )
        )
    backorders = correctness["checks"].get("backorders settled", {}).get("facts", {})
    if backorders.get("backordered"):
        rows.append(
            ("orders that waited in BACKORDERED (all settled)", str(backorders["backordered"]))
        )
    rows.append(("correctness", verdict))
    for name, check in correctness["checks"].items():
        if not check["passed"]:
            rows.extend((f"  {name}", problem) for problem in check["problems"])
    return rows


def process_rows(processes: Mapping[str, Mapping[str, float]]) -> list[tuple[str, str, str, str]]:
    return [
        (name, fmt(p["cpu_s"], " s"), fmt(p["cpu_cores"]), fmt(p["peak_rss_mb"], " MB"))
        for name, p in processes.items()
    ]


def lag_rows(result: Mapping[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    outbox = result.get("outbox", {})
    lag = result.get("consumer_lag", {})
    for service in sorted(set(outbox) | set(lag.get("peak", {}))):
        o = outbox.get(service, {})
        rows.append(
            (
                service,
                f"{fmt(o.get('outbox_rows_peak'))} / {fmt(o.get('outbox_oldest_row_peak_ms'))}",
                f"{fmt(o.get('outbox_lag_p50_ms'))} / {fmt(o.get('outbox_lag_p99_ms'))}",
                fmt(o.get("consumer_batch_mean")),
                fmt(lag.get("peak", {}).get(service)),
                fmt(lag.get("end", {}).get(service)),
            )
        )
    return rows


def render(result: Mapping[str, Any]) -> Group:
    head = Table(title=f"OMS benchmark — {result['label']}", show_header=False)
    head.add_column("what", style="bold")
    head.add_column("value")
    for what, value in headline_rows(result):
        style = None
        if what == "correctness":
            style = "bold green" if value == "PASSED" else "bold red"
        head.add_row(what, value, style=style)

    procs = Table(title="CPU and peak memory per process (measured window)")
    for column in ("process", "CPU", "cores", "peak RSS"):
        procs.add_column(column, justify="right" if column != "process" else "left")
    for row in process_rows(result["processes"]):
        procs.add_row(*row)

    lags = Table(title="Outbox and consumer lag")
    for column in (
        "service",
        "outbox rows / oldest ms (peak)",
        "outbox publish lag p50/p99 ms",
        "mean batch",
        "consumer lag peak",
        "consumer lag end",
    ):
        lags.add_column(column, justify="right" if column != "service" else "left")
    for lag_row in lag_rows(result):
        lags.add_row(*lag_row)
    return Group(head, procs, lags)


def comparison(results: Sequence[Mapping[str, Any]]) -> Table:
    """One row per run: the table the issue asks for."""
    table = Table(title="OMS benchmark runs")
    for column in (
        "run",
        "orders",
        "rate",
        "repl.",
        "ingress",
        "/s CONFIRMED",
        "/s COMPLETED",
        "CONFIRMED p50/p99 ms",
        "COMPLETED p50/p99 ms",
        "load",
        "correct",
    ):
        table.add_column(column)
    for r in results:
        c = r["config"]
        lat = r["latency"]
        table.add_row(
            r["label"],
            fmt(c["orders"]),
            str(c["rate"]),
            str(c["replicas"]),
            c["ingress"],
            fmt(r["throughput"]["confirmed"]["sustained_per_s"]),
            fmt(r["throughput"].get("completed", {}).get("sustained_per_s")),
            f"{fmt(lat['confirmed']['event_time']['p50_ms'])}/{fmt(lat['confirmed']['event_time']['p99_ms'])}",
            f"{fmt(lat['completed']['event_time']['p50_ms'])}/{fmt(lat['completed']['event_time']['p99_ms'])}",
            str(r["environment"]["load_before"][0]),
            "yes" if r["correctness"]["passed"] else "NO",
        )
    return table


def write_json(result: Mapping[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result['label']}.json"
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return path


def print_result(result: Mapping[str, Any], console: Console | None = None) -> None:
    (console or Console()).print(render(result))


def compare_files(paths: Sequence[Path]) -> None:
    results = [orjson.loads(p.read_bytes()) for p in paths]
    Console().print(comparison(results))
