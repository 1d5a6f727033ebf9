"""All SQL of the channel connector."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.channel_connector.domain import (
    PolledOrder,
    PushKind,
    PushStatus,
    Quantity,
    quantities_from,
    quantities_json,
)
from shared.platform.db import DbConnection

# --- channel orders --------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelOrder:
    order_id: str
    account: str
    channel: str
    external_id: str
    status: str
    lines: tuple[Quantity, ...]


async def account_of_order(conn: DbConnection, channel: str, external_id: str) -> str | None:
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT account FROM order_accounts WHERE channel = $1 AND external_id = $2",
        channel,
        external_id,
    )


async def remember_order_accounts(
    conn: DbConnection, account: str, channel: str, external_ids: Sequence[str]
) -> None:
    await conn.execute(
        "INSERT INTO order_accounts (channel, external_id, account)"
        " SELECT $1, e, $2 FROM unnest($3::text[]) AS e ON CONFLICT DO NOTHING",
        channel,
        account,
        list(external_ids),
    )


async def upsert_channel_order(conn: DbConnection, order: ChannelOrder) -> str | None:
    """Record the order's latest status; returns the status it had before (None: new)."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "WITH previous AS (SELECT status FROM channel_orders WHERE order_id = $1 FOR UPDATE)"
        " , saved AS ("
        "  INSERT INTO channel_orders (order_id, account, channel, external_id, status, lines)"
        "  VALUES ($1, $2, $3, $4, $5, $6::jsonb)"
        "  ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status,"
        "    lines = EXCLUDED.lines, updated_at = now()"
        ")"
        " SELECT status FROM previous",
        order.order_id,
        order.account,
        order.channel,
        order.external_id,
        order.status,
        quantities_json(order.lines),
    )


async def get_channel_order(conn: DbConnection, order_id: str) -> ChannelOrder | None:
    row = await conn.fetchrow(
        "SELECT order_id, account, channel, external_id, status, lines FROM channel_orders"
        " WHERE order_id = $1",
        order_id,
    )
    if row is None:
        return None
    return ChannelOrder(
        row["order_id"],
        row["account"],
        row["channel"],
        row["external_id"],
        row["status"],
        quantities_from(row["lines"]),
    )


# --- shipments waiting for their order -------------------------------------------------------


async def park_shipment(
    conn: DbConnection, shipment_key: str, order_id: str, shipment: dict[str, Any]
) -> None:
    await conn.execute(
        "INSERT INTO unmatched_shipments (shipment_key, order_id, shipment)"
        " VALUES ($1, $2, $3::jsonb) ON CONFLICT DO NOTHING",
        shipment_key,
        order_id,
        shipment,
    )


async def take_parked_shipments(conn: DbConnection, order_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "DELETE FROM unmatched_shipments WHERE order_id = $1 RETURNING shipment, received_at",
        order_id,
    )
    return [dict(row["shipment"]) for row in sorted(rows, key=lambda r: r["received_at"])]


async def prune_parked_shipments(conn: DbConnection, older_than: datetime) -> int:
    """Shipments of orders never known as channel orders (native orders) are dropped."""
    result: str = await conn.execute(
        "DELETE FROM unmatched_shipments WHERE received_at < $1", older_than
    )
    return int(result.split()[-1])


# --- pushes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Push:
    push_id: int
    account: str
    kind: PushKind
    key: str
    order_id: str | None
    payload: dict[str, Any]
    status: PushStatus
    attempts: int
    last_error: str | None
    channel_reference: str | None
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime


_PUSH_COLUMNS = (
    "push_id, account, kind, key, order_id, payload, status, attempts, last_error,"
    " channel_reference, created_at, updated_at, next_attempt_at"
)


def _push(row: Any) -> Push:
    return Push(
        row["push_id"],
        row["account"],
        PushKind(row["kind"]),
        row["key"],
        row["order_id"],
        dict(row["payload"]),
        PushStatus(row["status"]),
        row["attempts"],
        row["last_error"],
        row["channel_reference"],
        row["created_at"],
        row["updated_at"],
        row["next_attempt_at"],
    )


async def enqueue_push(
    conn: DbConnection,
    account: str,
    kind: PushKind,
    key: str,
    payload: dict[str, Any],
    *,
    order_id: str | None = None,
) -> bool:
    """Queue a push; False when the same (account, kind, key) is already queued or done."""
    result: str = await conn.execute(
        "INSERT INTO pushes (account, kind, key, order_id, payload)"
        " VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (account, kind, key) DO NOTHING",
        account,
        kind.value,
        key,
        order_id,
        payload,
    )
    return result.endswith(" 1")


