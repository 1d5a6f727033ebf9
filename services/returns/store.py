"""All SQL of returns.

Locking rule: a transaction that needs an order's row and one of its returns locks the order's
row first (`order_facts(lock=True)`), then the return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.returns.domain.policy import OrderFacts, OrderLine
from services.returns.domain.saga import ReturnSaga
from shared.contracts.order_intake import OrderStatusChanged
from shared.platform.db import DbConnection, Filters
from shared.platform.saga import store as saga_store
from shared.platform.saga.store import SagaTables

DELIVERED_STATUSES = ("DELIVERED", "COMPLETED")

# The saga kit's tables (deadlines, timeline, Idempotency-Keys: shared/platform/saga).
SAGAS = SagaTables(
    sagas="returns",
    id_column="return_id",
    timeline="return_timeline",
    idempotency_lock="return-idem:",
)

# --- the read model of orders ------------------------------------------------------------------


_UPSERT_ORDER = """
        INSERT INTO orders (order_id, channel, currency, status, total, subtotal, discount,
            shipping, tax, lines, paid_externally, original_order_id, linked_return_id,
            delivered_at, status_at, shipped)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
        ON CONFLICT (order_id) DO UPDATE SET
            status = CASE WHEN orders.status_at <= excluded.status_at
                          THEN excluded.status ELSE orders.status END,
            status_at = greatest(orders.status_at, excluded.status_at),
            total = excluded.total,
            subtotal = coalesce(excluded.subtotal, orders.subtotal),
            discount = coalesce(excluded.discount, orders.discount),
            shipping = coalesce(excluded.shipping, orders.shipping),
            tax = coalesce(excluded.tax, orders.tax),
            lines = CASE WHEN excluded.lines = '[]'::jsonb THEN orders.lines
                         ELSE excluded.lines END,
            paid_externally = excluded.paid_externally OR orders.paid_externally,
            original_order_id = coalesce(orders.original_order_id, excluded.original_order_id),
            linked_return_id = coalesce(orders.linked_return_id, excluded.linked_return_id),
            delivered_at = coalesce(orders.delivered_at, excluded.delivered_at),
            shipped = CASE WHEN orders.status_at <= excluded.status_at
                           THEN coalesce(excluded.shipped, orders.shipped)
                           ELSE coalesce(orders.shipped, excluded.shipped) END,
            updated_at = clock_timestamp()
        """


def _order_row(event: OrderStatusChanged) -> tuple[Any, ...]:
    delivered_at = event.at if event.status in DELIVERED_STATUSES else None
    return (
        event.order_id,
        event.channel,
        event.currency,
        event.status,
        event.total,
        event.subtotal,
        event.discount,
        event.shipping,
        event.tax,
        [line.model_dump(mode="json") for line in event.lines],
        bool(event.paid_externally),
        event.original_order_id,
        event.linked_return_id,
        delivered_at,
        event.at,
        None
        if event.shipped is None
        else [{"sku": s.sku, "quantity": s.quantity} for s in event.shipped],
    )


async def upsert_orders(conn: DbConnection, events: Sequence[OrderStatusChanged]) -> None:
    """Keep each order's latest status (the first delivery time is never overwritten); the
    events in order, in one round trip."""
    if events:
        await conn.executemany(_UPSERT_ORDER, [_order_row(event) for event in events])


@dataclass(frozen=True)
class KnownOrder:
    facts: OrderFacts
    # Whose payment a refund goes to: the order's own, or for a replacement order (paid by the
    # credit of a return) the first order of the chain.
    refund_order_id: str
    replacement_of: str | None


async def order_facts(conn: DbConnection, order_id: str, *, lock: bool) -> KnownOrder | None:
    sql = "SELECT * FROM orders WHERE order_id = $1" + (" FOR UPDATE" if lock else "")
    row = await conn.fetchrow(sql, order_id)
    if row is None:
        return None
    payer = row
    seen = {order_id}
    while payer["original_order_id"] is not None and payer["original_order_id"] not in seen:
        seen.add(payer["original_order_id"])
        parent = await conn.fetchrow(
            "SELECT * FROM orders WHERE order_id = $1", payer["original_order_id"]
        )
        if parent is None:
            break
        payer = parent
    facts = OrderFacts(
        order_id=row["order_id"],
        channel=row["channel"],
        currency=row["currency"],
        status=row["status"],
        total=Decimal(row["total"]),
        lines=tuple(
            OrderLine(
                sku=line["sku"],
                quantity=int(line["quantity"]),
                unit_price=Decimal(line["unit_price"]),
                line_total=Decimal(line["line_total"]),
            )
            for line in row["lines"]
        ),
        delivered_at=row["delivered_at"],
        shipped=None
        if row["shipped"] is None
        else {s["sku"]: int(s["quantity"]) for s in row["shipped"]},
        subtotal=row["subtotal"],
        discount=row["discount"],
        shipping=row["shipping"],
        paid_by_channel=bool(payer["paid_externally"]) and payer["linked_return_id"] is None,
    )
    return KnownOrder(facts, payer["order_id"], row["original_order_id"])


# --- returns -----------------------------------------------------------------------------------


async def insert_return(conn: DbConnection, saga: ReturnSaga) -> None:
    await conn.execute(
        "INSERT INTO returns (return_id, order_id, status, saga, replacement_order_id,"
        " next_deadline_at) VALUES ($1, $2, $3, $4, $5, $6)",
        saga.return_id,
        saga.order_id,
        saga.status.value,
        saga.model_dump(mode="json"),
        saga.replacement_order_id,
        saga.next_deadline,
    )


async def save_return(conn: DbConnection, saga: ReturnSaga) -> None:
    await conn.execute(
        "UPDATE returns SET status = $2, saga = $3, replacement_order_id = $4,"
        " next_deadline_at = $5, updated_at = clock_timestamp() WHERE return_id = $1",
        saga.return_id,
        saga.status.value,
        saga.model_dump(mode="json"),
        saga.replacement_order_id,
        saga.next_deadline,
    )


async def load_return(conn: DbConnection, return_id: str, *, lock: bool) -> ReturnSaga | None:
    sql = "SELECT saga FROM returns WHERE return_id = $1" + (" FOR UPDATE" if lock else "")
    data = await conn.fetchval(sql, return_id)
    return ReturnSaga.model_validate(data) if data is not None else None


async def returns_of_order(conn: DbConnection, order_id: str) -> list[ReturnSaga]:
    rows = await conn.fetch(
        "SELECT saga FROM returns WHERE order_id = $1 ORDER BY created_at, return_id", order_id
    )
    return [ReturnSaga.model_validate(r["saga"]) for r in rows]


async def return_id_for_replacement(conn: DbConnection, order_id: str) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT return_id FROM returns WHERE replacement_order_id = $1", order_id
    )
    return value


async def get_return(conn: DbConnection, return_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT saga, created_at, updated_at FROM returns WHERE return_id = $1", return_id
    )
    if row is None:
        return None
    found = dict(row)
    found["timeline"] = await saga_store.read_timeline(conn, SAGAS, return_id)
    return found


async def list_returns(
    conn: DbConnection, *, order_id: str | None, status: str | None, limit: int
) -> list[dict[str, Any]]:
    filters = Filters()
    filters.equal("order_id", order_id)
    filters.equal("status", status)
    where = filters.where
    rows = await conn.fetch(
        f"SELECT saga, created_at, updated_at FROM returns {where}"
        f" ORDER BY created_at DESC, return_id DESC LIMIT {filters.param(limit)}",
        *filters.args,
    )
    return [dict(r) for r in rows]
