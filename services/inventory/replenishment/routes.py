"""Replenishment's HTTP API: safety stock per SKU and channel, reorder settings per SKU and
location, and the suggestions of what to order."""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field, StringConstraints

from services.inventory import api
from services.inventory.availability.channels import queue_stock_totals
from services.inventory.replenishment.domain import (
    NO_SALES,
    StockPosition,
    Suggestion,
    Velocity,
    effective_safety_stock,
    point_source,
    reorder_point,
    suggestions,
)
from services.inventory.replenishment.store import ReorderSettings, ReplenishmentStore
from services.inventory.replenishment.watcher import LowStockWatcher
from services.inventory.settings import InventorySettings
from services.inventory.stock.domain import Availability as Totals
from services.inventory.stock.domain import StockLevel, totals
from services.inventory.stock.store import InventoryStore
from shared.platform.auth import Permission, requires
from shared.platform.errors import ApiError
from shared.platform.outbox import UnitOfWork
from shared.platform.service import RuntimeDep

router = APIRouter(prefix="/v1", tags=["replenishment"])

LocationPath = Annotated[str, Path(min_length=1, max_length=64)]
Channel = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Units = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)]
Days = Annotated[int, Field(strict=True, ge=0, le=365)]


# --- safety stock -----------------------------------------------------------------------------


class SafetyStockBody(api.Body):
    channels: dict[Channel, Units]


class SafetyStockView(BaseModel):
    sku: str
    overrides: dict[str, int] = Field(description="the SKU's own safety stock per channel")
    channels: dict[str, int] = Field(
        description="what each channel holds back of the SKU: its override, else the default"
    )


@router.get(
    "/skus/{sku}/safety-stock",
    response_model=SafetyStockView,
    dependencies=[requires(Permission.STOCK_READ)],
    responses=api.UNKNOWN_SKU,
)
async def get_safety_stock(
    runtime: RuntimeDep, settings: api.Settings, sku: str
) -> SafetyStockView:
    async with runtime.pool.acquire() as conn:
        await api.require_sku(InventoryStore(conn), sku)
        overrides = await ReplenishmentStore(conn).safety_stock(sku)
    return _safety_view(sku, overrides, settings)


@router.put(
    "/skus/{sku}/safety-stock",
    response_model=SafetyStockView,
    dependencies=[requires(Permission.STOCK_WRITE)],
    responses={
        **api.UNKNOWN_SKU,
        422: {"description": "unknown_channel: a channel OMS_CHANNEL_SAFETY_STOCK does not list"},
    },
)
async def put_safety_stock(
    runtime: RuntimeDep, settings: api.Settings, sku: api.SkuPath, body: SafetyStockBody
) -> SafetyStockView:
    """The SKU's safety stock per channel, replacing its overrides (a channel left out goes
    back to its default). The channels hear the SKU's new availability at once."""
    unknown = sorted(set(body.channels) - set(settings.channel_safety_stock))
    if unknown:
        raise ApiError(
            422,
            "unknown_channel",
            f"no such channel: {', '.join(unknown)} (configured:"
            f" {', '.join(sorted(settings.channel_safety_stock))})",
            field="channels",
            channels=unknown,
        )
    async with runtime.uow() as uow:
        stock = InventoryStore(uow.conn)
        await api.require_sku(stock, sku)
        await ReplenishmentStore(uow.conn).replace_safety_stock(sku, body.channels)
        await _announce_to_channels(uow, stock, sku, settings)
    return _safety_view(sku, body.channels, settings)


@router.delete(
    "/skus/{sku}/safety-stock",
    response_model=SafetyStockView,
    dependencies=[requires(Permission.STOCK_WRITE)],
    responses=api.UNKNOWN_SKU,
)
async def delete_safety_stock(
    runtime: RuntimeDep, settings: api.Settings, sku: api.SkuPath
) -> SafetyStockView:
    """Every channel back to its default safety stock for the SKU."""
    async with runtime.uow() as uow:
        stock = InventoryStore(uow.conn)
        await api.require_sku(stock, sku)
        await ReplenishmentStore(uow.conn).replace_safety_stock(sku, {})
        await _announce_to_channels(uow, stock, sku, settings)
    return _safety_view(sku, {}, settings)


