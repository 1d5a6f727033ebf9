"""SQL of partners: connectors, dispatches (the outbox of partner requests), their deadlines,
and the parcels a partner confirms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.fulfilment.partners.model import Connector, ConnectorKind, DispatchStatus, RequestKind
from services.fulfilment.upserts import create_or_replace
from shared.platform.db import DbConnection

Db = DbConnection | asyncpg.Pool


# --- connectors -----------------------------------------------------------------------------


async def put_connector(conn: DbConnection, connector: Connector) -> bool:
    """Create or replace; True when it was created."""
    return await create_or_replace(
        conn,
        "partner_connectors",
        {
            "location": connector.location,
            "kind": connector.kind.value,
            "url": connector.url,
            "deadline_hours": connector.deadline_hours,
        },
        stamp_updated_at=True,
    )


async def get_connector(db: Db, location: str) -> Connector | None:
    row = await db.fetchrow(
        "SELECT location, kind, url, deadline_hours FROM partner_connectors WHERE location = $1",
        location,
    )
    if row is None:
        return None
    return Connector(row["location"], ConnectorKind(row["kind"]), row["url"], row["deadline_hours"])


# --- dispatches -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewDispatch:
    dispatch_id: str
    fulfilment_id: str
    order_id: str
    location: str
    request_kind: RequestKind
    po_number: str | None
    request: dict[str, Any]
    po_pdf: bytes | None
    status: DispatchStatus
    last_error: str | None
    created_at: datetime
    deadline_at: datetime


@dataclass(frozen=True)
class Dispatch:
    """A partner request as operators see it (the document and the PDF aside)."""

    dispatch_id: str
    fulfilment_id: str
    order_id: str
    location: str
    request_kind: RequestKind
    po_number: str | None
    status: DispatchStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    deadline_at: datetime
    confirmed_at: datetime | None
    overdue_at: datetime | None


@dataclass(frozen=True)
class DueDispatch:
    """A webhook to send, claimed (its row locked) by the sender."""

    dispatch_id: str
    fulfilment_id: str
    order_id: str
    location: str
    request_kind: RequestKind
    request: dict[str, Any]
    po_pdf: bytes | None
    attempts: int
    trace_context: dict[str, str]
    fulfilment_status: str
    connector: Connector | None  # as it is now (the URL may have changed since)


_VIEW = (
    "dispatch_id, fulfilment_id, order_id, location, request_kind, po_number, status, attempts,"
    " next_attempt_at, last_error, created_at, updated_at, sent_at, deadline_at, confirmed_at,"
    " overdue_at"
)


def _dispatch(row: asyncpg.Record) -> Dispatch:
    values = dict(row.items())
    values["request_kind"] = RequestKind(values["request_kind"])
    values["status"] = DispatchStatus(values["status"])
    return Dispatch(**values)


async def next_po_number(conn: DbConnection) -> str:
    number: int = await conn.fetchval("SELECT nextval('purchase_order_numbers')")
    return f"PO-{number:08d}"


async def insert_dispatch(conn: DbConnection, new: NewDispatch) -> bool:
    """False when the fulfilment has its request (or its cancellation) already."""
    inserted = await conn.fetchval(
        "INSERT INTO partner_dispatches (dispatch_id, fulfilment_id, order_id, location,"
        " request_kind, po_number, request, po_pdf, status, next_attempt_at, last_error,"
        " created_at, updated_at, sent_at, deadline_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
        "   CASE WHEN $9 = 'pending' THEN $12::timestamptz END, $10, $12, $12,"
        "   CASE WHEN $9 = 'published' THEN $12::timestamptz END, $11)"
        " ON CONFLICT DO NOTHING RETURNING true",
        new.dispatch_id,
        new.fulfilment_id,
        new.order_id,
        new.location,
        new.request_kind.value,
        new.po_number,
        new.request,
        new.po_pdf,
        new.status.value,
        new.last_error,
        new.deadline_at,
        new.created_at,
    )
    return bool(inserted)


async def get_dispatch(db: Db, dispatch_id: str, *, lock: bool = False) -> Dispatch | None:
    row = await db.fetchrow(
        f"SELECT {_VIEW} FROM partner_dispatches WHERE dispatch_id = $1"
        + (" FOR UPDATE" if lock else ""),
        dispatch_id,
    )
    return _dispatch(row) if row is not None else None


async def requests_of(conn: DbConnection, fulfilment_ids: Sequence[str]) -> list[Dispatch]:
    """The requests (not cancellations) of these fulfilments, locked: a sender holding one
    commits what it sent before they are read."""
    rows = await conn.fetch(
        f"SELECT {_VIEW} FROM partner_dispatches"
        " WHERE fulfilment_id = ANY($1::text[]) AND request_kind <> 'cancellation'"
        " ORDER BY fulfilment_id FOR UPDATE",
        list(fulfilment_ids),
    )
    return [_dispatch(r) for r in rows]


async def dispatch_document(db: Db, dispatch_id: str) -> tuple[dict[str, Any], bytes | None]:
    row = await db.fetchrow(
        "SELECT request, po_pdf FROM partner_dispatches WHERE dispatch_id = $1", dispatch_id
    )
    assert row is not None
    return row["request"], row["po_pdf"]


async def list_dispatches(
    db: Db,
    status: DispatchStatus | None,
    location: str | None,
    limit: int,
) -> list[Dispatch]:
    rows = await db.fetch(
        f"SELECT {_VIEW} FROM partner_dispatches"
        " WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR location = $2)"
        " ORDER BY created_at DESC, dispatch_id LIMIT $3",
        status.value if status is not None else None,
        location,
        limit,
    )
    return [_dispatch(r) for r in rows]


async def claim_due(conn: DbConnection, now: datetime, limit: int) -> list[DueDispatch]:
    """Due webhooks, locked for this transaction (rows another sender holds are skipped), with
    their fulfilment's status and the location's connector."""
    rows = await conn.fetch(
        "SELECT d.dispatch_id, d.fulfilment_id, d.order_id, d.location, d.request_kind,"
        " d.request, d.po_pdf, d.attempts, f.trace_context, f.status AS fulfilment_status, c.kind, c.url,"
        " c.deadline_hours FROM partner_dispatches d"
        " JOIN fulfilments f ON f.fulfilment_id = d.fulfilment_id"
        " LEFT JOIN partner_connectors c ON c.location = d.location"
        " WHERE d.status = 'pending' AND d.next_attempt_at <= $1"
        # A held fulfilment's request waits for the release; its cancellation does not.
        " AND (f.hold_reason IS NULL OR d.request_kind = 'cancellation')"
        " ORDER BY d.next_attempt_at, d.dispatch_id LIMIT $2"
        " FOR UPDATE OF d SKIP LOCKED",
        now,
        limit,
    )
    return [
        DueDispatch(
            r["dispatch_id"],
            r["fulfilment_id"],
            r["order_id"],
            r["location"],
            RequestKind(r["request_kind"]),
            r["request"],
            r["po_pdf"],
            r["attempts"],
            r["trace_context"] or {},
            r["fulfilment_status"],
            Connector(r["location"], ConnectorKind(r["kind"]), r["url"], r["deadline_hours"])
            if r["kind"] is not None
            else None,
        )
        for r in rows
    ]


@dataclass(frozen=True)
class AttemptOutcome:
    dispatch_id: str
    status: DispatchStatus
    error: str | None
    next_attempt_at: datetime | None


async def finish_attempts(
    conn: DbConnection, outcomes: Sequence[AttemptOutcome], at: datetime
) -> None:
    if not outcomes:
        return
    await conn.execute(
        "UPDATE partner_dispatches d SET status = o.status, attempts = d.attempts + 1,"
        " last_error = o.error, next_attempt_at = o.next_at, updated_at = $5,"
        " sent_at = CASE WHEN o.status = 'sent' THEN $5 ELSE d.sent_at END"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])"
        "   AS o(dispatch_id, status, error, next_at)"
        " WHERE d.dispatch_id = o.dispatch_id",
        [o.dispatch_id for o in outcomes],
        [o.status.value for o in outcomes],
        [o.error for o in outcomes],
        [o.next_attempt_at for o in outcomes],
        at,
    )


async def save_requeued(conn: DbConnection, dispatch_id: str, at: datetime) -> None:
    """An operator's retry of a webhook: a fresh round of attempts, due now."""
    await conn.execute(
        "UPDATE partner_dispatches SET status = 'pending', attempts = 0, next_attempt_at = $2,"
        " updated_at = $2 WHERE dispatch_id = $1",
        dispatch_id,
        at,
    )


