"""`python -m shared.ops.migrate <service>`: apply one service's migrations, then exit.

Used by the Kubernetes init container, so a new version's schema is in place before the new
version serves. It connects with the service's own settings (OMS_DATABASE_URL: the service's
own role), exactly as the service itself would at start-up, and waits for the database while
it starts (bounded), since an init container usually races the database on a fresh cluster.

Exit codes: 0 migrated (or already up to date), 1 failed, 2 unknown service.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential

from shared.platform.db import connect, is_transient
from shared.platform.logs import setup_logging
from shared.platform.migrations import MigrationError, migrate
from shared.platform.settings import ServiceSettings
from shared.topics import SERVICES

log = logging.getLogger("shared.ops.migrate")


def settings_class_name(service: str) -> str:
    """`order_intake` -> `OrderIntakeSettings` (the convention of services/<name>/settings.py)."""
    return "".join(part.capitalize() for part in service.split("_")) + "Settings"


def load_settings(service: str) -> ServiceSettings:
    module = importlib.import_module(f"services.{service}.settings")
    settings_class: type[ServiceSettings] = getattr(module, settings_class_name(service))
    return settings_class()


def migrations_folder(service: str) -> Path:
    app_module = importlib.import_module(f"services.{service}.app")
    folder: Path = app_module.MIGRATIONS
    return folder


async def migrate_service(
    service: str, settings: ServiceSettings | None = None, *, wait_s: float = 120.0
) -> list[str]:
    """Apply the pending migrations of `service`; return what was applied now."""
    settings = settings or load_settings(service)
    folder = migrations_folder(service)
    conn = await _connect_when_reachable(settings, wait_s)
    try:
        return await migrate(conn, settings.db_schema, folder)
    finally:
        await conn.close()


async def _connect_when_reachable(settings: ServiceSettings, wait_s: float) -> asyncpg.Connection:
    async for attempt in AsyncRetrying(
        stop=stop_after_delay(wait_s),
        wait=wait_exponential(max=5),
        retry=retry_if_exception(is_transient),
        reraise=True,
    ):
        with attempt:
            return await connect(settings.database_dsn, settings.db_schema)
    raise AssertionError("unreachable")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.ops.migrate",
        description="Apply one service's migrations with its own settings (OMS_*), then exit.",
    )
    parser.add_argument("service", help=f"one of {', '.join(SERVICES)}")
    parser.add_argument(
        "--wait",
        type=float,
        default=120.0,
        help="seconds to keep retrying while the database is unreachable (default 120)",
    )
    args = parser.parse_args(argv)
    if args.service not in SERVICES:
        print(f"unknown service {args.service!r}; one of {', '.join(SERVICES)}", file=sys.stderr)
        return 2
    settings = load_settings(args.service)
    setup_logging(f"{settings.service_name}-migrate", settings.log_level, json=settings.log_json)
    try:
        applied = asyncio.run(migrate_service(args.service, settings, wait_s=args.wait))
    except MigrationError as exc:
        log.error("migrations of %s refused: %s", args.service, exc)
        return 1
    except Exception:
        log.exception("migrations of %s failed", args.service)
        return 1
    if applied:
        log.info("%s: applied %s", args.service, ", ".join(applied))
    else:
        log.info("%s: schema up to date", args.service)
    return 0


if __name__ == "__main__":
    sys.exit(main())
