"""The `oms` command for operators and developers (typer + rich).

The operator commands (orders, stock, dlq) work wherever the package is installed. The
development commands (`run`, `infra ...`, `migrate` on the local infrastructure, `token` with
the local signing key) need a checkout with its `devtools` package, imported only when one of
them runs: the service image does not ship it, and there they answer with one line saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import importlib.util
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from shared.ops.client import OpsClient, OpsClientError
from shared.ops.connector_cli import connectors_app
from shared.ops.layout import blocks, fit_columns
from shared.ops.report_cli import report
from shared.ops.terminal import fail, ops_client, print_json
from shared.ops.warehouse_cli import warehouse_app
from shared.platform.settings import OpsSettings
from shared.topics import SERVICES

if TYPE_CHECKING:
    from devtools.runner import Environment

app = typer.Typer(
    no_args_is_help=True,
    help="Operate the OMS: orders, stock, dead letters, local infrastructure.",
)
infra_app = typer.Typer(no_args_is_help=True, help="Local Kafka and Postgres (no Docker needed).")
dlq_app = typer.Typer(no_args_is_help=True, help="Dead letters: list and replay.")
app.add_typer(infra_app, name="infra")
app.add_typer(dlq_app, name="dlq")
orders_app = typer.Typer(
    no_args_is_help=True,
    help="Orders: list, show one with its timeline, find stuck ones, retry or compensate them,"
    " hold, release or reject them.",
)
app.add_typer(orders_app, name="orders")
app.add_typer(warehouse_app, name="warehouse")
app.add_typer(connectors_app, name="connectors")
app.command("report")(report)
token_app = typer.Typer(no_args_is_help=True, help="Local bearer tokens (make run's signing key).")
app.add_typer(token_app, name="token")
# The local key only `make run`'s services trust: a cluster's services trust the provider's.
_FROM_THE_PROVIDER = "; in a cluster the identity provider issues tokens (give one in OMS_TOKEN)"


@token_app.command("issue")
def token_issue(
    role: list[str] = typer.Option([], "--role", help="admin, operator, customer_service, ..."),
    channel: list[str] = typer.Option([], "--channel", help="adds the role channel:<name>"),
    carrier: list[str] = typer.Option([], "--carrier", help="adds the role carrier:<name>"),
    ttl: int = typer.Option(3600, "--ttl", help="seconds until it expires"),
    subject: str | None = typer.Option(None, "--subject", help="who it is for (audit)"),
) -> None:
    """Sign a token with the local key (.local/auth/), for the services `make run` started."""
    _require_devtools("token issue", _FROM_THE_PROVIDER)
    from shared.ops.tokens import local_keys

    roles = [*role, *(f"channel:{c}" for c in channel), *(f"carrier:{c}" for c in carrier)]
    if not roles:
        raise typer.BadParameter("give at least one --role, --channel or --carrier")
    typer.echo(local_keys().issue(roles, subject=subject, ttl_s=ttl))


@token_app.command("rotate-key")
def token_rotate_key() -> None:
    """A new local signing key; the old one stays in the JWKS until retired."""
    _require_devtools("token rotate-key", _FROM_THE_PROVIDER)
    from shared.ops.tokens import local_keys

    typer.echo(local_keys().rotate())


console = Console()


def _require_devtools(command: str, instead: str = "") -> None:
    """One clear line, not a traceback, where the development tooling is not installed."""
    if importlib.util.find_spec("devtools") is None:
        _fail(
            f"`oms {command}` is a development command: it needs a checkout of the repository"
            f" (the devtools package is not installed here, as in the service image){instead}"
        )


def _local_infra(command: str) -> ModuleType:
    """devtools.localinfra (the local Kafka and Postgres), imported on first use."""
    _require_devtools(command)
    from devtools import localinfra

    return localinfra


def _local_system(command: str, instead: str = "") -> tuple[Environment, dict[str, list[str]]]:
    """The local infrastructure up, the topics created and every service's schema migrated:
    the environment and the migrations applied per service."""
    _require_devtools(command, instead)
    from devtools import runner

    env = runner.prepare()
    return env, runner.migrate_all(env)


@infra_app.command("up")
def infra_up() -> None:
    """Start Kafka and Postgres (or use OMS_KAFKA_BOOTSTRAP / OMS_DATABASE_URL), create topics,
    provision one schema and role per service, and apply migrations."""
    env, applied = _local_system("infra up")
    console.print(f"Kafka {env.kafka_bootstrap}; Postgres ready; topics created.")
    for service, names in applied.items():
        if names:
            console.print(f"  {service}: applied {', '.join(names)}")


@infra_app.command("down")
def infra_down() -> None:
    """Stop what `infra up` started (data is kept)."""
    _local_infra("infra down").down()
    console.print("stopped")


@infra_app.command("status")
def infra_status() -> None:
    """What runs locally: ports, pids, data folders."""
    console.print_json(json.dumps(_local_infra("infra status").status(), default=str))


@infra_app.command("clean")
def infra_clean() -> None:
    """Stop and delete local data (downloaded Kafka jars are kept)."""
    _local_infra("infra clean").clean()
    console.print("cleaned")


@app.command("migrate")
def migrate() -> None:
    """Apply pending migrations of every service (on the local infrastructure)."""
    _, applied = _local_system(
        "migrate", "; in a cluster: `python -m shared.ops.migrate <service>`"
    )
    for service, names in applied.items():
        console.print(f"{service}: {', '.join(names) if names else 'up to date'}")


@app.command("run")
def run() -> None:
    """Start the infrastructure and all five services in the foreground (Ctrl-C stops them)."""
    env, _ = _local_system("run")
    from devtools import runner

    raise typer.Exit(runner.run_all(env))


def _bootstrap(settings: OpsSettings) -> str:
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    return f"127.0.0.1:{settings.kafka_port}"


def _check_service(service: str) -> str:
    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    return service


@dlq_app.command("list")
def dlq_list(
    service: str = typer.Argument(..., help="consumer group (service) whose dead letters to list"),
    show_all: bool = typer.Option(False, "--all", help="include dead letters already replayed"),
) -> None:
    from shared.ops.dlq import list_dead_letters

    settings = OpsSettings()
    letters = asyncio.run(
        list_dead_letters(
            _bootstrap(settings), _check_service(service), prefix=settings.topic_prefix
        )
    )
    table = Table(title=f"dead letters of {service}")
    for column in ("offset", "type", "reason", "attempts", "from", "error", "replayed"):
        table.add_column(column)
    for d in letters:
        if d.replayed and not show_all:
            continue
        table.add_row(
            str(d.offset),
            d.message_type,
            d.reason,
            d.headers.get("x-dlq-attempts", ""),
            f"{d.original_topic}/{d.headers.get('x-dlq-original-partition', '')}"
            f"@{d.headers.get('x-dlq-original-offset', '')}",
            d.error[:120],
            "yes" if d.replayed else ("truncated: see dead_letter_overflow" if d.truncated else ""),
        )
    console.print(table)


@dlq_app.command("replay")
def dlq_replay(
    service: str = typer.Argument(
        ..., help="consumer group (service) whose dead letters to replay"
    ),
    offset: list[int] = typer.Option(None, "--offset", help="replay only these offsets"),
) -> None:
    """Send dead letters back to the topic they came from (all not yet replayed, or --offset)."""
    from shared.ops.dlq import replay_dead_letters

    settings = OpsSettings()
    replayed = asyncio.run(
        replay_dead_letters(
            _bootstrap(settings),
            _check_service(service),
            prefix=settings.topic_prefix,
            offsets=set(offset) if offset else None,
        )
    )
    console.print(f"replayed {len(replayed)} dead letter(s): {[d.offset for d in replayed]}")


# --- orders and stock, through the services' HTTP APIs ----------------------------------------


def _text(value: object) -> Text:
    """A table cell taken literally: values from the APIs are never read as rich markup."""
    return Text("" if value is None else str(value))


def _print_fitted(
    out: Console,
    title: str,
    headers: tuple[str, ...],
    rows: Sequence[Sequence[object]],
    *,
    keep: tuple[str, ...],
    importance: tuple[str, ...],
) -> None:
    """A table that fits the terminal (shared/ops/layout.py): every column when they all fit;
    else the `keep` columns in full and the others that fit, most important first; below the
    width the `keep` columns need, one block per row. The key columns are never cut."""
    cells = [tuple("" if value is None else str(value) for value in row) for row in rows]
    fit = fit_columns(headers, cells, out.width, keep=keep, importance=importance)
    if fit.columns is None:
        out.print(Text(title, style="bold"))
        for line in blocks(headers, cells, out.width, heading=keep[:2]):
            out.print(Text(line), soft_wrap=True)
        return
    table = Table(title=title)
    for i in fit.columns:
        table.add_column(headers[i], no_wrap=headers[i] in keep)
    for row in cells:
        table.add_row(*(Text(row[i]) for i in fit.columns))
    out.print(table)
    if fit.dropped:
        out.print(
            Text(f"(not shown at {out.width} columns: {', '.join(fit.dropped)}; widen or --json)")
        )


def _when(value: str | None) -> str:
    """A timestamp from the APIs, in UTC to the millisecond."""
    if not value:
        return ""
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return value
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _detail(detail: object) -> str:
    if not isinstance(detail, dict):
        return "" if detail is None else json.dumps(detail, default=str)
    parts = []
    for key, value in detail.items():
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        parts.append(f"{key}={shown}")
    return ", ".join(parts)


def _operator() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment: the action is still recorded
        return None


@contextlib.contextmanager
def _ops_client() -> Iterator[OpsClient]:
    with ops_client(OpsClient) as client:  # looked up here, so tests can swap the client
        yield client


_fail = fail
_print_json = print_json


@orders_app.command("list")
def orders_list(
    status: str | None = typer.Option(None, "--status", "-s", help="only orders in this status"),
    channel: str | None = typer.Option(None, "--channel", "-c", help="only this channel's"),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="at most this many (newest first)"),
    as_json: bool = typer.Option(False, "--json", help="print the orders as JSON"),
) -> None:
    """List orders, newest first (follows the API's pages up to --limit)."""
    out = Console()
    with _ops_client() as client, out.status("fetching orders…") as progress:
        orders, more = client.orders(
            status=status.upper() if status else None,
            channel=channel,
            limit=limit,
            on_page=lambda n: progress.update(f"fetching orders… {n}"),
        )
    if as_json:
        _print_json({"orders": orders, "more": more})
        return
    filters = ", ".join(f"{k} {v}" for k, v in (("status", status), ("channel", channel)) if v)
    _print_fitted(
        out,
        f"orders{f' ({filters})' if filters else ''}",
        ("order", "status", "channel", "external id", "total", "created", "updated"),
        [
            (
                order["order_id"],
                order["status"],
                order["channel"],
                order.get("external_id"),
                f"{order['total']} {order['currency']}",
                _when(order["created_at"]),
                _when(order["updated_at"]),
            )
            for order in orders
        ],
        keep=("order", "status"),
        importance=("channel", "total", "created", "external id", "updated"),
    )
    suffix = f"; more match (raise --limit above {limit})" if more else ""
    out.print(Text(f"{len(orders)} order(s){suffix}"))


@orders_app.command("show")
def orders_show(
    order_id: str = typer.Argument(..., help="the order id (ord_...)"),
    as_json: bool = typer.Option(False, "--json", help="print everything as JSON"),
) -> None:
    """Status, totals, lines, the full timeline, payments, fulfilments and the order's trace.

    Payments and fulfilments come from the payment and fulfilment services; when one of them
    cannot be reached the rest is still shown, the gap is named, and the exit code is 1.
    """
    out = Console()
    problems: list[str] = []
    with _ops_client() as client, out.status(f"looking up {order_id}…"):
        order = client.order(order_id)
        payments: list[dict[str, Any]] | None = None
        fulfilments: list[dict[str, Any]] | None = None
        try:
            payments = client.payments(order_id)
        except OpsClientError as exc:
            problems.append(f"payments unknown: {exc}")
        try:
            fulfilments = client.fulfilments(order_id)
        except OpsClientError as exc:
            problems.append(f"fulfilments unknown: {exc}")
        trace_id = order.get("trace_id")
        trace_url = client.trace_url(trace_id) if trace_id else None
    if as_json:
        _print_json(
            {
                "order": order,
                "payments": payments,
                "fulfilments": fulfilments,
                "trace_url": trace_url,
                "problems": problems,
            }
        )
    else:
        _render_order(out, order, trace_url)
        _render_payments(out, payments)
        _render_fulfilments(out, fulfilments)
    if problems:
        err = Console(stderr=True)
        for problem in problems:
            err.print(Text(f"warning: {problem}", style="yellow"))
        raise typer.Exit(1)


def _render_order(out: Console, order: dict[str, Any], trace_url: str | None) -> None:
    totals = order["totals"]
    saga = order.get("saga") or {}
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("order", _text(order["order_id"]))
    summary.add_row("status", _text(order["status"]))
    if order.get("reason"):
        summary.add_row("reason", _text(order["reason"]))
    if order.get("cancel_requested"):
        summary.add_row("cancel requested", _text(order["cancel_requested"]))
    channel = order["channel"] + (f" ({order['external_id']})" if order.get("external_id") else "")
    summary.add_row("channel", _text(channel))
    summary.add_row(
        "created / updated", _text(f"{_when(order['created_at'])} / {_when(order['updated_at'])}")
    )
    if saga.get("step"):
        summary.add_row(
            "waiting on",
            _text(
                f"{saga['step']} (attempt {saga['attempt']}, deadline "
                f"{_when(saga.get('deadline_at')) or 'none'})"
            ),
        )
    payment = order.get("payment") or {}
    summary.add_row(
        "payment",
        _text(
            f"{payment.get('status')} (captured {payment.get('captured_total')} "
            f"{totals['currency']})"
        ),
    )
    summary.add_row(
        "totals",
        _text(
            f"subtotal {totals['subtotal']}, discount {totals['discount']}, shipping "
            f"{totals['shipping']}, tax {totals['tax']}, total {totals['total']} "
            f"{totals['currency']}"
        ),
    )
    out.print(summary)
    trace_id = order.get("trace_id")
    out.print(Text(f"trace id: {trace_id or 'unknown'}"))
    if trace_url:
        out.print(Text.assemble("jaeger: ", (trace_url, f"link {trace_url}")))

    lines = Table(title="lines")
    for column in ("line", "sku", "quantity", "unit price", "line total"):
        lines.add_column(column, justify="right" if column in {"quantity"} else "left")
    for line in order["lines"]:
        lines.add_row(
            _text(line["line_id"]),
            _text(line["sku"]),
            _text(line["quantity"]),
            _text(line["unit_price"]),
            _text(line["line_total"]),
        )
    out.print(lines)

    timeline = Table(title=f"timeline ({len(order['timeline'])} entries)")
    for column in ("at (UTC)", "status", "event", "detail"):
        timeline.add_column(column, no_wrap=column != "detail")
    for entry in order["timeline"]:
        timeline.add_row(
            _text(_when(entry["at"])),
            _text(entry["status"]),
            _text(entry["event"]),
            _text(_detail(entry.get("detail"))),
        )
    out.print(timeline)


def _print_section(
    out: Console, title: str, columns: tuple[str, ...], rows: list[tuple[object, ...]]
) -> None:
    """One table of the order's view, or one line when it is empty."""
    if not rows:
        out.print(Text(f"{title}: none"))
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_text(value) for value in row))
    out.print(table)


