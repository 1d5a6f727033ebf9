"""All SQL of replenishment: safety stock overrides, reorder settings and their low-stock state,
shipped units from the ledger, and the stock positions the suggestions are made of (purchase
orders and backorders are only read here)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.inventory.replenishment.domain import LONG_WINDOW_DAYS, SHORT_WINDOW_DAYS, Velocity
from shared.platform.db import DbConnection


def _shipped_within(ledger: str, days: int) -> str:
    """Ledger rows of units that left the location with a shipment in the last `days` (the
    reason stock.domain.COMMITTED; the partial index stock_ledger_shipped covers them)."""
    return (
        f"{ledger}.reason = 'committed' AND {ledger}.on_hand_delta < 0"
        f" AND {ledger}.at >= now() - make_interval(days => {days})"
    )


Pair = tuple[str, str]  # (sku, location)


@dataclass(frozen=True)
class ReorderSettings:
    sku: str
    location: str
    reorder_point: int | None
    lead_time_days: int | None
    cover_days: int | None
    safety_units: int
    low_since: datetime | None = None
    low_point: int | None = None


@dataclass(frozen=True)
class SkuReplenishment:
    """What a stock change of a SKU needs: its channel overrides and its watched locations."""

    safety_stock: dict[str, int] = field(default_factory=dict)
    reorder: dict[str, ReorderSettings] = field(default_factory=dict)


@dataclass(frozen=True)
class PositionRow:
    """A SKU at a location, as the suggestions read it."""

    sku: str
    location: str
    on_hand: int
    reserved: int
    incoming: int
    backordered: int
    shipped_7d: int
    shipped_30d: int
    settings: ReorderSettings | None


@dataclass(frozen=True)
class Transition:
    """A low-stock state to record: `low` with the point it crossed, or recovered."""

    sku: str
    location: str
    low: bool
    point: int


class ReplenishmentStore:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    # --- on every stock change ----------------------------------------------------------------

    async def for_skus(self, skus: Iterable[str]) -> dict[str, SkuReplenishment]:
        """Overrides and reorder settings of the SKUs in one round trip (usually no row)."""
        rows = await self._conn.fetch(
            "SELECT sku, channel, units, NULL::text AS location, NULL::bigint AS reorder_point,"
            " NULL::int AS lead_time_days, NULL::int AS cover_days, NULL::bigint AS safety_units,"
            " NULL::timestamptz AS low_since, NULL::bigint AS low_point"
            " FROM sku_safety_stock WHERE sku = ANY($1::text[])"
            " UNION ALL"
            " SELECT sku, NULL, NULL, location, reorder_point, lead_time_days, cover_days,"
            " safety_units, low_since, low_point"
            " FROM reorder_settings WHERE sku = ANY($1::text[])",
            sorted(set(skus)),
        )
        found: dict[str, SkuReplenishment] = {}
        for row in rows:
            entry = found.setdefault(row["sku"], SkuReplenishment())
            if row["channel"] is not None:
                entry.safety_stock[row["channel"]] = row["units"]
            else:
                entry.reorder[row["location"]] = _settings(row)
        return found

    async def shipped(self, pairs: Iterable[Pair]) -> dict[Pair, Velocity]:
        """Units shipped from each (sku, location) in the last 7 and 30 days (absent: none)."""
        wanted = sorted(set(pairs))
        if not wanted:
            return {}
        rows = await self._conn.fetch(
            "SELECT l.sku, l.location,"
            f" coalesce(sum(-l.on_hand_delta) FILTER (WHERE l.at >= now() - make_interval("
            f"   days => {SHORT_WINDOW_DAYS})), 0)::bigint AS shipped_7d,"
            " sum(-l.on_hand_delta)::bigint AS shipped_30d"
            " FROM unnest($1::text[], $2::text[]) AS p(sku, location)"
            " JOIN stock_ledger l ON l.sku = p.sku AND l.location = p.location"
            f" WHERE {_shipped_within('l', LONG_WINDOW_DAYS)}"
            " GROUP BY l.sku, l.location",
            [sku for sku, _ in wanted],
            [location for _, location in wanted],
        )
        return {
            (row["sku"], row["location"]): Velocity(row["shipped_7d"], row["shipped_30d"])
            for row in rows
        }

    async def record_transitions(self, transitions: Sequence[Transition]) -> set[Pair]:
        """Record the crossings whose state was not recorded yet; returns those recorded (a
        concurrent transaction that recorded the same crossing first wins)."""
        if not transitions:
            return set()
        rows = await self._conn.fetch(
            "UPDATE reorder_settings r SET"
            " low_since = CASE WHEN t.low THEN now() END,"
            " low_point = CASE WHEN t.low THEN t.point END"
            " FROM unnest($1::text[], $2::text[], $3::bool[], $4::bigint[])"
            "   AS t(sku, location, low, point)"
            " WHERE r.sku = t.sku AND r.location = t.location AND (r.low_since IS NULL) = t.low"
            " RETURNING r.sku, r.location",
            [t.sku for t in transitions],
            [t.location for t in transitions],
            [t.low for t in transitions],
            [t.point for t in transitions],
        )
        return {(row["sku"], row["location"]) for row in rows}

    # --- safety stock -------------------------------------------------------------------------

    async def safety_stock(self, sku: str) -> dict[str, int]:
        rows = await self._conn.fetch(
            "SELECT channel, units FROM sku_safety_stock WHERE sku = $1 ORDER BY channel", sku
        )
        return {row["channel"]: row["units"] for row in rows}

    async def replace_safety_stock(self, sku: str, channels: Mapping[str, int]) -> None:
        """The SKU's overrides become exactly `channels` (the others go back to the default)."""
        await self._conn.execute(
            "DELETE FROM sku_safety_stock WHERE sku = $1 AND NOT channel = ANY($2::text[])",
            sku,
            list(channels),
        )
        await self._conn.execute(
            "INSERT INTO sku_safety_stock (sku, channel, units)"
            " SELECT $1, channel, units FROM unnest($2::text[], $3::bigint[]) AS c(channel, units)"
            " ON CONFLICT (sku, channel) DO UPDATE SET units = excluded.units, updated_at = now()",
            sku,
            list(channels),
            list(channels.values()),
        )

    # --- reorder settings ---------------------------------------------------------------------

    async def reorder_settings(self, sku: str) -> list[ReorderSettings]:
        rows = await self._conn.fetch(
            "SELECT sku, location, reorder_point, lead_time_days, cover_days, safety_units,"
            " low_since, low_point FROM reorder_settings WHERE sku = $1 ORDER BY location",
            sku,
        )
        return [_settings(row) for row in rows]

    async def put_reorder_settings(self, settings: ReorderSettings) -> bool:
        """Create or replace the settings (the low-stock state is kept); True when created."""
        created: bool = await self._conn.fetchval(
            "INSERT INTO reorder_settings (sku, location, reorder_point, lead_time_days,"
            " cover_days, safety_units) VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (sku, location) DO UPDATE SET reorder_point = excluded.reorder_point,"
            " lead_time_days = excluded.lead_time_days, cover_days = excluded.cover_days,"
            " safety_units = excluded.safety_units, updated_at = now()"
            " RETURNING (xmax = 0)",
            settings.sku,
            settings.location,
            settings.reorder_point,
            settings.lead_time_days,
            settings.cover_days,
            settings.safety_units,
        )
        return created

    async def delete_reorder_settings(self, sku: str, location: str) -> bool:
        deleted = await self._conn.fetchval(
            "DELETE FROM reorder_settings WHERE sku = $1 AND location = $2 RETURNING true",
            sku,
            location,
        )
        return bool(deleted)

    # --- suggestions --------------------------------------------------------------------------

    async def positions(self, *, sku: str | None, location: str | None) -> list[PositionRow]:
        """Every watched (sku, location), and every one that shipped in the last 30 days, with
        its stock, incoming units (open purchase orders not received yet), backordered units
        and units shipped."""
        rows = await self._conn.fetch(
            "WITH pairs AS ("
            "  SELECT sku, location FROM reorder_settings"
            "  UNION"
            "  SELECT sku, location FROM stock_ledger l"
            f"  WHERE {_shipped_within('l', LONG_WINDOW_DAYS)}"
            "), wanted AS ("
            "  SELECT * FROM pairs"
            "  WHERE ($1::text IS NULL OR sku = $1) AND ($2::text IS NULL OR location = $2)"
            ")"
            " SELECT w.sku, w.location,"
            "  coalesce(s.on_hand, 0) AS on_hand, coalesce(s.reserved, 0) AS reserved,"
            "  (SELECT coalesce(sum(pl.quantity - pl.received), 0)::bigint"
            "   FROM purchase_order_lines pl JOIN purchase_orders po ON po.po_id = pl.po_id"
            "   WHERE po.status = 'open' AND po.location = w.location AND pl.sku = w.sku"
            "   AND pl.received < pl.quantity) AS incoming,"
            "  (SELECT coalesce(sum(b.quantity - b.filled), 0)::bigint FROM backorders b"
            "   WHERE b.status = 'queued' AND b.sku = w.sku AND b.location = w.location)"
            "   AS backordered,"
            "  v.shipped_7d, v.shipped_30d,"
            "  r.sku IS NOT NULL AS configured, r.reorder_point, r.lead_time_days,"
            "  r.cover_days, r.safety_units, r.low_since, r.low_point"
            " FROM wanted w"
            " LEFT JOIN stock s ON s.sku = w.sku AND s.location = w.location"
            " CROSS JOIN LATERAL ("
            "   SELECT coalesce(sum(-l.on_hand_delta) FILTER (WHERE l.at >= now()"
            f"     - make_interval(days => {SHORT_WINDOW_DAYS})), 0)::bigint AS shipped_7d,"
            "   coalesce(sum(-l.on_hand_delta), 0)::bigint AS shipped_30d"
            "   FROM stock_ledger l WHERE l.sku = w.sku AND l.location = w.location"
            f"   AND {_shipped_within('l', LONG_WINDOW_DAYS)}) v"
            " LEFT JOIN reorder_settings r ON r.sku = w.sku AND r.location = w.location",
            sku,
            location,
        )
        return [
            PositionRow(
                sku=row["sku"],
                location=row["location"],
                on_hand=row["on_hand"],
                reserved=row["reserved"],
                incoming=row["incoming"],
                backordered=row["backordered"],
                shipped_7d=row["shipped_7d"],
                shipped_30d=row["shipped_30d"],
                settings=_settings(row) if row["configured"] else None,
            )
            for row in rows
        ]


def _settings(row: Any) -> ReorderSettings:
    return ReorderSettings(
        sku=row["sku"],
        location=row["location"],
        reorder_point=row["reorder_point"],
        lead_time_days=row["lead_time_days"],
        cover_days=row["cover_days"],
        safety_units=row["safety_units"],
        low_since=row["low_since"],
        low_point=row["low_point"],
    )
