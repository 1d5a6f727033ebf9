"""`oms run`: the whole system on local infrastructure, under honcho.

honcho (a maintained Procfile runner) supervises the five service processes, prefixes every log
line with the service's name, and stops them all on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import sys
import threading
import time
from dataclasses import dataclass

import httpx
from rich.console import Console
from rich.table import Table

from devtools import localinfra
from devtools.processes import REPO_ROOT
from shared.ops.client import OpsClient, OpsClientError
from shared.ops.tokens import local_keys, operator_token_file
from shared.ops.topics import create_topics
from shared.ops.warehouse_seed import DEFAULT_SEED, apply_seed, load_seed
from shared.platform.settings import OpsSettings
from shared.topics import SERVICES

PORTS = {
    "order_intake": 8001,
    "inventory": 8002,
    "payment": 8003,
    "fulfilment": 8004,
    "returns": 8005,
    "channel_connector": 8006,
    "console": 8007,
}

DEV_WEBHOOK_SECRETS = {
    "OMS_SHOPIFY_WEBHOOK_SECRET": "dev-shopify-secret",
    "OMS_WOOCOMMERCE_WEBHOOK_SECRET": "dev-woocommerce-secret",
}


@dataclass(frozen=True)
class Environment:
    kafka_bootstrap: str
    service_database_urls: dict[str, str]
    topic_prefix: str
    otlp_endpoint: str | None


def prepare(settings: OpsSettings | None = None) -> Environment:
    """Start (or reuse) Kafka and Postgres, provision schemas and roles, create topics."""
    settings = settings or OpsSettings()
    infra = localinfra.up(
        kafka_bootstrap=settings.kafka_bootstrap,
        database_url=settings.database_url,
        kafka_port=settings.kafka_port,
        pg_port=settings.pg_port,
    )
    asyncio.run(create_topics(infra.kafka_bootstrap, settings.topic_prefix, replication_factor=1))
    return Environment(
        infra.kafka_bootstrap,
        infra.service_database_urls,
        settings.topic_prefix,
        settings.otlp_endpoint,
    )


def start_tracing(env: Environment, console: Console) -> Environment:
    """Start Jaeger when `make jaeger` built it and no OTLP endpoint was configured."""
    from devtools import jaeger

    if env.otlp_endpoint:
        return env
    if not jaeger.available():
        console.print(
            "Jaeger: not built (run `make jaeger` once, ~8 min); services run without exporting"
            " traces."
        )
        return env
    started = jaeger.start()
    console.print(
        f"Jaeger: query API {started['query_api']} (the UI page is a placeholder: see README),"
        f" traces via OTLP {started['otlp_http']}"
    )
    return Environment(
        env.kafka_bootstrap, env.service_database_urls, env.topic_prefix, str(started["otlp_http"])
    )


def service_env(env: Environment, service: str) -> dict[str, str]:
    values = {
        "OMS_KAFKA_BOOTSTRAP": env.kafka_bootstrap,
        "OMS_DATABASE_URL": env.service_database_urls[service],
        "OMS_TOPIC_PREFIX": env.topic_prefix,
        "OMS_HTTP_PORT": str(PORTS[service]),
        "PYTHONUNBUFFERED": "1",
    }
    if env.otlp_endpoint:
        values["OMS_OTLP_ENDPOINT"] = env.otlp_endpoint
    if not os.environ.get("OMS_AUTH_JWKS_URL"):
        values["OMS_AUTH_JWKS_FILE"] = os.environ.get(
            "OMS_AUTH_JWKS_FILE", str(local_keys().jwks_file)
        )
    started_jaeger = env.otlp_endpoint and not os.environ.get("OMS_OTLP_ENDPOINT")
    if service == "console" and started_jaeger and "OMS_JAEGER_QUERY_URL" not in os.environ:
        # The order page draws an order's trace from the local Jaeger's query API.
        from devtools import jaeger

        values["OMS_JAEGER_QUERY_URL"] = jaeger.UI_URL.rstrip("/")
    if service == "order_intake":
        # Local development secrets for the channel webhooks, unless the developer set their own.
        for variable, default in DEV_WEBHOOK_SECRETS.items():
            values[variable] = os.environ.get(variable, default)
    return values


def migrate_all(env: Environment) -> dict[str, list[str]]:
    import importlib

    from shared.platform.db import connect
    from shared.platform.migrations import migrate

    async def _run() -> dict[str, list[str]]:
        applied = {}
        for service in SERVICES:
            app_module = importlib.import_module(f"services.{service}.app")
            conn = await connect(env.service_database_urls[service], service)
            try:
                applied[service] = await migrate(conn, service, app_module.MIGRATIONS)
            finally:
                await conn.close()
        return applied

    return asyncio.run(_run())


def print_where(env: Environment, console: Console) -> None:
    table = Table(title="OMS is starting", show_lines=False)
    table.add_column("service")
    table.add_column("API")
    table.add_column("docs")
    table.add_column("ready")
    for service in SERVICES:
        base = f"http://127.0.0.1:{PORTS[service]}"
        table.add_row(service, base, f"{base}/docs", f"{base}/health/ready")
    console.print(table)
    console.print(f"Kafka: {env.kafka_bootstrap}   Postgres: {_redact(env.service_database_urls)}")
    if env.otlp_endpoint:
        console.print(f"Traces exported to {env.otlp_endpoint}")
    keys = local_keys()
    keys.ensure()
    token = keys.issue(["operator"], subject="local-operator", ttl_s=12 * 3600)
    token_file = operator_token_file()
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    console.print(
        f"Operator token (12 h, also in {token_file}, which the `oms` command uses):\n{token}\n"
        f"Console: http://127.0.0.1:{PORTS['console']}/ (sign in with the token above)\n"
        "More: `oms token issue --role admin` (roles: see README, Security)."
    )
    console.print(
        "Ctrl-C stops every service (the infrastructure keeps running: `make infra-down`)."
    )


def _redact(urls: dict[str, str]) -> str:
    any_url = next(iter(urls.values()))
    host = any_url.rsplit("@", 1)[-1]
    return host


def run_all(env: Environment) -> int:
    from honcho.manager import Manager
    from honcho.printer import Printer

    console = Console() if sys.stdout.isatty() else Console(width=140)
    env = start_tracing(env, console)
    print_where(env, console)
    manager = Manager(Printer(sys.stdout, colour=sys.stdout.isatty()))
    for service in SERVICES:
        manager.add_process(
            service,
            f"{shlex.quote(sys.executable)} -m services.{service}",
            env={**os.environ, **service_env(env, service)},
            cwd=str(REPO_ROOT),
        )
    threading.Thread(target=seed_warehouse_when_ready, args=(console,), daemon=True).start()
    manager.loop()
    return int(manager.returncode or 0)


def seed_warehouse_when_ready(console: Console, timeout_s: float = 120) -> None:
    """Once fulfilment and inventory answer, lay out the local warehouse floor from the seed
    file (the locations `make run`'s README flow stocks, and their routing records in
    inventory), unless it is set up already."""
    base = f"http://127.0.0.1:{PORTS['fulfilment']}"
    inventory = f"http://127.0.0.1:{PORTS['inventory']}"
    deadline = time.monotonic() + timeout_s
    waiting = [base, inventory]
    while waiting and time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{waiting[0]}/health/ready", timeout=2).status_code == 200:
                waiting.pop(0)
                continue
        time.sleep(1)
    if waiting:
        console.print("warehouse seed skipped: fulfilment or inventory did not get ready")
        return
    token = local_keys().issue(["warehouse"], subject="make-run-seed", ttl_s=600)
    settings = OpsSettings(token=token, fulfilment_url=base, inventory_url=inventory)
    try:
        with OpsClient(settings) as client:
            floor = client.request("fulfilment", "GET", "/v1/locations")["locations"]
            records = client.request("inventory", "GET", "/v1/locations")["locations"]
            if floor and records:
                return
            done = list(apply_seed(client, load_seed(DEFAULT_SEED)))
    except OpsClientError as exc:
        console.print(f"warehouse seed failed: {exc}")
        return
    console.print(f"warehouse floor seeded from {DEFAULT_SEED.name}: {'; '.join(done)}")
