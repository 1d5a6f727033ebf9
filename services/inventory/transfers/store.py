"""All SQL of transfers.

Locking: a ship, receipt or cancel first locks the transfer's row (`lock`), then the stock rows
with `InventoryStore.lock_stock` (the order every inventory write follows: its own record
first, then stock rows in (sku, location) order), so two calls on one transfer take turns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.inventory.transfers.domain import SHIPPED, Status, Transfer, TransferLine
from shared.platform.db import DbConnection, Filters

_COLUMNS = (
    "transfer_id, from_location, to_location, reference, expected_on, status, created_at,"
    " shipped_at, received_at, cancelled_at"
)


@dataclass(frozen=True)
class TransferRecord:
    """A transfer as stored: its state, and when each step happened."""

    transfer: Transfer
    reference: str | None
    expected_on: date | None
    created_at: datetime
    shipped_at: datetime | None
    received_at: datetime | None
    cancelled_at: datetime | None


@dataclass(frozen=True)
class Receipt:
    receipt_id: str
    request_hash: str
    lines: tuple[tuple[str, int], ...]
    received_at: datetime


@dataclass(frozen=True)
class IncomingTransferLine:
    """Units of a SKU in transit to a location on one transfer."""

    transfer_id: str
    sku: str
    location: str
    units: int
    expected_on: date | None


class TransferStore:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    # --- creating -----------------------------------------------------------------------------

    async def lock_idempotency_key(self, key: str) -> None:
        """Serialise the creations under one Idempotency-Key until the transaction ends."""
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('transfer-idem:' || $1::text))", key
        )

    async def created_with_key(self, key: str) -> tuple[str, str] | None:
        """(transfer id, request hash) of the transfer created under the key, if any."""
        row = await self._conn.fetchrow(
            "SELECT transfer_id, request_hash FROM transfers WHERE idempotency_key = $1", key
        )
        return (row["transfer_id"], row["request_hash"]) if row else None

    async def create(
        self,
        transfer: Transfer,
        *,
        reference: str | None,
        expected_on: date | None,
        idempotency_key: str | None,
        request_hash: str | None,
    ) -> None:
        await self._conn.execute(
            "INSERT INTO transfers (transfer_id, from_location, to_location, reference,"
            " expected_on, status, idempotency_key, request_hash)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            transfer.transfer_id,
            transfer.from_location,
            transfer.to_location,
            reference,
            expected_on,
            transfer.status.value,
            idempotency_key,
            request_hash,
        )
        await self._conn.execute(
            "INSERT INTO transfer_lines (transfer_id, sku, quantity)"
            " SELECT $1, sku, quantity FROM unnest($2::text[], $3::bigint[]) AS l(sku, quantity)",
            transfer.transfer_id,
            [line.sku for line in transfer.lines],
            [line.quantity for line in transfer.lines],
        )

    # --- reading and changing -----------------------------------------------------------------

    async def lock(self, transfer_id: str) -> Transfer | None:
        """The transfer, its row locked until the transaction ends."""
        row = await self._conn.fetchrow(
            "SELECT transfer_id FROM transfers WHERE transfer_id = $1 FOR UPDATE", transfer_id
        )
        if row is None:
            return None
        record = await self.get(transfer_id)
        assert record is not None
        return record.transfer

    async def get(self, transfer_id: str) -> TransferRecord | None:
        found = await self._records("WHERE transfer_id = $1", [transfer_id], limit=1)
        return found[0] if found else None

    async def listing(
        self, *, status: Status | None, location: str | None, limit: int
    ) -> list[TransferRecord]:
        """Newest first; `location`: transfers from or to it."""
        filters = Filters()
        filters.equal("status", status.value if status else None)
        if location:
            at = filters.param(location)
            filters.condition(f"(from_location = {at} OR to_location = {at})")
        return await self._records(filters.where, filters.args, limit=limit)

    async def _records(
        self, where: str, args: Sequence[Any], *, limit: int
    ) -> list[TransferRecord]:
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS}, (SELECT coalesce(jsonb_agg(jsonb_build_object("
            "  'sku', l.sku, 'quantity', l.quantity, 'received', l.received,"
            "  'returned', l.returned) ORDER BY l.sku), '[]'::jsonb)"
            "  FROM transfer_lines l WHERE l.transfer_id = t.transfer_id) AS lines"
            f" FROM transfers t {where} ORDER BY created_at DESC, transfer_id"
            f" LIMIT {int(limit)}",
            *args,
        )
        return [_record(row) for row in rows]

    async def save(self, transfer_id: str, status: Status, lines: Sequence[TransferLine]) -> None:
        """The transfer's new status and lines; the time of the step is stamped once."""
        stamp = {
            Status.IN_TRANSIT: "shipped_at",
            Status.RECEIVED: "received_at",
            Status.CANCELLED: "cancelled_at",
        }.get(status)
        stamped = f", {stamp} = coalesce({stamp}, now())" if stamp else ""
        await self._conn.execute(
            f"UPDATE transfers SET status = $2, updated_at = now(){stamped} WHERE transfer_id = $1",
            transfer_id,
            status.value,
        )
        await self._conn.execute(
            "UPDATE transfer_lines l SET received = c.received, returned = c.returned"
            " FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS c(sku, received, returned)"
            " WHERE l.transfer_id = $1 AND l.sku = c.sku",
            transfer_id,
            [line.sku for line in lines],
            [line.received for line in lines],
            [line.returned for line in lines],
        )

    # --- receipts -----------------------------------------------------------------------------

    async def receipt(self, transfer_id: str, receipt_id: str) -> Receipt | None:
        row = await self._conn.fetchrow(
            "SELECT receipt_id, request_hash, lines, received_at FROM transfer_receipts"
            " WHERE transfer_id = $1 AND receipt_id = $2",
            transfer_id,
            receipt_id,
        )
        return _receipt(row) if row else None

    async def receipts(self, transfer_id: str) -> list[Receipt]:
        rows = await self._conn.fetch(
            "SELECT receipt_id, request_hash, lines, received_at FROM transfer_receipts"
            " WHERE transfer_id = $1 ORDER BY received_at, receipt_id",
            transfer_id,
        )
        return [_receipt(row) for row in rows]

    async def record_receipt(
        self, transfer_id: str, receipt_id: str, request_hash: str, lines: Sequence[tuple[str, int]]
    ) -> Receipt:
        row = await self._conn.fetchrow(
            "INSERT INTO transfer_receipts (transfer_id, receipt_id, request_hash, lines)"
            " VALUES ($1, $2, $3, $4) RETURNING receipt_id, request_hash, lines, received_at",
            transfer_id,
            receipt_id,
            request_hash,
            [{"sku": sku, "quantity": quantity} for sku, quantity in lines],
        )
        return _receipt(row)

    # --- what is on its way -------------------------------------------------------------------

    async def incoming_transfers(self, skus: Iterable[str]) -> dict[tuple[str, str], int]:
        """Units of each SKU in transit to each location: (sku, location) -> units. Incoming
        stock for available-to-promise and backorders' expected dates."""
        incoming: dict[tuple[str, str], int] = {}
        for line in await self.incoming_transfer_lines(skus):
            key = (line.sku, line.location)
            incoming[key] = incoming.get(key, 0) + line.units
        return incoming

    async def incoming_transfer_lines(self, skus: Iterable[str]) -> list[IncomingTransferLine]:
        """The same per transfer, with the date each is expected (soonest first, undated last)."""
        rows = await self._conn.fetch(
            "SELECT t.transfer_id, l.sku, t.to_location AS location,"
            " l.quantity - l.received - l.returned AS units, t.expected_on"
            " FROM transfer_lines l JOIN transfers t USING (transfer_id)"
            " WHERE l.sku = ANY($1::text[]) AND t.status = ANY($2::text[])"
            " AND l.quantity > l.received + l.returned"
            " ORDER BY t.expected_on NULLS LAST, t.created_at, t.transfer_id, l.sku",
            sorted(set(skus)),
            [status.value for status in SHIPPED],
        )
        return [IncomingTransferLine(**dict(row)) for row in rows]


def _record(row: Any) -> TransferRecord:
    return TransferRecord(
        transfer=Transfer(
            transfer_id=row["transfer_id"],
            from_location=row["from_location"],
            to_location=row["to_location"],
            status=Status(row["status"]),
            lines=tuple(TransferLine(**line) for line in row["lines"]),
        ),
        reference=row["reference"],
        expected_on=row["expected_on"],
        created_at=row["created_at"],
        shipped_at=row["shipped_at"],
        received_at=row["received_at"],
        cancelled_at=row["cancelled_at"],
    )


def _receipt(row: Any) -> Receipt:
    return Receipt(
        receipt_id=row["receipt_id"],
        request_hash=row["request_hash"],
        lines=tuple((line["sku"], line["quantity"]) for line in row["lines"]),
        received_at=row["received_at"],
    )
