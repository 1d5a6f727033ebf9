"""The KPI read model's SQL: the facts' upserts (each one changes nothing when applied twice)
and the queries the KPIs are read with. Times are timestamptz, buckets in UTC."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from services.console.reporting.domain import (
    UNSPECIFIED,
    BackorderRow,
    ChannelOrders,
    KpiFacts,
    KpiFilter,
    LowStockRow,
    ReasonCount,
    RefundRow,
    ShipmentTimes,
    SkuUnits,
    StockOutRow,
    VolumeRow,
)
from shared.platform.db import DbConnection

# --- facts ------------------------------------------------------------------------------------

# Which column of kpi_orders a status fills with its first time (and reason).
_MILESTONES = {
    "CONFIRMED": ("confirmed_at", None),
    "BACKORDERED": ("backordered_at", None),
    "SHIPPED": ("shipped_at", None),
    "DELIVERED": ("delivered_at", None),
    "COMPLETED": ("completed_at", None),
    "CANCELLED": ("cancelled_at", "cancel_reason"),
    "REJECTED": ("rejected_at", "reject_reason"),
}


async def record_order_status(
    conn: DbConnection,
    *,
    order_id: str,
    channel: str,
    currency: str,
    total: Decimal,
    status: str,
    reason: str | None,
    at: datetime,
) -> None:
    """The order's row: placed at its earliest status, the total of its latest, and the first
    time it reached a milestone (with the reason of that first time)."""
    column, reason_column = _MILESTONES.get(status, (None, None))
    first_time = ""
    if column is not None:
        first_time = f", {column} = LEAST(kpi_orders.{column}, EXCLUDED.{column})"
        if reason_column is not None:
            first_time += (
                f", {reason_column} = CASE WHEN kpi_orders.{column} IS NULL"
                f" OR EXCLUDED.{column} < kpi_orders.{column}"
                f" THEN EXCLUDED.{reason_column} ELSE kpi_orders.{reason_column} END"
            )
    columns = ["order_id", "channel", "currency", "total", "total_at", "placed_at"]
    values: list[object] = [order_id, channel, currency, total, at, at]
    if column is not None:
        columns.append(column)
        values.append(at)
        if reason_column is not None:
            columns.append(reason_column)
            values.append(reason)
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    await conn.execute(
        f"INSERT INTO kpi_orders ({', '.join(columns)}) VALUES ({placeholders})"
        " ON CONFLICT (order_id) DO UPDATE SET"
        " placed_at = LEAST(kpi_orders.placed_at, EXCLUDED.placed_at),"
        " total = CASE WHEN EXCLUDED.total_at > kpi_orders.total_at"
        "  THEN EXCLUDED.total ELSE kpi_orders.total END,"
        " total_at = GREATEST(kpi_orders.total_at, EXCLUDED.total_at)" + first_time,
        *values,
    )


async def record_shipment(
    conn: DbConnection,
    *,
    shipment_key: str,
    order_id: str,
    fulfilment_id: str,
    location: str,
    carrier: str,
    shipped_at: datetime,
    lines: Sequence[tuple[str, int]],
) -> None:
    """A parcel that left: its first shipped time, its units per SKU (the same parcel again
    carries the same lines)."""
    await conn.execute(
        "INSERT INTO kpi_shipments"
        " (shipment_key, order_id, fulfilment_id, location, carrier, shipped_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (shipment_key) DO UPDATE SET"
        " location = EXCLUDED.location, carrier = EXCLUDED.carrier,"
        " shipped_at = LEAST(kpi_shipments.shipped_at, EXCLUDED.shipped_at)",
        shipment_key,
        order_id,
        fulfilment_id,
        location,
        carrier,
        shipped_at,
    )
    if lines:
        await conn.execute(
            "INSERT INTO kpi_shipment_lines (shipment_key, sku, quantity)"
            " SELECT $1, sku, quantity FROM unnest($2::text[], $3::int[]) AS l(sku, quantity)"
            " ON CONFLICT (shipment_key, sku) DO UPDATE SET quantity = EXCLUDED.quantity",
            shipment_key,
            [sku for sku, _ in lines],
            [quantity for _, quantity in lines],
        )


async def record_delivery(
    conn: DbConnection,
    *,
    order_id: str,
    fulfilment_id: str,
    shipment_id: str | None,
    delivered_at: datetime,
) -> None:
    """A parcel delivered (its first delivery time). Without a shipment id: every shipment of
    the fulfilment heard of so far, or the fulfilment as one parcel when none was."""
    if shipment_id is None:
        updated = await conn.fetchval(
            "WITH touched AS (UPDATE kpi_shipments"
            " SET delivered_at = LEAST(delivered_at, $2)"
            " WHERE fulfilment_id = $1 RETURNING 1) SELECT count(*) FROM touched",
            fulfilment_id,
            delivered_at,
        )
        if updated:
            return
    await conn.execute(
        "INSERT INTO kpi_shipments (shipment_key, order_id, fulfilment_id, delivered_at)"
        " VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (shipment_key) DO UPDATE SET"
        " delivered_at = LEAST(kpi_shipments.delivered_at, EXCLUDED.delivered_at)",
        shipment_id or fulfilment_id,
        order_id,
        fulfilment_id,
        delivered_at,
    )


async def record_return(
    conn: DbConnection,
    *,
    return_id: str,
    order_id: str,
    status: str,
    revision: int,
    at: datetime,
    lines: Sequence[tuple[str, str, int]],
) -> None:
    """A return's status of its highest revision; its lines (sku, reason, units) as that
    revision gives them."""
    newer = await conn.fetchval(
        "INSERT INTO kpi_returns (return_id, order_id, status, revision, requested_at, status_at)"
        " VALUES ($1, $2, $3, $4, $5, $5)"
        " ON CONFLICT (return_id) DO UPDATE SET"
        " requested_at = LEAST(kpi_returns.requested_at, EXCLUDED.requested_at),"
        " status = CASE WHEN EXCLUDED.revision > kpi_returns.revision"
        "  THEN EXCLUDED.status ELSE kpi_returns.status END,"
        " status_at = CASE WHEN EXCLUDED.revision > kpi_returns.revision"
        "  THEN EXCLUDED.status_at ELSE kpi_returns.status_at END,"
        " revision = GREATEST(kpi_returns.revision, EXCLUDED.revision)"
        " RETURNING revision = $4",
        return_id,
        order_id,
        status,
        revision,
        at,
    )
    if not newer or not lines:
        return
    units: dict[tuple[str, str], int] = {}
    for sku, reason, quantity in lines:
        units[(sku, reason)] = units.get((sku, reason), 0) + quantity
    await conn.execute("DELETE FROM kpi_return_lines WHERE return_id = $1", return_id)
    await conn.execute(
        "INSERT INTO kpi_return_lines (return_id, sku, reason, quantity)"
        " SELECT $1, sku, reason, quantity"
        " FROM unnest($2::text[], $3::text[], $4::int[]) AS l(sku, reason, quantity)",
        return_id,
        [sku for sku, _ in units],
        [reason for _, reason in units],
        list(units.values()),
    )


async def record_refund(
    conn: DbConnection,
    *,
    refund_key: str,
    kind: str,
    order_id: str,
    return_id: str | None,
    currency: str,
    amount: Decimal,
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO kpi_refunds"
        " (refund_key, kind, order_id, return_id, currency, amount, refunded_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (refund_key) DO UPDATE SET"
        " refunded_at = LEAST(kpi_refunds.refunded_at, EXCLUDED.refunded_at)",
        refund_key,
        kind,
        order_id,
        return_id,
        currency,
        amount,
        at,
    )


async def record_backorders(
    conn: DbConnection,
    *,
    order_id: str,
    lines: Sequence[tuple[str, str, str, int, str]],
    at: datetime,
) -> None:
    """Order lines waiting for stock: (line_id, location, sku, units, kind)."""
    await conn.execute(
        "INSERT INTO kpi_backorders"
        " (order_id, line_id, location, sku, quantity, kind, backordered_at)"
        " SELECT $1, line_id, location, sku, quantity, kind, $7"
        " FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::text[])"
        "  AS l(line_id, location, sku, quantity, kind)"
        " ON CONFLICT (order_id, line_id, location) DO UPDATE SET"
        " quantity = EXCLUDED.quantity,"
        " backordered_at = LEAST(kpi_backorders.backordered_at, EXCLUDED.backordered_at)",
        order_id,
        [line[0] for line in lines],
        [line[1] for line in lines],
        [line[2] for line in lines],
        [line[3] for line in lines],
        [line[4] for line in lines],
        at,
    )


async def record_availability(
    conn: DbConnection, *, sku: str, available: int, at: datetime
) -> None:
    """A SKU's availability as of `at`. Going to 0 or below opens a stock-out, coming back above
    0 closes it; a change older than (or as old as) the last one known is ignored."""
    previous = await conn.fetchrow(
        "SELECT available, as_of FROM kpi_stock_levels WHERE sku = $1 FOR UPDATE", sku
    )
    if previous is not None and at <= previous["as_of"]:
        return
    await conn.execute(
        "INSERT INTO kpi_stock_levels (sku, available, as_of) VALUES ($1, $2, $3)"
        " ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available, as_of = EXCLUDED.as_of",
        sku,
        available,
        at,
    )
    was_out = previous is not None and previous["available"] <= 0
    if available <= 0 and not was_out:
        await conn.execute(
            "INSERT INTO kpi_stock_outs (sku, started_at) VALUES ($1, $2)"
            " ON CONFLICT (sku, started_at) DO NOTHING",
            sku,
            at,
        )
    elif available > 0 and was_out:
        await conn.execute(
            "UPDATE kpi_stock_outs SET ended_at = $2 WHERE sku = $1 AND ended_at IS NULL",
            sku,
            at,
        )


async def record_low_stock(
    conn: DbConnection,
    *,
    sku: str,
    location: str,
    available: int,
    reorder_point: int,
    at: datetime,
) -> None:
    """A crossing of the reorder point; none while the last one is open (the same crossing
    told again) or when it is older than the last recovery heard of."""
    await conn.execute(
        "INSERT INTO kpi_low_stock (sku, location, alerted_at, available, reorder_point)"
        " SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM kpi_low_stock"
        "  WHERE sku = $1 AND location = $2 AND (recovered_at IS NULL OR recovered_at >= $3))"
        " ON CONFLICT (sku, location, alerted_at) DO NOTHING",
        sku,
        location,
        at,
        available,
        reorder_point,
    )


async def record_stock_recovered(
    conn: DbConnection, *, sku: str, location: str, at: datetime
) -> None:
    await conn.execute(
        "UPDATE kpi_low_stock SET recovered_at = $3"
        " WHERE sku = $1 AND location = $2 AND recovered_at IS NULL AND alerted_at <= $3",
        sku,
        location,
        at,
    )


# --- the KPI queries --------------------------------------------------------------------------

_CHANNEL = "($3::text IS NULL OR o.channel = $3)"
_ORDERS_PLACED = "FROM kpi_orders o WHERE o.placed_at >= $1 AND o.placed_at < $2 AND " + _CHANNEL
"""Orders placed in the period (of the channel)."""
_RETURN_KEPT = (
    "r.requested_at >= $1 AND r.requested_at < $2 AND r.status <> 'REFUSED' AND " + _CHANNEL
)
"""Returns requested in the period and not refused, by their order's channel (an unknown
order's return counts only without a channel filter): the condition on `r` and `o`."""
_RETURN_LINES_KEPT = (
    "FROM kpi_return_lines l JOIN kpi_returns r ON r.return_id = l.return_id"
    " LEFT JOIN kpi_orders o ON o.order_id = r.order_id WHERE " + _RETURN_KEPT
)


