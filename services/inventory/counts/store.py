"""All SQL of cycle counts: each applied count's answer, found again by its Idempotency-Key.
(The stock rows and the ledger are the stock store's.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.platform.db import DbConnection


@dataclass(frozen=True)
class CountedLineRecord:
    sku: str
    before: int
    counted: int
    delta: int
    ledger_id: int | None


@dataclass(frozen=True)
class StockCount:
    count_id: str
    location: str
    reason: str
    reference: str | None
    lines: tuple[CountedLineRecord, ...]
    counted_at: datetime


class CountStore:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def lock_idempotency_key(self, key: str) -> None:
        """Serialise the counts posted under one Idempotency-Key until the transaction ends."""
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('count-idem:' || $1::text))", key
        )

    async def with_key(self, key: str) -> tuple[StockCount, str] | None:
        """The count applied under the key, and the hash of its request."""
        row = await self._conn.fetchrow(
            "SELECT count_id, location, reason, reference, lines, counted_at, request_hash"
            " FROM stock_counts WHERE idempotency_key = $1",
            key,
        )
        return (_count(row), row["request_hash"]) if row else None

    async def record(
        self,
        count_id: str,
        location: str,
        reason: str,
        reference: str | None,
        lines: Sequence[CountedLineRecord],
        *,
        idempotency_key: str | None,
        request_hash: str | None,
    ) -> StockCount:
        row = await self._conn.fetchrow(
            "INSERT INTO stock_counts (count_id, location, reason, reference, lines,"
            " idempotency_key, request_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " RETURNING count_id, location, reason, reference, lines, counted_at",
            count_id,
            location,
            reason,
            reference,
            [
                {
                    "sku": line.sku,
                    "before": line.before,
                    "counted": line.counted,
                    "delta": line.delta,
                    "ledger_id": line.ledger_id,
                }
                for line in lines
            ],
            idempotency_key,
            request_hash,
        )
        return _count(row)


def _count(row: Any) -> StockCount:
    return StockCount(
        count_id=row["count_id"],
        location=row["location"],
        reason=row["reason"],
        reference=row["reference"],
        lines=tuple(CountedLineRecord(**line) for line in row["lines"]),
        counted_at=row["counted_at"],
    )
