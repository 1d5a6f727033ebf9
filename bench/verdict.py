"""The run's verdict: wait until the system is quiet, read what the run left behind (the
databases, the stock API, the dead letters) and run the checks of checks.py and chaos.py on it.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import orjson

from bench import checks
from bench.chaos import ChaosPayment, DeadLetter, check_chaos
from bench.monitor import LagSampler
from bench.system import BenchEnv, Services, bearer
from bench.workload import Workload
from shared.ops.dlq import list_dead_letters
from shared.topics import SERVICES


def fail(verdict: dict[str, Any], check: str, problem: str) -> None:
    """A problem the run itself found (not the checks): the check named fails with it."""
    verdict["passed"] = False
    verdict["checks"][check]["problems"].append(problem)


async def quiesce(env: BenchEnv, lag: LagSampler, timeout_s: float = 120) -> bool:
    """Wait until every outbox is empty and every consumer group has caught up (twice in a row):
    an order can be COMPLETED while inventory still commits its stock."""
    conn = await asyncpg.connect(env.admin_url)
    try:
        deadline = time.monotonic() + timeout_s
        quiet_in_a_row = 0
        while time.monotonic() < deadline:
            backlog = 0
            for service in SERVICES:
                backlog += await conn.fetchval(f"SELECT count(*) FROM {service}.outbox")
            lags = await lag.sample()
            if backlog == 0 and not any(lags.values()):
                quiet_in_a_row += 1
                if quiet_in_a_row >= 2:
                    return True
            else:
                quiet_in_a_row = 0
            await asyncio.sleep(0.5)
        return False
    finally:
        await conn.close()


async def correctness(
    env: BenchEnv,
    services: Services,
    workload: Workload,
    submitted_ids: set[str],
    status_messages: dict[tuple[str, str], set[str]],
    *,
    warehouse: bool,
    chaos: bool = False,
    restocked: Mapping[tuple[str, str], int] | None = None,
    reached: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    conn = await asyncpg.connect(env.admin_url)
    try:
        orders = {
            r["order_id"]: checks.OrderRow(r["order_id"], r["status"], Decimal(r["total"]))
            for r in await conn.fetch("SELECT order_id, status, total FROM order_intake.orders")
        }
        payments = [
            checks.PaymentRow(
                r["order_id"], str(r["payment_id"]), r["status"], r["amount"], r["captured_total"]
            )
            for r in await conn.fetch(
                "SELECT order_id, payment_id, status, amount, captured_total FROM payment.payments"
            )
        ]
        operations = [
            checks.OperationRow(r["order_id"], r["kind"], r["outcome"], r["shipment"])
            for r in await conn.fetch(
                "SELECT order_id, kind, outcome, coalesce(shipment_id, fulfilment_id) AS shipment"
                " FROM payment.payment_operations"
            )
        ]
        shipped = {
            (r["sku"], r["location"]): int(r["quantity"])
            for r in await conn.fetch(
                "SELECT l.sku, f.location, sum(l.quantity - l.short) AS quantity"
                " FROM fulfilment.fulfilments f JOIN fulfilment.fulfilment_lines l"
                " USING (fulfilment_id) WHERE f.status IN ('shipped', 'delivered')"
                " GROUP BY l.sku, f.location"
            )
        }
        open_reserved: dict[str, int] = defaultdict(int)
        for r in await conn.fetch(
            "SELECT r.sku, sum(r.quantity - r.committed - r.released - r.written_off) AS quantity"
            " FROM inventory.reservations r GROUP BY r.sku"
        ):
            open_reserved[r["sku"]] += int(r["quantity"])
        fulfilments_per_order = {
            r["order_id"]: r["n"]
            for r in await conn.fetch(
                "SELECT order_id, count(*) AS n FROM fulfilment.fulfilments GROUP BY order_id"
            )
        }
        locations_per_order = {
            r["order_id"]: r["n"]
            for r in await conn.fetch(
                "SELECT order_id, count(DISTINCT location) AS n FROM inventory.reservations"
                " GROUP BY order_id"
            )
        }
        chaos_check = await _chaos_check(conn, env, submitted_ids) if chaos else None
    finally:
        await conn.close()

    final_stock = []
    async with httpx.AsyncClient(
        base_url=services.urls("inventory")[0], timeout=30, headers=bearer("viewer")
    ) as client:
        for sku in workload.skus:
            response = await client.get(f"/v1/stock/{sku}")
            response.raise_for_status()
            view = response.json()
            for loc in view["locations"]:
                final_stock.append(
                    checks.StockRow(
                        sku, loc["location"], loc["on_hand"], loc["reserved"], loc["available"]
                    )
                )

    settled = "COMPLETED" if warehouse else "FULFILLING"
    # Orders still open (not shipped) hold their reservation; the ledger of reservations says
    # what they hold, so the stock rows must add up to it.
    expected_reserved = dict(open_reserved) if not warehouse or chaos else {}
    results = [
        checks.check_orders(
            submitted_ids,
            orders,
            settled_status=settled,
            rejections_allowed=workload.stock_can_run_out,
            also_allowed=("CANCELLED", "NEEDS_ATTENTION") if chaos else (),
        ),
        checks.check_payments(orders, payments, operations),
        checks.check_stock(
            checks.plus(workload.initial_stock, restocked or {}),
            shipped,
            final_stock,
            expected_reserved,
        ),
        checks.check_backorders(
            reached or {},
            orders,
            settled_status=settled,
            also_allowed=("CANCELLED", "NEEDS_ATTENTION") if chaos else (),
        ),
        checks.check_processed_once(status_messages, fulfilments_per_order, locations_per_order),
        *([chaos_check] if chaos_check is not None else []),
    ]
    return {
        "passed": all(c.passed for c in results),
        "checks": {c.name: c.as_dict() for c in results},
    }


async def _chaos_check(
    conn: asyncpg.Connection, env: BenchEnv, submitted_ids: set[str]
) -> checks.Check:
    """The invariants under failure (bench/chaos.py), from what the run left behind."""
    orders: dict[str, checks.OrderRow] = {}
    shipped_value: dict[str, Decimal] = {}
    saga_shipped: set[tuple[str, str]] = set()
    for r in await conn.fetch(
        "SELECT order_id, external_id, status, total, saga FROM order_intake.orders"
    ):
        saga = r["saga"] if isinstance(r["saga"], dict) else orjson.loads(r["saga"])
        orders[r["order_id"]] = checks.OrderRow(
            r["order_id"],
            r["status"],
            Decimal(r["total"]),
            external_id=r["external_id"],
            reason=saga.get("reason"),
        )
        value = Decimal(0)
        for fulfilment in saga.get("fulfilments", {}).values():
            # Each shipment (parcel) is captured on its own; a saga stored before parcels kept
            # its fulfilment's one shipment on the fulfilment.
            shipments = fulfilment.get("shipments")
            if shipments is None:
                shipments = {"": fulfilment} if fulfilment.get("shipped") else {}
            if shipments:
                saga_shipped.add((r["order_id"], fulfilment["fulfilment_id"]))
            for shipment in shipments.values():
                value += Decimal(str(shipment.get("capture_amount") or 0))
        shipped_value[r["order_id"]] = value
    payments = [
        ChaosPayment(r["order_id"], r["captured_total"], r["refunded_total"])
        for r in await conn.fetch(
            "SELECT order_id, captured_total, refunded_total FROM payment.payments"
            " WHERE status <> 'declined'"
        )
    ]
    open_reservations = {
        r["order_id"]: int(r["units"])
        for r in await conn.fetch(
            "SELECT order_id, sum(quantity - committed - released - written_off) AS units"
            " FROM inventory.reservations GROUP BY order_id"
        )
    }
    warehouse_shipped = {
        (r["order_id"], r["fulfilment_id"])
        for r in await conn.fetch(
            "SELECT order_id, fulfilment_id FROM fulfilment.fulfilments"
            " WHERE status IN ('shipped', 'delivered')"
        )
    }
    dead = await _dead_letters(env)
    check = check_chaos(submitted_ids, orders, payments, shipped_value, open_reservations, dead)
    unknown = sorted(f"{o}/{f}" for o, f in warehouse_shipped - saga_shipped)
    if unknown:
        check.problem(f"{len(unknown)} shipments the order saga never recorded", unknown)
    return check


async def _dead_letters(env: BenchEnv) -> list[DeadLetter]:
    found = []
    for service in SERVICES:
        for letter in await list_dead_letters(
            env.kafka_bootstrap, service, prefix=env.prefix, limit=100_000
        ):
            found.append(
                DeadLetter(
                    service,
                    letter.headers.get("x-dlq-reason"),
                    letter.headers.get("x-dlq-error"),
                    f"{letter.original_topic}@{letter.headers.get('x-dlq-original-offset')}",
                )
            )
    return found


async def order_ids_by_reference(env: BenchEnv) -> dict[str, str]:
    conn = await asyncpg.connect(env.admin_url)
    try:
        rows = await conn.fetch(
            "SELECT order_id, external_id FROM order_intake.orders WHERE external_id IS NOT NULL"
        )
        return {r["external_id"]: r["order_id"] for r in rows}
    finally:
        await conn.close()