async def save_published(conn: DbConnection, dispatch_id: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE partner_dispatches SET status = 'published', next_attempt_at = NULL,"
        " last_error = NULL, sent_at = $2, updated_at = $2 WHERE dispatch_id = $1",
        dispatch_id,
        at,
    )


async def mark_confirmed(conn: DbConnection, fulfilment_id: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE partner_dispatches SET confirmed_at = $2, updated_at = $2"
        " WHERE fulfilment_id = $1 AND confirmed_at IS NULL",
        fulfilment_id,
        at,
    )


# --- deadlines ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OverdueDispatch:
    dispatch_id: str
    fulfilment_id: str
    order_id: str
    location: str
    request_kind: RequestKind
    created_at: datetime
    deadline_at: datetime


async def claim_overdue(conn: DbConnection, now: datetime, limit: int) -> list[OverdueDispatch]:
    """Requests past their deadline whose fulfilment is still waiting for the partner (nothing
    shipped, not cancelled), not reported yet; locked, others' skipped."""
    rows = await conn.fetch(
        "SELECT d.dispatch_id, d.fulfilment_id, d.order_id, d.location, d.request_kind,"
        " d.created_at, d.deadline_at FROM partner_dispatches d"
        " JOIN fulfilments f ON f.fulfilment_id = d.fulfilment_id"
        " WHERE d.confirmed_at IS NULL AND d.overdue_at IS NULL AND d.deadline_at <= $1"
        "   AND d.request_kind <> 'cancellation'"
        "   AND f.status = 'created'"
        " ORDER BY d.deadline_at, d.dispatch_id LIMIT $2 FOR UPDATE OF d SKIP LOCKED",
        now,
        limit,
    )
    return [
        OverdueDispatch(
            r["dispatch_id"],
            r["fulfilment_id"],
            r["order_id"],
            r["location"],
            RequestKind(r["request_kind"]),
            r["created_at"],
            r["deadline_at"],
        )
        for r in rows
    ]


