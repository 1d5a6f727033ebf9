"""SQL of the operator views."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.platform.db import DbConnection


async def stuck_order_candidates(
    conn: DbConnection, overdue_before: datetime, *, include_retrying: bool, limit: int
) -> list[dict[str, Any]]:
    """Orders parked for an operator or with a deadline before `overdue_before` (and, when asked,
    orders already re-sending a step's command); the saga decides which of them are stuck."""
    retrying = " OR (next_deadline_at IS NOT NULL AND (saga->>'attempt')::int > 1)"
    rows = await conn.fetch(
        "SELECT order_id, channel, status, saga, next_deadline_at, created_at, updated_at"
        " FROM orders WHERE status = 'NEEDS_ATTENTION' OR next_deadline_at < $1"
        + (retrying if include_retrying else "")
        + " ORDER BY updated_at, order_id LIMIT $2",
        overdue_before,
        limit,
    )
    return [dict(r) for r in rows]
