"""All SQL of the inventory service.

Locking rules (so concurrent orders never oversell and never deadlock): a command first locks its
order's row in `order_reservations`, then the stock rows it may touch with `lock_stock`, which
takes every location of the given SKUs in (sku, location) order. Stock rows are only ever
updated after they were locked that way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.inventory.stock.domain import (
    Placement,
    ReservationState,
    Shortfall,
    StockChange,
    StockLevel,
)
from shared.platform.db import DbConnection, columns


@dataclass(frozen=True)
class Sku:
    sku: str
    name: str
    barcode: str | None
    weight_grams: int | None
    length_mm: int | None
    width_mm: int | None
    height_mm: int | None
    backorder_policy: str = "deny"
    release_date: date | None = None
    fill_whole_first: bool = False


@dataclass(frozen=True)
class OrderRecord:
    """What inventory knows of one order: the answer to its ReserveStock, and if released."""

    order_id: str
    outcome: str | None
    failure_reason: str | None
    allocations: tuple[Placement, ...]
    short_lines: tuple[Shortfall, ...]
    released: bool
    routing: dict[str, Any] | None = None  # why it was reserved where it was


@dataclass(frozen=True)
class LedgerRow:
    """One change of a SKU's stock (as the ledger API shows it, under the SKU)."""

    id: int
    location: str
    on_hand_delta: int
    reserved_delta: int
    on_hand_after: int
    reserved_after: int
    reason: str
    order_id: str | None
    reference: str | None
    detail: str | None
    at: datetime


@dataclass(frozen=True)
class LedgerEntry(LedgerRow):
    sku: str


@dataclass(frozen=True)
class ReturnedStock:
    """Returned units of one SKU restocked or written off for a return."""

    return_id: str
    kind: str
    sku: str
    order_id: str
    location: str
    quantity: int


@dataclass(frozen=True)
class CommittedFulfilment:
    """One applied CommitStock: one shipment of a fulfilment (`shipment_id` is the fulfilment
    id when the whole fulfilment shipped at once)."""

    fulfilment_id: str
    order_id: str
    location: str
    lines: tuple[tuple[str, int], ...]
    shipment_id: str


@dataclass(frozen=True)
class AppliedShortPick:
    """One applied ReallocateStock (`kind` reallocate) or WriteOffShortPick (write_off): what
    was written off, and the outcome (reallocated with `allocations`, failed with `reason` and
    what was `available` elsewhere, or written_off)."""

    short_id: str
    order_id: str
    kind: str
    sku: str
    location: str
    quantity: int
    written_off: int
    outcome: str
    allocations: tuple[Placement, ...] = ()
    available: int | None = None
    reason: str | None = None