async def _announce_to_channels(
    uow: UnitOfWork, stock: InventoryStore, sku: str, settings: InventorySettings
) -> None:
    """The SKU's stock did not change, what the channels may sell of it did."""
    total = totals(await stock.stock_levels([sku])).get(sku, Totals(sku, 0, 0))
    queue_stock_totals(uow, total, settings.channel_safety_stock)


def _safety_view(
    sku: str, overrides: dict[str, int], settings: InventorySettings
) -> SafetyStockView:
    return SafetyStockView(
        sku=sku,
        overrides=dict(sorted(overrides.items())),
        channels=effective_safety_stock(
            dict(sorted(settings.channel_safety_stock.items())), overrides
        ),
    )


# --- reorder settings -------------------------------------------------------------------------


class ReorderBody(api.Body):
    reorder_point: Units | None = Field(
        default=None, description="explicit; left out: velocity * lead time + safety units"
    )
    lead_time_days: Days | None = Field(
        default=None, description="left out: OMS_REPLENISHMENT_LEAD_TIME_DAYS"
    )
    cover_days: Days | None = Field(
        default=None,
        description="days of sales an order should cover after it arrived; left out:"
        " OMS_REPLENISHMENT_COVER_DAYS",
    )
    safety_units: Units = 0


class ReorderView(BaseModel):
    sku: str
    location: str
    reorder_point: int = Field(description="in force now (explicit, or from the velocity)")
    reorder_point_source: str
    explicit_reorder_point: int | None
    lead_time_days: int
    cover_days: int
    safety_units: int
    velocity_per_day: float
    low: bool = Field(description="LowStock was emitted and the stock has not recovered since")


class ReorderList(BaseModel):
    sku: str
    locations: list[ReorderView]


@router.get(
    "/skus/{sku}/reorder",
    response_model=ReorderList,
    dependencies=[requires(Permission.STOCK_READ)],
    responses=api.UNKNOWN_SKU,
)
async def get_reorder_settings(
    runtime: RuntimeDep, settings: api.Settings, sku: str
) -> ReorderList:
    """The SKU's reorder settings per location, with the reorder point in force."""
    watcher = LowStockWatcher.from_settings(settings)
    async with runtime.pool.acquire() as conn:
        await api.require_sku(InventoryStore(conn), sku)
        store = ReplenishmentStore(conn)
        found = await store.reorder_settings(sku)
        shipped = await store.shipped((s.sku, s.location) for s in found)
    return ReorderList(
        sku=sku,
        locations=[
            _reorder_view(s, watcher, shipped.get((s.sku, s.location), NO_SALES)) for s in found
        ],
    )


@api.create_or_replace(router, "/skus/{sku}/reorder/{location}", ReorderView, api.UNKNOWN_SKU)
async def put_reorder_settings(
    runtime: RuntimeDep,
    settings: api.Settings,
    response: Response,
    sku: api.SkuPath,
    location: LocationPath,
    body: ReorderBody,
) -> ReorderView:
    """Watch the SKU at the location (201 when new, 200 when replaced). The stock there is
    checked against the new point at once: LowStock when it is already at or below it."""
    watcher = LowStockWatcher.from_settings(settings)
    wanted = ReorderSettings(
        sku=sku,
        location=location,
        reorder_point=body.reorder_point,
        lead_time_days=body.lead_time_days,
        cover_days=body.cover_days,
        safety_units=body.safety_units,
    )
    async with runtime.uow() as uow:
        stock = InventoryStore(uow.conn)
        await api.require_sku(stock, sku)
        store = ReplenishmentStore(uow.conn)
        created = await store.put_reorder_settings(wanted)
        level = next(
            (level for level in await stock.stock_levels([sku]) if level.location == location),
            StockLevel(sku, location, 0, 0),
        )
        watcher.observe(uow, [(sku, location)], [level], correlation_id=sku)
        velocity = (await store.shipped([(sku, location)])).get((sku, location), NO_SALES)
    async with runtime.pool.acquire() as conn:
        [saved] = [
            s
            for s in await ReplenishmentStore(conn).reorder_settings(sku)
            if s.location == location
        ]
    response.status_code = 201 if created else 200
    return _reorder_view(saved, watcher, velocity)


