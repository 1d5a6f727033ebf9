"""HTTP API of the backorder queues: who waits for what, in order."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.inventory import api
from services.inventory.backorders.store import BackorderStore
from shared.platform.auth import Permission, requires
from shared.platform.service import RuntimeDep

router = APIRouter(prefix="/v1/backorders", tags=["inventory"])


class QueuedLineView(BaseModel):
    place: int
    order_id: str
    line_id: str
    sku: str
    location: str
    kind: str
    quantity: int
    filled: int
    expected_on: str | None
    status: str


class QueueView(BaseModel):
    backorders: list[QueuedLineView]


@router.get("", response_model=QueueView, dependencies=[requires(Permission.STOCK_READ)])
async def list_backorders(
    runtime: RuntimeDep,
    sku: api.SkuFilter = None,
    status: Literal["queued", "filled", "released"] | None = "queued",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> QueueView:
    """Order lines waiting for stock (by default), oldest first: `place` is their place in
    line (lower goes first)."""
    async with runtime.pool.acquire() as conn:
        rows = await BackorderStore(conn).queue_view(sku, status, limit)
    return QueueView(
        backorders=[
            QueuedLineView(
                place=row.seq,
                order_id=row.order_id,
                line_id=row.line_id,
                sku=row.sku,
                location=row.location,
                kind=row.kind,
                quantity=row.quantity,
                filled=row.filled,
                expected_on=row.expected_on.isoformat() if row.expected_on else None,
                status=row.status,
            )
            for row in rows
        ]
    )