class InventoryStore:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    # --- SKUs ---------------------------------------------------------------------------------

    async def put_sku(self, sku: Sku) -> bool:
        """Create or replace a SKU's definition; True when it was created."""
        created: bool = await self._conn.fetchval(
            "INSERT INTO skus (sku, name, barcode, weight_grams, length_mm, width_mm, height_mm,"
            " backorder_policy, release_date, fill_whole_first)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (sku) DO UPDATE SET name = excluded.name, barcode = excluded.barcode,"
            " weight_grams = excluded.weight_grams, length_mm = excluded.length_mm,"
            " width_mm = excluded.width_mm, height_mm = excluded.height_mm,"
            " backorder_policy = excluded.backorder_policy,"
            " release_date = excluded.release_date,"
            " fill_whole_first = excluded.fill_whole_first, updated_at = now()"
            " RETURNING (xmax = 0)",
            sku.sku,
            sku.name,
            sku.barcode,
            sku.weight_grams,
            sku.length_mm,
            sku.width_mm,
            sku.height_mm,
            sku.backorder_policy,
            sku.release_date,
            sku.fill_whole_first,
        )
        return created

    async def get_sku(self, sku: str) -> Sku | None:
        row = await self._conn.fetchrow(
            "SELECT sku, name, barcode, weight_grams, length_mm, width_mm, height_mm,"
            " backorder_policy, release_date, fill_whole_first FROM skus WHERE sku = $1",
            sku,
        )
        return Sku(**dict(row)) if row is not None else None

    async def sku_with_barcode(self, barcode: str) -> str | None:
        found: str | None = await self._conn.fetchval(
            "SELECT sku FROM skus WHERE barcode = $1", barcode
        )
        return found

    async def known_skus(self, skus: Iterable[str]) -> set[str]:
        rows = await self._conn.fetch(
            "SELECT sku FROM skus WHERE sku = ANY($1::text[])", list(skus)
        )
        return {row["sku"] for row in rows}

    # --- stock --------------------------------------------------------------------------------

    async def lock_stock_at(self, location: str, skus: Iterable[str]) -> list[StockLevel]:
        """lock_stock, with the SKUs' rows at the location created first where missing (stock
        about to arrive there), in one statement."""
        wanted = sorted(set(skus))
        await self._conn.execute(
            "INSERT INTO stock (sku, location) SELECT sku, $1 FROM unnest($2::text[]) AS s(sku)"
            " ORDER BY sku ON CONFLICT DO NOTHING",
            location,
            wanted,
        )
        return await self.lock_stock(wanted)

    async def lock_stock(self, skus: Iterable[str]) -> list[StockLevel]:
        """Lock every stock row of the SKUs, always in (sku, location) order."""
        return await self._stock_rows(skus, lock=True)

    async def lock_stock_of_known_skus(
        self, skus: Iterable[str]
    ) -> tuple[list[StockLevel], set[str]]:
        """lock_stock and known_skus in one round trip (the reservation's hot path)."""
        wanted = sorted(set(skus))
        rows = await self._conn.fetch(
            "SELECT s.sku, s.location, s.on_hand, s.reserved,"
            " (SELECT coalesce(array_agg(k.sku), '{}') FROM skus k"
            "  WHERE k.sku = ANY($1::text[])) AS known"
            " FROM stock s WHERE s.sku = ANY($1::text[])"
            " ORDER BY s.sku, s.location FOR UPDATE OF s",
            wanted,
        )
        if not rows:  # no stock anywhere: which SKUs exist at all is still asked
            return [], await self.known_skus(wanted)
        return [_level(row) for row in rows], set(rows[0]["known"])

    async def stock_levels(self, skus: Iterable[str]) -> list[StockLevel]:
        return await self._stock_rows(skus, lock=False)

    async def _stock_rows(self, skus: Iterable[str], *, lock: bool) -> list[StockLevel]:
        rows = await self._conn.fetch(
            "SELECT sku, location, on_hand, reserved FROM stock WHERE sku = ANY($1::text[])"
            " ORDER BY sku, location" + (" FOR UPDATE" if lock else ""),
            sorted(set(skus)),
        )
        return [_level(row) for row in rows]

    async def apply_stock_changes(
        self,
        changes: Sequence[StockChange],
        *,
        order_id: str | None = None,
        reference: str | None = None,
        detail: str | None = None,
    ) -> list[LedgerEntry]:
        """Change the (already locked) stock rows and write one ledger row per change."""
        if not changes:
            return []
        rows_changed = {(c.sku, c.location) for c in changes}
        if len(rows_changed) != len(changes):
            raise ValueError("at most one change per stock row in one statement")
        rows = await self._conn.fetch(
            "WITH change AS ("
            "  SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[])"
            "    AS c(sku, location, on_hand_delta, reserved_delta, reason)"
            "), updated AS ("
            "  UPDATE stock s SET on_hand = s.on_hand + c.on_hand_delta,"
            "    reserved = s.reserved + c.reserved_delta, updated_at = now()"
            "  FROM change c WHERE s.sku = c.sku AND s.location = c.location"
            "  RETURNING s.sku, s.location, s.on_hand, s.reserved,"
            "    c.on_hand_delta, c.reserved_delta, c.reason"
            ")"
            " INSERT INTO stock_ledger (sku, location, on_hand_delta, reserved_delta,"
            "   on_hand_after, reserved_after, reason, order_id, reference, detail)"
            " SELECT sku, location, on_hand_delta, reserved_delta, on_hand, reserved, reason,"
            "   $6, $7, $8"
            " FROM updated ORDER BY sku, location"
            " RETURNING id, sku, location, on_hand_delta, reserved_delta, on_hand_after,"
            "   reserved_after, reason, order_id, reference, detail, at",
            *columns(changes, "sku", "location", "on_hand_delta", "reserved_delta", "reason"),
            order_id,
            reference,
            detail,
        )
        if len(rows) != len(changes):
            missing = rows_changed - {(r["sku"], r["location"]) for r in rows}
            raise LookupError(f"stock rows missing: {sorted(missing)}")
        return [LedgerEntry(**dict(row)) for row in rows]

    async def ledger(self, sku: str, *, location: str | None, limit: int) -> list[LedgerEntry]:
        rows = await self._conn.fetch(
            "SELECT id, sku, location, on_hand_delta, reserved_delta, on_hand_after,"
            " reserved_after, reason, order_id, reference, detail, at"
            " FROM stock_ledger WHERE sku = $1 AND ($2::text IS NULL OR location = $2)"
            " ORDER BY id DESC LIMIT $3",
            sku,
            location,
            limit,
        )
        return [LedgerEntry(**dict(row)) for row in rows]

    # --- orders and their reservations --------------------------------------------------------

    async def lock_order(self, order_id: str, *, expect_existing: bool = False) -> OrderRecord:
        """The order's record, locked for this transaction (created empty on first sight).
        One statement in the usual case: a ReserveStock creates it, later commands
        (`expect_existing`) find it."""
        columns = (
            "order_id, outcome, failure_reason, allocations, short_lines,"
            " released_at IS NOT NULL AS released, routing"
        )
        select = f"SELECT {columns} FROM order_reservations WHERE order_id = $1 FOR UPDATE"
        row = await self._conn.fetchrow(select, order_id) if expect_existing else None
        if row is None:
            row = await self._conn.fetchrow(
                "INSERT INTO order_reservations (order_id) VALUES ($1) ON CONFLICT DO NOTHING"
                f" RETURNING {columns}",
                order_id,
            )
        if row is None:
            row = await self._conn.fetchrow(select, order_id)
        assert row is not None
        return OrderRecord(
            order_id=row["order_id"],
            outcome=row["outcome"],
            failure_reason=row["failure_reason"],
            allocations=tuple(Placement(**a) for a in row["allocations"]),
            short_lines=tuple(Shortfall(**s) for s in row["short_lines"]),
            released=row["released"],
            routing=row["routing"],
        )

    async def record_reserved(
        self,
        order_id: str,
        placements: Sequence[Placement],
        routing: dict[str, Any] | None = None,
    ) -> None:
        await self._conn.execute(
            "UPDATE order_reservations SET outcome = 'reserved', allocations = $2,"
            " routing = $3, answered_at = now() WHERE order_id = $1",
            order_id,
            [_placement_json(p) for p in placements],
            routing,
        )

    async def record_refused(
        self, order_id: str, reason: str, shortfalls: Sequence[Shortfall]
    ) -> None:
        await self._conn.execute(
            "UPDATE order_reservations SET outcome = 'failed', failure_reason = $2,"
            " short_lines = $3, answered_at = now() WHERE order_id = $1",
            order_id,
            reason,
            [
                {
                    "line_id": s.line_id,
                    "sku": s.sku,
                    "requested": s.requested,
                    "available": s.available,
                    **({"component": s.component} if s.component else {}),
                }
                for s in shortfalls
            ],
        )

    async def mark_released(self, order_id: str, reason: str) -> None:
        """Remember the order was released (the first time and reason are kept)."""
        await self._conn.execute(
            "UPDATE order_reservations SET released_at = now(), release_reason = $2"
            " WHERE order_id = $1 AND released_at IS NULL",
            order_id,
            reason,
        )

    async def reservations(self, order_id: str) -> list[ReservationState]:
        rows = await self._conn.fetch(
            "SELECT order_id, line_id, sku, location, position, quantity, committed, released,"
            " written_off FROM reservations WHERE order_id = $1"
            " ORDER BY position, location, line_id",
            order_id,
        )
        return [ReservationState(**dict(row)) for row in rows]

    async def save_reservations(self, reservations: Sequence[ReservationState]) -> None:
        if not reservations:
            return
        await self._conn.execute(
            "UPDATE reservations r SET committed = c.committed, released = c.released,"
            " written_off = c.written_off, status = c.status, updated_at = now()"
            " FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],"
            "   $6::bigint[], $7::text[])"
            "   AS c(order_id, line_id, location, committed, released, written_off, status)"
            " WHERE r.order_id = c.order_id AND r.line_id = c.line_id"
            " AND r.location = c.location",
            *columns(
                reservations,
                "order_id",
                "line_id",
                "location",
                "committed",
                "released",
                "written_off",
                "status",
            ),
        )

    async def add_reservations(
        self, order_id: str, placements: Sequence[Placement], positions: dict[str, int]
    ) -> None:
        """Reserve for lines of the order; a line's reservation at a location it already has
        (re-allocated after a short pick, filled from a backorder queue) grows by the units."""
        await self._conn.execute(
            "INSERT INTO reservations (order_id, line_id, location, sku, position, quantity)"
            " SELECT $1, line_id, location, sku, position, quantity"
            " FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[])"
            "   AS p(line_id, location, sku, position, quantity)"
            " ON CONFLICT (order_id, line_id, location) DO UPDATE"
            " SET quantity = reservations.quantity + excluded.quantity, status = 'reserved',"
            " updated_at = now()",
            order_id,
            [p.line_id for p in placements],
            [p.location for p in placements],
            [p.sku for p in placements],
            [positions[p.line_id] for p in placements],
            [p.quantity for p in placements],
        )

    # --- short picks --------------------------------------------------------------------------

    async def short_pick(self, short_id: str) -> AppliedShortPick | None:
        """What was applied for this short pick, if it was."""
        row = await self._conn.fetchrow(
            "SELECT short_id, order_id, kind, sku, location, quantity, written_off, outcome,"
            " allocations, available, reason FROM short_picks WHERE short_id = $1",
            short_id,
        )
        if row is None:
            return None
        fields = dict(row)
        allocations = tuple(Placement(**a) for a in fields.pop("allocations"))
        return AppliedShortPick(**fields, allocations=allocations)

    async def record_short_pick(self, applied: AppliedShortPick) -> None:
        await self._conn.execute(
            "INSERT INTO short_picks (short_id, order_id, kind, sku, location, quantity,"
            " written_off, outcome, allocations, available, reason)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            applied.short_id,
            applied.order_id,
            applied.kind,
            applied.sku,
            applied.location,
            applied.quantity,
            applied.written_off,
            applied.outcome,
            [_placement_json(p) for p in applied.allocations],
            applied.available,
            applied.reason,
        )

    # --- commits ------------------------------------------------------------------------------

    async def committed_shipment(self, shipment_id: str) -> CommittedFulfilment | None:
        """The commit already applied for this shipment (`shipment_id or fulfilment_id` of the
        CommitStock), if any."""
        row = await self._conn.fetchrow(
            "SELECT fulfilment_id, order_id, location, lines, shipment_id"
            " FROM committed_fulfilments WHERE shipment_id = $1",
            shipment_id,
        )
        if row is None:
            return None
        return CommittedFulfilment(
            row["fulfilment_id"],
            row["order_id"],
            row["location"],
            tuple((line["sku"], line["quantity"]) for line in row["lines"]),
            row["shipment_id"],
        )

    async def record_commit(self, commit: CommittedFulfilment) -> None:
        await self._conn.execute(
            "INSERT INTO committed_fulfilments (fulfilment_id, order_id, location, lines,"
            " shipment_id) VALUES ($1, $2, $3, $4, $5)",
            commit.fulfilment_id,
            commit.order_id,
            commit.location,
            [{"sku": sku, "quantity": quantity} for sku, quantity in commit.lines],
            commit.shipment_id,
        )

    # --- returned stock -----------------------------------------------------------------------

    async def lock_return(self, return_id: str) -> None:
        """Serialise the commands of one return until the transaction ends."""
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('return-stock:' || $1))", return_id
        )

    async def returned_stock(self, return_id: str, kind: str) -> list[ReturnedStock]:
        rows = await self._conn.fetch(
            "SELECT return_id, kind, sku, order_id, location, quantity FROM returned_stock"
            " WHERE return_id = $1 AND kind = $2 ORDER BY sku",
            return_id,
            kind,
        )
        return [ReturnedStock(**dict(row)) for row in rows]

    async def record_returned_stock(self, rows: Sequence[ReturnedStock]) -> None:
        await self._conn.executemany(
            "INSERT INTO returned_stock (return_id, kind, sku, order_id, location, quantity)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            [(r.return_id, r.kind, r.sku, r.order_id, r.location, r.quantity) for r in rows],
        )


def levels_after(locked: Sequence[StockLevel], ledger: Sequence[LedgerEntry]) -> list[StockLevel]:
    """The stock rows read under lock, with the values the ledger says the changes left."""
    after = {(e.sku, e.location): (e.on_hand_after, e.reserved_after) for e in ledger}
    return [
        StockLevel(level.sku, level.location, *after[(level.sku, level.location)])
        if (level.sku, level.location) in after
        else level
        for level in locked
    ]


def _level(row: Any) -> StockLevel:
    return StockLevel(row["sku"], row["location"], row["on_hand"], row["reserved"])


def _placement_json(placement: Placement) -> dict[str, Any]:
    kit = (
        {
            "kit_sku": placement.kit_sku,
            "kit_line_id": placement.kit_line_id,
            "per_kit": placement.per_kit,
        }
        if placement.kit_sku is not None
        else {}
    )
    return {
        "line_id": placement.line_id,
        "sku": placement.sku,
        "location": placement.location,
        "quantity": placement.quantity,
        **kit,
    }
