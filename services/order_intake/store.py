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


async def insert_order(
    conn: DbConnection,
    order_id: str,
    order: CanonicalOrder,
    totals: Totals,
    saga: OrderSaga,
    raw_request: Any,
) -> None:
    await conn.execute(
        """
        INSERT INTO orders (order_id, channel, external_id, status, currency, subtotal, discount,
            shipping, tax, total, customer, shipping_address, billing_address, shipping_method,
            promo_code, raw_request, saga, next_deadline_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
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
        saga.model_dump(mode="json"),
        saga.next_deadline,
    )
    await conn.executemany(
        "INSERT INTO order_lines (order_id, line_id, position, sku, quantity, unit_price,"
        " line_total) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [
            (
                order_id,
                line.line_id,
                position,
                line.sku,
                line.quantity,
                line.unit_price,
                line.line_total,
            )
            for position, line in enumerate(saga.lines, start=1)
        ],
    )


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
    sql = "SELECT saga FROM orders WHERE order_id = $1" + (" FOR UPDATE" if lock else "")
    data = await conn.fetchval(sql, order_id)
    return OrderSaga.model_validate(data) if data is not None else None


async def save_saga(conn: DbConnection, saga: OrderSaga) -> None:
    await conn.execute(
        "UPDATE orders SET status = $2, saga = $3, next_deadline_at = $4, updated_at = clock_timestamp()"
        " WHERE order_id = $1",
        saga.order_id,
        saga.status.value,
        saga.model_dump(mode="json"),
        saga.next_deadline,
    )


async def append_timeline(
    conn: DbConnection, order_id: str, status: str, entries: Sequence[TimelineEntry]
) -> None:
    if not entries:
        return
    await conn.executemany(
        "INSERT INTO order_timeline (order_id, status, event, detail) VALUES ($1, $2, $3, $4)",
        [(order_id, status, entry.event, entry.detail) for entry in entries],
    )


async def due_order_ids(conn: DbConnection, now: datetime, limit: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT order_id FROM orders WHERE next_deadline_at <= $1"
        " ORDER BY next_deadline_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )
    return [r["order_id"] for r in rows]


async def record_rejected_request(
    conn: DbConnection,
    endpoint: str,
    code: str,
    error: str,
    raw_body: bytes,
    headers: dict[str, str],
) -> int:
    value: int = await conn.fetchval(
        "INSERT INTO rejected_requests (endpoint, error_code, error, raw_body, headers)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id",
        endpoint,
        code,
        error,
        raw_body,
        headers,
    )
    return value


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


async def get_raw_request(conn: DbConnection, order_id: str) -> Any:
    return await conn.fetchval("SELECT raw_request FROM orders WHERE order_id = $1", order_id)


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


async def count_by_status(conn: DbConnection) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM orders GROUP BY status")
    return {r["status"]: r["n"] for r in rows}
