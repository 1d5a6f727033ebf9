"""The commands the manifests run: `python -m shared.ops.migrate <service>` (init containers)
and `python -m shared.ops.topics` (the dev topic Job), on the real Kafka and Postgres."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import asyncpg
import pytest
import yaml

from devtools import localinfra
from shared.ops.topics import strimzi_topics
from shared.topics import TOPICS
from tests.deploy import support
from tests.support.env import Infra

pytestmark = pytest.mark.integration


def _run(module: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMS_", "PG"))}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=support.REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_migrate_applies_a_service_schema_with_its_own_role(infra: Infra) -> None:
    database = f"oms_deploy_{uuid.uuid4().hex[:8]}"
    urls = await localinfra.provision_database_async(infra.admin_url, database, ["inventory"])
    env = {"OMS_DATABASE_URL": urls["inventory"], "OMS_LOG_JSON": "false"}
    try:
        first = _run("shared.ops.migrate", "inventory", env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "applied" in first.stdout and "service/0001_init" in first.stdout
        again = _run("shared.ops.migrate", "inventory", env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "schema up to date" in again.stdout

        conn = await asyncpg.connect(urls["inventory"])
        try:
            rows = await conn.fetch(
                "SELECT component, version, current_user AS who FROM inventory.schema_migrations"
            )
        finally:
            await conn.close()
        assert {(r["component"], r["version"]) for r in rows} >= {("platform", 1), ("service", 1)}
        assert rows[0]["who"] == "inventory"
    finally:
        admin = await asyncpg.connect(infra.admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await admin.close()


def test_migrate_refuses_an_unknown_service_and_an_unreachable_database() -> None:
    unknown = _run("shared.ops.migrate", "billing", env={})
    assert unknown.returncode == 2 and "unknown service" in unknown.stderr
    unreachable = _run(
        "shared.ops.migrate",
        "payment",
        "--wait",
        "1",
        env={"OMS_DATABASE_URL": "postgresql://payment:x@127.0.0.1:9/oms", "OMS_LOG_JSON": "false"},
    )
    assert unreachable.returncode == 1
    assert "migrations of payment failed" in unreachable.stdout


async def test_topics_command_creates_the_registry_topics(infra: Infra) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    prefix = f"deploy{uuid.uuid4().hex[:8]}."
    env = {"OMS_KAFKA_BOOTSTRAP": infra.kafka_bootstrap, "OMS_TOPIC_PREFIX": prefix}
    first = _run("shared.ops.topics", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"created {len(TOPICS)} topic(s)" in first.stdout
    again = _run("shared.ops.topics", env=env)
    assert again.returncode == 0 and "created 0 topic(s)" in again.stdout

    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        names = [prefix + t.name for t in TOPICS]
        described = await admin.describe_topics(names)
        partitions = {d["topic"]: len(d["partitions"]) for d in described}
        assert partitions == {prefix + t.name: t.partitions for t in TOPICS}
        await admin.delete_topics(names)
    finally:
        await admin.close()


def test_topics_command_prints_strimzi_resources() -> None:
    result = _run("shared.ops.topics", "--strimzi", "--cluster", "other", env={})
    assert result.returncode == 0, result.stderr
    assert [d for d in yaml.safe_load_all(result.stdout) if d] == strimzi_topics(cluster="other")
    missing = _run("shared.ops.topics", env={})
    assert missing.returncode == 2 and "OMS_KAFKA_BOOTSTRAP" in missing.stderr
