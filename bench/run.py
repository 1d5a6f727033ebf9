"""`python -m bench.run` (`make bench`): one benchmark run, end to end.

Options come from the command line or from BENCH_* environment variables (the Makefile passes
those through): BENCH_ORDERS, BENCH_RATE (orders/s or "max"), BENCH_REPLICAS, BENCH_INGRESS
(http | kafka | both), BENCH_WAREHOUSE (1/0), BENCH_LABEL, BENCH_PROFILE (services to profile
with py-spy; BENCH_PROFILE_NATIVE=1 adds native frames, e.g. asyncpg's Cython and syscalls). `python -m bench.run --compare bench-results/*.json` prints earlier runs side by side.

Timestamps: an order's clock starts when the bench sends it (just before the HTTP request, or
the Kafka produce). "event time" latency ends at the `at` of the order's OrderStatusChanged
(when the saga decided, inside its transaction); "consume time" latency ends when the bench
consumed that event from Kafka (adds the commit, order-intake's outbox relay and Kafka). All
clocks are this machine's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench import checks, report
from bench.chaos import Chaos, ChaosOrder, ChaosPayment, DeadLetter, check_chaos
from bench.http import HttpError, HttpPool
from bench.monitor import (
    LagSampler,
    MetricsSampler,
    OutboxSampler,
    ProcessSampler,
    by_cmdline,
    by_pid,
    periodically,
)
from bench.observer import Observer
from bench.stats import rate_series, summarise_latencies, throughput
from bench.system import (
    REPO,
    BenchEnv,
    Services,
    bring_up_infra,
    consumed_topics,
    provision,
    remove_leftovers,
    start_services,
    tear_down,
)
from bench.workload import Workload, generate
from shared.ops.tokens import local_keys
from shared.topics import ORDERS_EVENTS, SERVICES

RESULTS = REPO / "bench-results"
TERMINAL = ("COMPLETED", "REJECTED", "CANCELLED", "NEEDS_ATTENTION")
FAILED_END = ("REJECTED", "CANCELLED", "NEEDS_ATTENTION")
THROTTLE_PAUSE_S = 1.0  # order-intake's Retry-After
CHAOS_RETRY_S = 300.0  # under chaos, how long the feeder keeps re-sending one order


@dataclass(frozen=True)
class Config:
    orders: int
    rate: float | None  # None: as fast as the system takes them
    replicas: int
    ingress: str
    warehouse: bool
    warehouse_lookup: str
    skus: int
    max_lines: int
    stock_factor: float
    concurrency: int
    max_in_flight: int
    seed: int
    settle_timeout_s: float
    label: str
    profile: tuple[str, ...]
    profile_seconds: int
    keep: bool
    service_env: dict[str, str]
    wait_quiet: float
    code: str
    chaos: bool = False
    kill_every_s: float = 5.0

    def describe(self) -> dict[str, Any]:
        data = asdict(self)
        data["rate"] = "max" if self.rate is None else self.rate
        data["profile"] = list(self.profile)
        return data


def _env(name: str, default: str) -> str:
    return os.environ.get(f"BENCH_{name}", default) or default


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description="End-to-end OMS benchmark (see bench/run.py)."
    )
    parser.add_argument("--orders", type=int, default=int(_env("ORDERS", "2000")))
    parser.add_argument(
        "--rate", default=_env("RATE", "max"), help='orders per second, or "max" (default)'
    )
    parser.add_argument("--replicas", type=int, default=int(_env("REPLICAS", "1")))
    parser.add_argument(
        "--ingress", choices=("http", "kafka", "both"), default=_env("INGRESS", "http")
    )
    parser.add_argument(
        "--no-warehouse",
        action="store_true",
        default=_env("WAREHOUSE", "1") in ("0", "false", "no"),
        help="do not ship and deliver: measure to CONFIRMED only",
    )
    parser.add_argument(
        "--warehouse-lookup",
        choices=("http", "events"),
        default=_env("WAREHOUSE_LOOKUP", "http"),
        help="http: GET /v1/fulfilments?order_id= when an order is FULFILLING;"
        " events: read fulfilment ids from FulfilmentCreated",
    )
    parser.add_argument("--skus", type=int, default=int(_env("SKUS", "200")))
    parser.add_argument("--max-lines", type=int, default=int(_env("MAX_LINES", "3")))
    parser.add_argument(
        "--stock-factor",
        type=float,
        default=float(_env("STOCK_FACTOR", "1.0")),
        help="stock seeded as this multiple of the demand per SKU (below 1: some orders must be"
        " rejected)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=int(_env("CONCURRENCY", "64")),
        help="HTTP requests in flight at most",
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=int(_env("MAX_IN_FLIGHT", "300")),
        help="with --rate max: at most this many orders sent but not yet CONFIRMED (or failed);"
        " 0: no limit. Unbounded, intake accepts orders faster than the saga moves them, they"
        " wait past the saga's 30 s deadlines and get retried and cancelled",
    )
    parser.add_argument("--seed", type=int, default=int(_env("SEED", "1")))
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=float(_env("SETTLE_TIMEOUT", "0")) or None,
        help="seconds the whole run may take to settle (default 600; with --chaos 0.3 s per"
        " order: every kill costs a consumer-group rebalance)",
    )
    parser.add_argument("--label", default=_env("LABEL", ""))
    parser.add_argument(
        "--profile",
        default=_env("PROFILE", ""),
        help="comma-separated services to profile with py-spy while orders flow",
    )
    parser.add_argument(
        "--profile-seconds",
        type=int,
        default=int(_env("PROFILE_SECONDS", "20")),
        help="how long py-spy records, from the first order on",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's database and topics")
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every service (e.g. OMS_CONSUMER_BATCH_MAX=500)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=float(_env("WAIT_QUIET", "0")),
        help="before starting, wait (up to 15 min) until the 1-minute load average is below this",
    )
    parser.add_argument(
        "--code",
        type=Path,
        default=Path(_env("CODE", str(REPO))),
        help="run the services from this source tree (a copy of the repo), for A/B comparisons",
    )
    parser.add_argument(
        "--cleanup",
        action="store_true",
        help="delete the topics and databases earlier runs kept (--keep) or left behind",
    )
    parser.add_argument(
        "--chaos",
        action="store_true",
        default=_env("CHAOS", "0") in ("1", "true", "yes"),
        help="kill a random service every --kill-every seconds, crash Kafka and Postgres once"
        " (bench/chaos.py), then check the invariants that must hold under failure",
    )
    parser.add_argument("--kill-every", type=float, default=float(_env("KILL_EVERY", "5")))
    parser.add_argument("--compare", nargs="+", type=Path, help="print earlier runs side by side")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> Config:
    rate = None if str(args.rate).lower() in ("max", "0", "") else float(args.rate)
    label = args.label or (
        f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{args.orders}-"
        f"{'max' if rate is None else int(rate)}-r{args.replicas}-{args.ingress}"
        + ("-chaos" if args.chaos else "")
    )
    extra = dict(item.split("=", 1) for item in args.service_env)
    extra.update(
        dict(item.split("=", 1) for item in _env("SERVICE_ENV", "").split() if "=" in item)
    )
    settle_timeout = args.settle_timeout or max(600.0, 0.3 * args.orders if args.chaos else 0)
    return Config(
        orders=args.orders,
        rate=rate,
        replicas=args.replicas,
        ingress=args.ingress,
        warehouse=not args.no_warehouse,
        warehouse_lookup=args.warehouse_lookup,
        skus=args.skus,
        max_lines=args.max_lines,
        stock_factor=args.stock_factor,
        concurrency=args.concurrency,
        max_in_flight=args.max_in_flight,
        seed=args.seed,
        settle_timeout_s=settle_timeout,
        label=label,
        profile=tuple(s for s in args.profile.split(",") if s),
        profile_seconds=args.profile_seconds,
        keep=args.keep,
        service_env=extra,
        wait_quiet=args.wait_quiet,
        code=str(args.code),
        chaos=args.chaos,
        kill_every_s=args.kill_every,
    )


def bearer(role: str, subject: str | None = None) -> dict[str, str]:
    """A token of the local signing key (the one the bench's services read)."""
    token = local_keys().issue([role], subject=subject, ttl_s=12 * 3600)
    return {"Authorization": f"Bearer {token}"}


# --- feeding ---------------------------------------------------------------------------------


@dataclass
class Submission:
    reference: str
    ingress: str
    sent: float
    accepted: float | None = None
    order_id: str | None = None
    refused: str | None = None
    throttled: int = 0  # 429 answers (admission control) retried after a pause


class Feeder:
    def __init__(
        self,
        config: Config,
        env: BenchEnv,
        services: Services,
        workload: Workload,
        settled: Callable[[], int],
    ):
        self._settled = settled
        self._config = config
        self._env = env
        self._workload = workload
        headers = bearer("customer_service", subject="bench-feeder")
        self._pools = [
            HttpPool(url, config.concurrency, headers) for url in services.urls("order_intake")
        ]
        self._next_pool = itertools.cycle(self._pools)
        self.submissions: list[Submission] = []
        self._producer: Any = None
        self._channel_topic = env.topic(_channel_topic())
        self.done = False

    def _ingress_for(self, index: int) -> str:
        if self._config.ingress == "both":
            return "http" if index % 2 == 0 else "kafka"
        return self._config.ingress

    async def _submit(self, index: int, body: dict[str, Any]) -> None:
        ingress = self._ingress_for(index)
        reference = str(body["external_id"])
        if ingress == "kafka":
            value = _channel_message(body)
            submission = Submission(reference, ingress, time.time())
            self.submissions.append(submission)
            await self._producer.send(
                self._channel_topic,
                value,
                key=reference.encode(),
                headers=[("type", b"ChannelOrderReceived")],
            )
            return
        payload = orjson.dumps(body)
        submission = Submission(reference, ingress, time.time())
        self.submissions.append(submission)
        give_up_at = time.monotonic() + CHAOS_RETRY_S
        while True:
            try:
                status, data = await next(self._next_pool).post_json("/v1/orders", payload)
            except HttpError as exc:
                if not self._config.chaos or time.monotonic() > give_up_at:
                    submission.refused = str(exc)
                    return
                # A killed order-intake: send the same order again (its external id dedupes).
                await asyncio.sleep(THROTTLE_PAUSE_S)
                continue
            if status >= 500 and self._config.chaos and time.monotonic() < give_up_at:
                await asyncio.sleep(THROTTLE_PAUSE_S)
                continue
            if status != 429:
                break
            # Admission control: retry after the pause it asks for, as a channel would.
            submission.throttled += 1
            await asyncio.sleep(THROTTLE_PAUSE_S)
        if status in (200, 202):
            submission.accepted = time.time()
            submission.order_id = orjson.loads(data)["order_id"]
        else:
            submission.refused = f"{status} {data[:300]!r}"

    async def run(self) -> None:
        bodies = self._workload.orders
        if self._config.ingress in ("kafka", "both"):
            from aiokafka import AIOKafkaProducer

            self._producer = AIOKafkaProducer(
                bootstrap_servers=self._env.kafka_bootstrap,
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
            )
            await self._producer.start()
        try:
            if self._config.rate is None:
                await self._as_fast_as_possible(bodies)
            else:
                await self._at_fixed_rate(bodies, self._config.rate)
            if self._producer is not None:
                await self._producer.flush()
        finally:
            self.done = True

    async def _as_fast_as_possible(self, bodies: tuple[dict[str, Any], ...]) -> None:
        queue = iter(enumerate(bodies))

        window = self._config.max_in_flight

        async def worker() -> None:
            for index, body in queue:
                # The observer counts on its own task; polling its counters is all it takes.
                while window and len(self.submissions) - self._settled() >= window:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                await self._submit(index, body)

        workers = self._config.concurrency * len(self._pools)
        await asyncio.gather(*(worker() for _ in range(workers)))

    async def _at_fixed_rate(self, bodies: tuple[dict[str, Any], ...], rate: float) -> None:
        """Open loop: order i is sent at start + i / rate, whether earlier ones were answered
        or not (at most `concurrency` in flight per replica; the generator falls behind when the
        system answers more slowly than that allows, and the achieved rate shows it)."""
        limit = asyncio.Semaphore(self._config.concurrency * len(self._pools))
        start = time.monotonic()
        tasks = set()

        async def one(index: int, body: dict[str, Any]) -> None:
            try:
                await self._submit(index, body)
            finally:
                limit.release()

        for index, body in enumerate(bodies):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await limit.acquire()
            task = asyncio.create_task(one(index, body))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)

    def close(self) -> None:
        for pool in self._pools:
            pool.close()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        self.close()


