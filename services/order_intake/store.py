"""All SQL of order-intake."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.order_intake.domain.order import CanonicalOrder
from services.order_intake.domain.pricing import Totals
from services.order_intake.domain.saga import OrderSaga, TimelineEntry
from shared.envelope import dumps, loads
from shared.platform.db import DbConnection
from shared.platform.housekeeping import deleted


async def insert_order(
    conn: DbConnection,
    order_id: str,
    order: CanonicalOrder,
    totals: Totals,
    saga: OrderSaga,
    raw_request: Any,
    timeline: Sequence[TimelineEntry] = (),
) -> bool:
    """Store a new order, its lines and its first timeline entries in one statement (the
    intake's hot path). False, and nothing stored, when the channel already has an order with
    this external id."""
    lines = list(enumerate(saga.lines, start=1))
    inserted: str | None = await conn.fetchval(
        """
        WITH saved AS (
            INSERT INTO orders (order_id, channel, external_id, status, currency, subtotal,
                discount, shipping, tax, total, customer, shipping_address, billing_address,
                shipping_method, promo_code, raw_request, saga, next_deadline_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                $17::text::jsonb, $18)
            ON CONFLICT (channel, external_id) WHERE external_id IS NOT NULL DO NOTHING
            RETURNING order_id
        ), lines_saved AS (
            INSERT INTO order_lines (order_id, line_id, position, sku, quantity, unit_price,
                line_total)
            SELECT saved.order_id, l.line_id, l.position, l.sku, l.quantity, l.unit_price,
                l.line_total
            FROM saved, unnest($19::text[], $20::int[], $21::text[], $22::int[],
                $23::numeric[], $24::numeric[])
                AS l(line_id, position, sku, quantity, unit_price, line_total)
        ), timeline AS (
            INSERT INTO order_timeline (order_id, status, event, detail)
            SELECT saved.order_id, $4, t.event, t.detail
            FROM saved, unnest($25::text[], $26::jsonb[]) WITH ORDINALITY AS t(event, detail, n)
            ORDER BY t.n
        )
        SELECT order_id FROM saved
        """,
        order_id,
        order.channel,
        order.external_id,
        saga.status.value,
        order.currency,
        totals.subtotal,
        totals.discount,
        totals.shipping,
        totals.tax,
        totals.total,
        order.customer.model_dump(mode="json"),
        order.shipping_address.model_dump(mode="json"),
        order.billing_address.model_dump(mode="json") if order.billing_address else None,
        order.shipping_method,
        order.promo_code,
        raw_request,
        saga.model_dump_json(),
        saga.next_deadline,
        [line.line_id for _, line in lines],
        [position for position, _ in lines],
        [line.sku for _, line in lines],
        [line.quantity for _, line in lines],
        [line.unit_price for _, line in lines],
        [line.line_total for _, line in lines],
        [entry.event for entry in timeline],
        [entry.detail for entry in timeline],
    )
    return inserted is not None


async def order_id_for_idempotency_key(conn: DbConnection, key: str) -> tuple[str, str] | None:
    row = await conn.fetchrow(
        "SELECT order_id, request_hash FROM idempotency_keys WHERE idempotency_key = $1", key
    )
    return (row["order_id"], row["request_hash"]) if row else None


async def remember_idempotency_key(
    conn: DbConnection, key: str, request_hash: str, order_id: str
) -> None:
    await conn.execute(
        "INSERT INTO idempotency_keys (idempotency_key, request_hash, order_id) VALUES ($1, $2, $3)",
        key,
        request_hash,
        order_id,
    )


async def lock_idempotency_key(conn: DbConnection, key: str) -> None:
    """Serialise concurrent requests with the same key until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('idem:' || $1))", key)


async def order_id_for_external_id(
    conn: DbConnection, channel: str, external_id: str
) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT order_id FROM orders WHERE channel = $1 AND external_id = $2", channel, external_id
    )
    return value


async def load_saga(conn: DbConnection, order_id: str, *, lock: bool) -> OrderSaga | None:
    sql = "SELECT saga::text FROM orders WHERE order_id = $1" + (" FOR UPDATE" if lock else "")
    data = await conn.fetchval(sql, order_id)
    return OrderSaga.model_validate_json(data) if data is not None else None