async def claim_due_pushes(
    conn: DbConnection, accounts: Sequence[str], now: datetime, limit: int
) -> list[Push]:
    """Due pending pushes of these accounts, oldest first, locked (other replicas skip them)."""
    rows = await conn.fetch(
        f"SELECT {_PUSH_COLUMNS} FROM pushes"
        " WHERE status = 'pending' AND next_attempt_at <= $1 AND account = ANY($2::text[])"
        " ORDER BY next_attempt_at, push_id LIMIT $3 FOR UPDATE SKIP LOCKED",
        now,
        list(accounts),
        limit,
    )
    return [_push(row) for row in rows]


async def finish_push(
    conn: DbConnection,
    push_id: int,
    status: PushStatus,
    *,
    attempts: int,
    error: str | None = None,
    reference: str | None = None,
    next_attempt_at: datetime | None = None,
) -> None:
    await conn.execute(
        "UPDATE pushes SET status = $2, attempts = $3, last_error = $4,"
        " channel_reference = COALESCE($5, channel_reference),"
        " next_attempt_at = COALESCE($6, next_attempt_at), updated_at = now()"
        " WHERE push_id = $1",
        push_id,
        status.value,
        attempts,
        error,
        reference,
        next_attempt_at,
    )


async def shipped_before(conn: DbConnection, account: str, order_id: str) -> list[Quantity]:
    """What the shipment pushes of an order already told the channel."""
    rows = await conn.fetch(
        "SELECT payload->'lines' AS lines FROM pushes WHERE account = $1 AND order_id = $2"
        " AND kind = 'shipment' AND status = 'done' ORDER BY push_id",
        account,
        order_id,
    )
    return [item for row in rows for item in quantities_from(row["lines"])]


async def list_pushes(
    conn: DbConnection,
    *,
    status: str | None,
    kind: str | None,
    order_id: str | None,
    limit: int,
) -> list[Push]:
    rows = await conn.fetch(
        f"SELECT {_PUSH_COLUMNS} FROM pushes"
        " WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR kind = $2)"
        " AND ($3::text IS NULL OR order_id = $3)"
        " ORDER BY push_id DESC LIMIT $4",
        status,
        kind,
        order_id,
        limit,
    )
    return [_push(row) for row in rows]


async def retry_dead_push(conn: DbConnection, push_id: int) -> Push | None:
    """A dead push made pending again (attempts start over); None when it is not dead."""
    row = await conn.fetchrow(
        "UPDATE pushes SET status = 'pending', attempts = 0, next_attempt_at = now(),"
        f" updated_at = now() WHERE push_id = $1 AND status = 'dead' RETURNING {_PUSH_COLUMNS}",
        push_id,
    )
    return _push(row) if row is not None else None


async def get_push(conn: DbConnection, push_id: int) -> Push | None:
    row = await conn.fetchrow(f"SELECT {_PUSH_COLUMNS} FROM pushes WHERE push_id = $1", push_id)
    return _push(row) if row is not None else None


# --- stock levels ----------------------------------------------------------------------------


async def set_stock_levels(
    conn: DbConnection, accounts: Sequence[str], sku: str, quantity: int
) -> None:
    """The SKU's latest level for each account (a new version when it changed). A level the
    channel refused last time is tried again within a minute of a change, not after the wait
    the refusal set (the change may be what it needed)."""
    await conn.execute(
        "INSERT INTO stock_levels (account, sku, quantity)"
        " SELECT a, $2, $3 FROM unnest($1::text[]) AS a"
        " ON CONFLICT (account, sku) DO UPDATE SET quantity = EXCLUDED.quantity,"
        "   version = stock_levels.version + 1, updated_at = now(),"
        "   not_before = CASE WHEN stock_levels.last_error IS NULL THEN stock_levels.not_before"
        "     ELSE LEAST(stock_levels.not_before, now() + interval '1 minute') END"
        " WHERE stock_levels.quantity <> EXCLUDED.quantity"
        "   OR stock_levels.pushed_version < stock_levels.version",
        list(accounts),
        sku,
        quantity,
    )


@dataclass(frozen=True)
class DueLevel:
    sku: str
    quantity: int
    version: int
    pushed_quantity: int | None


async def claim_due_levels(
    conn: DbConnection, account: str, now: datetime, limit: int
) -> list[DueLevel]:
    """Levels of the account changed since their last push and allowed out again (the
    coalescing interval has passed since the last push), locked."""
    rows = await conn.fetch(
        "SELECT sku, quantity, version, pushed_quantity FROM stock_levels"
        " WHERE account = $1 AND version > pushed_version AND not_before <= $2"
        " ORDER BY not_before, sku LIMIT $3 FOR UPDATE SKIP LOCKED",
        account,
        now,
        limit,
    )
    return [DueLevel(r["sku"], r["quantity"], r["version"], r["pushed_quantity"]) for r in rows]


