"""The run's options: from the command line or BENCH_* environment variables (the Makefile
passes those through): BENCH_ORDERS, BENCH_RATE (orders/s or "max"), BENCH_REPLICAS,
BENCH_INGRESS (http | kafka | both), BENCH_WAREHOUSE (1/0), BENCH_LABEL, BENCH_PROFILE (services
to profile with py-spy; BENCH_PROFILE_NATIVE=1 adds native frames, e.g. asyncpg's Cython and
syscalls); every option `--some-name` also reads BENCH_SOME_NAME.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.system import REPO


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
    backorder_skus: int = 0
    restock_every_s: float = 5.0

    def describe(self) -> dict[str, Any]:
        data = asdict(self)
        data["rate"] = "max" if self.rate is None else self.rate
        data["profile"] = list(self.profile)
        return data


def env_option(name: str, default: str) -> str:
    """BENCH_<name>, or the default when unset or empty."""
    return os.environ.get(f"BENCH_{name}", default) or default


def _option(
    parser: argparse.ArgumentParser,
    flag: str,
    kind: Callable[[str], Any],
    default: str,
    help: str | None = None,
    **more: Any,
) -> None:
    """An option whose default comes from BENCH_<FLAG> (`--max-in-flight`: BENCH_MAX_IN_FLIGHT)."""
    name = flag.removeprefix("--").replace("-", "_").upper()
    parser.add_argument(flag, type=kind, default=kind(env_option(name, default)), help=help, **more)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description="End-to-end OMS benchmark (see bench/run.py)."
    )
    _option(parser, "--orders", int, "2000")
    _option(parser, "--rate", str, "max", 'orders per second, or "max" (default)')
    _option(parser, "--replicas", int, "1")
    _option(parser, "--ingress", str, "http", choices=("http", "kafka", "both"))
    parser.add_argument(
        "--no-warehouse",
        action="store_true",
        default=env_option("WAREHOUSE", "1") in ("0", "false", "no"),
        help="do not ship and deliver: measure to CONFIRMED only",
    )
    _option(
        parser,
        "--warehouse-lookup",
        str,
        "floor",
        "floor: work the warehouse floor (pick lists, scans, packing, labels, parcels);"
        " http: ship each fulfilment in one call, found by GET /v1/fulfilments?order_id= when"
        " an order is FULFILLING; events: the same, ids read from FulfilmentCreated",
        choices=("floor", "http", "events"),
    )
    _option(parser, "--skus", int, "200")
    _option(parser, "--max-lines", int, "3")
    _option(
        parser,
        "--stock-factor",
        float,
        "1.0",
        "stock seeded as this multiple of the demand per SKU (below 1: some orders must be"
        " rejected)",
    )
    _option(
        parser,
        "--backorder-skus",
        int,
        "2",
        "SKUs sold on backorder with no stock at first: their orders wait in BACKORDERED until"
        " the restocker receives what they wait for (every --restock-every seconds)",
    )
    _option(parser, "--restock-every", float, "5")
    _option(parser, "--concurrency", int, "64", "HTTP requests in flight at most")
    _option(
        parser,
        "--max-in-flight",
        int,
        "300",
        "with --rate max: at most this many orders sent but not yet CONFIRMED (or failed);"
        " 0: no limit. Unbounded, intake accepts orders faster than the saga moves them, they"
        " wait past the saga's 30 s deadlines and get retried and cancelled",
    )
    _option(parser, "--seed", int, "1")
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=float(env_option("SETTLE_TIMEOUT", "0")) or None,
        help="seconds the whole run may take to settle (default 600; with --chaos 0.3 s per"
        " order: every kill costs a consumer-group rebalance)",
    )
    _option(parser, "--label", str, "")
    _option(
        parser,
        "--profile",
        str,
        "",
        "comma-separated services to profile with py-spy while orders flow",
    )
    _option(
        parser, "--profile-seconds", int, "20", "how long py-spy records, from the first order on"
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's database and topics")
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every service (e.g. OMS_CONSUMER_BATCH_MAX=500)",
    )
    _option(
        parser,
        "--wait-quiet",
        float,
        "0",
        "before starting, wait (up to 15 min) until the 1-minute load average is below this",
    )
    _option(
        parser,
        "--code",
        Path,
        str(REPO),
        "run the services from this source tree (a copy of the repo), for A/B comparisons",
    )
    parser.add_argument(
        "--cleanup",
        action="store_true",
        help="delete the topics and databases earlier runs kept (--keep) or left behind",
    )
    parser.add_argument(
        "--chaos",
        action="store_true",
        default=env_option("CHAOS", "0") in ("1", "true", "yes"),
        help="kill a random service every --kill-every seconds, crash Kafka and Postgres once"
        " (bench/chaos.py), then check the invariants that must hold under failure",
    )
    _option(parser, "--kill-every", float, "5")
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
        dict(item.split("=", 1) for item in env_option("SERVICE_ENV", "").split() if "=" in item)
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
        backorder_skus=args.backorder_skus,
        restock_every_s=args.restock_every,
    )
