"""SQL of the orders: the order rows, their lines and timeline, the saga state, and the queries
behind the order views. What every saga shares (deadlines, timeline rows, Idempotency-Keys) is
the platform's saga kit, on the tables named in `SAGAS`."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.order_intake.domain.order import CanonicalOrder
from services.order_intake.domain.pricing import Totals
from services.order_intake.domain.saga import OrderSaga, TimelineEntry
from shared.envelope import dumps, loads
from shared.platform.db import DbConnection, Filters
from shared.platform.saga import store as saga_store
from shared.platform.saga.store import SagaTables

# The order saga's tables for the platform's saga kit (deadlines, timeline, Idempotency-Keys).
SAGAS = SagaTables(
    sagas="orders", id_column="order_id", timeline="order_timeline", idempotency_lock="idem:"
)


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
        " o.external_id,"
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


_FACTS = (
    "subtotal",
    "discount",
    "shipping",
    "tax",
    "external_id",
    "linked_return_id",
    "original_order_id",
)


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
        "  RETURNING subtotal, discount, shipping, tax, external_id"
        "), timeline AS ("
        "  INSERT INTO order_timeline (order_id, status, event, detail)"
        "  SELECT $1, $2, t.event, t.detail"
        "  FROM unnest($5::text[], $6::jsonb[]) WITH ORDINALITY AS t(event, detail, n)"
        "  ORDER BY t.n"
        ")"
        " SELECT s.subtotal, s.discount, s.shipping, s.tax, s.external_id,"
        " r.return_id AS linked_return_id,"
        " r.original_order_id FROM saved s LEFT JOIN replacement_orders r ON r.order_id = $1",
        saga.order_id,
        saga.status.value,
        saga.model_dump_json(),
        saga.next_deadline,
        [entry.event for entry in entries],
        [entry.detail for entry in entries],
    )
    return dict(row) if row is not None else {}


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
    order["timeline"] = await saga_store.read_timeline(conn, SAGAS, order_id)
    return order


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
    customer_email: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> list[dict[str, Any]]:
    """Newest first. The e-mail matches the stored customer's exactly, ignoring case (index
    orders_by_customer_email); created_from is inclusive, created_to exclusive."""
    sql, args = listing_query(
        status=status,
        channel=channel,
        limit=limit,
        after=after,
        customer_email=customer_email,
        created_from=created_from,
        created_to=created_to,
    )
    return [dict(r) for r in await conn.fetch(sql, *args)]


def listing_query(
    *,
    status: str | None,
    channel: str | None,
    limit: int,
    after: tuple[datetime, str] | None,
    customer_email: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> tuple[str, list[Any]]:
    """The statement behind list_orders and its arguments (the tests EXPLAIN it)."""
    filters = Filters()
    filters.equal("status", status)
    filters.equal("channel", channel)
    if customer_email:
        filters.condition(
            f"lower(customer ->> 'email') = lower({filters.param(customer_email)})"
            " AND customer ->> 'email' IS NOT NULL"
        )
    if created_from is not None:
        filters.condition(f"created_at >= {filters.param(created_from)}")
    if created_to is not None:
        filters.condition(f"created_at < {filters.param(created_to)}")
    if after:
        created_at, order_id = after
        filters.condition(
            f"(created_at, order_id) < ({filters.param(created_at)}, {filters.param(order_id)})"
        )
    where = filters.where
    sql = (
        "SELECT order_id, channel, external_id, status, currency, total, customer, created_at,"
        f" updated_at FROM orders {where} ORDER BY created_at DESC, order_id DESC"
        f" LIMIT {filters.param(limit)}"
    )
    return sql, filters.args


async def count_in_status(conn: DbConnection, statuses: Sequence[str]) -> int:
    value: int = await conn.fetchval(
        "SELECT count(*) FROM orders WHERE status = ANY($1::text[])", list(statuses)
    )
    return value


async def count_by_status(conn: DbConnection) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM orders GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


async def has_timeline_event(conn: DbConnection, order_id: str, event: str) -> bool:
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM order_timeline WHERE order_id = $1 AND event = $2)",
        order_id,
        event,
    )
    return found


async def append_progress(
    conn: DbConnection, order_ids: Sequence[str], event: str, detail: dict[str, Any]
) -> None:
    """A timeline entry on each known order for progress that changes no saga state (the
    warehouse floor's steps), under the order's current status; unknown orders are skipped."""
    await conn.execute(
        "INSERT INTO order_timeline (order_id, status, event, detail)"
        " SELECT order_id, status, $2, $3 FROM orders WHERE order_id = ANY($1::text[])"
        " ORDER BY order_id",
        list(order_ids),
        event,
        detail,
    )
