"""All SQL of the fulfilment service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import asyncpg

from services.fulfilment.domain import SHORT_PICK, Line, PlannedFulfilment, Status
from shared.platform.db import DbConnection

Db = DbConnection | asyncpg.Pool


@dataclass(frozen=True)
class OrderRecord:
    order_id: str
    cancelled_at: datetime | None
    cancel_reason: str | None
    hold_reason: str | None = None
    hold_released_at: datetime | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None


@dataclass(frozen=True)
class TrackingEventRecord:
    status: str
    reported_at: datetime | None
    description: str | None
    received_at: datetime


@dataclass(frozen=True)
class FulfilmentFacts:
    """A fulfilment as the API shows it (its tracking history aside)."""

    fulfilment_id: str
    order_id: str
    location: str
    status: Status
    lines: tuple[Line, ...]
    shipping_address: dict[str, Any]
    shipping_method: str | None
    carrier: str | None
    tracking_number: str | None
    cancel_reason: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    failed_at: datetime | None
    # The short pick whose re-allocated units it ships (AddFulfilment); None for the order's
    # first fulfilments.
    reallocated_for_short: str | None
    # Set while the order's hold stops it on the floor (HoldFulfilments).
    hold_reason: str | None
    held_at: datetime | None


@dataclass(frozen=True)
class Fulfilment(FulfilmentFacts):
    tracking_events: tuple[TrackingEventRecord, ...] = ()
    # W3C trace context of the order, stored when the saga created the fulfilment.
    trace_context: dict[str, str] = field(default_factory=dict)

    @property
    def rest_cancelled(self) -> bool:
        """Parcels of it had left when a cancel came; the cancel took the unshipped rest."""
        return self.cancelled_at is not None and self.status is not Status.CANCELLED


class TrackingNumberInUse(Exception):
    def __init__(self, carrier: str, tracking_number: str) -> None:
        super().__init__(
            f"tracking number {tracking_number!r} of {carrier} is already used by another"
            " fulfilment"
        )
        self.carrier = carrier
        self.tracking_number = tracking_number


_COLUMNS = (
    "f.fulfilment_id, f.order_id, f.location, f.status, f.shipping_address, f.shipping_method,"
    " f.carrier, f.tracking_number, f.cancel_reason, f.failure_reason, f.created_at,"
    " f.updated_at, f.shipped_at, f.delivered_at, f.cancelled_at, f.failed_at, f.trace_context,"
    " f.reallocated_for_short, f.hold_reason, f.held_at,"
    " (SELECT coalesce(jsonb_agg(jsonb_build_array(l.sku, l.quantity, l.short) ORDER BY l.sku),"
    "   '[]'::jsonb) FROM fulfilment_lines l WHERE l.fulfilment_id = f.fulfilment_id) AS lines"
)
_EVENTS = (
    ", (SELECT coalesce(jsonb_agg(jsonb_build_array(e.status, e.reported_at, e.description,"
    "   e.received_at) ORDER BY e.id), '[]'::jsonb)"
    "  FROM tracking_events e WHERE e.fulfilment_id = f.fulfilment_id) AS events"
)


def _select(where: str, *, lock: bool, with_events: bool) -> str:
    """A fulfilment with its lines (and tracking history) in one statement."""
    return f"SELECT {_COLUMNS}{_EVENTS if with_events else ''} FROM fulfilments f WHERE {where}" + (
        " ORDER BY f.fulfilment_id FOR UPDATE OF f" if lock else " ORDER BY f.fulfilment_id"
    )


# --- orders ---------------------------------------------------------------------------------


async def lock_order(conn: DbConnection, order_id: str) -> OrderRecord:
    """The order's row, created on first sight, locked until the transaction ends (one
    statement on first sight, the usual case for CreateFulfilment)."""
    row = await conn.fetchrow(
        f"INSERT INTO orders (order_id) VALUES ($1) ON CONFLICT (order_id) DO NOTHING"
        f" RETURNING {_ORDER_COLUMNS}",
        order_id,
    )
    if row is None:
        row = await conn.fetchrow(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_id = $1 FOR UPDATE", order_id
        )
    assert row is not None
    return OrderRecord(**{name: row[name] for name in _ORDER_COLUMNS.split(", ")})


_ORDER_COLUMNS = "order_id, cancelled_at, cancel_reason, hold_reason, hold_released_at"


async def save_order_held(conn: DbConnection, order_id: str, reason: str, at: datetime) -> None:
    """The order is on hold: fulfilments created for it from now on are created held."""
    await conn.execute(
        "UPDATE orders SET hold_reason = $2, held_at = $3, hold_released_at = NULL"
        " WHERE order_id = $1",
        order_id,
        reason,
        at,
    )


async def save_order_released(conn: DbConnection, order_id: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE orders SET hold_reason = NULL, held_at = NULL, hold_released_at = $2"
        " WHERE order_id = $1",
        order_id,
        at,
    )


async def save_held(
    conn: DbConnection, fulfilment_ids: Sequence[str], reason: str, at: datetime
) -> None:
    await conn.execute(
        "UPDATE fulfilments SET hold_reason = $2, held_at = $3, hold_released_at = NULL,"
        " updated_at = $3 WHERE fulfilment_id = ANY($1::text[])",
        list(fulfilment_ids),
        reason,
        at,
    )


async def save_released(conn: DbConnection, fulfilment_ids: Sequence[str], at: datetime) -> None:
    await conn.execute(
        "UPDATE fulfilments SET hold_reason = NULL, held_at = NULL, hold_released_at = $2,"
        " updated_at = $2 WHERE fulfilment_id = ANY($1::text[])",
        list(fulfilment_ids),
        at,
    )


async def released_with_order(conn: DbConnection, order_id: str, at: datetime) -> list[str]:
    """The fulfilments the order's last release (at `at`) took the hold off."""
    rows = await conn.fetch(
        "SELECT fulfilment_id FROM fulfilments WHERE order_id = $1 AND hold_released_at = $2"
        " ORDER BY fulfilment_id",
        order_id,
        at,
    )
    return [r["fulfilment_id"] for r in rows]