@router.delete(
    "/skus/{sku}/reorder/{location}",
    status_code=204,
    dependencies=[requires(Permission.STOCK_WRITE)],
    responses={404: {"description": "not_watched: the SKU has no reorder settings there"}},
)
async def delete_reorder_settings(
    runtime: RuntimeDep, sku: api.SkuPath, location: LocationPath
) -> Response:
    """Stop watching the SKU at the location (its low-stock state goes too)."""
    async with runtime.uow() as uow:
        deleted = await ReplenishmentStore(uow.conn).delete_reorder_settings(sku, location)
    if not deleted:
        raise ApiError(
            404,
            "not_watched",
            f"{sku} has no reorder settings at {location}",
            sku=sku,
            location=location,
        )
    return Response(status_code=204)


def _reorder_view(s: ReorderSettings, watcher: LowStockWatcher, velocity: Velocity) -> ReorderView:
    rule = watcher.rule(s)
    return ReorderView(
        sku=s.sku,
        location=s.location,
        reorder_point=reorder_point(rule, velocity),
        reorder_point_source=point_source(rule),
        explicit_reorder_point=s.reorder_point,
        lead_time_days=rule.lead_time_days,
        cover_days=rule.cover_days,
        safety_units=rule.safety_units,
        velocity_per_day=_per_day(velocity.per_day),
        low=s.low_since is not None,
    )


# --- suggestions ------------------------------------------------------------------------------


class SuggestionView(BaseModel):
    sku: str
    location: str
    on_hand: int
    reserved: int
    available: int
    incoming: int = Field(description="open purchase-order lines not received yet")
    backordered: int = Field(description="units of queued backorders waiting here")
    velocity_7d: float = Field(description="units shipped per day, last 7 days")
    velocity_30d: float = Field(description="units shipped per day, last 30 days")
    days_of_cover: float | None = Field(
        description="available / the higher velocity; null when nothing shipped"
    )
    reorder_point: int
    reorder_point_source: str
    lead_time_days: int
    cover_days: int
    configured: bool = Field(description="has reorder settings (else the defaults apply)")
    low: bool
    suggested_quantity: int


class SuggestionList(BaseModel):
    suggestions: list[SuggestionView]


@router.get(
    "/replenishment/suggestions",
    response_model=SuggestionList,
    dependencies=[requires(Permission.STOCK_READ)],
)
async def get_suggestions(
    runtime: RuntimeDep,
    settings: api.Settings,
    location: api.LocationFilter = None,
    sku: api.SkuFilter = None,
    everything: Annotated[bool, Query(alias="all")] = False,
) -> SuggestionList:
    """What to order, how much, for which location: every SKU and location with reorder
    settings or shipments in the last 30 days, most urgent (fewest days of cover) first; only
    those with something to order unless `all=true`."""
    watcher = LowStockWatcher.from_settings(settings)
    async with runtime.pool.acquire() as conn:
        rows = await ReplenishmentStore(conn).positions(sku=sku, location=location)
    positions = [
        StockPosition(
            sku=row.sku,
            location=row.location,
            on_hand=row.on_hand,
            reserved=row.reserved,
            incoming=row.incoming,
            backordered=row.backordered,
            velocity=Velocity(row.shipped_7d, row.shipped_30d),
            rule=watcher.rule(row.settings),
            configured=row.settings is not None,
            low=row.settings is not None and row.settings.low_since is not None,
        )
        for row in rows
    ]
    return SuggestionList(
        suggestions=[_suggestion_view(s) for s in suggestions(positions, everything=everything)]
    )


def _suggestion_view(s: Suggestion) -> SuggestionView:
    p = s.position
    return SuggestionView(
        sku=p.sku,
        location=p.location,
        on_hand=p.on_hand,
        reserved=p.reserved,
        available=p.available,
        incoming=p.incoming,
        backordered=p.backordered,
        velocity_7d=_per_day(p.velocity.per_day_7d),
        velocity_30d=_per_day(p.velocity.per_day_30d),
        days_of_cover=s.days_of_cover,
        reorder_point=s.reorder_point,
        reorder_point_source=s.point_source,
        lead_time_days=p.rule.lead_time_days,
        cover_days=p.rule.cover_days,
        configured=p.configured,
        low=p.low,
        suggested_quantity=s.quantity,
    )


def _per_day(value: Fraction) -> float:
    return round(float(value), 2)
