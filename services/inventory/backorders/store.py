"""All SQL of backorders and the demand they put on each SKU (what is incoming is read from
purchase orders and transfers in transit).

Locking: the queue rows of an order are only changed by a transaction holding the stock rows
of their SKU (locked with `InventoryStore.lock_stock`), and a fill locks the queue rows of every
order it may complete at once, in (order id, line id) order, so two fills of different SKUs
completing the same order wait for each other instead of both missing the completion.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.inventory.backorders.domain import (
    Fill,
    Incoming,
    Policy,
    QueuedLine,
    QueueEntry,
    SkuDemand,
)
from services.inventory.stock.domain import Placement
from shared.platform.db import DbConnection


@dataclass(frozen=True)
class QueueRow(QueueEntry):
    """A queue row as stored, whatever its status."""

    kind: str
    expected_on: date | None
    status: str


class BackorderStore:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def demand(self, skus: Iterable[str]) -> dict[str, SkuDemand]:
        """Each known SKU's policy, its queued units and its units on open purchase orders."""
        rows = await self._conn.fetch(
            "SELECT k.sku, k.backorder_policy, k.release_date, k.fill_whole_first,"
            " (SELECT coalesce(sum(b.quantity - b.filled), 0) FROM backorders b"
            "   WHERE b.sku = k.sku AND b.status = 'queued') AS queued,"
            " (SELECT coalesce(sum(greatest(l.quantity - l.received, 0)), 0)"
            "   FROM purchase_order_lines l JOIN purchase_orders p USING (po_id)"
            "   WHERE l.sku = k.sku AND p.status = 'open')"
            " + (SELECT coalesce(sum(l.quantity - l.received - l.returned), 0)"
            "   FROM transfer_lines l JOIN transfers t USING (transfer_id)"
            "   WHERE l.sku = k.sku AND t.status IN ('in_transit', 'partially_received'))"
            "   AS incoming"
            " FROM skus k WHERE k.sku = ANY($1::text[])",
            sorted(set(skus)),
        )
        return {
            row["sku"]: SkuDemand(
                sku=row["sku"],
                policy=Policy(row["backorder_policy"]),
                release_date=row["release_date"],
                fill_whole_first=row["fill_whole_first"],
                queued=row["queued"],
                incoming=row["incoming"],
            )
            for row in rows
        }

    async def incoming(self, skus: Iterable[str]) -> list[Incoming]:
        """What is still to come of the SKUs, per open purchase order line and per transfer in
        transit with an expected date."""
        rows = await self._conn.fetch(
            "SELECT sku, location, expected_on, quantity FROM ("
            "  SELECT l.sku, p.location, p.expected_on, l.quantity - l.received AS quantity,"
            "    p.po_id AS source"
            "  FROM purchase_order_lines l JOIN purchase_orders p USING (po_id)"
            "  WHERE l.sku = ANY($1::text[]) AND p.status = 'open' AND l.quantity > l.received"
            "  UNION ALL"
            "  SELECT l.sku, t.to_location, t.expected_on,"
            "    l.quantity - l.received - l.returned, t.transfer_id"
            "  FROM transfer_lines l JOIN transfers t USING (transfer_id)"
            "  WHERE l.sku = ANY($1::text[]) AND t.expected_on IS NOT NULL"
            "  AND t.status IN ('in_transit', 'partially_received')"
            "  AND l.quantity > l.received + l.returned"
            ") AS incoming ORDER BY expected_on, location, source",
            sorted(set(skus)),
        )
        return [Incoming(**dict(row)) for row in rows]

    async def queue(
        self, order_id: str, lines: Sequence[QueuedLine], positions: dict[str, int]
    ) -> None:
        await self._conn.execute(
            "INSERT INTO backorders (order_id, line_id, sku, location, position, quantity, kind,"
            " expected_on)"
            " SELECT $1, line_id, sku, location, position, quantity, kind, expected_on"
            " FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[],"
            "   $7::text[], $8::date[])"
            "   AS q(line_id, sku, location, position, quantity, kind, expected_on)",
            order_id,
            [line.line_id for line in lines],
            [line.sku for line in lines],
            [line.location for line in lines],
            [positions[line.line_id] for line in lines],
            [line.quantity for line in lines],
            [line.kind for line in lines],
            [line.expected_on for line in lines],
        )

    async def of_order(self, order_id: str) -> list[QueueRow]:
        rows = await self._conn.fetch(_SELECT + " WHERE order_id = $1 ORDER BY seq", order_id)
        return [_row(row) for row in rows]

    async def skus_of_order(self, order_id: str) -> set[str]:
        rows = await self._conn.fetch(
            "SELECT DISTINCT sku FROM backorders WHERE order_id = $1", order_id
        )
        return {row["sku"] for row in rows}

    async def waiting_orders(self, sku: str) -> list[str]:
        rows = await self._conn.fetch(
            "SELECT DISTINCT order_id FROM backorders WHERE sku = $1 AND status = 'queued'", sku
        )
        return sorted(row["order_id"] for row in rows)

    async def lock_orders(self, order_ids: Sequence[str]) -> list[QueueRow]:
        """Every queue row of the orders, locked in (order id, line id) order."""
        rows = await self._conn.fetch(
            _SELECT + " WHERE order_id = ANY($1::text[]) ORDER BY order_id, line_id FOR UPDATE",
            sorted(set(order_ids)),
        )
        return [_row(row) for row in rows]

    async def save_fills(self, fills: Sequence[Fill]) -> None:
        per_line: dict[tuple[str, str], int] = {}
        for fill in fills:
            key = (fill.entry.order_id, fill.entry.line_id)
            per_line[key] = per_line.get(key, 0) + fill.quantity
        await self._conn.execute(
            "UPDATE backorders b SET filled = b.filled + f.quantity,"
            " status = CASE WHEN b.filled + f.quantity = b.quantity THEN 'filled' ELSE status END,"
            " updated_at = now()"
            " FROM unnest($1::text[], $2::text[], $3::bigint[]) AS f(order_id, line_id, quantity)"
            " WHERE b.order_id = f.order_id AND b.line_id = f.line_id",
            [order_id for order_id, _ in per_line],
            [line_id for _, line_id in per_line],
            list(per_line.values()),
        )

    async def release_order(self, order_id: str) -> list[QueueRow]:
        """The order leaves every queue it waits in; the rows it left, as they were."""
        rows = await self._conn.fetch(
            "UPDATE backorders SET status = 'released', updated_at = now()"
            " WHERE order_id = $1 AND status = 'queued'"
            " RETURNING seq, order_id, line_id, sku, location, position, quantity, filled, kind,"
            " expected_on, status",
            order_id,
        )
        return [_row(row) for row in rows]

    async def record_backordered(
        self, order_id: str, placements: Sequence[Placement], queued: Sequence[QueuedLine]
    ) -> None:
        await self._conn.execute(
            "UPDATE order_reservations SET outcome = 'backordered', allocations = $2,"
            " backordered = $3, answered_at = now() WHERE order_id = $1",
            order_id,
            [_placement_json(p) for p in placements],
            [
                {
                    "line_id": q.line_id,
                    "sku": q.sku,
                    "location": q.location,
                    "quantity": q.quantity,
                    "kind": q.kind,
                    "expected_on": q.expected_on.isoformat() if q.expected_on else None,
                }
                for q in queued
            ],
        )

    async def answered_backordered(
        self, order_id: str
    ) -> tuple[tuple[Placement, ...], tuple[QueuedLine, ...]]:
        row = await self._conn.fetchrow(
            "SELECT allocations, backordered FROM order_reservations WHERE order_id = $1",
            order_id,
        )
        assert row is not None
        queued = tuple(
            QueuedLine(
                line_id=q["line_id"],
                sku=q["sku"],
                location=q["location"],
                quantity=q["quantity"],
                kind=q["kind"],
                expected_on=date.fromisoformat(q["expected_on"]) if q["expected_on"] else None,
            )
            for q in row["backordered"]
        )
        return tuple(Placement(**a) for a in row["allocations"]), queued

    async def queue_view(self, sku: str | None, status: str | None, limit: int) -> list[QueueRow]:
        rows = await self._conn.fetch(
            _SELECT + " WHERE ($1::text IS NULL OR sku = $1) AND ($2::text IS NULL OR status = $2)"
            " ORDER BY seq LIMIT $3",
            sku,
            status,
            limit,
        )
        return [_row(row) for row in rows]


_SELECT = (
    "SELECT seq, order_id, line_id, sku, location, position, quantity, filled, kind,"
    " expected_on, status FROM backorders"
)


def _row(row: Any) -> QueueRow:
    return QueueRow(**dict(row))


def _placement_json(placement: Placement) -> dict[str, Any]:
    return {
        "line_id": placement.line_id,
        "sku": placement.sku,
        "location": placement.location,
        "quantity": placement.quantity,
    }