async def mark_order_cancelled(
    conn: DbConnection, order_id: str, reason: str, at: datetime
) -> None:
    await conn.execute(
        "UPDATE orders SET cancelled_at = $2, cancel_reason = $3"
        " WHERE order_id = $1 AND cancelled_at IS NULL",
        order_id,
        at,
        reason,
    )


# --- fulfilments ----------------------------------------------------------------------------


async def insert_fulfilments(
    conn: DbConnection,
    order_id: str,
    planned: list[PlannedFulfilment],
    shipping_address: dict[str, Any],
    shipping_method: str | None,
    at: datetime,
    trace_context: dict[str, str] | None = None,
    reallocated_for_short: str | None = None,
    hold_reason: str | None = None,
) -> None:
    """`hold_reason`: the order is on hold, so they are created held."""
    lines = [(p.fulfilment_id, line.sku, line.quantity) for p in planned for line in p.lines]
    # The fulfilments and their lines in one statement.
    await conn.execute(
        "WITH created AS ("
        "  INSERT INTO fulfilments (fulfilment_id, order_id, location, status, shipping_address,"
        "    shipping_method, created_at, updated_at, trace_context, reallocated_for_short,"
        "    hold_reason, held_at)"
        "  SELECT f.fulfilment_id, $1, f.location, 'created', $2, $3, $4, $4, $5, $11, $12,"
        "    CASE WHEN $12::text IS NULL THEN NULL ELSE $4::timestamptz END"
        "  FROM unnest($6::text[], $7::text[]) AS f(fulfilment_id, location)"
        "  RETURNING fulfilment_id"
        ")"
        " INSERT INTO fulfilment_lines (fulfilment_id, sku, quantity)"
        " SELECT l.fulfilment_id, l.sku, l.quantity"
        " FROM unnest($8::text[], $9::text[], $10::int[]) AS l(fulfilment_id, sku, quantity)"
        " WHERE l.fulfilment_id IN (SELECT fulfilment_id FROM created)",
        order_id,
        shipping_address,
        shipping_method,
        at,
        trace_context or {},
        [p.fulfilment_id for p in planned],
        [p.location for p in planned],
        [fulfilment_id for fulfilment_id, _, _ in lines],
        [sku for _, sku, _ in lines],
        [quantity for _, _, quantity in lines],
        reallocated_for_short,
        hold_reason,
    )


async def fulfilments_of_order(
    db: Db, order_id: str, *, lock: bool = False, with_events: bool = False
) -> list[Fulfilment]:
    """The order's fulfilments by location; `lock` takes their row locks (in id order)."""
    rows = await db.fetch(_select("f.order_id = $1", lock=lock, with_events=with_events), order_id)
    return sorted((_fulfilment(row) for row in rows), key=lambda f: f.location)


