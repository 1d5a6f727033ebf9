"""Test infrastructure: real Kafka and Postgres, found in this order (DESIGN.md, issue 2):

1. OMS_KAFKA_BOOTSTRAP and OMS_DATABASE_URL (an admin URL) when set;
2. testcontainers, when a Docker engine answers;
3. the project's local processes (`shared.ops.localinfra`), started if not running.

Each test environment gets its own database and its own topic prefix, so tests never see each
other's rows or messages, even on a shared broker.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import asyncpg

from shared.ops import localinfra
from shared.platform.settings import OpsSettings
from shared.topics import SERVICES, TOPICS, TopicSpec, dead_letter_topic

TEST_PARTITIONS = 3


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
        kafka_bootstrap=settings.kafka_bootstrap, database_url=settings.database_url
    )
    try:
        yield Infra(infra.kafka_bootstrap, infra.admin_database_url)
    finally:
        if infra.started:
            # Stop only what this test session started; a `make run` left running stays up.
            localinfra.down()


async def new_env(
    infra: Infra, services: Iterable[str] = SERVICES, extra_topics: Iterable[str] = ()
) -> TestEnv:
    tag = uuid.uuid4().hex[:8]
    prefix = f"t{tag}."
    database = f"oms_t{tag}"
    service_urls = await localinfra.provision_database_async(
        infra.admin_url, database, list(services)
    )
    topics = [
        TopicSpec(prefix + t.name, t.owner, t.description, t.key, TEST_PARTITIONS, t.config)
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
    await localinfra.ensure_topics(infra.kafka_bootstrap, topics)
    admin_db_url = _with_database(infra.admin_url, database)
    return TestEnv(infra, prefix, database, service_urls, admin_db_url)


def _with_database(url: str, database: str) -> str:
    base, _, tail = url.rpartition("/")
    query = ""
    if "?" in tail:
        query = "?" + tail.split("?", 1)[1]
    return f"{base}/{database}{query}"