def _render_payments(out: Console, payments: list[dict[str, Any]] | None) -> None:
    if payments is None:  # unknown: the problem is named below the view
        return
    columns = ("payment", "status", "amount", "captured", "refunded", "operations")
    rows: list[tuple[object, ...]] = []
    for payment in payments:
        operations = ", ".join(
            f"{op['kind']} {op['amount']} {op['outcome']}" for op in payment.get("operations", [])
        )
        rows.append(
            (
                payment["payment_id"],
                payment["status"],
                f"{payment['amount']} {payment['currency']}",
                payment.get("captured_total"),
                payment.get("refunded_total"),
                operations,
            )
        )
    _print_section(out, "payments", columns, rows)


def _render_fulfilments(out: Console, fulfilments: list[dict[str, Any]] | None) -> None:
    if fulfilments is None:
        return
    columns = ("fulfilment", "location", "status", "carrier", "tracking", "lines", "updated")
    rows: list[tuple[object, ...]] = []
    for fulfilment in fulfilments:
        lines = ", ".join(f"{ln['sku']} x{ln['quantity']}" for ln in fulfilment.get("lines", []))
        rows.append(
            (
                fulfilment["fulfilment_id"],
                fulfilment["location"],
                fulfilment["status"],
                fulfilment.get("carrier"),
                fulfilment.get("tracking_number"),
                lines,
                _when(fulfilment.get("updated_at")),
            )
        )
    _print_section(out, "fulfilments", columns, rows)