async def get_fulfilment(
    db: Db, fulfilment_id: str, *, lock: bool = False, with_events: bool = False
) -> Fulfilment | None:
    row = await db.fetchrow(
        _select("f.fulfilment_id = $1", lock=lock, with_events=with_events), fulfilment_id
    )
    return _fulfilment(row) if row is not None else None


async def lock_by_tracking_number(
    conn: DbConnection, carrier: str, tracking_number: str
) -> Fulfilment | None:
    row = await conn.fetchrow(
        _select("f.carrier = $1 AND f.tracking_number = $2", lock=True, with_events=False),
        carrier,
        tracking_number,
    )
    return _fulfilment(row) if row is not None else None


# The columns read as they are.
_PLAIN = tuple(f.name for f in fields(FulfilmentFacts) if f.name not in ("status", "lines"))


def _fulfilment(r: asyncpg.Record) -> Fulfilment:
    return Fulfilment(
        **{name: r[name] for name in _PLAIN},
        status=Status(r["status"]),
        lines=tuple(Line(sku, quantity, short) for sku, quantity, short in r["lines"]),
        tracking_events=tuple(
            TrackingEventRecord(
                status,
                datetime.fromisoformat(reported_at) if reported_at else None,
                description or None,
                datetime.fromisoformat(received_at),
            )
            for status, reported_at, description, received_at in r.get("events") or []
        ),
        trace_context=r["trace_context"] or {},
    )


async def save_shipped(
    conn: DbConnection, fulfilment_id: str, carrier: str, tracking_number: str, at: datetime
) -> None:
    """Raises TrackingNumberInUse (and the transaction can only be rolled back) when another
    fulfilment has this carrier's tracking number."""
    try:
        await conn.execute(
            "UPDATE fulfilments SET status = 'shipped', carrier = $2, tracking_number = $3,"
            " shipped_at = $4, updated_at = $4 WHERE fulfilment_id = $1",
            fulfilment_id,
            carrier,
            tracking_number,
            at,
        )
    except asyncpg.UniqueViolationError as exc:
        raise TrackingNumberInUse(carrier, tracking_number) from exc


async def save_short(conn: DbConnection, fulfilment_id: str, lines: Sequence[Line]) -> None:
    """The fulfilment's lines after a short pick (their `short` units)."""
    await conn.execute(
        "UPDATE fulfilment_lines l SET short = c.short"
        " FROM unnest($2::text[], $3::int[]) AS c(sku, short)"
        " WHERE l.fulfilment_id = $1 AND l.sku = c.sku AND l.short <> c.short",
        fulfilment_id,
        [line.sku for line in lines],
        [line.short for line in lines],
    )


async def save_ended_short(conn: DbConnection, fulfilment_id: str, at: datetime) -> None:
    """None of the fulfilment's units was found: it ends without shipping."""
    await conn.execute(
        "UPDATE fulfilments SET status = 'cancelled', cancel_reason = $2, cancelled_at = $3,"
        " updated_at = $3 WHERE fulfilment_id = $1 AND status = 'created'",
        fulfilment_id,
        SHORT_PICK,
        at,
    )


async def save_delivered(conn: DbConnection, fulfilment_id: str, at: datetime) -> None:
    """The fulfilment is delivered, and so is every parcel of it still on its way."""
    await conn.execute(
        "WITH parcels_delivered AS (UPDATE parcels SET status = 'delivered',"
        "   delivered_at = $2, updated_at = now()"
        "   WHERE fulfilment_id = $1 AND status = 'shipped')"
        " UPDATE fulfilments SET status = 'delivered', delivered_at = $2, updated_at = now()"
        " WHERE fulfilment_id = $1",
        fulfilment_id,
        at,
    )


async def save_cancelled(
    conn: DbConnection, fulfilment_ids: list[str], reason: str, at: datetime
) -> None:
    await _save_cancel(conn, fulfilment_ids, Status.CANCELLED, reason, at)


async def save_rest_cancelled(
    conn: DbConnection, fulfilment_ids: list[str], reason: str, at: datetime
) -> None:
    """Partly shipped fulfilments whose unshipped rest a cancel took: shipped, as far as they
    go (their open parcels can no longer ship)."""
    await _save_cancel(conn, fulfilment_ids, Status.SHIPPED, reason, at)