async def save_overdue(conn: DbConnection, dispatch_ids: Sequence[str], at: datetime) -> None:
    await conn.execute(
        "UPDATE partner_dispatches SET overdue_at = $2, updated_at = $2"
        " WHERE dispatch_id = ANY($1::text[])",
        list(dispatch_ids),
        at,
    )


# --- confirmed parcels ----------------------------------------------------------------------


async def save_partner_labelled(
    conn: DbConnection,
    parcel_id: str,
    carrier: str,
    tracking_number: str,
    tracking_url: str | None,
) -> None:
    """A partner's parcel arrives packed and labelled by the partner: it is recorded as
    labelled with the partner's carrier and tracking number, ready to ship."""
    await conn.execute(
        "UPDATE parcels SET status = 'labelled', carrier = $2, service = 'partner',"
        " tracking_number = $3, tracking_url = $4, updated_at = now() WHERE parcel_id = $1",
        parcel_id,
        carrier,
        tracking_number,
        tracking_url,
    )


# --- partner locations ----------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerLocation:
    code: str
    kind: str
    name: str
    address: dict[str, Any]


async def partner_locations(db: Db, codes: Sequence[str]) -> dict[str, PartnerLocation]:
    """Of these location codes, the 3PL and dropship supplier ones (one statement)."""
    rows = await db.fetch(
        "SELECT code, kind, name, address FROM locations"
        " WHERE code = ANY($1::text[]) AND kind IN ('3pl', 'dropship_supplier')",
        list(codes),
    )
    return {r["code"]: PartnerLocation(r["code"], r["kind"], r["name"], r["address"]) for r in rows}


async def fulfilment_status(db: Db, fulfilment_id: str) -> str | None:
    status: str | None = await db.fetchval(
        "SELECT status FROM fulfilments WHERE fulfilment_id = $1", fulfilment_id
    )
    return status