@orders_app.command("stuck")
def orders_stuck(
    grace: float = typer.Option(
        0.0, "--grace", min=0, help="seconds past its deadline before an order counts as stuck"
    ),
    retrying: bool = typer.Option(
        False, "--retrying", help="also list orders whose step was already re-sent"
    ),
    limit: int = typer.Option(200, "--limit", "-n", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="print the stuck orders as JSON"),
) -> None:
    """Orders in NEEDS_ATTENTION and orders whose saga deadline is overdue."""
    out = Console()
    with _ops_client() as client:
        found = client.stuck_orders(grace_s=grace, include_retrying=retrying, limit=limit)
    if as_json:
        _print_json(found)
        return
    orders = found["orders"]
    if not orders:
        out.print(Text("no stuck orders"))
        return
    rows = []
    for order in orders:
        step = order.get("step") or (
            f"{order['parked_step']} (parked)" if order.get("parked_step") else ""
        )
        overdue = order.get("overdue_s")
        rows.append(
            (
                order["order_id"],
                order["status"],
                order["stuck_because"],
                step,
                order["attempt"] or "",
                _when(order.get("deadline_at")),
                f"{overdue:.0f}s" if overdue is not None else "",
                order.get("reason"),
                _when(order["updated_at"]),
            )
        )
    _print_fitted(
        out,
        f"stuck orders ({len(orders)})",
        ("order", "status", "why", "step", "attempt", "deadline", "overdue", "reason", "updated"),
        rows,
        keep=("order", "status", "why", "reason"),
        importance=("step", "overdue", "deadline", "updated", "attempt"),
    )
    out.print(
        Text(
            "act with `oms orders retry ID` (re-send what it waits for) or "
            "`oms orders compensate ID` (undo and cancel, or cancel what has not shipped)"
        )
    )