async def record_levels_pushed(
    conn: DbConnection,
    account: str,
    levels: Sequence[DueLevel],
    *,
    pushed_at: datetime,
    not_before: datetime,
    sent: bool,
) -> None:
    """These versions are on the channel now (`sent`: a request carried them)."""
    await conn.execute(
        "UPDATE stock_levels s SET pushed_quantity = l.quantity, pushed_version = l.version,"
        " pushed_at = $3, not_before = $4, last_error = NULL,"
        " push_count = s.push_count + CASE WHEN $5 THEN 1 ELSE 0 END"
        " FROM unnest($2::text[], $6::int[], $7::bigint[]) AS l(sku, quantity, version)"
        " WHERE s.account = $1 AND s.sku = l.sku",
        account,
        [level.sku for level in levels],
        pushed_at,
        not_before,
        sent,
        [level.quantity for level in levels],
        [level.version for level in levels],
    )


async def record_levels_failed(
    conn: DbConnection,
    account: str,
    skus: Sequence[str],
    *,
    error: str,
    not_before: datetime,
) -> None:
    await conn.execute(
        "UPDATE stock_levels SET last_error = $3, not_before = $4"
        " WHERE account = $1 AND sku = ANY($2::text[])",
        account,
        list(skus),
        error[:1000],
        not_before,
    )


@dataclass(frozen=True)
class StockLevelRow:
    account: str
    sku: str
    quantity: int
    pushed_quantity: int | None
    pushed_at: datetime | None
    push_count: int
    last_error: str | None


async def stock_levels(
    conn: DbConnection, account: str | None, sku: str | None, limit: int
) -> list[StockLevelRow]:
    rows = await conn.fetch(
        "SELECT account, sku, quantity, pushed_quantity, pushed_at, push_count, last_error"
        " FROM stock_levels WHERE ($1::text IS NULL OR account = $1)"
        " AND ($2::text IS NULL OR sku = $2) ORDER BY account, sku LIMIT $3",
        account,
        sku,
        limit,
    )
    return [StockLevelRow(**dict(row)) for row in rows]


# --- polling ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PollCursor:
    account: str
    cursor_at: datetime | None
    polled_at: datetime | None
    orders_seen: int
    last_error: str | None


_CURSOR_COLUMNS = "account, cursor_at, polled_at, orders_seen, last_error"


async def cursor_of(conn: DbConnection, account: str) -> datetime | None:
    """The account's cursor as it is (None: never polled), without a lock."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT cursor_at FROM poll_cursors WHERE account = $1", account
    )


async def lock_cursor(conn: DbConnection, account: str) -> PollCursor:
    await conn.execute(
        "INSERT INTO poll_cursors (account) VALUES ($1) ON CONFLICT DO NOTHING", account
    )
    row = await conn.fetchrow(
        f"SELECT {_CURSOR_COLUMNS} FROM poll_cursors WHERE account = $1 FOR UPDATE",
        account,
    )
    assert row is not None
    return PollCursor(**dict(row))


async def cursors(conn: DbConnection) -> list[PollCursor]:
    rows = await conn.fetch(f"SELECT {_CURSOR_COLUMNS} FROM poll_cursors ORDER BY account")
    return [PollCursor(**dict(row)) for row in rows]


async def save_cursor(
    conn: DbConnection,
    account: str,
    cursor_at: datetime | None,
    polled_at: datetime,
    handed_on: int,
    error: str | None,
) -> None:
    await conn.execute(
        "UPDATE poll_cursors SET cursor_at = $2, polled_at = $3,"
        " orders_seen = orders_seen + $4, last_error = $5 WHERE account = $1",
        account,
        cursor_at,
        polled_at,
        handed_on,
        error,
    )


async def versions_seen(
    conn: DbConnection, account: str, orders: Sequence[PolledOrder]
) -> set[tuple[str, datetime]]:
    rows = await conn.fetch(
        "SELECT external_id, updated_at FROM polled_versions WHERE account = $1"
        " AND (external_id, updated_at) IN"
        "   (SELECT * FROM unnest($2::text[], $3::timestamptz[]))",
        account,
        [order.external_id for order in orders],
        [order.updated_at for order in orders],
    )
    return {(row["external_id"], row["updated_at"]) for row in rows}


async def remember_versions(
    conn: DbConnection, account: str, orders: Sequence[PolledOrder]
) -> None:
    await conn.execute(
        "INSERT INTO polled_versions (account, external_id, updated_at)"
        " SELECT $1, e, u FROM unnest($2::text[], $3::timestamptz[]) AS x(e, u)"
        " ON CONFLICT DO NOTHING",
        account,
        [order.external_id for order in orders],
        [order.updated_at for order in orders],
    )


async def prune_polled_versions(conn: DbConnection, older_than: datetime) -> int:
    result: str = await conn.execute(
        "DELETE FROM polled_versions WHERE handed_on_at < $1", older_than
    )
    return int(result.split()[-1])
