"""Inventory's HTTP API (DESIGN.md §9): SKU definitions, stock adjustments, stock and its ledger."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, StringConstraints, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from services.inventory import api
from services.inventory.backorders import service as backorders
from services.inventory.backorders.domain import SkuDemand, available_to_promise
from services.inventory.backorders.store import BackorderStore
from services.inventory.kits.domain import kit_levels
from services.inventory.kits.store import KitStore
from services.inventory.stock.domain import (
    InsufficientStock,
    StockChange,
    StockLevel,
    adjust,
    totals,
)
from services.inventory.stock.store import InventoryStore, LedgerRow, Sku
from shared.platform.auth import Permission, requires
from shared.platform.errors import ApiError
from shared.platform.service import RuntimeDep

router = APIRouter(prefix="/v1", tags=["inventory"])

MAX_ADJUSTMENT = 1_000_000_000

Millimetres = Annotated[int, Field(strict=True, gt=0, le=100_000)]
AdjustmentReason = Literal["receipt", "count", "damage", "loss", "return", "correction"]


class Dimensions(api.Body):
    length_mm: Millimetres
    width_mm: Millimetres
    height_mm: Millimetres


BackorderPolicy = Literal["deny", "backorder", "preorder"]


class SkuDefinition(api.Body):
    name: api.Text
    barcode: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None
    ) = None
    weight_grams: Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)] | None = None
    dimensions: Dimensions | None = None
    # Orders short of the SKU: rejected (deny), or accepted to wait for stock (backorder), or
    # accepted before the SKU is released (preorder, with its release date).
    backorder_policy: BackorderPolicy = "deny"
    release_date: date | None = Field(default=None, validate_default=True)
    # Stock that arrives fills the oldest backorders it can fill whole before topping up an
    # older one in part.
    fill_whole_first: bool = False

    @field_validator("release_date")
    @classmethod
    def _preorder_has_release_date(cls, value: date | None, info: ValidationInfo) -> date | None:
        if value is None and info.data.get("backorder_policy") == "preorder":
            raise PydanticCustomError(
                "release_date_required", "a pre-order SKU needs its release date"
            )
        return value


class SkuView(BaseModel):
    sku: str
    name: str
    barcode: str | None
    weight_grams: int | None
    dimensions: Dimensions | None
    backorder_policy: BackorderPolicy
    release_date: date | None
    fill_whole_first: bool


class StockAdjustment(api.Body):
    sku: api.SkuName
    location: api.Location
    delta: Annotated[int, Field(strict=True, ge=-MAX_ADJUSTMENT, le=MAX_ADJUSTMENT)]
    reason: AdjustmentReason
    reference: api.Text | None = None

    @field_validator("delta")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must not be zero")
        return value


class LocationStock(BaseModel):
    location: str
    on_hand: int
    reserved: int
    available: int


class StockView(BaseModel):
    sku: str
    on_hand: int
    reserved: int
    available: int
    # Units backorders wait for, units on open purchase orders, and what may still be sold.
    backordered: int = 0
    incoming: int = 0
    available_to_promise: int
    locations: list[LocationStock]


class KitComponentStock(BaseModel):
    sku: str
    quantity: int  # units of it in one kit


class KitStockView(StockView):
    """A kit's stock, derived from its components' (services/inventory/kits): at each location
    as many kits as the scarcest component makes; `reserved` is the kits' worth held by
    reservations of the components."""

    kit: Literal[True] = True
    components: list[KitComponentStock]


class AppliedAdjustment(BaseModel):
    ledger_id: int
    location: str
    delta: int
    reason: str
    reference: str | None


class AdjustmentResult(StockView):
    adjustment: AppliedAdjustment


class LedgerView(BaseModel):
    sku: str
    entries: list[LedgerRow]


@api.create_or_replace(
    router,
    "/skus/{sku}",
    SkuView,
    {409: {"description": "barcode_in_use: the barcode belongs to another SKU"}},
)
async def put_sku(
    runtime: RuntimeDep,
    response: Response,
    sku: api.SkuPath,
    body: SkuDefinition,
) -> SkuView:
    """Define a SKU, or replace its definition (201 when created, 200 when updated)."""
    dims = body.dimensions
    definition = Sku(
        sku=sku,
        name=body.name,
        barcode=body.barcode,
        weight_grams=body.weight_grams,
        length_mm=dims.length_mm if dims else None,
        width_mm=dims.width_mm if dims else None,
        height_mm=dims.height_mm if dims else None,
        backorder_policy=body.backorder_policy,
        release_date=body.release_date,
        fill_whole_first=body.fill_whole_first,
    )
    try:
        async with runtime.uow() as uow:
            created = await InventoryStore(uow.conn).put_sku(definition)
    except asyncpg.UniqueViolationError as exc:
        async with runtime.pool.acquire() as conn:
            holder = await InventoryStore(conn).sku_with_barcode(body.barcode or "")
        raise ApiError(
            409,
            "barcode_in_use",
            f"barcode {body.barcode} already belongs to SKU {holder}",
            barcode=body.barcode,
            sku=holder,
        ) from exc
    response.status_code = 201 if created else 200
    return _sku_view(definition)


@router.get("/skus/{sku}", response_model=SkuView, dependencies=[requires(Permission.STOCK_READ)])
async def get_sku(runtime: RuntimeDep, sku: str) -> SkuView:
    async with runtime.pool.acquire() as conn:
        found = await InventoryStore(conn).get_sku(sku)
    if found is None:
        raise api.unknown_sku(sku)
    return _sku_view(found)


@router.post(
    "/stock/adjustments",
    response_model=AdjustmentResult,
    dependencies=[requires(Permission.STOCK_WRITE)],
    responses={
        **api.UNKNOWN_SKU,
        409: {
            "description": "insufficient_stock: the change would take stock below 0;"
            " kit_has_no_stock: the SKU is a kit (adjust its components)"
        },
    },
)
async def adjust_stock(
    runtime: RuntimeDep,
    availability: api.Availabilities,
    body: StockAdjustment,
) -> AdjustmentResult:
    """Receipts, counts, damage...: change stock on hand at one location, with a ledger row."""
    async with runtime.uow() as uow:
        store = InventoryStore(uow.conn)
        await api.require_sku(store, body.sku)
        if await KitStore(uow.conn).is_kit_locked_for_stock(body.sku):
            raise ApiError(
                409,
                "kit_has_no_stock",
                f"{body.sku} is a kit: its stock is its components' (GET /v1/kits/{body.sku})",
                sku=body.sku,
            )
        levels = await store.lock_stock_at(body.location, [body.sku])
        current = next(level for level in levels if level.location == body.location)
        try:
            adjust(current, body.delta)
        except InsufficientStock as exc:
            raise ApiError(
                409,
                "insufficient_stock",
                f"{body.sku} at {body.location} has {current.on_hand} on hand and"
                f" {current.reserved} reserved: it cannot change by {body.delta}",
                sku=body.sku,
                location=body.location,
                on_hand=current.on_hand,
                reserved=current.reserved,
                delta=body.delta,
            ) from exc
        change = StockChange(body.sku, body.location, body.delta, 0, body.reason)
        try:
            [entry] = await store.apply_stock_changes([change], reference=body.reference)
        except asyncpg.CheckViolationError as exc:  # the constraints as last line of defence
            raise ApiError(
                409, "insufficient_stock", f"{body.sku} at {body.location}: {exc}"
            ) from exc
        await availability.announce(uow, store, [change], correlation_id=body.sku)
        view = _stock_view(
            body.sku,
            await store.stock_levels([body.sku]),
            await backorders.demand(uow, [body.sku]),
        )
    return AdjustmentResult(
        **view.model_dump(),
        adjustment=AppliedAdjustment(
            ledger_id=entry.id,
            location=entry.location,
            delta=entry.on_hand_delta,
            reason=entry.reason,
            reference=entry.reference,
        ),
    )


@router.get(
    "/stock/{sku}",
    response_model=StockView | KitStockView,
    dependencies=[requires(Permission.STOCK_READ)],
)
async def get_stock(runtime: RuntimeDep, sku: str) -> StockView:
    """On hand, reserved and available stock per location and in total (a kit's derived from
    its components', marked `kit`); in total also what backorders wait for, what is incoming on
    purchase orders, and what may still be promised."""
    async with runtime.pool.acquire() as conn:
        store = InventoryStore(conn)
        await api.require_sku(store, sku)
        kit = await KitStore(conn).kit(sku)
        if kit is not None:
            components = await store.stock_levels(c.sku for c in kit.components)
            return KitStockView(
                **_stock_view(sku, kit_levels(kit, components), {}).model_dump(),
                components=[
                    KitComponentStock(sku=c.sku, quantity=c.per_kit) for c in kit.components
                ],
            )
        levels = await store.stock_levels([sku])
        demand = await BackorderStore(conn).demand([sku])
    return _stock_view(sku, levels, demand)


@router.get(
    "/stock/{sku}/ledger",
    response_model=LedgerView,
    dependencies=[requires(Permission.STOCK_READ)],
)
async def get_ledger(
    runtime: RuntimeDep,
    sku: str,
    limit: api.Limit = 50,
    location: api.LocationFilter = None,
) -> LedgerView:
    """The most recent changes of the SKU's stock, newest first."""
    async with runtime.pool.acquire() as conn:
        store = InventoryStore(conn)
        await api.require_sku(store, sku)
        entries = await store.ledger(sku, location=location, limit=limit)
    return LedgerView(sku=sku, entries=list(entries))


def _sku_view(sku: Sku) -> SkuView:
    dimensions = None
    if sku.length_mm is not None and sku.width_mm is not None and sku.height_mm is not None:
        dimensions = Dimensions(
            length_mm=sku.length_mm, width_mm=sku.width_mm, height_mm=sku.height_mm
        )
    return SkuView(
        sku=sku.sku,
        name=sku.name,
        barcode=sku.barcode,
        weight_grams=sku.weight_grams,
        dimensions=dimensions,
        backorder_policy=sku.backorder_policy,
        release_date=sku.release_date,
        fill_whole_first=sku.fill_whole_first,
    )


def _stock_view(sku: str, levels: list[StockLevel], demand: dict[str, SkuDemand]) -> StockView:
    total = totals(levels).get(sku)
    on_hand, reserved = (total.on_hand, total.reserved) if total else (0, 0)
    sku_demand = demand.get(sku, SkuDemand(sku))
    return StockView(
        sku=sku,
        on_hand=on_hand,
        reserved=reserved,
        available=on_hand - reserved,
        backordered=sku_demand.queued,
        incoming=sku_demand.incoming,
        available_to_promise=available_to_promise(on_hand, reserved, sku_demand),
        locations=[LocationStock.model_validate(level, from_attributes=True) for level in levels],
    )