def _channel_topic() -> str:
    from shared.topics import CHANNEL_ORDERS

    return CHANNEL_ORDERS


def _channel_message(body: dict[str, Any]) -> bytes:
    """An order on the Kafka channel ingress, in the format of shared/contracts/channels.py."""
    from bench.channel import channel_message

    return channel_message(body)


# --- seeding, settling, checking -------------------------------------------------------------


async def seed_stock(services: Services, workload: Workload) -> None:
    base = services.urls("inventory")[0]
    async with httpx.AsyncClient(
        base_url=base, timeout=30, headers=bearer("warehouse", subject="bench-seed")
    ) as client:
        limit = asyncio.Semaphore(16)

        async def stock_up(sku: str) -> None:
            async with limit:
                r = await client.put(f"/v1/skus/{sku}", json={"name": f"Bench item {sku}"})
                r.raise_for_status()
                for (stocked, location), quantity in workload.initial_stock.items():
                    if stocked != sku:
                        continue
                    r = await client.post(
                        "/v1/stock/adjustments",
                        json={
                            "sku": sku,
                            "location": location,
                            "delta": quantity,
                            "reason": "receipt",
                        },
                    )
                    r.raise_for_status()

        await asyncio.gather(*(stock_up(sku) for sku in workload.skus))


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
            checks.OperationRow(r["order_id"], r["kind"], r["outcome"], r["fulfilment_id"])
            for r in await conn.fetch(
                "SELECT order_id, kind, outcome, fulfilment_id FROM payment.payment_operations"
            )
        ]
        shipped = {
            (r["sku"], r["location"]): int(r["quantity"])
            for r in await conn.fetch(
                "SELECT l.sku, f.location, sum(l.quantity) AS quantity"
                " FROM fulfilment.fulfilments f JOIN fulfilment.fulfilment_lines l"
                " USING (fulfilment_id) WHERE f.status IN ('shipped', 'delivered')"
                " GROUP BY l.sku, f.location"
            )
        }
        open_reserved: dict[str, int] = defaultdict(int)
        for r in await conn.fetch(
            "SELECT r.sku, sum(r.quantity - r.committed - r.released) AS quantity"
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
            r = await client.get(f"/v1/stock/{sku}")
            r.raise_for_status()
            view = r.json()
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
        checks.check_stock(workload.initial_stock, shipped, final_stock, expected_reserved),
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
    orders: dict[str, ChaosOrder] = {}
    shipped_value: dict[str, Decimal] = {}
    saga_shipped: set[tuple[str, str]] = set()
    for r in await conn.fetch(
        "SELECT order_id, external_id, status, total, saga FROM order_intake.orders"
    ):
        saga = r["saga"] if isinstance(r["saga"], dict) else orjson.loads(r["saga"])
        orders[r["order_id"]] = ChaosOrder(
            r["order_id"], r["external_id"], r["status"], saga.get("reason"), Decimal(r["total"])
        )
        value = Decimal(0)
        for fulfilment in saga.get("fulfilments", {}).values():
            if fulfilment.get("shipped"):
                saga_shipped.add((r["order_id"], fulfilment["fulfilment_id"]))
                value += Decimal(str(fulfilment.get("capture_amount") or 0))
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
            "SELECT order_id, sum(quantity - committed - released) AS units"
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
    from shared.ops.dlq import list_dead_letters

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


# --- profiling -------------------------------------------------------------------------------


def start_warehouse(
    config: Config, env: BenchEnv, services: Services, out: Path
) -> subprocess.Popen[bytes]:
    urls = services.urls("fulfilment")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.warehouse",
            "--bootstrap",
            env.kafka_bootstrap,
            "--topic-prefix",
            env.prefix,
            "--lookup",
            config.warehouse_lookup,
            "--stats-file",
            str(out / "warehouse.json"),
            *(("--attempts", "60") if config.chaos else ()),
            *itertools.chain.from_iterable(("--fulfilment-url", url) for url in urls),
        ],
        cwd=REPO,
        env={**os.environ, "OMS_TOKEN": local_keys().issue(["warehouse"], ttl_s=12 * 3600)},
        stdout=(out / "logs" / "warehouse.log").open("wb"),
        stderr=subprocess.STDOUT,
    )


