"""The console's record of the dead letters it replayed (table `dead_letter_replays`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from shared.platform.db import DbConnection


@dataclass(frozen=True)
class Replay:
    topic: str
    partition: int
    offset: int
    original_topic: str
    replayed_by: str
    replayed_at: datetime


_COLUMNS = "topic, dlq_partition, dlq_offset, original_topic, replayed_by, replayed_at"


def _replay(r: asyncpg.Record) -> Replay:
    return Replay(
        r["topic"],
        r["dlq_partition"],
        r["dlq_offset"],
        r["original_topic"],
        r["replayed_by"],
        r["replayed_at"],
    )


async def claim(
    conn: DbConnection,
    *,
    service: str,
    topic: str,
    partition: int,
    offset: int,
    original_topic: str,
    by: str,
) -> Replay | None:
    """Mark the letter replayed; None when it already was. Inside the caller's transaction: a
    concurrent claim of the same letter waits for it, then finds the row."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO dead_letter_replays
            (topic, dlq_partition, dlq_offset, service, original_topic, replayed_by)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (topic, dlq_partition, dlq_offset) DO NOTHING
        RETURNING {_COLUMNS}
        """,
        topic,
        partition,
        offset,
        service,
        original_topic,
        by,
    )
    return None if row is None else _replay(row)


async def replays(
    conn: DbConnection, topic: str, letters: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], Replay]:
    """The console's replays among these (partition, offset) letters of the topic."""
    wanted = list(letters)
    if not wanted:
        return {}
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM dead_letter_replays
        WHERE topic = $1
          AND (dlq_partition, dlq_offset) IN (
              SELECT * FROM unnest($2::integer[], $3::bigint[]))
        """,
        topic,
        [p for p, _ in wanted],
        [o for _, o in wanted],
    )
    found = [_replay(r) for r in rows]
    return {(r.partition, r.offset): r for r in found}


async def replayed_since(conn: DbConnection, topic: str, committed: dict[int, int]) -> int:
    """How many letters at or past the bulk-replay position the console replayed."""
    if not committed:
        return 0
    count: int = await conn.fetchval(
        """
        SELECT count(*) FROM dead_letter_replays r
        JOIN unnest($2::integer[], $3::bigint[]) AS c(p, o) ON c.p = r.dlq_partition
        WHERE r.topic = $1 AND r.dlq_offset >= c.o
        """,
        topic,
        list(committed),
        list(committed.values()),
    )
    return count
