"""`oms connectors …`: what the channel connector is doing for each channel account — the
accounts and their poll cursors, the pushes (shipments, cancellations, refunds, order fetches)
and their failures, a dead push sent again, a poll now. Everything goes through the connector's
API (OMS_CHANNEL_CONNECTOR_URL)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from shared.ops.client import OpsClient
from shared.ops.terminal import ops_client, print_json

connectors_app = typer.Typer(
    no_args_is_help=True,
    help="The channel connector: accounts, pushes to the channels, retries, polls.",
)
SERVICE = "channel_connector"


def _call(
    method: str, path: str, params: dict[str, str | int | float | bool] | None = None
) -> dict[str, Any]:
    with ops_client(OpsClient) as client:
        return client.request(SERVICE, method, path, params=params)


def _cell(value: Any) -> Text:
    return Text("" if value is None else str(value))


@connectors_app.command("list")
def connectors_list(
    as_json: bool = typer.Option(False, "--json", help="print the accounts as JSON"),
) -> None:
    """The accounts, what each does, and where each poll is."""
    found = _call("GET", "/v1/connectors")
    if as_json:
        print_json(found)
        return
    out = Console()
    if not found["accounts"]:
        out.print(Text("no channel accounts configured (OMS_CONNECTOR_ACCOUNTS)"))
        return
    for account in found["accounts"]:
        out.print(Text(f"{account['name']} ({account['channel']})", style="bold"))
        out.print(Text(f"  does: {', '.join(account['capabilities']) or 'nothing'}"))
        if "poll_orders" in account["capabilities"]:
            out.print(
                Text(
                    f"  polled {account['polled_at'] or 'never'}, cursor"
                    f" {account['cursor_at'] or '-'}, {account['orders_handed_on']} handed on"
                )
            )
        if account.get("last_poll_error"):
            out.print(Text(f"  last poll failed: {account['last_poll_error']}", style="red"))


@connectors_app.command("pushes")
def connectors_pushes(
    status: str | None = typer.Option(None, "--status", help="pending, done, dead or skipped"),
    kind: str | None = typer.Option(
        None, "--kind", help="shipment, cancellation, refund or fetch_order"
    ),
    order_id: str | None = typer.Option(None, "--order", help="one order's pushes"),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=500),
    as_json: bool = typer.Option(False, "--json", help="print the pushes as JSON"),
) -> None:
    """Pushes to the channels, newest first: one block each (reads on 80 columns)."""
    params: dict[str, str | int | float | bool] = {"limit": limit}
    for name, value in (("status", status), ("kind", kind), ("order_id", order_id)):
        if value:
            params[name] = value
    found = _call("GET", "/v1/connectors/pushes", params)
    if as_json:
        print_json(found)
        return
    out = Console()
    if not found["pushes"]:
        out.print(Text("no pushes"))
        return
    for push in found["pushes"]:
        style = {"dead": "red", "pending": "yellow"}.get(push["status"], "")
        out.print(
            Text(
                f"#{push['push_id']} {push['kind']} {push['status']} ({push['account']})",
                style=style or "bold",
            )
        )
        out.print(Text(f"  key {push['key']}  order {push['order_id'] or '-'}"))
        out.print(Text(f"  attempts {push['attempts']}, updated {push['updated_at']}"))
        if push.get("channel_reference"):
            out.print(Text(f"  on the channel: {push['channel_reference']}"))
        if push.get("last_error"):
            out.print(Text(f"  last error: {push['last_error']}"))


@connectors_app.command("stock")
def connectors_stock(
    account: str | None = typer.Option(None, "--account"),
    sku: str | None = typer.Option(None, "--sku"),
    as_json: bool = typer.Option(False, "--json", help="print the levels as JSON"),
) -> None:
    """The stock level of each SKU per account and what the channel was last told."""
    params: dict[str, str | int | float | bool] = {}
    if account:
        params["account"] = account
    if sku:
        params["sku"] = sku
    found = _call("GET", "/v1/connectors/stock", params)
    if as_json:
        print_json(found)
        return
    table = Table(title="stock levels to the channels")
    for column in ("account", "sku", "level", "told", "pushes"):
        table.add_column(
            column, justify="right" if column in ("level", "told", "pushes") else "left"
        )
    for row in found["levels"]:
        table.add_row(
            _cell(row["account"]),
            _cell(row["sku"]),
            _cell(row["quantity"]),
            _cell(row["pushed_quantity"]),
            _cell(row["push_count"]),
        )
    Console().print(table)


@connectors_app.command("retry")
def connectors_retry(push_id: int = typer.Argument(..., help="the dead push's number")) -> None:
    """Send a dead push again (its attempts start over)."""
    push = _call("POST", f"/v1/connectors/pushes/{push_id}/retry")
    Console().print(
        Text(f"push #{push['push_id']} ({push['kind']} {push['key']}) is pending again")
    )


@connectors_app.command("poll")
def connectors_poll(account: str = typer.Argument(..., help="the account's name")) -> None:
    """Poll the account's channel for changed orders now."""
    answer = _call("POST", f"/v1/connectors/{quote(account, safe='')}/poll")
    Console().print(Text(f"{answer['account']}: {answer['handed_on']} order version(s) handed on"))
