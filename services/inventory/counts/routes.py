"""Cycle counts' HTTP API: `POST /v1/stock/counts`.

Reads top to bottom: the SKUs known, their stock rows at the location locked, the count
planned (`domain.plan_count`), one `count` ledger row per SKU whose count differs, announced to
the channels, the answer kept. Honours `Idempotency-Key`: a count is an absolute observation,
so applying it again after stock moved would move stock again; a repeat gets the first answer.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, field_validator

from services.inventory import api
from services.inventory.counts.domain import BelowReserved, CountedLine, plan_count
from services.inventory.counts.store import CountedLineRecord, CountStore, StockCount
from services.inventory.stock.store import InventoryStore
from shared.platform.auth import Permission, requires
from shared.platform.errors import ApiError
from shared.platform.saga.idempotency import request_hash
from shared.platform.service import RuntimeDep

router = APIRouter(prefix="/v1", tags=["inventory"])

CountReason = Literal["cycle_count", "full_count", "spot_check", "recount"]


class CountIn(api.Body):
    sku: api.SkuName
    counted: Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)]


class StockCountIn(api.Body):
    location: api.Location
    counts: list[CountIn] = Field(min_length=1, max_length=500)
    reason: CountReason = "cycle_count"
    reference: api.Text | None = None

    @field_validator("counts")
    @classmethod
    def _each_sku_once(cls, counts: list[CountIn]) -> list[CountIn]:
        skus = [count.sku for count in counts]
        twice = sorted({sku for sku in skus if skus.count(sku) > 1})
        if twice:
            raise ValueError(f"{twice[0]} is counted twice")
        return counts


class CountedLineView(BaseModel):
    sku: str
    before: int = Field(description="on hand at the location before the count")
    counted: int
    delta: int
    ledger_id: int | None = Field(description="the `count` ledger row; none when delta is 0")


class StockCountView(BaseModel):
    count_id: str
    location: str
    reason: str
    reference: str | None
    counted_at: datetime
    lines: list[CountedLineView]
    duplicate: bool = Field(description="a repeat (same Idempotency-Key): nothing applied")


@router.post(
    "/stock/counts",
    status_code=201,
    response_model=StockCountView,
    dependencies=[requires(Permission.STOCK_WRITE)],
    responses={
        200: {"model": StockCountView, "description": "a repeat (same Idempotency-Key)"},
        **api.UNKNOWN_SKU,
        409: {
            "description": "count_below_reserved: a SKU counted fewer units than orders"
            " reserved there (nothing of the count is applied); idempotency_key_reused"
        },
    },
)
async def post_count(
    runtime: RuntimeDep,
    availability: api.Availabilities,
    response: Response,
    body: StockCountIn,
    idempotency_key: api.IdempotencyKey = None,
) -> StockCountView:
    """What was counted at a location: each SKU's `counted - on hand` becomes an adjustment
    (ledger reason `count`, detail "<reason>: counted N, system had M"); a SKU whose count
    matches is reported with delta 0 and writes nothing. All or nothing."""
    body_hash = request_hash(body.model_dump(mode="json"))
    async with runtime.uow() as uow:
        counts, stock = CountStore(uow.conn), InventoryStore(uow.conn)
        if idempotency_key is not None:
            await counts.lock_idempotency_key(idempotency_key)
            earlier = await counts.with_key(idempotency_key)
            if earlier is not None:
                count, earlier_hash = earlier
                api.refuse_reused_key(earlier_hash, body_hash, "count", count_id=count.count_id)
                response.status_code = 200
                return _view(count, duplicate=True)
        skus = [line.sku for line in body.counts]
        await api.require_skus(stock, skus)
        levels = await stock.lock_stock_at(body.location, skus)
        plan = plan_count(
            body.location, [CountedLine(line.sku, line.counted) for line in body.counts], levels
        )
        if isinstance(plan, BelowReserved):
            first = plan.lines[0]
            raise ApiError(
                409,
                "count_below_reserved",
                f"{first.sku} at {body.location}: counted {first.counted} but orders hold"
                f" {first.reserved} reserved there; resolve those orders first (nothing of"
                " this count was applied)",
                sku=first.sku,
                counted=first.counted,
                reserved=first.reserved,
                location=body.location,
                lines=[
                    {"sku": ln.sku, "counted": ln.counted, "reserved": ln.reserved}
                    for ln in plan.lines
                ],
            )
        count_id = f"cnt_{uuid.uuid4().hex}"
        ledger_ids: dict[str, int] = {}
        for line in plan.lines:
            if line.delta != 0:  # each with its own detail, so one ledger write per SKU
                [entry] = await stock.apply_stock_changes(
                    [line.change(body.location)],
                    reference=body.reference or count_id,
                    detail=line.detail(body.reason),
                )
                ledger_ids[line.sku] = entry.id
        await availability.announce(uow, stock, plan.changes, correlation_id=count_id)
        count = await counts.record(
            count_id,
            body.location,
            body.reason,
            body.reference,
            [
                CountedLineRecord(ln.sku, ln.before, ln.counted, ln.delta, ledger_ids.get(ln.sku))
                for ln in plan.lines
            ],
            idempotency_key=idempotency_key,
            request_hash=body_hash if idempotency_key is not None else None,
        )
        return _view(count, duplicate=False)


def _view(count: StockCount, *, duplicate: bool) -> StockCountView:
    return StockCountView(
        count_id=count.count_id,
        location=count.location,
        reason=count.reason,
        reference=count.reference,
        counted_at=count.counted_at,
        lines=[CountedLineView(**vars(line)) for line in count.lines],
        duplicate=duplicate,
    )
