"""`oms warehouse …`: the warehouse staff's terminal — the floor's set-up, the day's queue,
pick lists (release, claim, pick by scan, empty bins), packing (parcels, scans, weighing),
labels (buy, reprint, void) and shipping. Everything goes through fulfilment's API."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from shared.ops.client import OpsClient
from shared.ops.terminal import fail, ops_client, print_json
from shared.ops.warehouse_seed import DEFAULT_SEED, apply_seed, load_seed

warehouse_app = typer.Typer(
    no_args_is_help=True,
    help="The warehouse floor: set-up, queue, pick lists, packing, labels, shipping.",
)
out = Console()


def _seg(value: str) -> str:
    return quote(value, safe="")


def _call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    with ops_client(OpsClient) as client:
        return client.request("fulfilment", method, path, json=body)


def _print_pick_list(p: dict[str, Any]) -> None:
    picker = f", picker {p['picker']}" if p.get("picker") else ""
    where = "".join(f", {k} {p[k]}" for k in ("wave", "zone") if p.get(k) is not None)
    out.print(
        Text(
            f"pick list {p['pick_list_id']}: {p['status']} ({p['strategy']}{where}{picker}),"
            f" {len(p['stops'])} stop(s), {p['walk_m']} m"
        )
    )
    table = Table(box=None, pad_edge=False)
    for column in ("stop", "bin", "sku", "qty", "picked", "short", "to"):
        table.add_column(column, justify="right" if column in ("stop", "qty") else "left")
    for s in p["stops"]:
        to = ", ".join(
            f"tote {put['tote']}:{put['quantity']}"
            if put["tote"] is not None
            else f"{put['fulfilment_id'][:8]}:{put['quantity']}"
            for put in s["puts"]
        )
        table.add_row(
            str(s["stop"]),
            s["bin"],
            Text(s["sku"]),
            str(s["quantity"]),
            str(s["picked"]),
            str(s["short"]),
            Text(to),
        )
    out.print(table)


def _print_parcel(p: dict[str, Any]) -> None:
    label = f", {p['carrier']} {p['service']} {p['tracking_number']}" if p["carrier"] else ""
    held = f" — held: {p['hold_reason']}" if p.get("hold_reason") else ""
    lines = ", ".join(f"{ln['sku']} {ln['scanned']}/{ln['quantity']}" for ln in p["lines"])
    out.print(
        Text(
            f"parcel {p['number']} {p['parcel_id']}: {p['status']}, box {p['box']},"
            f" {p['measured_weight_g'] or p['expected_weight_g']} g{label}{held}"
        )
    )
    out.print(Text(f"  {lines}"))


@warehouse_app.command("seed")
def seed(
    path: Path = typer.Argument(DEFAULT_SEED, help="a seed file (JSON)", exists=True),
) -> None:
    """Set up locations, their zones and bins, items and boxes from a seed file."""
    try:
        loaded = load_seed(path)
    except ValueError as exc:
        fail(str(exc))
    with ops_client(OpsClient) as client:
        for line in apply_seed(client, loaded):
            out.print(Text(line))


@warehouse_app.command("queue")
def queue(location: str = typer.Argument(..., help="the location code")) -> None:
    """The day's queue: fulfilments waiting for a pick list, pick lists by status."""
    found = _call("GET", f"/v1/locations/{_seg(location)}/queue")
    out.print(Text(f"{location}: {found['waiting_fulfilments']} fulfilment(s) waiting"))
    for status, count in sorted(found["pick_lists"].items()):
        out.print(Text(f"  {status}: {count} pick list(s)"))


