"""SQL of parcels: their lines and scans, weights, labels, shipping and delivery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg

from services.fulfilment.carriers.base import Label
from services.fulfilment.packing.lifecycle import ParcelStatus
from shared.platform.db import DbConnection

Db = DbConnection | asyncpg.Pool


@dataclass(frozen=True)
class ParcelLine:
    sku: str
    quantity: int
    scanned: int = 0


@dataclass(frozen=True)
class NewParcel:
    parcel_id: str
    number: int
    box: str | None  # None: packed by a 3PL or dropship supplier in a box of its own
    expected_weight_g: int
    lines: tuple[ParcelLine, ...]


@dataclass(frozen=True)
class Parcel:
    parcel_id: str
    fulfilment_id: str
    number: int
    status: ParcelStatus
    box: str | None  # None: packed by a partner (services/fulfilment/partners)
    expected_weight_g: int
    measured_weight_g: int | None
    hold_reason: str | None
    carrier: str | None
    service: str | None
    tracking_number: str | None
    tracking_url: str | None
    label_id: str | None
    label_cost: Decimal | None
    label_currency: str | None
    labels_voided: int
    lines: tuple[ParcelLine, ...]
    created_at: datetime
    shipped_at: datetime | None
    delivered_at: datetime | None


_COLUMNS = (
    "p.parcel_id, p.fulfilment_id, p.number, p.status, p.box, p.expected_weight_g,"
    " p.measured_weight_g, p.hold_reason, p.carrier, p.service, p.tracking_number,"
    " p.tracking_url, p.label_id, p.label_cost, p.label_currency, p.labels_voided, p.created_at,"
    " p.shipped_at,"
    " p.delivered_at, (SELECT coalesce(jsonb_agg(jsonb_build_array(l.sku, l.quantity, l.scanned)"
    "   ORDER BY l.sku), '[]'::jsonb) FROM parcel_lines l WHERE l.parcel_id = p.parcel_id)"
    " AS lines"
)


def _parcel(r: asyncpg.Record) -> Parcel:
    return Parcel(
        **{k: v for k, v in r.items() if k not in ("status", "lines")},
        status=ParcelStatus(r["status"]),
        lines=tuple(ParcelLine(sku, quantity, scanned) for sku, quantity, scanned in r["lines"]),
    )


async def insert_parcels(conn: DbConnection, fulfilment_id: str, parcels: list[NewParcel]) -> None:
    await conn.executemany(
        "INSERT INTO parcels (parcel_id, fulfilment_id, number, status, box, expected_weight_g)"
        " VALUES ($1, $2, $3, 'open', $4, $5)",
        [(p.parcel_id, fulfilment_id, p.number, p.box, p.expected_weight_g) for p in parcels],
    )
    await conn.executemany(
        "INSERT INTO parcel_lines (parcel_id, sku, quantity) VALUES ($1, $2, $3)",
        [(p.parcel_id, line.sku, line.quantity) for p in parcels for line in p.lines],
    )


async def parcels_of(db: Db, fulfilment_id: str) -> list[Parcel]:
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM parcels p WHERE p.fulfilment_id = $1 ORDER BY p.number",
        fulfilment_id,
    )
    return [_parcel(r) for r in rows]


async def get_parcel(db: Db, parcel_id: str, *, lock: bool = False) -> Parcel | None:
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM parcels p WHERE p.parcel_id = $1"
        + (" FOR UPDATE OF p" if lock else ""),
        parcel_id,
    )
    return _parcel(row) if row else None


async def find_by_tracking_number(db: Db, carrier: str, tracking_number: str) -> str | None:
    """The id of the parcel with this carrier's tracking number."""
    found: str | None = await db.fetchval(
        "SELECT parcel_id FROM parcels WHERE carrier = $1 AND tracking_number = $2",
        carrier,
        tracking_number,
    )
    return found


async def save_scanned(conn: DbConnection, parcel_id: str, sku: str, scanned: int) -> None:
    await conn.execute(
        "UPDATE parcel_lines SET scanned = $3 WHERE parcel_id = $1 AND sku = $2",
        parcel_id,
        sku,
        scanned,
    )


async def save_closed(
    conn: DbConnection,
    parcel_id: str,
    status: ParcelStatus,
    measured_weight_g: int | None,
    hold_reason: str | None,
) -> None:
    await conn.execute(
        "UPDATE parcels SET status = $2, measured_weight_g = $3, hold_reason = $4,"
        " updated_at = now() WHERE parcel_id = $1",
        parcel_id,
        status.value,
        measured_weight_g,
        hold_reason,
    )


async def save_label(conn: DbConnection, parcel_id: str, label: Label) -> None:
    await conn.execute(
        "UPDATE parcels SET status = 'labelled', carrier = $2, service = $3,"
        " tracking_number = $4, tracking_url = $5, label_id = $6, label_cost = $7,"
        " label_currency = $8, label_pdf = $9, label_zpl = $10, updated_at = now()"
        " WHERE parcel_id = $1",
        parcel_id,
        label.carrier,
        label.service,
        label.tracking_number,
        label.tracking_url,
        label.label_id,
        label.amount,
        label.currency,
        label.pdf,
        label.zpl,
    )


async def clear_label(conn: DbConnection, parcel_id: str) -> None:
    await conn.execute(
        "UPDATE parcels SET status = 'packed', labels_voided = labels_voided + 1,"
        " carrier = NULL, service = NULL,"
        " tracking_number = NULL, tracking_url = NULL, label_id = NULL, label_cost = NULL,"
        " label_currency = NULL, label_pdf = NULL, label_zpl = NULL, updated_at = now()"
        " WHERE parcel_id = $1",
        parcel_id,
    )


async def label_documents(db: Db, parcel_id: str) -> tuple[bytes | None, str | None]:
    row = await db.fetchrow(
        "SELECT label_pdf, label_zpl FROM parcels WHERE parcel_id = $1", parcel_id
    )
    return (row["label_pdf"], row["label_zpl"]) if row else (None, None)


async def save_parcel_shipped(conn: DbConnection, parcel_id: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE parcels SET status = 'shipped', shipped_at = $2, updated_at = $2"
        " WHERE parcel_id = $1",
        parcel_id,
        at,
    )


async def save_parcel_delivered(conn: DbConnection, parcel_id: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE parcels SET status = 'delivered', delivered_at = $2, updated_at = now()"
        " WHERE parcel_id = $1",
        parcel_id,
        at,
    )


async def tracking_index(conn: DbConnection, range_key: str, parcel_ref: str) -> int:
    """The index in a tracking-number range for a parcel: the same parcel always gets the same
    one; a new parcel the next free one (serialised per range by an advisory lock)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tracking:' || $1))", range_key)
    index: int = await conn.fetchval(
        "WITH found AS (SELECT range_index FROM issued_tracking_numbers"
        "   WHERE range_key = $1 AND parcel_ref = $2),"
        " added AS (INSERT INTO issued_tracking_numbers (range_key, parcel_ref, range_index)"
        "   SELECT $1, $2, coalesce((SELECT max(range_index) + 1 FROM issued_tracking_numbers"
        "     WHERE range_key = $1), 0) WHERE NOT EXISTS (SELECT 1 FROM found)"
        "   RETURNING range_index)"
        " SELECT range_index FROM found UNION ALL SELECT range_index FROM added",
        range_key,
        parcel_ref,
    )
    return index
