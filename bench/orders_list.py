"""`python -m bench.orders_list` (`make bench-orders`): how fast `GET /v1/orders` answers over
100,000 orders — the route the console's orders page and `oms orders list` call.

A benchmark, not a test: it prints p50/p95/max per query and asserts nothing. The run:

1. a fresh database (`oms_bench_<tag>`, its own topic prefix; deleted afterwards unless
   `--keep`) and order-intake as a real process on it (its migrations applied at start-up);
2. `--orders` orders written with bulk SQL (`INSERT ... SELECT FROM unnest(...)`, 10,000 a
   statement): 180 days of orders, newest days busiest, across eight channels and the saga's
   statuses (recent orders still in flight, old ones completed, some cancelled, rejected,
   parked, on hold), 20,000 customers, one to three lines each and their first timeline entry,
   then `ANALYZE`;
3. each query below `--samples` times, one request at a time after a few warm-up requests,
   through HTTP with an admin's token (`--explain` prints Postgres' plan of each, through the
   store's own SQL): no filter, a common and a rare status, a large and a small channel, status
   and channel together, a week of orders (alone, with a status, with a status and a small
   channel), a customer's e-mail, a page far down (a cursor 90% deep, alone and with a
   status), and the largest page (500).

Queries whose parameters this order-intake does not take (read from its OpenAPI document) are
listed as skipped, not timed. `--json PATH` writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import random
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.stats import percentile
from bench.system import REPO, ServiceProcess, bearer, drop_run, free_port
from shared.ops.tokens import local_keys
from shared.platform.settings import OpsSettings

SCHEMA = "order_intake"
CHUNK = 10_000

# Share of orders per channel (a web shop with marketplaces next to it).
CHANNELS: tuple[tuple[str, float], ...] = (
    ("web", 0.34),
    ("shopify", 0.20),
    ("amazon", 0.15),
    ("ebay", 0.10),
    ("woocommerce", 0.08),
    ("magento", 0.06),
    ("bigcommerce", 0.04),
    ("otto", 0.03),
)
# Whatever its age, an order may have ended like this (else its age decides).
EXCEPTIONAL: tuple[tuple[str, float], ...] = (
    ("CANCELLED", 0.06),
    ("REJECTED", 0.015),
    ("NEEDS_ATTENTION", 0.003),
    ("ON_HOLD", 0.003),
    ("BACKORDERED", 0.01),
)
# By age: in flight the first day, on its way the first week, delivered then completed.
BY_AGE: tuple[tuple[float, tuple[tuple[str, float], ...]], ...] = (
    (
        1,
        (
            ("RECEIVED", 0.02),
            ("RESERVING_STOCK", 0.03),
            ("AUTHORIZING_PAYMENT", 0.05),
            ("CONFIRMED", 0.3),
            ("FULFILLING", 0.4),
            ("PARTIALLY_SHIPPED", 0.05),
            ("SHIPPED", 0.15),
        ),
    ),
    (6, (("FULFILLING", 0.05), ("SHIPPED", 0.55), ("DELIVERED", 0.4))),
    (30, (("DELIVERED", 0.7), ("COMPLETED", 0.3))),
    (float("inf"), (("DELIVERED", 0.05), ("COMPLETED", 0.95))),
)
CUSTOMERS = 20_000
DAYS = 180


def _pick(rng: random.Random, weighted: Sequence[tuple[str, float]]) -> str:
    names = [name for name, _ in weighted]
    return rng.choices(names, weights=[w for _, w in weighted])[0]


@dataclass(frozen=True)
class OrderSeed:
    """What varies between the generated orders; the SQL builds the rest."""

    order_id: str
    channel: str
    external_id: str | None
    status: str
    created_at: datetime
    updated_at: datetime
    email: str
    lines: list[dict[str, Any]]
    subtotal: Decimal
    shipping: Decimal
    tax: Decimal
    total: Decimal


def generate(count: int, *, now: datetime, seed: int = 19) -> list[OrderSeed]:
    """`count` orders over the last DAYS days (pure, reproducible for a seed)."""
    rng = random.Random(seed)
    per_channel: dict[str, int] = {}
    orders = []
    for _ in range(count):
        # Newer days busier: age skewed towards 0.
        age_days = DAYS * rng.random() ** 1.6
        created_at = now - timedelta(days=age_days)
        channel = _pick(rng, CHANNELS)
        status = None
        roll = rng.random()
        for name, share in EXCEPTIONAL:
            if roll < share:
                status = name
                break
            roll -= share
        if status is None:
            status = _pick(rng, next(w for limit, w in BY_AGE if age_days < limit))
        external_id = None
        if channel != "web":
            per_channel[channel] = per_channel.get(channel, 0) + 1
            external_id = f"{channel[:3].upper()}-{100000 + per_channel[channel]}"
        customer = min(int(rng.paretovariate(1.2)), CUSTOMERS) if rng.random() < 0.3 else None
        email = f"customer{customer or rng.randrange(1, CUSTOMERS + 1)}@example.com"
        lines = []
        for n in range(rng.choice((1, 1, 1, 2, 2, 3))):
            quantity = rng.choice((1, 1, 1, 2, 3))
            unit_price = Decimal(rng.randrange(299, 12999)) / 100
            lines.append(
                {
                    "line_id": f"l{n + 1}",
                    "sku": f"SKU-{rng.randrange(1, 2001):05d}",
                    "quantity": quantity,
                    "unit_price": str(unit_price),
                    "line_total": str(unit_price * quantity),
                }
            )
        subtotal = sum((Decimal(str(line["line_total"])) for line in lines), Decimal(0))
        shipping = Decimal("0.00") if subtotal >= 50 else Decimal("4.95")
        tax = (subtotal * Decimal("0.19")).quantize(Decimal("0.01"))
        in_flight = status not in ("COMPLETED", "CANCELLED", "REJECTED")
        updated_at = created_at + timedelta(
            hours=rng.uniform(0, 2) if in_flight else rng.uniform(2, 24 * 10)
        )
        orders.append(
            OrderSeed(
                order_id=f"ord_{rng.getrandbits(128):032x}",
                channel=channel,
                external_id=external_id,
                status=status,
                created_at=created_at,
                updated_at=min(updated_at, now),
                email=email,
                lines=lines,
                subtotal=subtotal,
                shipping=shipping,
                tax=tax,
                total=subtotal + shipping + tax,
            )
        )
    return orders


# The saga document every generated order carries (order-intake reads it as an OrderSaga when
# an order is shown or acted on); the SQL sets the order's own fields into it.
SAGA_TEMPLATE: dict[str, Any] = {
    "payment_method": "card",
    "step": None,
    "attempt": 0,
    "deadline_at": None,
    "attention_reasons": [],
    "trace_context": {},
    "allocations": [],
    "kits": {},
    "fulfilments": {},
    "shorts": {},
    "pending_compensations": [],
    "disputes": {},
    "external_refunds": {},
    "channel_edits": {},
}

INSERT_ORDERS = f"""
WITH seeds AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
        $6::timestamptz[], $7::text[], $8::text[], $9::numeric[], $10::numeric[],
        $11::numeric[], $12::numeric[])
        AS s(order_id, channel, external_id, status, created_at, updated_at, email, lines,
            subtotal, shipping, tax, total)
), shaped AS (
    SELECT s.*, s.lines::jsonb AS lines_json,
        jsonb_build_object('email', s.email, 'name', 'Customer ' || split_part(s.email, '@', 1))
            AS customer,
        jsonb_build_object('line1', 'Hauptstr. ' || (abs(hashtext(s.order_id)) % 200 + 1),
            'city', 'Berlin', 'postal_code', lpad((abs(hashtext(s.email)) % 99999)::text, 5, '0'),
            'country', 'DE') AS address
    FROM seeds s
), saved AS (
    INSERT INTO {SCHEMA}.orders (order_id, channel, external_id, status, currency, subtotal,
        discount, shipping, tax, total, customer, shipping_address, billing_address,
        shipping_method, promo_code, raw_request, saga, next_deadline_at, created_at,
        updated_at)
    SELECT order_id, channel, external_id, status, 'EUR', subtotal, 0, shipping, tax, total,
        customer, address, NULL, 'standard', NULL,
        jsonb_build_object('channel', channel, 'external_id', external_id,
            'customer', customer, 'lines', lines_json, 'generated_by', 'bench.orders_list'),
        $13::jsonb || jsonb_build_object('order_id', order_id, 'channel', channel,
            'currency', 'EUR', 'total', total::text, 'lines', lines_json,
            'customer', customer, 'shipping_address', address, 'shipping_method', 'standard',
            'status', status),
        NULL, created_at, updated_at
    FROM shaped
    RETURNING order_id, status, created_at
), lines_saved AS (
    INSERT INTO {SCHEMA}.order_lines (order_id, line_id, position, sku, quantity, unit_price,
        line_total)
    SELECT s.order_id, l.line_id, l.n::int, l.sku, l.quantity, l.unit_price, l.line_total
    FROM shaped s, ROWS FROM (jsonb_to_recordset(s.lines_json)
        AS (line_id text, sku text, quantity int, unit_price numeric, line_total numeric))
        WITH ORDINALITY AS l(line_id, sku, quantity, unit_price, line_total, n)
)
INSERT INTO {SCHEMA}.order_timeline (order_id, status, event, detail, at)
SELECT order_id, status, 'order_received', '{{}}'::jsonb, created_at FROM saved
"""


async def fill(conn: asyncpg.Connection, orders: Sequence[OrderSeed]) -> float:
    """Write the orders in statements of CHUNK; returns the seconds it took (with ANALYZE)."""
    started = time.perf_counter()
    template = json.dumps(SAGA_TEMPLATE)
    for start in range(0, len(orders), CHUNK):
        chunk = orders[start : start + CHUNK]
        await conn.execute(
            INSERT_ORDERS,
            [o.order_id for o in chunk],
            [o.channel for o in chunk],
            [o.external_id for o in chunk],
            [o.status for o in chunk],
            [o.created_at for o in chunk],
            [o.updated_at for o in chunk],
            [o.email for o in chunk],
            [json.dumps(o.lines) for o in chunk],
            [o.subtotal for o in chunk],
            [o.shipping for o in chunk],
            [o.tax for o in chunk],
            [o.total for o in chunk],
            template,
        )
    await conn.execute(f"ANALYZE {SCHEMA}.orders, {SCHEMA}.order_lines, {SCHEMA}.order_timeline")
    return time.perf_counter() - started


# --- the queries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    name: str
    params: dict[str, str]


def cursor(created_at: datetime, order_id: str) -> str:
    """A `next_cursor` as order-intake writes it (its store's encoding)."""
    from services.order_intake.orders.store import encode_cursor

    return encode_cursor(created_at, order_id)


async def queries(conn: asyncpg.Connection, count: int) -> list[Query]:
    """The queries, with values taken from the data (a week in the middle, a customer who
    ordered, the row 90% deep)."""
    deep = await conn.fetchrow(
        f"SELECT created_at, order_id FROM {SCHEMA}.orders"
        " ORDER BY created_at DESC, order_id DESC OFFSET $1 LIMIT 1",
        int(count * 0.9),
    )
    deep_completed = await conn.fetchrow(
        f"SELECT created_at, order_id FROM {SCHEMA}.orders WHERE status = 'COMPLETED'"
        " ORDER BY created_at DESC, order_id DESC OFFSET $1 LIMIT 1",
        int(count * 0.9 * 0.5),
    )
    newest = await conn.fetchval(f"SELECT max(created_at) FROM {SCHEMA}.orders")
    email = await conn.fetchval(
        f"SELECT customer->>'email' FROM {SCHEMA}.orders GROUP BY 1 ORDER BY count(*) DESC,"
        " 1 LIMIT 1"
    )
    week_to = (newest - timedelta(days=60)).replace(microsecond=0)
    week = {
        "created_from": (week_to - timedelta(days=7)).isoformat(),
        "created_to": week_to.isoformat(),
    }
    found = [
        Query("no filter (newest 50)", {}),
        Query("status COMPLETED (common)", {"status": "COMPLETED"}),
        Query("status NEEDS_ATTENTION (rare)", {"status": "NEEDS_ATTENTION"}),
        Query("channel amazon", {"channel": "amazon"}),
        Query("channel otto (small)", {"channel": "otto"}),
        Query("status DELIVERED + channel ebay", {"status": "DELIVERED", "channel": "ebay"}),
        Query("a week, 2 months ago", week),
        Query("a week + status CANCELLED", {**week, "status": "CANCELLED"}),
        Query(
            "a week + status + channel",
            {**week, "status": "COMPLETED", "channel": "otto"},
        ),
        Query("customer e-mail", {"customer_email": email.upper()}),
        Query("largest page (500)", {"limit": "500"}),
    ]
    if deep is not None:
        found.append(Query("page 90% deep (cursor)", {"cursor": cursor(*deep)}))
    if deep_completed is not None:
        found.append(
            Query(
                "page deep + status COMPLETED",
                {"status": "COMPLETED", "cursor": cursor(*deep_completed)},
            )
        )
    return found


@dataclass
class Timing:
    name: str
    params: dict[str, str]
    samples_ms: list[float] = field(default_factory=list)
    rows: int = 0
    skipped: str | None = None
    plan: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": {k: v for k, v in self.params.items() if k != "cursor"}
            | ({"cursor": "…"} if "cursor" in self.params else {}),
            "rows": self.rows,
            "samples": len(self.samples_ms),
            "p50_ms": _round(percentile(self.samples_ms, 50)),
            "p95_ms": _round(percentile(self.samples_ms, 95)),
            "max_ms": _round(max(self.samples_ms, default=None)),
            "skipped": self.skipped,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def supported_parameters(client: httpx.AsyncClient, base_url: str) -> set[str]:
    document = (await client.get(f"{base_url}/openapi.json")).json()
    operation = document["paths"]["/v1/orders"]["get"]
    return {p["name"] for p in operation.get("parameters", [])}


async def time_query(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    query: Query,
    *,
    samples: int,
    warmup: int,
) -> Timing:
    timing = Timing(query.name, query.params)
    for n in range(warmup + samples):
        started = time.perf_counter()
        response = await client.get(url, params=query.params, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{query.name}: {response.status_code} {response.text[:300]}")
        if n >= warmup:
            timing.samples_ms.append(elapsed)
        timing.rows = len(response.json()["orders"])
    return timing


class _Explaining:
    """A connection whose fetch explains the statement instead (the store's own SQL)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return list(await self.conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args))


async def explain(conn: asyncpg.Connection, query: Query) -> list[str]:
    """Postgres' plan of the store's statement for this query (the route's arguments)."""
    from services.order_intake.orders import store

    accepted = set(inspect.signature(store.list_orders).parameters)
    params = dict(query.params)
    arguments: dict[str, Any] = {
        name: None
        for name in ("status", "channel", "customer_email", "created_from", "created_to")
        if name in accepted
    }
    for name in ("status", "channel", "customer_email"):
        if name in params and name in accepted:
            arguments[name] = params[name]
    for name in ("created_from", "created_to"):
        if name in params and name in accepted:
            arguments[name] = datetime.fromisoformat(params[name])
    arguments["after"] = store.decode_cursor(params["cursor"]) if "cursor" in params else None
    arguments["limit"] = int(params.get("limit", 50)) + 1
    await conn.execute(f"SET search_path = {SCHEMA}")
    rows = await store.list_orders(_Explaining(conn), **arguments)  # type: ignore[arg-type]
    return [row["QUERY PLAN"] for row in rows]


# --- the run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str
    admin_url: str


def infrastructure() -> Infra:
    """The running Kafka and Postgres (OMS_KAFKA_BOOTSTRAP, OMS_DATABASE_URL: a superuser URL),
    else the local ones `make run` uses (started if needed)."""
    settings = OpsSettings()
    if settings.kafka_bootstrap and settings.database_url:
        return Infra(settings.kafka_bootstrap, settings.database_url)
    from bench.system import bring_up_infra

    infra = bring_up_infra()
    return Infra(infra.kafka_bootstrap, infra.admin_database_url)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from devtools.localinfra import provision_database_async, with_database
    from shared.ops.topics import create_topics

    infra = infrastructure()
    tag = uuid.uuid4().hex[:8]
    database, prefix = f"oms_bench_{tag}", f"bench{tag}."
    out = Path(args.log_dir)
    service_urls = await provision_database_async(infra.admin_url, database, [SCHEMA])
    await create_topics(infra.kafka_bootstrap, prefix, replication_factor=1)
    process = ServiceProcess(
        SCHEMA,
        0,
        {
            "OMS_AUTH_JWKS_FILE": str(local_keys().jwks_file),
            "OMS_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
            "OMS_DATABASE_URL": service_urls[SCHEMA],
            "OMS_TOPIC_PREFIX": prefix,
            "OMS_LOG_LEVEL": "WARNING",
            # One client, one request at a time: no rate limit in the way of the measurement.
            "OMS_RATE_LIMIT_PER_SECOND": "0",
            "PYTHONUNBUFFERED": "1",
        },
        out / f"orders-list-{tag}.log",
        REPO,
        free_port(),
    )
    admin = None
    try:
        process.start()
        await _wait_ready(process)
        admin = await asyncpg.connect(with_database(infra.admin_url, database))
        now = datetime.now(UTC)
        orders = generate(args.orders, now=now, seed=args.seed)
        fill_s = await fill(admin, orders)
        counted = await admin.fetchval(f"SELECT count(*) FROM {SCHEMA}.orders")
        _say(f"{counted} orders written in {fill_s:.1f} s")
        url = f"{process.url}/v1/orders"
        headers = bearer("admin", subject="bench-orders-list")
        timings = []
        async with httpx.AsyncClient(timeout=30) as client:
            supported = await supported_parameters(client, process.url)
            for query in await queries(admin, counted):
                missing = set(query.params) - supported
                if missing:
                    timing = Timing(query.name, query.params)
                    timing.skipped = f"not taken by this order-intake: {', '.join(sorted(missing))}"
                else:
                    timing = await time_query(
                        client, url, headers, query, samples=args.samples, warmup=args.warmup
                    )
                    if args.explain:
                        timing.plan = await explain(admin, query)
                timings.append(timing)
                _say(_line(timing.summary()))
        return {
            "orders": counted,
            "fill_s": round(fill_s, 1),
            "samples": args.samples,
            "at": now.isoformat(),
            "queries": [t.summary() for t in timings],
            "plans": {t.name: t.plan for t in timings if t.plan},
        }
    finally:
        process.stop()
        if admin is not None:
            await admin.close()
        if not args.keep:
            await drop_run(infra.kafka_bootstrap, infra.admin_url, database, prefix)


async def _wait_ready(process: ServiceProcess, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=3) as client:
        while time.monotonic() < deadline:
            if not process.alive():
                raise RuntimeError(f"order-intake exited:\n{process.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{process.url}/health/ready")).status_code == 200:
                    return
            await asyncio.sleep(0.3)
    raise RuntimeError(f"order-intake not ready after {timeout_s}s:\n{process.log_tail()}")


def _line(summary: dict[str, Any]) -> str:
    if summary["skipped"]:
        return f"  {summary['name']:<34} skipped ({summary['skipped']})"
    return (
        f"  {summary['name']:<34} p50 {summary['p50_ms']:>7.1f} ms  p95 {summary['p95_ms']:>7.1f}"
        f" ms  max {summary['max_ms']:>7.1f} ms  ({summary['rows']} rows)"
    )


def _say(text: str) -> None:
    print(text, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.orders_list", description=__doc__.split("\n\n")[0] if __doc__ else ""
    )
    parser.add_argument("--orders", type=int, default=100_000, help="orders to write")
    parser.add_argument("--samples", type=int, default=50, help="timed requests per query")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests first")
    parser.add_argument("--seed", type=int, default=19, help="the generated data's seed")
    parser.add_argument("--explain", action="store_true", help="print each query's plan")
    parser.add_argument("--json", dest="json_path", help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the database and topics")
    parser.add_argument("--log-dir", default=str(REPO / ".local" / "bench-orders"))
    args = parser.parse_args(argv)
    if args.orders < 1 or args.samples < 1 or args.warmup < 0:
        parser.error("--orders and --samples must be at least 1, --warmup at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _say(f"GET /v1/orders over {args.orders} orders, {args.samples} requests per query")
    result = asyncio.run(run(args))
    for name, plan in result["plans"].items():
        _say(f"\n{name}:\n" + "\n".join(f"  {line}" for line in plan))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
