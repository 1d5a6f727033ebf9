"""SQL of customer notifications: the notifications to send and what a customer e-mail shows of
its order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.platform.db import DbConnection


async def order_for_notification(conn: DbConnection, order_id: str) -> dict[str, Any] | None:
    """What a customer e-mail shows of the order (lines, totals, address, fulfilments), in one
    round trip: get_order without the timeline."""
    row = await conn.fetchrow(
        "SELECT o.currency, o.subtotal, o.discount, o.shipping, o.tax, o.total,"
        " o.shipping_address, o.saga,"
        " (SELECT coalesce(jsonb_agg(jsonb_build_object('sku', l.sku, 'quantity', l.quantity,"
        "    'unit_price', l.unit_price::text, 'line_total', l.line_total::text)"
        "    ORDER BY l.position), '[]'::jsonb)"
        "  FROM order_lines l WHERE l.order_id = o.order_id) AS lines"
        " FROM orders o WHERE o.order_id = $1",
        order_id,
    )
    return dict(row) if row is not None else None


async def insert_notification(
    conn: DbConnection,
    notification_id: Any,
    order_id: str,
    kind: str,
    recipient: str | None,
    subject: str,
    body: str,
) -> bool:
    """Record a notification to send; False when this notification id is already recorded."""
    inserted: str | None = await conn.fetchval(
        "INSERT INTO notifications (notification_id, order_id, kind, recipient, subject, body)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING order_id",
        notification_id,
        order_id,
        kind,
        recipient,
        subject,
        body,
    )
    return inserted is not None


async def claim_due_notifications(
    conn: DbConnection, now: datetime, limit: int
) -> list[dict[str, Any]]:
    """The oldest notifications due for sending, locked (SKIP LOCKED: replicas share the work)."""
    rows = await conn.fetch(
        "SELECT notification_id, order_id, kind, recipient, subject, body, attempts"
        " FROM notifications WHERE status = 'pending' AND next_attempt_at <= $1"
        " ORDER BY next_attempt_at, created_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )
    return [dict(row) for row in rows]


async def finish_attempts(
    conn: DbConnection, outcomes: Sequence[tuple[Any, str, str | None, datetime | None]]
) -> None:
    """Record each (notification id, status, error, retry at) attempt, in one statement: a final
    status, or `pending` again with the time of the next attempt."""
    if not outcomes:
        return
    await conn.execute(
        "UPDATE notifications n SET status = o.status, attempts = n.attempts + 1,"
        " last_error = o.error,"
        " next_attempt_at = coalesce(o.retry_at, n.next_attempt_at),"
        " sent_at = CASE WHEN o.status IN ('sent', 'logged') THEN clock_timestamp() END"
        " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])"
        "   AS o(notification_id, status, error, retry_at)"
        " WHERE n.notification_id = o.notification_id",
        [notification_id for notification_id, _, _, _ in outcomes],
        [status for _, status, _, _ in outcomes],
        [error for _, _, error, _ in outcomes],
        [retry_at for _, _, _, retry_at in outcomes],
    )
