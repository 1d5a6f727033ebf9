"""SQL of picking: fulfilments waiting to be picked, pick lists, their stops and progress."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.fulfilment.picking.lifecycle import PickListState, Status, StopProgress
from services.fulfilment.picking.strategies import PickList, PickStop, Put
from services.fulfilment.warehouse.model import Bin
from shared.platform.db import DbConnection

Db = DbConnection | asyncpg.Pool


@dataclass(frozen=True)
class StoredPickList:
    pick_list_id: str
    location: str
    strategy: str
    wave: int | None
    zone: str | None
    status: Status
    picker: str | None
    walk_m: float
    created_at: datetime
    claimed_at: datetime | None
    finished_at: datetime | None
    state: PickListState


async def lock_fulfilments_to_pick(conn: DbConnection, location: str, limit: int) -> list[str]:
    """Fulfilments at the location not yet on a pick list, oldest first, locked; ones another
    release is planning are skipped."""
    rows = await conn.fetch(
        "SELECT fulfilment_id FROM fulfilments WHERE location = $1 AND status = 'created'"
        " AND picking_released_at IS NULL AND hold_reason IS NULL ORDER BY created_at, fulfilment_id LIMIT $2"
        " FOR UPDATE SKIP LOCKED",
        location,
        limit,
    )
    return [r["fulfilment_id"] for r in rows]


async def held_on_list(db: Db, pick_list_id: str) -> list[tuple[str, str]]:
    """The held fulfilments on the pick list: (fulfilment id, hold reason)."""
    rows = await db.fetch(
        "SELECT f.fulfilment_id, f.hold_reason FROM pick_list_fulfilments p"
        " JOIN fulfilments f ON f.fulfilment_id = p.fulfilment_id"
        " WHERE p.pick_list_id = $1 AND f.hold_reason IS NOT NULL ORDER BY f.fulfilment_id",
        pick_list_id,
    )
    return [(r["fulfilment_id"], r["hold_reason"]) for r in rows]


async def mark_released(conn: DbConnection, fulfilment_ids: Sequence[str], at: datetime) -> None:
    await conn.execute(
        "UPDATE fulfilments SET picking_released_at = $2, updated_at = $2"
        " WHERE fulfilment_id = ANY($1::text[])",
        list(fulfilment_ids),
        at,
    )


async def insert_pick_list(
    conn: DbConnection, location: str, pick_list: PickList, walk_m: float, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO pick_lists (pick_list_id, location, strategy, wave, zone, status, walk_m,"
        " created_at) VALUES ($1, $2, $3, $4, $5, 'released', $6, $7)",
        pick_list.list_id,
        location,
        pick_list.strategy.value,
        pick_list.wave,
        pick_list.zone,
        walk_m,
        at,
    )
    totes = {tote.fulfilment_id: tote.number for tote in pick_list.totes}
    await conn.executemany(
        "INSERT INTO pick_list_fulfilments (pick_list_id, fulfilment_id, tote) VALUES ($1, $2, $3)",
        [(pick_list.list_id, f, totes.get(f)) for f in pick_list.fulfilment_ids],
    )
    await conn.executemany(
        "INSERT INTO pick_stops (pick_list_id, position, bin, sku, quantity, puts)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (
                pick_list.list_id,
                position,
                stop.bin.code,
                stop.sku,
                stop.quantity,
                [vars(put) for put in stop.puts],
            )
            for position, stop in enumerate(pick_list.stops)
        ],
    )


_LIST_COLUMNS = (
    "l.pick_list_id, l.location, l.strategy, l.wave, l.zone, l.status, l.picker, l.walk_m,"
    " l.created_at, l.claimed_at, l.finished_at,"
    # A stop keeps its place when its bin has left the layout since (a re-laid floor).
    " (SELECT jsonb_agg(jsonb_build_object('position', s.position, 'bin', s.bin,"
    "   'zone', coalesce(b.zone, ''), 'sequence', coalesce(b.sequence, s.position),"
    "   'x_m', coalesce(b.x_m, 0), 'y_m', coalesce(b.y_m, 0), 'sku', s.sku, 'puts', s.puts,"
    "   'picked', s.picked, 'short', s.short, 'barcode', i.barcode) ORDER BY s.position)"
    "  FROM pick_stops s LEFT JOIN bins b ON b.location = l.location AND b.code = s.bin"
    "  LEFT JOIN items i ON i.sku = s.sku"
    "  WHERE s.pick_list_id = l.pick_list_id) AS stops"
)


def _stored(r: asyncpg.Record) -> StoredPickList:
    stops = tuple(_progress(s) for s in r["stops"] or [])
    status = Status(r["status"])
    return StoredPickList(
        pick_list_id=r["pick_list_id"],
        location=r["location"],
        strategy=r["strategy"],
        wave=r["wave"],
        zone=r["zone"],
        status=status,
        picker=r["picker"],
        walk_m=r["walk_m"],
        created_at=r["created_at"],
        claimed_at=r["claimed_at"],
        finished_at=r["finished_at"],
        state=PickListState(r["pick_list_id"], stops, status, r["picker"]),
    )


def _progress(s: dict[str, Any]) -> StopProgress:
    stop = PickStop(
        bin=Bin(s["bin"], s["zone"], s["sequence"], s["x_m"], s["y_m"]),
        sku=s["sku"],
        puts=tuple(Put(**put) for put in s["puts"]),
    )
    return StopProgress(stop, s["barcode"] or "", picked=s["picked"], missing=s["short"])


async def get_pick_list(db: Db, pick_list_id: str, *, lock: bool = False) -> StoredPickList | None:
    row = await db.fetchrow(
        f"SELECT {_LIST_COLUMNS} FROM pick_lists l WHERE l.pick_list_id = $1"
        + (" FOR UPDATE OF l" if lock else ""),
        pick_list_id,
    )
    return _stored(row) if row else None


async def list_pick_lists(
    db: Db, location: str | None, statuses: Sequence[str] | None, limit: int
) -> list[StoredPickList]:
    rows = await db.fetch(
        f"SELECT {_LIST_COLUMNS} FROM pick_lists l"
        " WHERE ($1::text IS NULL OR l.location = $1)"
        " AND ($2::text[] IS NULL OR l.status = ANY($2::text[]))"
        " ORDER BY l.wave NULLS LAST, l.created_at, l.pick_list_id LIMIT $3",
        location,
        list(statuses) if statuses else None,
        limit,
    )
    return [_stored(r) for r in rows]


async def save_progress(
    conn: DbConnection, state: PickListState, at: datetime, *, claimed: bool, finished: bool
) -> None:
    await conn.execute(
        "UPDATE pick_lists SET status = $2, picker = $3,"
        " claimed_at = CASE WHEN $4 THEN $5 ELSE claimed_at END,"
        " finished_at = CASE WHEN $6 THEN $5 ELSE finished_at END WHERE pick_list_id = $1",
        state.list_id,
        state.status.value,
        state.picker_id,
        claimed,
        at,
        finished,
    )
    await conn.executemany(
        "UPDATE pick_stops SET picked = $3, short = $4"
        " WHERE pick_list_id = $1 AND position = $2 AND (picked, short) <> ($3, $4)",
        [(state.list_id, i, s.picked, s.missing) for i, s in enumerate(state.stops)],
    )


async def first_confirmation(conn: DbConnection, pick_list_id: str, scan_id: str) -> bool:
    """Record a scan id; False when it was recorded before (a retried confirmation)."""
    inserted = await conn.fetchval(
        "INSERT INTO pick_confirmations (pick_list_id, scan_id) VALUES ($1, $2)"
        " ON CONFLICT DO NOTHING RETURNING true",
        pick_list_id,
        scan_id,
    )
    return bool(inserted)


async def pick_lists_of_fulfilment(db: Db, fulfilment_id: str) -> list[StoredPickList]:
    rows = await db.fetch(
        f"SELECT {_LIST_COLUMNS} FROM pick_lists l WHERE l.pick_list_id IN"
        " (SELECT pick_list_id FROM pick_list_fulfilments WHERE fulfilment_id = $1)"
        " ORDER BY l.pick_list_id",
        fulfilment_id,
    )
    return [_stored(r) for r in rows]


async def open_counts(db: Db, location: str) -> dict[str, int]:
    """The day's queue at a location: fulfilments waiting for a pick list, lists by status."""
    waiting = await db.fetchval(
        "SELECT count(*) FROM fulfilments WHERE location = $1 AND status = 'created'"
        " AND picking_released_at IS NULL",
        location,
    )
    rows = await db.fetch(
        "SELECT status, count(*) AS n FROM pick_lists WHERE location = $1"
        " AND (finished_at IS NULL OR finished_at > now() - interval '1 day') GROUP BY status",
        location,
    )
    return {"waiting_fulfilments": int(waiting), **{r["status"]: int(r["n"]) for r in rows}}
