"""SQL of channel intake: delivery ids already answered, cancellations that came before their
order, and the lock that serialises the deliveries of one channel order."""

from __future__ import annotations

from typing import Any

from shared.platform.db import DbConnection


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


# The warehouse floor's steps on the order timeline (orders/warehouse_progress.py) that mean
# picking has started: an order edit from the channel comes too late.
PICKING_PROGRESS = ("pick_list_released", "line_picked", "parcel_packed", "label_created")


async def picking_started(conn: DbConnection, order_id: str) -> bool:
    """The order's timeline shows the floor has put it on a pick list (or gone further)."""
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM order_timeline WHERE order_id = $1"
        " AND event = ANY($2::text[]))",
        order_id,
        list(PICKING_PROGRESS),
    )
    return found


async def save_shipping_address(conn: DbConnection, order_id: str, address: dict[str, Any]) -> None:
    """The order's shipping address after a channel's edit was applied (the saga has it too)."""
    await conn.execute(
        "UPDATE orders SET shipping_address = $2, updated_at = clock_timestamp()"
        " WHERE order_id = $1",
        order_id,
        address,
    )