def _operator_action(action: str, order_id: str, note: str | None) -> None:
    out = Console()
    with _ops_client() as client:
        result = client.operator_action(order_id, action, by=_operator(), note=note)
    sent = ", ".join(result["sent"]) or "nothing"
    out.print(
        Text(
            f"{action} of {result['order_id']} accepted: {result['previous_status']} -> "
            f"{result['status']}; sent {sent}"
        )
    )
    if result.get("step"):
        out.print(
            Text(
                f"waiting on {result['step']} (attempt {result['attempt']}, deadline "
                f"{_when(result.get('deadline_at'))}); follow it with `oms orders show "
                f"{result['order_id']}`"
            )
        )


@orders_app.command("retry")
def orders_retry(
    order_id: str = typer.Argument(..., help="the order id"),
    note: str | None = typer.Option(None, "--note", help="why, for the order's timeline"),
) -> None:
    """Re-send what the order waits for, or resume the step it was parked in.

    Commands are re-sent with their original idempotency keys, so nothing happens twice.
    """
    _operator_action("retry", order_id, note)


@orders_app.command("compensate")
def orders_compensate(
    order_id: str = typer.Argument(..., help="the order id"),
    note: str | None = typer.Option(None, "--note", help="why, for the order's timeline"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
) -> None:
    """Undo what was done and cancel the order, or the unshipped rest of a partly shipped one.

    Releases the stock, voids the payment and cancels fulfilment, as far as each was done. Once
    part of the order shipped, only what has not left is cancelled: the parcels that left stay
    shipped and charged (their unconfirmed captures are sent again), the rest is cancelled at
    the warehouse, its stock released and never charged. Refused once everything shipped.
    """
    if not yes:
        typer.confirm(
            f"Cancel order {order_id} (what has not shipped of it) and undo what was done?",
            abort=True,
        )
    _operator_action("compensate", order_id, note)


def _hold_action(action: str, order_id: str, note: str | None, reason: str | None = None) -> None:
    out = Console()
    with _ops_client() as client:
        result = client.hold_action(order_id, action, reason=reason, by=_operator(), note=note)
    sent = ", ".join(result["sent"]) or "nothing"
    out.print(
        Text(
            f"{action} of {result['order_id']} accepted: {result['previous_status']} -> "
            f"{result['status']}; sent {sent}"
        )
    )
    hold = result.get("hold")
    if hold:
        out.print(
            Text(
                f"on hold ({hold['reason']}) by {hold['by']}; operators are alerted if it is"
                f" still held at {_when(hold['alert_at'])}"
            )
        )


@orders_app.command("hold")
def orders_hold(
    order_id: str = typer.Argument(..., help="the order id"),
    reason: str = typer.Option(
        ..., "--reason", help="address_check, customer_request, fraud_review, or free text"
    ),
    note: str | None = typer.Option(None, "--note", help="more on why, for the timeline"),
) -> None:
    """Hold an order from fulfilment: it is authorised, then waits in ON_HOLD until released.

    Refused once the order went to fulfilment.
    """
    _hold_action("hold", order_id, note, reason)


@orders_app.command("release")
def orders_release(
    order_id: str = typer.Argument(..., help="the order id"),
    note: str | None = typer.Option(None, "--note", help="why, for the order's timeline"),
) -> None:
    """Release a held order (a fraud review's approval): it goes to fulfilment."""
    _hold_action("release", order_id, note)


@orders_app.command("reject")
def orders_reject(
    order_id: str = typer.Argument(..., help="the order id"),
    note: str | None = typer.Option(None, "--note", help="why, for the order's timeline"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
) -> None:
    """Reject a held order (a fraud review's reject): it is cancelled, its authorisation
    voided and its stock released."""
    if not yes:
        typer.confirm(f"Reject and cancel held order {order_id}?", abort=True)
    _hold_action("reject", order_id, note)


@app.command("stock")
def stock(
    sku: str = typer.Argument(..., help="the SKU"),
    as_json: bool = typer.Option(False, "--json", help="print the stock as JSON"),
) -> None:
    """On hand, reserved and available stock of a SKU, in total and per location (and what
    backorders wait for, what is incoming and what may still be promised, when any)."""
    out = Console()
    with _ops_client() as client:
        levels = client.stock(sku)
    if as_json:
        _print_json(levels)
        return
    table = Table(title=f"stock of {levels['sku']}")
    for column in ("location", "on hand", "reserved", "available"):
        table.add_column(column, justify="left" if column == "location" else "right")
    for row in levels["locations"]:
        table.add_row(
            _text(row["location"]),
            _text(row["on_hand"]),
            _text(row["reserved"]),
            _text(row["available"]),
        )
    table.add_section()
    table.add_row(
        Text("total", style="bold"),
        _text(levels["on_hand"]),
        _text(levels["reserved"]),
        _text(levels["available"]),
    )
    out.print(table)
    if levels.get("backordered") or levels.get("incoming"):
        out.print(
            f"backorders wait for {levels.get('backordered', 0)}, incoming"
            f" {levels.get('incoming', 0)}, available to promise"
            f" {levels.get('available_to_promise', levels['available'])}"
        )


def main() -> None:
    app()
