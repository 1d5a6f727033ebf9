"""The `oms` operator command against the five services as real processes on Kafka and Postgres:
the full timeline of a completed order, and orders stuck while payment is down found and
resolved with `oms orders stuck`, `retry` and `compensate`."""

from __future__ import annotations

import re
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from shared.ops import cli
from tests.support import auth
from tests.support.env import Infra
from tests.support.services import eventually
from tests.support.system import System, order_body, start_system

pytestmark = pytest.mark.integration

SHORT_DEADLINES = {
    "OMS_DEADLINE_POLL_INTERVAL_S": "0.2",
    "OMS_SAGA_PAYMENT_TIMEOUT_S": "2",
    "OMS_SAGA_MAX_ATTEMPTS": "2",
    "OMS_SAGA_COMPENSATION_TIMEOUT_S": "2",
}
JAEGER_UI = "http://jaeger.example:16686"
# A timeline row: "2025-01-02 10:00:00.123 STATUS event detail..."
TIMELINE_ROW = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [A-Z_]+ ([a-z_]+)")


def oms(system: System, *args: str) -> Result:
    env = {
        "COLUMNS": "250",
        "OMS_ORDER_INTAKE_URL": system.url("order_intake"),
        "OMS_INVENTORY_URL": system.url("inventory"),
        "OMS_PAYMENT_URL": system.url("payment"),
        "OMS_FULFILMENT_URL": system.url("fulfilment"),
        "OMS_RETURNS_URL": system.url("returns"),
        "OMS_JAEGER_UI_URL": JAEGER_UI,
        "OMS_TOKEN": auth.token("operator", subject="cli-operator"),
    }
    return CliRunner().invoke(cli.app, list(args), env=env)


def rows(output: str) -> list[str]:
    """Table rows as words separated by single spaces (borders dropped)."""
    cleaned = (line.replace("│", " ").replace("┃", " ") for line in output.splitlines())
    return [" ".join(line.split()) for line in cleaned]


async def _complete(system: System, order_id: str) -> dict[str, Any]:
    await system.wait_status(order_id, "FULFILLING")
    for fulfilment in await system.fulfilments(order_id):
        shipped = await system.ship(fulfilment["fulfilment_id"], carrier="dhl")
        assert shipped.status_code == 200, shipped.text
    await system.wait_status(order_id, "SHIPPED", "DELIVERED", "COMPLETED")
    for fulfilment in await system.fulfilments(order_id):
        delivered = await system.deliver(fulfilment["fulfilment_id"])
        assert delivered.status_code == 200, delivered.text
    return await system.wait_status(order_id, "COMPLETED")