@warehouse_app.command("release")
def release(
    location: str = typer.Argument(..., help="the location code"),
    strategy: str = typer.Option(
        "batch", "--strategy", "-s", help="single_order, batch, zone or wave"
    ),
    batch: int = typer.Option(8, "--batch", help="orders per cart (totes)"),
    limit: int = typer.Option(200, "--limit", "-n", help="at most this many fulfilments"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Put the location's waiting fulfilments on pick lists."""
    body = {"strategy": strategy, "orders_per_batch": batch, "max_fulfilments": limit}
    found = _call("POST", f"/v1/locations/{_seg(location)}/pick-lists", body)
    if as_json:
        print_json(found)
        return
    for p in found["pick_lists"]:
        _print_pick_list(p)
    for s in found["short"]:
        out.print(Text(f"short: {s['sku']} x{s['missing']} for {s['fulfilment_id']}"))
    for s in found["skipped"]:
        out.print(Text(f"left waiting: {s['fulfilment_id']} ({s['sku']}: {s['reason']})"))
    out.print(Text(f"{len(found['pick_lists'])} pick list(s) released"))


@warehouse_app.command("lists")
def lists(
    location: str | None = typer.Option(None, "--location", "-l"),
    status: list[str] = typer.Option([], "--status", "-s", help="repeatable"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Pick lists, by wave then age (one line each)."""
    with ops_client(OpsClient) as client:
        params: dict[str, Any] = {"limit": 100}
        if location:
            params["location"] = location
        found = client.request("fulfilment", "GET", "/v1/pick-lists", params=params)
    rows = [p for p in found["pick_lists"] if not status or p["status"] in status]
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print(Text("no pick lists"))
    for p in rows:
        out.print(
            Text(
                f"{p['pick_list_id']}  {p['status']:<8} {p['strategy']:<12}"
                f" {len(p['stops']):>3} stops  {p['picker'] or ''}"
            )
        )


@warehouse_app.command("show")
def show(pick_list_id: str = typer.Argument(...)) -> None:
    """A pick list's stops in walking order, with what was picked."""
    _print_pick_list(_call("GET", f"/v1/pick-lists/{_seg(pick_list_id)}"))


@warehouse_app.command("claim")
def claim(pick_list_id: str = typer.Argument(...)) -> None:
    """Take a pick list (as the token's user)."""
    _print_pick_list(_call("POST", f"/v1/pick-lists/{_seg(pick_list_id)}/claim"))


@warehouse_app.command("pick")
def pick(
    pick_list_id: str = typer.Argument(...),
    stop: int = typer.Argument(..., help="the stop number"),
    barcode: str = typer.Argument(..., help="the scanned barcode"),
    quantity: int = typer.Option(1, "--quantity", "-q"),
) -> None:
    """Confirm units taken at a stop by their scanned barcode."""
    body = {"stop": stop, "barcode": barcode, "quantity": quantity}
    _print_pick_list(_call("POST", f"/v1/pick-lists/{_seg(pick_list_id)}/picks", body))


@warehouse_app.command("empty")
def empty(pick_list_id: str = typer.Argument(...), stop: int = typer.Argument(...)) -> None:
    """The stop's bin is empty: report the short pick."""
    _print_pick_list(_call("POST", f"/v1/pick-lists/{_seg(pick_list_id)}/stops/{stop}/empty"))


@warehouse_app.command("pack")
def pack(fulfilment_id: str = typer.Argument(...)) -> None:
    """Open parcels for a picked fulfilment (the box chooser plans them)."""
    for p in _call("POST", f"/v1/fulfilments/{_seg(fulfilment_id)}/parcels")["parcels"]:
        _print_parcel(p)


@warehouse_app.command("scan")
def scan(
    parcel_id: str = typer.Argument(...),
    barcode: str = typer.Argument(...),
    quantity: int = typer.Option(1, "--quantity", "-q"),
) -> None:
    """Scan units into a parcel."""
    body = {"barcode": barcode, "quantity": quantity}
    _print_parcel(_call("POST", f"/v1/parcels/{_seg(parcel_id)}/scan", body))


@warehouse_app.command("close")
def close(
    parcel_id: str = typer.Argument(...),
    weight: int | None = typer.Option(None, "--weight", "-w", help="measured grams"),
) -> None:
    """Close a fully scanned parcel (held when the weight is off)."""
    body = {"measured_weight_g": weight} if weight else {}
    _print_parcel(_call("POST", f"/v1/parcels/{_seg(parcel_id)}/close", body))


@warehouse_app.command("label")
def label(
    parcel_id: str = typer.Argument(...),
    carrier: str | None = typer.Option(None, "--carrier", "-c", help="one carrier only"),
) -> None:
    """Buy the parcel's label (the cheapest rate meeting the order's promise)."""
    body = {"carrier": carrier} if carrier else {}
    _print_parcel(_call("POST", f"/v1/parcels/{_seg(parcel_id)}/label", body))


@warehouse_app.command("reprint")
def reprint(
    parcel_id: str = typer.Argument(...),
    output: Path = typer.Option(..., "--output", "-o", help="where to write it"),
    kind: str = typer.Option("pdf", "--kind", "-k", help="pdf, zpl or slip"),
) -> None:
    """Write the parcel's label (PDF or ZPL) or packing slip to a file."""
    paths = {"pdf": "label.pdf", "zpl": "label.zpl", "slip": "slip.pdf"}
    if kind not in paths:
        fail(f"--kind: one of {', '.join(paths)}")
    with ops_client(OpsClient) as client:
        content = client.document("fulfilment", f"/v1/parcels/{_seg(parcel_id)}/{paths[kind]}")
    output.write_bytes(content)
    out.print(Text(f"wrote {output} ({len(content)} bytes)"))


@warehouse_app.command("void")
def void(parcel_id: str = typer.Argument(...)) -> None:
    """Void the parcel's label with its carrier."""
    _print_parcel(_call("POST", f"/v1/parcels/{_seg(parcel_id)}/void"))


@warehouse_app.command("ship")
def ship(parcel_id: str = typer.Argument(...)) -> None:
    """Hand a labelled parcel to the carrier."""
    _print_parcel(_call("POST", f"/v1/parcels/{_seg(parcel_id)}/ship"))