async def _shipment_times(
    conn: DbConnection, column: str, period: tuple[object, ...]
) -> list[ShipmentTimes]:
    """The shipments whose `column` (shipped_at, delivered_at) is in the period, with their
    confirmed order's channel."""
    rows = await conn.fetch(
        f"SELECT o.channel, o.confirmed_at, s.{column} AS at"
        " FROM kpi_shipments s JOIN kpi_orders o ON o.order_id = s.order_id"
        f" WHERE s.{column} >= $1 AND s.{column} < $2 AND o.confirmed_at IS NOT NULL"
        " AND " + _CHANNEL,
        *period,
    )
    return [ShipmentTimes(r["channel"], r["confirmed_at"], r["at"]) for r in rows]


async def kpi_facts(conn: DbConnection, kpi_filter: KpiFilter) -> KpiFacts:
    """Everything the report is assembled from, for the filter's period and channel."""
    period = (kpi_filter.start, kpi_filter.end, kpi_filter.channel)
    volume = await conn.fetch(
        "SELECT date_trunc($4, o.placed_at, 'UTC') AS bucket, o.channel, o.currency,"
        " count(*) AS orders,"
        " coalesce(sum(o.total) FILTER (WHERE o.cancelled_at IS NULL AND o.rejected_at IS NULL),"
        "  0) AS revenue " + _ORDERS_PLACED + " GROUP BY 1, 2, 3",
        *period,
        kpi_filter.bucket,
    )
    shipped = await _shipment_times(conn, "shipped_at", period)
    delivered = await _shipment_times(conn, "delivered_at", period)
    by_channel = await conn.fetch(
        "SELECT o.channel, count(*) AS placed,"
        " count(*) FILTER (WHERE o.cancelled_at IS NOT NULL) AS cancelled,"
        " count(*) FILTER (WHERE o.rejected_at IS NOT NULL) AS rejected "
        + _ORDERS_PLACED
        + " GROUP BY o.channel",
        *period,
    )
    cancel_reasons = await conn.fetch(
        "SELECT coalesce(nullif(o.cancel_reason, ''), $4) AS reason, count(*) AS count "
        + _ORDERS_PLACED
        + " AND o.cancelled_at IS NOT NULL GROUP BY 1",
        *period,
        UNSPECIFIED,
    )
    returns = await conn.fetchval(
        "SELECT count(*) FROM kpi_returns r LEFT JOIN kpi_orders o ON o.order_id = r.order_id"
        " WHERE " + _RETURN_KEPT,
        *period,
    )
    units = await conn.fetch(
        "WITH shipped AS ("
        " SELECT l.sku, sum(l.quantity) AS units FROM kpi_shipment_lines l"
        " JOIN kpi_shipments s ON s.shipment_key = l.shipment_key"
        " JOIN kpi_orders o ON o.order_id = s.order_id"
        " WHERE s.shipped_at >= $1 AND s.shipped_at < $2 AND " + _CHANNEL + " GROUP BY l.sku),"
        " returned AS ("
        " SELECT l.sku, sum(l.quantity) AS units " + _RETURN_LINES_KEPT + " GROUP BY l.sku)"
        " SELECT coalesce(s.sku, r.sku) AS sku, coalesce(s.units, 0) AS shipped,"
        " coalesce(r.units, 0) AS returned"
        " FROM shipped s FULL JOIN returned r ON r.sku = s.sku",
        *period,
    )
    return_reasons = await conn.fetch(
        "SELECT coalesce(nullif(l.reason, ''), $4) AS reason, sum(l.quantity) AS count "
        + _RETURN_LINES_KEPT
        + " GROUP BY 1",
        *period,
        UNSPECIFIED,
    )
    refunds = await conn.fetch(
        "SELECT f.kind, f.currency, count(*) AS count, sum(f.amount) AS amount"
        " FROM kpi_refunds f LEFT JOIN kpi_orders o ON o.order_id = f.order_id"
        " WHERE f.refunded_at >= $1 AND f.refunded_at < $2 AND " + _CHANNEL + ""
        " GROUP BY f.kind, f.currency",
        *period,
    )
    backorders_in_period = (
        "FROM kpi_backorders b LEFT JOIN kpi_orders o ON o.order_id = b.order_id"
        " WHERE b.backordered_at >= $1 AND b.backordered_at < $2 AND " + _CHANNEL
    )
    backordered_orders = await conn.fetchval(
        "SELECT count(DISTINCT b.order_id) " + backorders_in_period, *period
    )
    backorders = await conn.fetch(
        "SELECT b.sku, count(DISTINCT b.order_id) AS orders, sum(b.quantity) AS units "
        + backorders_in_period
        + " GROUP BY b.sku",
        *period,
    )
    # Stock-outs and low stock belong to a SKU, not a channel: the channel filter leaves them.
    stock_outs = await conn.fetch(
        "SELECT sku, count(*) AS stock_outs, bool_or(ended_at IS NULL) AS out_now"
        " FROM kpi_stock_outs WHERE started_at >= $1 AND started_at < $2 GROUP BY sku",
        kpi_filter.start,
        kpi_filter.end,
    )
    low_stock = await conn.fetch(
        "SELECT sku, location, count(*) AS alerts FROM kpi_low_stock"
        " WHERE alerted_at >= $1 AND alerted_at < $2 GROUP BY sku, location",
        kpi_filter.start,
        kpi_filter.end,
    )
    channels = await conn.fetch("SELECT DISTINCT channel FROM kpi_orders ORDER BY 1 LIMIT 200")
    return KpiFacts(
        volume=[
            VolumeRow(r["bucket"], r["channel"], r["currency"], r["orders"], r["revenue"])
            for r in volume
        ],
        shipped=shipped,
        delivered=delivered,
        orders_by_channel=[
            ChannelOrders(r["channel"], r["placed"], r["cancelled"], r["rejected"])
            for r in by_channel
        ],
        cancel_reasons=[ReasonCount(r["reason"], r["count"]) for r in cancel_reasons],
        returns=returns or 0,
        units_by_sku=[SkuUnits(r["sku"], r["shipped"], r["returned"]) for r in units],
        return_reasons=[ReasonCount(r["reason"], r["count"]) for r in return_reasons],
        refunds=[RefundRow(r["kind"], r["currency"], r["count"], r["amount"]) for r in refunds],
        backordered_orders=backordered_orders or 0,
        backorders=[BackorderRow(r["sku"], r["orders"], r["units"]) for r in backorders],
        stock_outs=[StockOutRow(r["sku"], r["stock_outs"], r["out_now"]) for r in stock_outs],
        low_stock=[LowStockRow(r["sku"], r["location"], r["alerts"]) for r in low_stock],
        channels=[r["channel"] for r in channels],
    )