def start_profiles(
    config: Config, services: Services, out: Path, seconds: int
) -> list[subprocess.Popen[bytes]]:
    spy = Path(sys.executable).with_name("py-spy")
    started = []
    for service in config.profile:
        for process in services.of(service)[:1]:
            path = out / f"profile-{service}.txt"
            started.append(
                subprocess.Popen(
                    [
                        str(spy),
                        "record",
                        "--pid",
                        str(process.pid),
                        "--format",
                        "raw",
                        "--rate",
                        "97",
                        "--duration",
                        str(seconds),
                        # Native frames (asyncpg's Cython, C extensions) need the process paused
                        # for each sample: slower, so only on request.
                        *(["--native"] if _env("PROFILE_NATIVE", "") == "1" else ["--nonblocking"]),
                        "--output",
                        str(path),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=(out / f"profile-{service}.log").open("wb"),
                )
            )
    return started


def summarise_profiles(config: Config, out: Path) -> dict[str, Any]:
    found = {}
    for service in config.profile:
        path = out / f"profile-{service}.txt"
        if path.exists():
            lines = path.read_text().splitlines()
            found[service] = {
                **report.top_frames(lines, 25),
                "self_by_package": report.self_by_package(lines),
                "samples": sum(int(x.rpartition(" ")[2]) for x in lines if x.strip()),
            }
    return found


# --- the run ---------------------------------------------------------------------------------


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _git() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain")),
    }


