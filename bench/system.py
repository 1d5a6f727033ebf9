"""The system under test: a dedicated environment on the local infrastructure and the five
services as processes (optionally several replicas each, one consumer group per service).

Every run gets its own database (`oms_bench_<tag>`) and topic prefix (`bench<tag>.`), so its
data never mixes with `make run`'s or the tests'; both are deleted after the run unless kept.
The names do not match the tests' leftover patterns, so a test session starting meanwhile never
deletes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from devtools import localinfra
from shared.ops.tokens import local_keys
from shared.ops.topics import create_topics
from shared.platform.settings import OpsSettings
from shared.topics import SERVICES

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BenchEnv:
    kafka_bootstrap: str
    admin_url: str  # superuser URL to the bench database
    server_admin_url: str  # superuser URL to the maintenance database
    database: str
    prefix: str
    service_urls: dict[str, str]

    def topic(self, name: str) -> str:
        return self.prefix + name

    def group(self, service: str) -> str:
        return self.prefix + service


def bring_up_infra() -> localinfra.Infra:
    """Kafka and Postgres as `make run` has them (started when not running yet)."""
    settings = OpsSettings()
    return localinfra.up(
        kafka_bootstrap=settings.kafka_bootstrap,
        database_url=settings.database_url,
        kafka_port=settings.kafka_port,
        pg_port=settings.pg_port,
    )


async def provision(infra: localinfra.Infra) -> BenchEnv:
    tag = uuid.uuid4().hex[:8]
    database = f"oms_bench_{tag}"
    prefix = f"bench{tag}."
    service_urls = await localinfra.provision_database_async(
        infra.admin_database_url, database, list(SERVICES)
    )
    await create_topics(infra.kafka_bootstrap, prefix, replication_factor=1)
    return BenchEnv(
        kafka_bootstrap=infra.kafka_bootstrap,
        admin_url=localinfra.with_database(infra.admin_database_url, database),
        server_admin_url=infra.admin_database_url,
        database=database,
        prefix=prefix,
        service_urls=service_urls,
    )


async def tear_down(env: BenchEnv) -> None:
    """Delete the run's topics and database (only this run's: named by its tag)."""
    await drop_run(env.kafka_bootstrap, env.server_admin_url, env.database, env.prefix)


async def drop_run(kafka_bootstrap: str, server_admin_url: str, database: str, prefix: str) -> None:
    """Delete the topics named with this prefix and this database (errors ignored)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if n.startswith(prefix)]
        if names:
            with contextlib.suppress(Exception):
                await admin.delete_topics(names, timeout_ms=60_000)
    finally:
        await admin.close()
    conn = await asyncpg.connect(server_admin_url)
    try:
        with contextlib.suppress(Exception):
            await conn.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    finally:
        await conn.close()


BENCH_PREFIX = re.compile(r"^bench[0-9a-f]{8}\.")
BENCH_DATABASE = re.compile(r"^oms_bench_[0-9a-f]{8}$")


async def remove_leftovers(infra: localinfra.Infra) -> list[str]:
    """Delete every bench run's topics and databases (for runs kept with --keep or killed)."""
    from aiokafka.admin import AIOKafkaAdminClient

    removed: list[str] = []
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if BENCH_PREFIX.match(n)]
        for start in range(0, len(names), 200):
            with contextlib.suppress(Exception):
                await admin.delete_topics(names[start : start + 200], timeout_ms=60_000)
        removed += sorted({n.split(".", 1)[0] + ".*" for n in names})
    finally:
        await admin.close()
    conn = await asyncpg.connect(infra.admin_database_url)
    try:
        for row in await conn.fetch("SELECT datname FROM pg_database"):
            if BENCH_DATABASE.match(row["datname"]):
                with contextlib.suppress(Exception):
                    await conn.execute(f'DROP DATABASE "{row["datname"]}" WITH (FORCE)')
                    removed.append(row["datname"])
    finally:
        await conn.close()
    return removed


def consumed_topics(service: str) -> tuple[str, ...]:
    """The topics a service's consumer group reads (from its own wiring)."""
    app = importlib.import_module(f"services.{service}.app")
    return tuple(app.build().topics)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServiceProcess:
    service: str
    replica: int
    env: dict[str, str]
    log_path: Path
    code: Path = REPO
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"{self.service}#{self.replica}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.service}"],
            cwd=self.code,
            env={
                **os.environ,
                **self.env,
                "OMS_HTTP_PORT": str(self.port),
                "PYTHONPATH": str(self.code),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Services:
    processes: list[ServiceProcess]

    def of(self, service: str) -> list[ServiceProcess]:
        return [p for p in self.processes if p.service == service]

    def urls(self, service: str) -> list[str]:
        return [p.url for p in self.of(service)]

    async def wait_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=3) as client:
            pending = list(self.processes)
            while pending:
                for process in list(pending):
                    if not process.alive():
                        raise RuntimeError(f"{process.name} exited:\n{process.log_tail()}")
                    with contextlib.suppress(httpx.HTTPError):
                        response = await client.get(f"{process.url}/health/ready")
                        if response.status_code == 200:
                            pending.remove(process)
                if pending and time.monotonic() > deadline:
                    names = ", ".join(p.name for p in pending)
                    raise RuntimeError(f"not ready after {timeout_s}s: {names}")
                await asyncio.sleep(0.3)

    def stop(self) -> None:
        for process in self.processes:
            if process.alive():
                assert process.process is not None
                process.process.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.stop()


def start_services(
    env: BenchEnv,
    *,
    replicas: int,
    log_dir: Path,
    extra_env: dict[str, str],
    code: Path = REPO,
) -> Services:
    processes = []
    for service in SERVICES:
        for replica in range(replicas):
            service_env = {
                "OMS_AUTH_JWKS_FILE": str(local_keys().jwks_file),
                "OMS_KAFKA_BOOTSTRAP": env.kafka_bootstrap,
                "OMS_DATABASE_URL": env.service_urls[service],
                "OMS_TOPIC_PREFIX": env.prefix,
                "PYTHONUNBUFFERED": "1",
                **extra_env,
            }
            processes.append(
                ServiceProcess(
                    service, replica, service_env, log_dir / f"{service}-{replica}.log", code
                )
            )
    for process in processes:
        process.start()
    return Services(processes)


def bearer(role: str, subject: str | None = None) -> dict[str, str]:
    """A token of the local signing key (the one the bench's services read)."""
    token = local_keys().issue([role], subject=subject, ttl_s=12 * 3600)
    return {"Authorization": f"Bearer {token}"}


def start_warehouse(
    env: BenchEnv, services: Services, out: Path, *, lookup: str, chaos: bool, skus: int
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
            lookup,
            "--skus",
            str(skus),
            "--stats-file",
            str(out / "warehouse.json"),
            *(("--attempts", "60") if chaos else ()),
            *itertools.chain.from_iterable(("--fulfilment-url", url) for url in urls),
        ],
        cwd=REPO,
        env={**os.environ, "OMS_TOKEN": local_keys().issue(["warehouse"], ttl_s=12 * 3600)},
        stdout=(out / "logs" / "warehouse.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
