"""All SQL of purchase orders and their receipts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from services.inventory.incoming.domain import PurchaseLine
from shared.platform.db import DbConnection


@dataclass(frozen=True)
class PurchaseOrder:
    po_id: str
    reference: str | None
    supplier: str | None
    location: str
    expected_on: date
    status: str
    created_at: datetime
    lines: tuple[PurchaseLine, ...] = field(default=())


class PurchaseOrderStore:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def create(self, order: PurchaseOrder) -> bool:
        """Store a new purchase order; False when one with its id exists already."""
        created = await self._conn.fetchval(
            "INSERT INTO purchase_orders (po_id, reference, supplier, location, expected_on)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
            order.po_id,
            order.reference,
            order.supplier,
            order.location,
            order.expected_on,
        )
        if not created:
            return False
        await self._conn.execute(
            "INSERT INTO purchase_order_lines (po_id, sku, quantity)"
            " SELECT $1, sku, quantity FROM unnest($2::text[], $3::bigint[]) AS l(sku, quantity)",
            order.po_id,
            [line.sku for line in order.lines],
            [line.quantity for line in order.lines],
        )
        return True

    async def get(self, po_id: str, *, lock: bool = False) -> PurchaseOrder | None:
        row = await self._conn.fetchrow(
            _ORDER + " WHERE po_id = $1" + (" FOR UPDATE" if lock else ""), po_id
        )
        if row is None:
            return None
        lines = await self._conn.fetch(
            "SELECT sku, quantity, received FROM purchase_order_lines WHERE po_id = $1"
            " ORDER BY sku",
            po_id,
        )
        return PurchaseOrder(**dict(row), lines=tuple(PurchaseLine(**dict(r)) for r in lines))

    async def list(self, *, status: str | None, sku: str | None, limit: int) -> list[PurchaseOrder]:
        rows = await self._conn.fetch(
            _ORDER + " WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR EXISTS"
            " (SELECT 1 FROM purchase_order_lines l WHERE l.po_id = purchase_orders.po_id"
            "  AND l.sku = $2)) ORDER BY expected_on, po_id LIMIT $3",
            status,
            sku,
            limit,
        )
        lines = await self._conn.fetch(
            "SELECT po_id, sku, quantity, received FROM purchase_order_lines"
            " WHERE po_id = ANY($1::text[]) ORDER BY po_id, sku",
            [row["po_id"] for row in rows],
        )
        per_order: dict[str, list[PurchaseLine]] = {}
        for line in lines:
            per_order.setdefault(line["po_id"], []).append(
                PurchaseLine(line["sku"], line["quantity"], line["received"])
            )
        return [
            PurchaseOrder(**dict(row), lines=tuple(per_order.get(row["po_id"], ()))) for row in rows
        ]

    async def receipt(self, receipt_id: str) -> tuple[str, dict[str, int]] | None:
        """The purchase order and the units of a receipt already applied, if it was."""
        row = await self._conn.fetchrow(
            "SELECT po_id, lines FROM purchase_order_receipts WHERE receipt_id = $1", receipt_id
        )
        if row is None:
            return None
        return row["po_id"], {line["sku"]: line["quantity"] for line in row["lines"]}

    async def record_receipt(
        self,
        receipt_id: str,
        po_id: str,
        received: dict[str, int],
        lines: Sequence[PurchaseLine],
        status: str,
    ) -> None:
        await self._conn.execute(
            "INSERT INTO purchase_order_receipts (receipt_id, po_id, lines) VALUES ($1, $2, $3)",
            receipt_id,
            po_id,
            [{"sku": sku, "quantity": quantity} for sku, quantity in sorted(received.items())],
        )
        await self._conn.execute(
            "UPDATE purchase_order_lines l SET received = r.received"
            " FROM unnest($2::text[], $3::bigint[]) AS r(sku, received)"
            " WHERE l.po_id = $1 AND l.sku = r.sku",
            po_id,
            [line.sku for line in lines],
            [line.received for line in lines],
        )
        await self.set_status(po_id, status)

    async def set_status(self, po_id: str, status: str) -> None:
        await self._conn.execute(
            "UPDATE purchase_orders SET status = $2, updated_at = now() WHERE po_id = $1",
            po_id,
            status,
        )


_ORDER = (
    "SELECT po_id, reference, supplier, location, expected_on, status, created_at"
    " FROM purchase_orders"
)


def same_order(a: PurchaseOrder, b: PurchaseOrder) -> bool:
    """The same purchase order as sent before (what a retried create must match)."""

    def key(order: PurchaseOrder) -> Any:
        return (
            order.reference,
            order.supplier,
            order.location,
            order.expected_on,
            sorted((line.sku, line.quantity) for line in order.lines),
        )

    return bool(key(a) == key(b))
