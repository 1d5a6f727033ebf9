"""What inventory's HTTP routers share: the request body base, field and parameter types, the
channel-availability dependency, the refusals of an unknown SKU and of a reused
Idempotency-Key, and the create-or-replace PUT."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.types import DecoratedCallable
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.inventory.availability.channels import Availability
from services.inventory.settings import InventorySettings
from services.inventory.stock.store import InventoryStore
from shared.platform.auth import Permission, requires
from shared.platform.errors import ApiError
from shared.platform.service import service_settings

# What a SKU, a purchase order's id or a location's code may be.
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"
MAX_UNITS = 1_000_000_000

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
SkuName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Location = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Units = Annotated[int, Field(strict=True, gt=0, le=MAX_UNITS)]

SkuPath = Annotated[str, Path(pattern=CODE_PATTERN)]
SkuFilter = Annotated[str | None, Query(min_length=1, max_length=64)]
LocationFilter = Annotated[str | None, Query(min_length=1, max_length=64)]
Limit = Annotated[int, Query(ge=1, le=500)]
IdempotencyKey = Annotated[str | None, Header(min_length=1, max_length=200)]

Settings = Annotated[InventorySettings, Depends(service_settings(InventorySettings))]

UNKNOWN_SKU: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown_sku: define the SKU first (PUT /v1/skus/{sku})"}
}


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


async def channel_availability(settings: Settings) -> Availability:
    return Availability.from_settings(settings)


Availabilities = Annotated[Availability, Depends(channel_availability)]


def create_or_replace(
    router: APIRouter,
    path: str,
    out: type[BaseModel],
    refusals: dict[int | str, dict[str, Any]] | None = None,
    *,
    created: str = "created",
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """A PUT that creates (201, `created` says what that means) or replaces (200) what the
    path names, answering `out`."""
    return router.put(
        path,
        response_model=out,
        dependencies=[requires(Permission.STOCK_WRITE)],
        responses={201: {"model": out, "description": created}, **(refusals or {})},
    )


def unknown_sku(sku: str) -> ApiError:
    return ApiError(404, "unknown_sku", f"SKU {sku} is not defined", sku=sku)


async def require_sku(store: InventoryStore, sku: str) -> None:
    """Refuse (404 `unknown_sku`) a SKU that is not defined."""
    if not await store.known_skus([sku]):
        raise unknown_sku(sku)


async def require_skus(store: InventoryStore, skus: Sequence[str]) -> None:
    """Refuse (404 `unknown_sku`, naming the first and all of them) SKUs not defined."""
    unknown = sorted(set(skus) - await store.known_skus(skus))
    if unknown:
        raise ApiError(
            404, "unknown_sku", f"SKU {unknown[0]} is not defined", sku=unknown[0], skus=unknown
        )


def refuse_reused_key(earlier_hash: str, body_hash: str, noun: str, **earlier: Any) -> None:
    """A repeat under an Idempotency-Key must be the same request: 409 `idempotency_key_reused`
    (naming what the key made, `earlier`) when the key was used for another."""
    if earlier_hash != body_hash:
        raise ApiError(
            409,
            "idempotency_key_reused",
            f"this Idempotency-Key was used for a different {noun}",
            **earlier,
        )
