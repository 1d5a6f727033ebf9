"""Bringing the local Kafka and PostgreSQL up and down together, and crashing them on purpose."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.localinfra import kafka, postgres
from devtools.localinfra.provisioning import (
    DEFAULT_DATABASE,
    provision_database,
    with_database,
)
from devtools.processes import LOCAL_DIR, LOGS_DIR, locked, port_open, read_text
from shared.topics import SERVICES

LOCK_FILE = LOCAL_DIR / ".lock"


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str  # "127.0.0.1:9092"
    admin_database_url: str  # superuser URL to the database "oms"
    service_database_urls: dict[str, str]  # per-service role DSN
    started: tuple[str, ...]  # parts this call started ("kafka", "postgres")


def crash_kafka(kafka_port: int = 9092, kafka_controller_port: int | None = None) -> None:
    """For chaos runs: SIGKILL the local broker (no clean shutdown), start it again and wait
    until it answers."""
    controller_port = kafka_controller_port or kafka_port + 1
    with locked(LOCK_FILE):
        pid = kafka.find_kafka_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        kafka.stop_kafka()
        # A killed JVM leaves /proc before its sockets are closed: wait for the ports.
        deadline = time.monotonic() + 60
        while (port_open(kafka_port) or port_open(controller_port)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)
        _, pid = kafka.ensure_kafka(kafka_port, controller_port)
        kafka.wait_kafka(f"127.0.0.1:{kafka_port}", pid)


def crash_postgres(pg_port: int = 5433) -> None:
    """For chaos runs: stop the local cluster as a crash would (`pg_ctl -m immediate`: every
    backend killed, WAL recovery at the next start), then start it again."""
    with locked(LOCK_FILE):
        postgres.stop_postgres(mode="immediate")
        postgres.ensure_postgres(pg_port)


def up(
    *,
    kafka_bootstrap: str | None = None,
    database_url: str | None = None,
    services: Iterable[str] = SERVICES,
    kafka_port: int = 9092,
    pg_port: int = 5433,
    database: str = DEFAULT_DATABASE,
    kafka_controller_port: int | None = None,
) -> Infra:
    """Bring up (or reuse) Kafka and PostgreSQL and provision the service roles.

    ``kafka_bootstrap`` given: no local Kafka is started, that one is used as is.
    ``database_url`` given: no local PostgreSQL; it must be an admin (superuser) URL,
    used to create ``database`` and the roles.  Idempotent; data survives down()/up().
    """
    services = tuple(services)
    controller_port = kafka_controller_port or kafka_port + 1
    started: list[str] = []
    with locked(LOCK_FILE):
        kafka_pid: int | None = None
        if kafka_bootstrap is None:
            kafka_started, kafka_pid = kafka.ensure_kafka(kafka_port, controller_port)
            if kafka_started:
                started.append("kafka")
            bootstrap = f"127.0.0.1:{kafka_port}"
        else:
            bootstrap = kafka_bootstrap

        # PostgreSQL starts while the JVM boots.
        if database_url is None:
            admin_base, pg_started = postgres.ensure_postgres(pg_port)
            if pg_started:
                started.append("postgres")
        else:
            admin_base = database_url
        service_urls = provision_database(admin_base, database, services)

        if kafka_bootstrap is None:
            kafka.wait_kafka(bootstrap, kafka_pid)
    return Infra(
        kafka_bootstrap=bootstrap,
        admin_database_url=with_database(admin_base, database),
        service_database_urls=service_urls,
        started=tuple(started),
    )


def down() -> None:
    """Stop what this module started (Kafka by pid file, PostgreSQL by pg_ctl -m fast). Idempotent."""
    with locked(LOCK_FILE):
        kafka.stop_kafka()
        postgres.stop_postgres()


def status() -> dict[str, Any]:
    """What is running, ports, pids, data dirs (no secrets)."""
    return {"local_dir": str(LOCAL_DIR), "kafka": kafka.status(), "postgres": postgres.status()}


def clean() -> None:
    """down(), then delete Kafka and PostgreSQL data (keeps .local/kafka/libs and .local/m2)."""
    with locked(LOCK_FILE):
        kafka.stop_kafka()
        postgres.stop_postgres()
        located = read_text(postgres.PG_LOCATION)
        for path in (
            kafka.KAFKA_DATA,
            kafka.KAFKA_CLUSTER_ID,
            kafka.KAFKA_PROPS,
            kafka.KAFKA_PID,
            kafka.KAFKA_STATE,
            kafka.KAFKA_DIR / "libs.tmp",
            postgres.PG_DIR,
            LOGS_DIR,
            *([Path(located)] if located else []),
        ):
            if path.is_symlink() or path.is_file():
                path.unlink(missing_ok=True)
            elif path.exists():
                shutil.rmtree(path)