async def run(config: Config, infra: Any, console: Console) -> dict[str, Any]:
    out = RESULTS / config.label
    out.mkdir(parents=True, exist_ok=True)
    if config.ingress in ("kafka", "both"):
        from bench.channel import available

        if not available():
            raise SystemExit(
                "the Kafka channel ingress is not there yet (shared/contracts/channels.py);"
                " run with --ingress http"
            )
    workload = generate(
        orders=config.orders,
        skus=config.skus,
        max_lines=config.max_lines,
        stock_factor=config.stock_factor,
        seed=config.seed,
        run_tag=config.label,
    )
    env = await provision(infra)
    console.print(f"environment: database {env.database}, topic prefix {env.prefix}")
    services = start_services(
        env,
        replicas=config.replicas,
        log_dir=out / "logs",
        extra_env=config.service_env,
        code=Path(config.code),
    )
    warehouse_proc: subprocess.Popen[bytes] | None = None
    observer = Observer(env.kafka_bootstrap, env.topic(ORDERS_EVENTS))
    lag = LagSampler(
        env.kafka_bootstrap,
        {env.group(s): [env.topic(t) for t in consumed_topics(s)] for s in SERVICES},
    )
    metrics = MetricsSampler({s: services.urls(s) for s in SERVICES})
    outboxes = OutboxSampler(env.admin_url, SERVICES)
    feeder: Feeder | None = None
    samplers: asyncio.Task[None] | None = None
    chaos: Chaos | None = None
    chaos_task: asyncio.Task[None] | None = None
    try:
        await services.wait_ready()
        await seed_stock(services, workload)
        await observer.start()
        await lag.start()
        if config.warehouse:
            warehouse_proc = start_warehouse(config, env, services, out)
        groups: dict[str, Any] = {p.name: by_pid(p.pid) for p in services.processes}
        if warehouse_proc is not None:
            groups["warehouse"] = by_pid(warehouse_proc.pid)
        groups["bench (load, observer)"] = by_pid(os.getpid())
        groups["postgres (this run's backends)"] = by_cmdline(env.database, name="postgres")
        groups["postgres (all, shared)"] = by_cmdline(name="postgres")
        groups["kafka (shared)"] = by_cmdline("kafka.Kafka")
        processes = ProcessSampler(groups)
        await asyncio.sleep(1)  # let the observer's and warehouse's consumers settle

        load_before = _load()
        progress = observer.progress
        feeder = Feeder(
            config,
            env,
            services,
            workload,
            lambda: progress.count("FULFILLING", *FAILED_END),
        )
        processes.start()
        started = time.time()
        samplers = asyncio.create_task(
            periodically(1.0, processes.sample, lag.sample, metrics.sample, outboxes.sample)
        )
        profilers = start_profiles(config, services, out, config.profile_seconds)
        feeding = asyncio.create_task(feeder.run())
        if config.chaos:
            chaos = Chaos(
                services,
                progress=lambda: progress.count(*TERMINAL) / max(config.orders, 1),
                kill_every_s=config.kill_every_s,
                seed=config.seed,
            )
            chaos_task = asyncio.create_task(chaos.run())
        settled = await _watch(config, feeder, feeding, observer, console)
        if chaos is not None and chaos_task is not None:
            chaos.stop()
            await chaos_task
            await services.wait_ready()
        fed_until = max((s.sent for s in feeder.submissions), default=started)
        processes.stop()
        finished = time.time()
        samplers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await samplers
        for profiler in profilers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                profiler.wait(90)
        load_after = _load()
        await metrics.sample()
        lag_end = await lag.sample()
        quiet = await quiesce(env, lag)
        await metrics.sample()
        if warehouse_proc is not None:
            warehouse_proc.send_signal(signal.SIGTERM)
            warehouse_proc.wait(30)
        await feeder.stop()
        await observer.stop()

        reference_ids = {s.reference: s.order_id for s in feeder.submissions if s.order_id}
        if any(s.ingress == "kafka" for s in feeder.submissions):
            reference_ids.update(await order_ids_by_reference(env))
        submitted_ids = {
            reference_ids[s.reference]
            for s in feeder.submissions
            if s.refused is None and s.reference in reference_ids
        }
        unmatched = [
            s.reference
            for s in feeder.submissions
            if s.refused is None and s.reference not in reference_ids
        ]
        verdict = await correctness(
            env,
            services,
            workload,
            submitted_ids,
            observer.progress.messages,
            warehouse=config.warehouse,
            chaos=config.chaos,
        )
        if chaos is not None:
            verdict["chaos"] = chaos.summary()
            if chaos.failures:
                verdict["passed"] = False
                verdict["checks"]["chaos invariants"]["problems"].extend(chaos.failures)
        if unmatched:
            verdict["passed"] = False
            verdict["checks"]["orders settled"]["problems"].append(
                f"{len(unmatched)} orders sent on Kafka never became orders"
                f" (e.g. {', '.join(unmatched[:5])})"
            )
        refused = [s for s in feeder.submissions if s.refused is not None]
        if refused:
            verdict["passed"] = False
            verdict["checks"]["orders settled"]["problems"].append(
                f"{len(refused)} orders refused by order-intake (e.g. {refused[0].refused})"
            )
        if not settled:
            verdict["passed"] = False
            verdict["checks"]["orders settled"]["problems"].append(
                f"not every order settled within {config.settle_timeout_s:.0f}s"
            )
        if not quiet:
            verdict["checks"]["orders settled"]["problems"].append(
                "outboxes or consumer groups still busy 120s after the last order settled"
            )
            verdict["passed"] = False

        result = _result(
            config,
            feeder,
            observer,
            reference_ids,
            started=started,
            fed_until=fed_until,
            finished=finished,
            processes=processes.results(),
            outbox={
                service: {
                    **summary,
                    "outbox_rows_peak": outboxes.peak_rows.get(service),
                    "outbox_oldest_row_peak_ms": round(
                        1000 * outboxes.peak_age_s.get(service, 0.0), 1
                    ),
                }
                for service, summary in metrics.summary().items()
            },
            lag_peak=lag.peak(),
            lag_end=lag_end,
            verdict=verdict,
            load=(load_before, load_after),
            warehouse_stats=_read_json(out / "warehouse.json"),
            profiles=summarise_profiles(config, out),
        )
        report.write_json(result, RESULTS)
        return result
    finally:
        if samplers is not None:
            samplers.cancel()
        if chaos_task is not None:
            chaos_task.cancel()
        if warehouse_proc is not None and warehouse_proc.poll() is None:
            warehouse_proc.kill()
        services.stop()
        await metrics.close()
        await outboxes.close()
        with contextlib.suppress(Exception):
            await lag.stop()
        with contextlib.suppress(Exception):
            await observer.stop()
        if not config.keep:
            await tear_down(env)


