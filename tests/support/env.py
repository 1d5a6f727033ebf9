"""Test infrastructure: real Kafka and Postgres, found in this order (DESIGN.md, issue 2):

1. OMS_KAFKA_BOOTSTRAP and OMS_DATABASE_URL (an admin URL) when set;
2. testcontainers, when a Docker engine answers;
3. the project's local processes (`devtools.localinfra`), started if not running.

Each test environment gets its own database and its own topic prefix, so tests never see each
other's rows or messages, even on a shared broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from devtools import localinfra
from shared.ops.topics import ensure_topics
from shared.platform.settings import OpsSettings
from shared.topics import SERVICES, TOPICS, TopicSpec, dead_letter_topic

TEST_PARTITIONS = 3
# Machine-wide, like the Kafka and Postgres the sessions share: a session in another checkout of
# the repository must keep a later session from taking itself for the only one.
LOCK_FILE = Path(tempfile.gettempdir()) / "oms-test-session.lock"


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str
    admin_url: str  # superuser URL; its database is only used to create test databases


@dataclass(frozen=True)
class TestEnv:
    __test__ = False

    infra: Infra
    prefix: str
    database: str
    service_urls: dict[str, str]
    admin_db_url: str

    @property
    def kafka(self) -> str:
        return self.infra.kafka_bootstrap

    def topic(self, name: str) -> str:
        return self.prefix + name

    def service_env(self, service: str) -> dict[str, str]:
        return {
            "OMS_KAFKA_BOOTSTRAP": self.infra.kafka_bootstrap,
            "OMS_DATABASE_URL": self.service_urls[service],
            "OMS_TOPIC_PREFIX": self.prefix,
            "OMS_CONSUMER_BACKOFF_INITIAL_S": "0.05",
            "OMS_CONSUMER_BACKOFF_MAX_S": "0.5",
            "OMS_CONSUMER_MAX_ATTEMPTS": "3",
            "OMS_RELAY_POLL_INTERVAL_S": "0.5",
        }

    async def admin(self) -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(self.admin_db_url)
        return conn


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def provide_infra() -> Iterator[Infra]:
    settings = OpsSettings()
    if settings.kafka_bootstrap and settings.database_url:
        yield Infra(settings.kafka_bootstrap, settings.database_url)
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        with KafkaContainer().with_kraft() as kafka, PostgresContainer("postgres:15") as pg:
            url = pg.get_connection_url().replace("postgresql+psycopg2://", "postgresql://")
            yield Infra(kafka.get_bootstrap_server(), url)
        return
    infra = localinfra.up(
        kafka_bootstrap=settings.kafka_bootstrap,
        database_url=settings.database_url,
        kafka_port=settings.kafka_port,
        pg_port=settings.pg_port,
    )
    try:
        yield Infra(infra.kafka_bootstrap, infra.admin_database_url)
    finally:
        if infra.started:
            # Stop only what this test session started; a `make run` left running stays up.
            localinfra.down()


TEST_PREFIX = re.compile(r"^t[0-9a-f]{8}\.")
TEST_DATABASE = re.compile(r"^oms_t[0-9a-f]{8}$")
DROP_CONCURRENCY = 4


_CREATED: list[str] = []


@contextlib.contextmanager
def test_session_lock() -> Iterator[bool]:
    """Shared by every running test session; yields True when this session is the only one
    (then leftovers of earlier, killed sessions can be removed without hurting anyone)."""
    import fcntl

    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with LOCK_FILE.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except BlockingIOError:
            alone = False
        fcntl.flock(handle, fcntl.LOCK_SH)
        yield alone


async def remove_test_leftovers(infra: Infra, *, only_this_session: bool) -> None:
    """Delete the topics and databases test environments created.

    Every test environment has its own topics; without this a single-node broker accumulates
    thousands of partitions over a few runs and runs out of heap.
    """
    from aiokafka.admin import AIOKafkaAdminClient

    def ours(name: str) -> bool:
        if only_this_session:
            return any(name.startswith(p) or name == f"oms_{p[:-1]}" for p in _CREATED)
        return bool(TEST_PREFIX.match(name) or TEST_DATABASE.match(name))

    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if TEST_PREFIX.match(n) and ours(n)]
        for start in range(0, len(names), 200):
            with contextlib.suppress(Exception):
                await admin.delete_topics(names[start : start + 200], timeout_ms=60_000)
    finally:
        await admin.close()
    # A few DROP DATABASEs at once: measured, 100 provisioned test databases in 9.7 s instead
    # of 11.6 s one after another (each waits mostly on the disk).
    pool = await asyncpg.create_pool(infra.admin_url, min_size=1, max_size=DROP_CONCURRENCY)
    try:
        rows = await pool.fetch("SELECT datname FROM pg_database")

        async def drop(database: str) -> None:
            with contextlib.suppress(Exception):
                await pool.execute(f'DROP DATABASE "{database}" WITH (FORCE)')

        await asyncio.gather(
            *(
                drop(r["datname"])
                for r in rows
                if TEST_DATABASE.match(r["datname"]) and ours(r["datname"])
            )
        )
    finally:
        await pool.close()


async def new_env(
    infra: Infra,
    services: Sequence[str] = SERVICES,
    extra_topics: Iterable[str] = (),
    *,
    kafka: bool = True,
) -> TestEnv:
    """A fresh database and, when `kafka`, a fresh set of prefixed topics for one test."""
    tag = uuid.uuid4().hex[:8]
    prefix = f"t{tag}."
    database = f"oms_t{tag}"
    service_urls = await localinfra.provision_database_async(
        infra.admin_url, database, list(services)
    )
    _CREATED.append(prefix)
    admin_db_url = localinfra.with_database(infra.admin_url, database)
    env = TestEnv(infra, prefix, database, service_urls, admin_db_url)
    if not kafka:
        return env
    topics = [
        TopicSpec(
            prefix + t.name,
            t.owner,
            t.description,
            t.key,
            min(t.partitions, TEST_PARTITIONS),
            t.config,
        )
        for t in TOPICS
    ]
    topics += [
        TopicSpec(prefix + name, "test", "test topic", "", TEST_PARTITIONS) for name in extra_topics
    ]
    topics += [
        TopicSpec(prefix + dead_letter_topic(name), name, "test dead letters", "", 1)
        for name in services
        if name not in SERVICES
    ]
    await ensure_topics(infra.kafka_bootstrap, topics)
    return env
