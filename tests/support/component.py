"""Component tests: one service's real handlers and HTTP routes on a real Postgres, no Kafka.

Messages are delivered through the service's own `Consumer` (the same inbox, transaction and
dead-letter path as in production); what the service emits is read back from its outbox, which
no relay drains here. HTTP requests go through the service's FastAPI app in-process.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from shared.envelope import Contract, Envelope, decode
from shared.platform.consumer import Consumer
from shared.platform.db import create_pool
from shared.platform.migrations import migrate
from shared.platform.outbox import OutboxRelay
from shared.platform.service import Runtime, ServiceSpec, _build_broker, create_app
from shared.topics import dead_letter_topic
from tests.support import auth
from tests.support.env import Infra, TestEnv, new_env


@dataclass
class FakeRecord:
    topic: str
    value: bytes | None
    key: bytes | None = None
    partition: int = 0
    offset: int = 0
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass
class ComponentHarness:
    spec: ServiceSpec
    env: TestEnv
    pool: asyncpg.Pool
    consumer: Consumer
    dead_letters: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    _offset: int = 0
    _seen_outbox: int = 0
    runtime: Runtime | None = None  # of the last app http() built

    async def deliver(
        self, message: Contract, *, correlation_id: str, envelope: Envelope | None = None
    ) -> Envelope:
        """Deliver one message (or a given envelope, e.g. a duplicate) to the service."""
        envelope = envelope or Envelope.wrap(
            message, correlation_id=correlation_id, producer="test"
        )
        await self.deliver_raw(message.TOPIC, envelope.to_bytes(), key=correlation_id.encode())
        return envelope

    async def deliver_raw(self, topic: str, value: bytes | None, key: bytes | None = None) -> None:
        self._offset += 1
        await self.consumer.handle_records([FakeRecord(topic, value, key, offset=self._offset)])

    async def emitted(self, message_type: str | None = None) -> list[Envelope]:
        """Everything the service wrote to its outbox so far (oldest first)."""
        rows = await self.pool.fetch("SELECT payload FROM outbox ORDER BY id")
        envelopes = [decode(bytes(r["payload"])) for r in rows]
        if message_type is not None:
            envelopes = [e for e in envelopes if e.type == message_type]
        return envelopes

    async def emitted_contracts(self, message_type: str) -> list[Any]:
        return [e.contract() for e in await self.emitted(message_type)]

    async def clear_outbox(self) -> None:
        await self.pool.execute("DELETE FROM outbox")

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self.pool.fetch(sql, *args)

    def http(self, *roles: str) -> httpx.AsyncClient:
        """A client of the service's HTTP API with a token of `roles` (admin by default);
        `anonymous()` sends none."""
        return self._client(auth.bearer(*(roles or (auth.ADMIN,))))

    def anonymous(self) -> httpx.AsyncClient:
        return self._client({})

    def _client(self, headers: dict[str, str]) -> httpx.AsyncClient:
        app = create_app(self.spec)
        relay = OutboxRelay(
            dsn=self.env.service_urls[self.spec.settings.service_name],
            schema=self.spec.settings.db_schema,
            service=self.spec.settings.service_name,
            publish=_never_publish,
        )
        app.state.runtime = Runtime(
            self.spec.settings,
            self.pool,
            _build_broker(self.spec.settings),
            relay,
            self.consumer,
            self.spec.migrations,
        )
        self.runtime = app.state.runtime
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
        )


async def _never_publish(*_: Any) -> Any:
    raise AssertionError("component tests do not publish")


async def _record_dead_letter(
    harness_letters: list[tuple[bytes, dict[str, str]]],
    value: bytes,
    topic: str,
    key: bytes | None,
    headers: dict[str, str],
) -> None:
    harness_letters.append((value, headers))


async def start_harness(infra: Infra, spec: ServiceSpec) -> AsyncIterator[ComponentHarness]:
    """Fresh database for the service, migrated; yields a harness; closes the pool after."""
    service = spec.settings.service_name
    env = await new_env(infra, services=[service], kafka=False)
    spec.settings = spec.settings.model_copy(
        update={"database_url": env.service_urls[service], "topic_prefix": ""}
    )
    pool = await create_pool(env.service_urls[service], spec.settings.db_schema)
    async with pool.acquire() as conn:
        await migrate(conn, spec.settings.db_schema, spec.migrations)
    letters: list[tuple[bytes, dict[str, str]]] = []

    async def publish_dead_letter(
        value: bytes, topic: str, key: bytes | None, headers: dict[str, str]
    ) -> None:
        await _record_dead_letter(letters, value, topic, key, headers)

    consumer = Consumer(
        service=service,
        group_id=f"component-{uuid.uuid4().hex[:6]}",
        pool=pool,
        handlers=spec.handlers,
        dead_letter_topic=dead_letter_topic(service),
        publish_dead_letter=publish_dead_letter,
        max_attempts=2,
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
    )
    harness = ComponentHarness(spec, env, pool, consumer, letters)
    try:
        yield harness
    finally:
        await pool.close()
