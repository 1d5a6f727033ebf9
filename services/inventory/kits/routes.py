"""Kits' HTTP API: define a kit's components, read them back (its stock: GET /v1/stock/{sku})."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, StringConstraints

from services.inventory import api
from services.inventory.availability.channels import queue_stock_totals
from services.inventory.kits.domain import (
    COMPONENT_IS_KIT,
    KIT_IS_COMPONENT,
    Component,
    DefinitionProblem,
    Kit,
    check_definition,
    kit_total,
)
from services.inventory.kits.store import KitStore
from services.inventory.stock.store import InventoryStore
from shared.platform.auth import Permission, requires
from shared.platform.errors import ApiError
from shared.platform.service import RuntimeDep

router = APIRouter(prefix="/v1", tags=["inventory"])

MAX_COMPONENTS = 50
MAX_PER_KIT = 10_000


class KitComponent(api.Body):
    sku: Annotated[str, StringConstraints(pattern=api.CODE_PATTERN)]
    quantity: Annotated[int, Field(strict=True, gt=0, le=MAX_PER_KIT)]


class KitDefinition(api.Body):
    components: Annotated[list[KitComponent], Field(min_length=1, max_length=MAX_COMPONENTS)]


class KitView(BaseModel):
    sku: str
    components: list[KitComponent]


@api.create_or_replace(
    router,
    "/kits/{sku}",
    KitView,
    {
        **api.UNKNOWN_SKU,
        409: {
            "description": "component_is_kit / kit_is_component: kits do not nest;"
            " sku_has_stock: a kit has no stock of its own"
        },
        422: {
            "description": "unknown_component, duplicate_component, kit_contains_itself (naming"
            " the component's field), or a malformed body"
        },
    },
    created="the SKU became a kit",
)
async def put_kit(
    runtime: RuntimeDep,
    settings: api.Settings,
    response: Response,
    sku: api.SkuPath,
    body: KitDefinition,
) -> KitView:
    """Make a defined SKU a kit of other defined SKUs, or replace its components (201 when it
    becomes a kit, 200 when replaced). Reserving the kit reserves its components; its
    availability is derived from theirs."""
    kit = Kit(sku, tuple(Component(c.sku, c.quantity) for c in body.components))
    components = [c.sku for c in kit.components]
    async with runtime.uow() as uow:
        kits, stock = KitStore(uow.conn), InventoryStore(uow.conn)
        await kits.lock_definitions()
        if not await kits.lock_sku(sku):
            raise api.unknown_sku(sku)
        problem = check_definition(
            kit,
            known_skus=await stock.known_skus(components),
            kits=await kits.kits_among(components),
            containing_kits=await kits.kits_containing(sku),
        )
        if problem is not None:
            raise _refused(problem)
        if await kits.has_stock(sku):
            raise ApiError(
                409,
                "sku_has_stock",
                f"{sku} has stock of its own: a kit has none (adjust it to 0 first)",
                sku=sku,
            )
        created = await kits.put_kit(kit)
        total = kit_total(kit, await stock.stock_levels(components))
        queue_stock_totals(uow, total, settings.channel_safety_stock)
    response.status_code = 201 if created else 200
    return _view(kit)


@router.get(
    "/kits/{sku}",
    response_model=KitView,
    dependencies=[requires(Permission.STOCK_READ)],
    responses={404: {"description": "unknown_sku, or not_a_kit: the SKU has no components"}},
)
async def get_kit(runtime: RuntimeDep, sku: str) -> KitView:
    async with runtime.pool.acquire() as conn:
        kit = await KitStore(conn).kit(sku)
        if kit is None:
            await api.require_sku(InventoryStore(conn), sku)
            raise ApiError(404, "not_a_kit", f"{sku} is not a kit", sku=sku)
    return _view(kit)


def _view(kit: Kit) -> KitView:
    return KitView(
        sku=kit.sku,
        components=[KitComponent(sku=c.sku, quantity=c.per_kit) for c in kit.components],
    )


def _refused(problem: DefinitionProblem) -> ApiError:
    status = 409 if problem.code in {COMPONENT_IS_KIT, KIT_IS_COMPONENT} else 422
    field = f"components.{problem.index}.sku" if problem.index is not None else "sku"
    return ApiError(
        status,
        problem.code,
        f"{field}: {problem.message}",
        field=field,
        component=problem.component,
    )