async def lock_sagas(
    conn: DbConnection, order_ids: Sequence[str]
) -> dict[str, tuple[OrderSaga, dict[str, Any]]]:
    """The sagas of these orders, locked for the transaction (in order id order), each with
    the facts its status events carry (see save_saga_with_timeline)."""
    rows = await conn.fetch(
        "SELECT o.order_id, o.saga::text AS saga, o.subtotal, o.discount, o.shipping, o.tax,"
        " r.return_id AS linked_return_id, r.original_order_id"
        " FROM orders o LEFT JOIN replacement_orders r ON r.order_id = o.order_id"
        " WHERE o.order_id = ANY($1::text[]) ORDER BY o.order_id FOR UPDATE OF o",
        sorted(set(order_ids)),
    )
    # Sagas travel as JSON text: pydantic parses and writes it directly, faster than through
    # Python dicts.
    return {
        row["order_id"]: (
            OrderSaga.model_validate_json(row["saga"]),
            {name: row[name] for name in _FACTS},
        )
        for row in rows
    }


_FACTS = ("subtotal", "discount", "shipping", "tax", "linked_return_id", "original_order_id")


async def save_sagas(
    conn: DbConnection,
    sagas: Sequence[OrderSaga],
    timeline: Sequence[tuple[str, str, TimelineEntry]],
) -> None:
    """Save several sagas and append (order id, status, entry) timeline rows, in order, in one
    statement (a consumer batch's saga steps)."""
    await conn.execute(
        "WITH saved AS ("
        "  UPDATE orders o SET status = s.status, saga = s.saga::jsonb,"
        "    next_deadline_at = s.deadline, updated_at = clock_timestamp()"
        "  FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])"
        "    AS s(order_id, status, saga, deadline)"
        "  WHERE o.order_id = s.order_id"
        ")"
        " INSERT INTO order_timeline (order_id, status, event, detail)"
        " SELECT t.order_id, t.status, t.event, t.detail"
        " FROM unnest($5::text[], $6::text[], $7::text[], $8::jsonb[])"
        "   WITH ORDINALITY AS t(order_id, status, event, detail, n)"
        " ORDER BY t.n",
        [saga.order_id for saga in sagas],
        [saga.status.value for saga in sagas],
        [saga.model_dump_json() for saga in sagas],
        [saga.next_deadline for saga in sagas],
        [order_id for order_id, _, _ in timeline],
        [status for _, status, _ in timeline],
        [entry.event for _, _, entry in timeline],
        [entry.detail for _, _, entry in timeline],
    )


async def save_saga_with_timeline(
    conn: DbConnection, saga: OrderSaga, entries: Sequence[TimelineEntry]
) -> dict[str, Any]:
    """Save the saga, append its timeline entries and return the facts its status events carry
    (totals, exchange links), in one round trip. Saga steps of a consumer batch go through
    save_sagas instead; this serves the API, deadlines and the other handlers."""
    row = await conn.fetchrow(
        "WITH saved AS ("
        "  UPDATE orders SET status = $2, saga = $3::text::jsonb, next_deadline_at = $4,"
        "    updated_at = clock_timestamp() WHERE order_id = $1"
        "  RETURNING subtotal, discount, shipping, tax"
        "), timeline AS ("
        "  INSERT INTO order_timeline (order_id, status, event, detail)"
        "  SELECT $1, $2, t.event, t.detail"
        "  FROM unnest($5::text[], $6::jsonb[]) WITH ORDINALITY AS t(event, detail, n)"
        "  ORDER BY t.n"
        ")"
        " SELECT s.subtotal, s.discount, s.shipping, s.tax, r.return_id AS linked_return_id,"
        " r.original_order_id FROM saved s LEFT JOIN replacement_orders r ON r.order_id = $1",
        saga.order_id,
        saga.status.value,
        saga.model_dump_json(),
        saga.next_deadline,
        [entry.event for entry in entries],
        [entry.detail for entry in entries],
    )
    return dict(row) if row is not None else {}


async def append_timeline(
    conn: DbConnection, order_id: str, status: str, entries: Sequence[TimelineEntry]
) -> None:
    if not entries:
        return
    await conn.executemany(
        "INSERT INTO order_timeline (order_id, status, event, detail) VALUES ($1, $2, $3, $4)",
        [(order_id, status, entry.event, entry.detail) for entry in entries],
    )


async def any_due(conn: DbConnection, now: datetime) -> bool:
    value: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM orders WHERE next_deadline_at <= $1)", now
    )
    return value


