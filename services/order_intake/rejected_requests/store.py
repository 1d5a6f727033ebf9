"""SQL of refused requests kept for an operator."""

from __future__ import annotations

from datetime import datetime

from shared.platform.db import DbConnection
from shared.platform.housekeeping import deleted


async def record_rejected_request(
    conn: DbConnection,
    endpoint: str,
    code: str,
    error: str,
    raw_body: bytes,
    headers: dict[str, str],
    *,
    max_bytes: int,
) -> int:
    """Keep a refused request for an operator, its body cut to `max_bytes` (the real size is
    kept in body_size)."""
    value: int = await conn.fetchval(
        "INSERT INTO rejected_requests (endpoint, error_code, error, raw_body, headers, body_size)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        endpoint,
        code,
        error.replace("\x00", "\ufffd")[:2000],
        raw_body[:max_bytes],
        headers,
        len(raw_body),
    )
    return value


async def prune_rejected_requests(
    conn: DbConnection, older_than: datetime, *, max_rows: int, batch: int
) -> int:
    """Delete up to `batch` refused requests that are older than `older_than` or not among the
    newest `max_rows`, oldest first."""
    status = await conn.execute(
        "DELETE FROM rejected_requests WHERE id = ANY(ARRAY("
        " SELECT id FROM rejected_requests"
        " WHERE received_at < $1"
        "    OR id < (SELECT id FROM rejected_requests ORDER BY id DESC OFFSET $2 LIMIT 1)"
        " ORDER BY id LIMIT $3))",
        older_than,
        max_rows - 1,
        batch,
    )
    return deleted(status)