@pytest.mark.timeout(300)
async def test_operator_cli_shows_timelines_and_resolves_orders_stuck_on_payment(infra: Infra):
    system = await start_system(infra, {"order_intake": SHORT_DEADLINES})
    try:
        # --- a completed order, its whole story ---------------------------------------------
        await system.stock_up("OPS-1", ("berlin", 5))
        order_id = await system.place(order_body([("OPS-1", 2, "12.50")]))
        done = await _complete(system, order_id)

        shown = oms(system, "orders", "show", order_id)
        assert shown.exit_code == 0, shown.output
        out = shown.stdout
        assert order_id in out and "COMPLETED" in out
        assert f"timeline ({len(done['timeline'])} entries)" in out
        events = [entry["event"] for entry in done["timeline"]]
        for event in (
            "order_received",
            "stock_reserved",
            "payment_authorized",
            "fulfilment_created",
            "fulfilment_shipped",
            "stock_committed",
            "payment_captured",
            "fulfilment_delivered",
        ):
            assert event in events, f"{event} missing from the order's timeline {events}"
        shown_events = [m.group(1) for r in rows(out) if (m := TIMELINE_ROW.match(r))]
        assert shown_events == events, "every entry of the timeline, in order"
        [payment] = await system.payments(order_id)
        assert payment["payment_id"] in out and "capture" in out
        [fulfilment] = await system.fulfilments(order_id)
        assert fulfilment["fulfilment_id"] in out and fulfilment["tracking_number"] in out
        if done.get("trace_id"):
            assert f"trace id: {done['trace_id']}" in out
            assert f"{JAEGER_UI}/trace/{done['trace_id']}" in out
        else:
            assert "trace id: unknown" in out

        listed = oms(system, "orders", "list", "--status", "COMPLETED")
        assert listed.exit_code == 0, listed.output
        assert order_id in listed.stdout and "1 order(s)" in listed.stdout

        stock = oms(system, "stock", "OPS-1")
        assert stock.exit_code == 0, stock.output
        assert "berlin 3 0 3" in rows(stock.stdout) and "total 3 0 3" in rows(stock.stdout)

        refused = oms(system, "orders", "compensate", order_id, "--yes")
        assert refused.exit_code == 1 and "order_closed" in refused.stderr
        assert (await system.order(order_id))["status"] == "COMPLETED"

        # --- payment down past its deadlines: the orders are parked -------------------------
        await system.stock_up("OPS-2", ("berlin", 5))
        system.kill("payment")
        first = await system.place(order_body([("OPS-2", 1, "10.00")]))
        second = await system.place(order_body([("OPS-2", 2, "10.00")]))
        for parked_id in (first, second):
            parked = await system.wait_status(parked_id, "NEEDS_ATTENTION", timeout_s=90)
            assert "payment" in parked["reason"], parked["reason"]

        stuck = oms(system, "orders", "stuck")
        assert stuck.exit_code == 0, stuck.output
        stuck_rows = [r for r in rows(stuck.stdout) if r.startswith("ord_")]
        assert {r.split(" ")[0] for r in stuck_rows} == {first, second}
        assert all(" NEEDS_ATTENTION needs_attention " in r for r in stuck_rows), stuck_rows
        assert "compensation not confirmed in time: payment" in stuck.stdout

        half_known = oms(system, "orders", "show", first)
        assert half_known.exit_code == 1, "payments could not be looked up"
        assert "NEEDS_ATTENTION" in half_known.stdout and "deadline_passed_give_up" in (
            half_known.stdout
        )
        assert f"payment is unreachable at {system.url('payment')}" in half_known.stderr

        # --- payment is back: its late answers are applied underneath; the orders stay parked
        await system.start("payment")

        async def void_applied(order: str) -> bool:
            view = await system.order(order)
            return any(e["event"] == "payment_compensated" for e in view["timeline"])

        for parked_id in (first, second):
            await eventually(
                lambda parked_id=parked_id: void_applied(parked_id),
                timeout_s=60,
                message=f"payment's late void for {parked_id} applied while parked",
            )
            parked = await system.order(parked_id)
            assert parked["status"] == "NEEDS_ATTENTION"
            assert "parked_status_changed" in [e["event"] for e in parked["timeline"]]

        # --- the operator resolves them: the saga underneath already ended ----------------
        retried = oms(system, "orders", "retry", first, "--note", "payment is back")
        assert retried.exit_code == 0, retried.output
        assert "NEEDS_ATTENTION -> CANCELLED; sent nothing" in retried.stdout
        compensated = oms(system, "orders", "compensate", second, "--yes")
        assert compensated.exit_code == 0, compensated.output
        assert "NEEDS_ATTENTION -> CANCELLED; sent nothing" in compensated.stdout

        for resolved_id in (first, second):
            cancelled = await system.wait_status(resolved_id, "CANCELLED", timeout_s=60)
            assert cancelled["payment"]["status"] == "voided"
            assert [p["status"] for p in await system.payments(resolved_id)] == ["voided"]
        assert (await system.stock("OPS-2"))["reserved"] == 0
        audit = [
            e for e in (await system.order(first))["timeline"] if e["event"] == "operator_action"
        ]
        assert audit and audit[0]["detail"]["note"] == "payment is back"

        after = oms(system, "orders", "stuck")
        assert after.exit_code == 0 and "no stuck orders" in after.stdout
        again = oms(system, "orders", "retry", first)
        assert again.exit_code == 1 and "nothing_to_retry" in again.stderr
    finally:
        await system.close()