async def due_sagas(conn: DbConnection, now: datetime, limit: int) -> list[OrderSaga]:
    """The sagas whose deadline passed, locked (SKIP LOCKED: replicas share the work)."""
    rows = await conn.fetch(
        "SELECT saga::text AS saga FROM orders WHERE next_deadline_at <= $1"
        " ORDER BY next_deadline_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )
    return [OrderSaga.model_validate_json(r["saga"]) for r in rows]


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


_ORDER_COLUMNS = """
    order_id, channel, external_id, status, currency, subtotal, discount, shipping, tax, total,
    customer, shipping_address, billing_address, shipping_method, promo_code, saga,
    created_at, updated_at
"""


async def get_order(conn: DbConnection, order_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_id = $1", order_id)
    if row is None:
        return None
    order = dict(row)
    order["lines"] = [
        dict(r)
        for r in await conn.fetch(
            "SELECT line_id, sku, quantity, unit_price, line_total FROM order_lines"
            " WHERE order_id = $1 ORDER BY position",
            order_id,
        )
    ]
    order["timeline"] = [
        dict(r)
        for r in await conn.fetch(
            "SELECT at, status, event, detail FROM order_timeline WHERE order_id = $1 ORDER BY id",
            order_id,
        )
    ]
    return order


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


def encode_cursor(created_at: datetime, order_id: str) -> str:
    return base64.urlsafe_b64encode(dumps([created_at.isoformat(), order_id])).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    created_at, order_id = loads(base64.urlsafe_b64decode(cursor.encode()))
    return datetime.fromisoformat(created_at), str(order_id)


async def list_orders(
    conn: DbConnection,
    *,
    status: str | None,
    channel: str | None,
    limit: int,
    after: tuple[datetime, str] | None,
) -> list[dict[str, Any]]:
    conditions = []
    args: list[Any] = []
    if status:
        args.append(status)
        conditions.append(f"status = ${len(args)}")
    if channel:
        args.append(channel)
        conditions.append(f"channel = ${len(args)}")
    if after:
        args.extend(after)
        conditions.append(f"(created_at, order_id) < (${len(args) - 1}, ${len(args)})")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    args.append(limit)
    rows = await conn.fetch(
        "SELECT order_id, channel, external_id, status, currency, total, created_at, updated_at"
        f" FROM orders {where} ORDER BY created_at DESC, order_id DESC LIMIT ${len(args)}",
        *args,
    )
    return [dict(r) for r in rows]


async def count_in_status(conn: DbConnection, statuses: Sequence[str]) -> int:
    value: int = await conn.fetchval(
        "SELECT count(*) FROM orders WHERE status = ANY($1::text[])", list(statuses)
    )
    return value


async def count_by_status(conn: DbConnection) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM orders GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


# --- operator views --------------------------------------------------------------------------


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


# --- channel intake ---------------------------------------------------------------------------


async def lock_channel_order(conn: DbConnection, channel: str, external_id: str) -> None:
    """Serialise every delivery of one channel order until the transaction ends, so two
    identical webhooks arriving at once make one order."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('channel-order:' || $1 || ':' || $2))",
        channel,
        external_id,
    )


async def channel_delivery(
    conn: DbConnection, channel: str, delivery_id: str
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT external_id, order_id, outcome, detail FROM channel_deliveries"
        " WHERE channel = $1 AND delivery_id = $2",
        channel,
        delivery_id,
    )
    return dict(row) if row is not None else None


async def record_channel_delivery(
    conn: DbConnection,
    channel: str,
    delivery_id: str,
    external_id: str | None,
    order_id: str | None,
    outcome: str,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO channel_deliveries (channel, delivery_id, external_id, order_id, outcome,"
        " detail) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        channel,
        delivery_id,
        external_id,
        order_id,
        outcome,
        detail or {},
    )


async def remember_pending_cancel(
    conn: DbConnection, channel: str, external_id: str, reason: str
) -> None:
    await conn.execute(
        "INSERT INTO channel_pending_cancels (channel, external_id, reason) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING",
        channel,
        external_id,
        reason,
    )


async def take_pending_cancel(conn: DbConnection, channel: str, external_id: str) -> str | None:
    reason: str | None = await conn.fetchval(
        "DELETE FROM channel_pending_cancels WHERE channel = $1 AND external_id = $2"
        " RETURNING reason",
        channel,
        external_id,
    )
    return reason


# --- customer notifications -------------------------------------------------------------------


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


async def finish_notifications(
    conn: DbConnection, outcomes: Sequence[tuple[Any, str, str | None]]
) -> None:
    """Record how each (notification id, status, error) ended, in one statement."""
    if not outcomes:
        return
    await conn.execute(
        "UPDATE notifications n SET status = o.status, attempts = n.attempts + 1,"
        " last_error = o.error,"
        " sent_at = CASE WHEN o.status IN ('sent', 'logged') THEN clock_timestamp() END"
        " FROM unnest($1::uuid[], $2::text[], $3::text[]) AS o(notification_id, status, error)"
        " WHERE n.notification_id = o.notification_id",
        [notification_id for notification_id, _, _ in outcomes],
        [status for _, status, _ in outcomes],
        [error for _, _, error in outcomes],
    )


async def retry_notification_later(
    conn: DbConnection, notification_id: Any, error: str, next_attempt_at: datetime
) -> None:
    await conn.execute(
        "UPDATE notifications SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3"
        " WHERE notification_id = $1",
        notification_id,
        error,
        next_attempt_at,
    )


async def has_timeline_event(conn: DbConnection, order_id: str, event: str) -> bool:
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM order_timeline WHERE order_id = $1 AND event = $2)",
        order_id,
        event,
    )
    return found


# --- returns and exchanges ---------------------------------------------------------------------


async def order_event_facts(conn: DbConnection, order_id: str) -> dict[str, Any]:
    """What OrderStatusChanged tells beyond the saga: the total's parts, the exchange links."""
    row = await conn.fetchrow(
        "SELECT o.subtotal, o.discount, o.shipping, o.tax, r.return_id AS linked_return_id,"
        " r.original_order_id FROM orders o"
        " LEFT JOIN replacement_orders r ON r.order_id = o.order_id WHERE o.order_id = $1",
        order_id,
    )
    return dict(row) if row is not None else {}


async def lock_replacement(conn: DbConnection, return_id: str) -> None:
    """Serialise CreateReplacementOrder of one return until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('replacement:' || $1))", return_id)


async def replacement_for_return(conn: DbConnection, return_id: str) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT order_id FROM replacement_orders WHERE return_id = $1", return_id
    )
    return value


async def insert_replacement(
    conn: DbConnection, order_id: str, return_id: str, original_order_id: str
) -> None:
    await conn.execute(
        "INSERT INTO replacement_orders (order_id, return_id, original_order_id)"
        " VALUES ($1, $2, $3)",
        order_id,
        return_id,
        original_order_id,
    )


async def replacement_links(conn: DbConnection, order_id: str) -> dict[str, Any]:
    """The exchange links of an order: what it replaces, and its own replacement orders."""
    row = await conn.fetchrow(
        "SELECT return_id, original_order_id FROM replacement_orders WHERE order_id = $1",
        order_id,
    )
    replacements = await conn.fetch(
        "SELECT order_id, return_id FROM replacement_orders WHERE original_order_id = $1"
        " ORDER BY created_at",
        order_id,
    )
    return {
        "linked_return_id": row["return_id"] if row else None,
        "original_order_id": row["original_order_id"] if row else None,
        "replacement_orders": [dict(r) for r in replacements],
    }


async def upsert_order_return(conn: DbConnection, values: dict[str, Any]) -> None:
    """Keep the latest revision of a return (an older one arriving late changes nothing)."""
    await conn.execute(
        """
        INSERT INTO order_returns (return_id, order_id, revision, status, currency, lines,
            received, refund_amount, refund_status, refunded_amount, amount_due,
            replacement_order_id, changed_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        ON CONFLICT (return_id) DO UPDATE SET
            revision = excluded.revision, status = excluded.status, lines = excluded.lines,
            received = excluded.received, refund_amount = excluded.refund_amount,
            refund_status = excluded.refund_status, refunded_amount = excluded.refunded_amount,
            amount_due = excluded.amount_due,
            replacement_order_id = excluded.replacement_order_id,
            changed_at = excluded.changed_at, updated_at = clock_timestamp()
        WHERE order_returns.revision < excluded.revision
        """,
        values["return_id"],
        values["order_id"],
        values["revision"],
        values["status"],
        values["currency"],
        values["lines"],
        values["received"],
        values["refund_amount"],
        values["refund_status"],
        values["refunded_amount"],
        values["amount_due"],
        values["replacement_order_id"],
        values["changed_at"],
    )


async def order_returns(conn: DbConnection, order_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT return_id, revision, status, currency, lines, received, refund_amount,"
        " refund_status, refunded_amount, amount_due, replacement_order_id, changed_at"
        " FROM order_returns WHERE order_id = $1 ORDER BY changed_at, return_id",
        order_id,
    )
    return [dict(r) for r in rows]
