"""The SQL of the saga kit, for the tables a service names in `SagaTables`.

A service's migrations create, in its own schema:
- the saga table: one row per saga, with its id column, `saga` (jsonb: the saga's state) and
  `next_deadline_at` (indexed where not null);
- the timeline table: (`id` bigserial, the saga's id column, `at`, `status`, `event`, `detail`);
- `idempotency_keys`: (`idempotency_key`, `request_hash`, the saga's id column).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel

from shared.platform.db import DbConnection

SagaT = TypeVar("SagaT", bound=BaseModel)


@dataclass(frozen=True)
class SagaTables:
    """Where a service keeps its sagas (names from code, never from a request)."""

    sagas: str
    id_column: str
    timeline: str
    # Prefix of the advisory lock that serialises the requests with one Idempotency-Key.
    idempotency_lock: str


class TimelineRow(NamedTuple):
    saga_id: str
    status: str
    event: str
    detail: Mapping[str, Any]


async def any_due(conn: DbConnection, tables: SagaTables, now: datetime) -> bool:
    value: bool = await conn.fetchval(
        f"SELECT EXISTS (SELECT 1 FROM {tables.sagas} WHERE next_deadline_at <= $1)", now
    )
    return value


async def lock_due(
    conn: DbConnection, tables: SagaTables, model: type[SagaT], now: datetime, limit: int
) -> list[SagaT]:
    """The sagas whose deadline passed, oldest deadline first, locked (SKIP LOCKED: replicas
    share the work)."""
    rows = await conn.fetch(
        f"SELECT saga::text AS saga FROM {tables.sagas} WHERE next_deadline_at <= $1"
        " ORDER BY next_deadline_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )
    return [model.model_validate_json(row["saga"]) for row in rows]


async def append_timeline(
    conn: DbConnection, tables: SagaTables, rows: Sequence[TimelineRow]
) -> None:
    if not rows:
        return
    await conn.executemany(
        f"INSERT INTO {tables.timeline} ({tables.id_column}, status, event, detail)"
        " VALUES ($1, $2, $3, $4)",
        rows,
    )


async def read_timeline(
    conn: DbConnection, tables: SagaTables, saga_id: str
) -> list[dict[str, Any]]:
    """The saga's timeline, oldest first: at, status, event, detail."""
    rows = await conn.fetch(
        f"SELECT at, status, event, detail FROM {tables.timeline}"
        f" WHERE {tables.id_column} = $1 ORDER BY id",
        saga_id,
    )
    return [dict(row) for row in rows]


async def lock_idempotency_key(conn: DbConnection, tables: SagaTables, key: str) -> None:
    """Serialise concurrent requests with the same key until the transaction ends."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1::text || $2::text))",
        tables.idempotency_lock,
        key,
    )


async def saga_for_idempotency_key(
    conn: DbConnection, tables: SagaTables, key: str
) -> tuple[str, str] | None:
    """(saga id, request hash) the key was first used for, if it was."""
    row = await conn.fetchrow(
        f"SELECT {tables.id_column} AS saga_id, request_hash FROM idempotency_keys"
        " WHERE idempotency_key = $1",
        key,
    )
    return (row["saga_id"], row["request_hash"]) if row else None


async def remember_idempotency_key(
    conn: DbConnection, tables: SagaTables, key: str, request_hash: str, saga_id: str
) -> None:
    await conn.execute(
        f"INSERT INTO idempotency_keys (idempotency_key, request_hash, {tables.id_column})"
        " VALUES ($1, $2, $3)",
        key,
        request_hash,
        saga_id,
    )