async def _save_cancel(
    conn: DbConnection, fulfilment_ids: list[str], status: Status, reason: str, at: datetime
) -> None:
    """A cancel taken: the fulfilments end up `status`, with the cancel's reason and time."""
    await conn.execute(
        "UPDATE fulfilments SET status = $2, cancel_reason = $3, cancelled_at = $4,"
        " updated_at = $4 WHERE fulfilment_id = ANY($1::text[])",
        fulfilment_ids,
        status.value,
        reason,
        at,
    )


async def save_failed(conn: DbConnection, fulfilment_id: str, reason: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE fulfilments SET status = 'failed', failure_reason = $2, failed_at = $3,"
        " updated_at = now() WHERE fulfilment_id = $1",
        fulfilment_id,
        reason,
        at,
    )


# --- tracking events ------------------------------------------------------------------------


async def insert_tracking_event(
    conn: DbConnection,
    fulfilment_id: str,
    carrier: str,
    tracking_number: str,
    status: str,
    reported_at: datetime | None,
    description: str | None,
) -> bool:
    """Record a carrier's update; False when the same update was recorded before."""
    inserted = await conn.fetchval(
        "INSERT INTO tracking_events (fulfilment_id, carrier, tracking_number, status,"
        " reported_at, description) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT ON CONSTRAINT tracking_events_once DO NOTHING RETURNING true",
        fulfilment_id,
        carrier,
        tracking_number,
        status,
        reported_at,
        description or "",
    )
    return bool(inserted)


async def save_parcel_shipped(
    conn: DbConnection, fulfilment_id: str, status: Status, at: datetime
) -> None:
    """A parcel of the fulfilment shipped: partially_shipped, or shipped with its last one."""
    await conn.execute(
        "UPDATE fulfilments SET status = $2, shipped_at = coalesce(shipped_at, $3),"
        " updated_at = $3 WHERE fulfilment_id = $1",
        fulfilment_id,
        status.value,
        at,
    )


# --- shipping address changes ---------------------------------------------------------------


@dataclass(frozen=True)
class AddressChangeRecord:
    """An UpdateShippingAddress decided: `outcome` updated or refused (with `code`, `reason`)."""

    change_id: str
    order_id: str
    outcome: str
    code: str | None
    reason: str | None
    fulfilments: tuple[str, ...]


async def address_change(conn: DbConnection, change_id: str) -> AddressChangeRecord | None:
    row = await conn.fetchrow(
        "SELECT change_id, order_id, outcome, code, reason, fulfilments FROM address_changes"
        " WHERE change_id = $1",
        change_id,
    )
    if row is None:
        return None
    return AddressChangeRecord(
        row["change_id"],
        row["order_id"],
        row["outcome"],
        row["code"],
        row["reason"],
        tuple(row["fulfilments"]),
    )


async def insert_address_change(conn: DbConnection, record: AddressChangeRecord) -> None:
    await conn.execute(
        "INSERT INTO address_changes (change_id, order_id, outcome, code, reason, fulfilments)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (change_id) DO NOTHING",
        record.change_id,
        record.order_id,
        record.outcome,
        record.code,
        record.reason,
        list(record.fulfilments),
    )


async def lock_for_address_change(
    conn: DbConnection, order_id: str
) -> list[tuple[str, Status, bool, dict[str, Any]]]:
    """The order's fulfilments, locked (a pick list release skips locked ones): (id, status,
    put on a pick list, shipping address)."""
    rows = await conn.fetch(
        "SELECT fulfilment_id, status, picking_released_at IS NOT NULL AS released,"
        " shipping_address FROM fulfilments WHERE order_id = $1"
        " ORDER BY fulfilment_id FOR UPDATE",
        order_id,
    )
    return [
        (r["fulfilment_id"], Status(r["status"]), r["released"], r["shipping_address"])
        for r in rows
    ]


async def save_shipping_address(
    conn: DbConnection, fulfilment_ids: Sequence[str], address: dict[str, Any], at: datetime
) -> None:
    await conn.execute(
        "UPDATE fulfilments SET shipping_address = $2, updated_at = $3"
        " WHERE fulfilment_id = ANY($1::text[])",
        list(fulfilment_ids),
        address,
        at,
    )