def _read_json(path: Path) -> Any:
    with contextlib.suppress(OSError, orjson.JSONDecodeError):
        return orjson.loads(path.read_bytes())
    return None


async def _watch(
    config: Config,
    feeder: Feeder,
    feeding: asyncio.Task[None],
    observer: Observer,
    console: Console,
) -> bool:
    """Show progress until every submitted order settled; False on timeout or a stall."""
    target_state = "COMPLETED" if config.warehouse else "FULFILLING"
    progress = observer.progress
    columns = (
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        sent = bar.add_task("sent", total=config.orders, rate="")
        confirmed = bar.add_task("CONFIRMED (FULFILLING)", total=config.orders, rate="")
        completed = bar.add_task(
            "COMPLETED",
            total=config.orders if config.warehouse else 0,
            rate="",
            visible=config.warehouse,
        )
        failed = bar.add_task("rejected/cancelled", total=config.orders, rate="")
        last_change, last_settled = time.monotonic(), -1
        started = time.monotonic()
        while True:
            if feeding.done() and feeding.exception() is not None:
                raise feeding.exception()  # type: ignore[misc]
            elapsed = max(time.monotonic() - started, 1e-6)
            n_sent = len(feeder.submissions)
            n_confirmed = progress.count("FULFILLING")
            n_completed = progress.count("COMPLETED")
            n_failed = progress.count(*FAILED_END)
            bar.update(sent, completed=n_sent, rate=f"{n_sent / elapsed:,.0f}/s")
            bar.update(confirmed, completed=n_confirmed, rate=f"{n_confirmed / elapsed:,.0f}/s")
            bar.update(completed, completed=n_completed, rate=f"{n_completed / elapsed:,.0f}/s")
            bar.update(failed, completed=n_failed)
            accepted = sum(1 for s in feeder.submissions if s.refused is None)
            settled = progress.count(target_state, *FAILED_END)
            if feeder.done and settled >= accepted:
                return True
            if settled != last_settled:
                last_settled, last_change = settled, time.monotonic()
            stalled = time.monotonic() - last_change > 120
            if feeder.done and (stalled or time.monotonic() - started > config.settle_timeout_s):
                return False
            await asyncio.sleep(0.25)


def _result(
    config: Config,
    feeder: Feeder,
    observer: Observer,
    reference_ids: dict[str, str],
    *,
    started: float,
    fed_until: float,
    finished: float,
    processes: dict[str, Any],
    outbox: dict[str, Any],
    lag_peak: dict[str, int],
    lag_end: dict[str, int],
    verdict: dict[str, Any],
    load: tuple[list[float], list[float]],
    warehouse_stats: Any,
    profiles: dict[str, Any],
) -> dict[str, Any]:
    reached = observer.progress.reached
    sent_at = {}
    accept_latencies = []
    for s in feeder.submissions:
        order_id = reference_ids.get(s.reference)
        if order_id is not None and s.refused is None:
            sent_at[order_id] = s.sent
        if s.accepted is not None:
            accept_latencies.append(s.accepted - s.sent)

    def latencies(status: str) -> dict[str, Any]:
        event, consume = [], []
        for order_id, t0 in sent_at.items():
            hit = reached.get(order_id, {}).get(status)
            if hit is not None:
                event.append(hit[0] - t0)
                consume.append(hit[1] - t0)
        return {
            "event_time": summarise_latencies(event).as_dict(),
            "consume_time": summarise_latencies(consume).as_dict(),
        }

    def completions(status: str) -> list[float]:
        return [reached[o][status][0] for o in sent_at if o in reached and status in reached[o]]

    refused = [s for s in feeder.submissions if s.refused is not None]
    confirmed = sum(1 for o in sent_at if "FULFILLING" in reached.get(o, {}))
    ours = [p["cpu_s"] for name, p in processes.items() if "shared" not in name]
    feed_span = fed_until - started
    return {
        "label": config.label,
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(),
        "config": config.describe(),
        "environment": {
            "cpus": psutil.cpu_count(),
            "load_before": load[0],
            "load_after": load[1],
            **_git(),
        },
        "submitted": len(feeder.submissions),
        "refused": len(refused),
        "refused_examples": [s.refused for s in refused[:5]],
        "throttled": {
            "orders": sum(1 for s in feeder.submissions if s.throttled),
            "retries": sum(s.throttled for s in feeder.submissions),
        },
        "feed_seconds": round(feed_span, 2),
        "feed_rate_per_s": round(len(feeder.submissions) / feed_span, 1) if feed_span > 0 else None,
        "measured_seconds": round(finished - started, 2),
        "accept_latency": summarise_latencies(accept_latencies).as_dict(),
        "throughput": {
            "confirmed": throughput(started, completions("FULFILLING")).as_dict(),
            "completed": throughput(started, completions("COMPLETED")).as_dict(),
        },
        "latency": {"confirmed": latencies("FULFILLING"), "completed": latencies("COMPLETED")},
        "per_second": {
            "sent": rate_series((s.sent for s in feeder.submissions), started),
            "confirmed": rate_series(completions("FULFILLING"), started),
            "completed": rate_series(completions("COMPLETED"), started),
        },
        "processes": processes,
        "cpu_ms_per_order": round(1000 * sum(ours) / confirmed, 1) if confirmed else None,
        "outbox": outbox,
        "consumer_lag": {
            "peak": {_service_of(g): n for g, n in lag_peak.items()},
            "end": {_service_of(g): n for g, n in lag_end.items()},
        },
        "warehouse": warehouse_stats,
        "profiles": profiles,
        "correctness": verdict,
    }


def _service_of(group: str) -> str:
    return group.rsplit(".", 1)[-1]


def wait_until_quiet(threshold: float, console: Console, max_wait_s: float = 900) -> None:
    deadline = time.monotonic() + max_wait_s
    while os.getloadavg()[0] > threshold and time.monotonic() < deadline:
        console.print(f"load average {os.getloadavg()[0]:.2f} > {threshold}: waiting")
        time.sleep(30)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.compare:
        report.compare_files(args.compare)
        return
    if args.cleanup:
        removed = asyncio.run(remove_leftovers(bring_up_infra()))
        Console().print(f"removed: {', '.join(removed) or 'nothing'}")
        return
    config = config_from(args)
    console = Console(width=None if sys.stdout.isatty() else 140)
    if config.wait_quiet:
        wait_until_quiet(config.wait_quiet, console)
    infra = bring_up_infra()
    import uvloop

    result = uvloop.run(run(config, infra, console))
    report.print_result(result, console)
    console.print(f"JSON: {RESULTS / (result['label'] + '.json')}")
    sys.exit(0 if result["correctness"]["passed"] else 1)


if __name__ == "__main__":
    main()
