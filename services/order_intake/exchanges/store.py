"""SQL of exchanges: replacement orders and the order's view of its returns."""

from __future__ import annotations

from typing import Any

from shared.platform.db import DbConnection


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
