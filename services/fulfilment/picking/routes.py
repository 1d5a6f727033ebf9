"""Warehouse staff's picking API: release pick lists, the queue, claim, scan, empty bins."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.types import DecoratedCallable
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.fulfilment.domain import FulfilmentOnHold
from services.fulfilment.picking import service
from services.fulfilment.picking.lifecycle import PickRefused, Status
from services.fulfilment.picking.service import PickListNotFound
from services.fulfilment.picking.store import StoredPickList, open_counts
from services.fulfilment.picking.store import get_pick_list as stored_list
from services.fulfilment.picking.store import list_pick_lists as stored_lists
from services.fulfilment.warehouse import store as warehouse
from services.fulfilment.warehouse.model import LocationKind
from shared.platform.auth import Permission, Principal, requires
from shared.platform.errors import ApiError
from shared.platform.service import RuntimeDep

router = APIRouter(prefix="/v1", tags=["picking"])


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReleaseRequest(Body):
    strategy: Literal["single_order", "batch", "zone", "wave"] = Field(
        default="batch",
        description="single_order: a list per fulfilment; batch: several fulfilments in one walk,"
        " sorted into totes while picking; zone: a list per zone, consolidated before packing;"
        " wave: waves by service level (express first), each batch-picked",
    )
    orders_per_batch: int = Field(default=8, ge=1, le=100, description="totes on a cart")
    max_fulfilments: int = Field(default=200, ge=1, le=5000)


class PutOut(BaseModel):
    fulfilment_id: str
    order_id: str
    quantity: int
    tote: int | None


class StopOut(BaseModel):
    stop: int
    bin: str
    zone: str
    sku: str
    quantity: int
    picked: int
    short: int
    puts: list[PutOut]


class PickListOut(BaseModel):
    pick_list_id: str
    location: str
    strategy: str
    wave: int | None
    zone: str | None
    status: Status
    picker: str | None
    walk_m: float = Field(description="metres from the depot along the stops and back")
    created_at: datetime
    claimed_at: datetime | None
    finished_at: datetime | None
    stops: list[StopOut]


class ShortLineOut(BaseModel):
    fulfilment_id: str
    order_id: str
    sku: str
    missing: int


class SkippedOut(BaseModel):
    fulfilment_id: str
    sku: str
    reason: Literal["sku_has_no_barcode", "sku_in_no_bin"]


class ReleaseOut(BaseModel):
    pick_lists: list[PickListOut]
    short: list[ShortLineOut] = Field(description="units no bin holds: reported as short picks")
    skipped: list[SkippedOut] = Field(description="left waiting: the floor is not set up for them")


class PickListsOut(BaseModel):
    pick_lists: list[PickListOut]


class QueueOut(BaseModel):
    location: str
    waiting_fulfilments: int
    pick_lists: dict[str, int] = Field(description="lists by status (finished: the last day)")


class PickRequest(Body):
    stop: int = Field(ge=0)
    barcode: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    quantity: int = Field(default=1, ge=1, le=100_000)
    scan_id: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
        | None
    ) = Field(default=None, description="the device's id of this scan: a retry is one pick")


def _out(p: StoredPickList) -> PickListOut:
    return PickListOut(
        pick_list_id=p.pick_list_id,
        location=p.location,
        strategy=p.strategy,
        wave=p.wave,
        zone=p.zone,
        status=p.status,
        picker=p.picker,
        walk_m=round(p.walk_m, 1),
        created_at=p.created_at,
        claimed_at=p.claimed_at,
        finished_at=p.finished_at,
        stops=[
            StopOut(
                stop=i,
                bin=s.stop.bin.code,
                zone=s.stop.bin.zone,
                sku=s.stop.sku,
                quantity=s.stop.quantity,
                picked=s.picked,
                short=s.missing,
                puts=[PutOut(**vars(put)) for put in s.stop.puts],
            )
            for i, s in enumerate(p.state.stops)
        ],
    )


@contextlib.contextmanager
def _refusals(pick_list_id: str) -> Iterator[None]:
    try:
        yield
    except PickListNotFound as exc:
        raise ApiError(404, "pick_list_not_found", str(exc), pick_list_id=pick_list_id) from exc
    except PickRefused as exc:
        raise ApiError(409, exc.code.value, exc.message, pick_list_id=pick_list_id) from exc
    except FulfilmentOnHold as exc:
        raise ApiError(
            409,
            exc.code,
            str(exc),
            pick_list_id=pick_list_id,
            fulfilment_id=exc.fulfilment_id,
            hold_reason=exc.reason,
        ) from exc


def _pick_list_action(path: str) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """A picker's action on a pick list that answers the list as it is after (the picker
    comes in the handler, as its principal)."""
    return router.post(
        path,
        responses={
            409: {
                "description": "the pick list refuses: already_claimed, claimed_by_another_picker, not_claimed, list_finished, stop_finished, wrong_barcode, over_pick, unknown_stop"
            }
        },
        response_model=PickListOut,
    )


async def _floor(runtime: RuntimeDep, code: str) -> None:
    location = await warehouse.get_location(runtime.pool, code)
    if location is None:
        raise ApiError(404, "location_not_found", f"no location {code}", location=code)
    if location.kind not in (LocationKind.WAREHOUSE, LocationKind.STORE):
        raise ApiError(
            409,
            "location_has_no_floor",
            f"{code} is a {location.kind.value} location: it picks for itself",
            location=code,
        )


@router.post(
    "/locations/{code}/pick-lists",
    responses={409: {"description": "location_has_no_floor: a 3PL or dropship location"}},
    response_model=ReleaseOut,
    dependencies=[requires(Permission.FULFILMENTS_WRITE)],
)
async def release_pick_lists(runtime: RuntimeDep, code: str, body: ReleaseRequest) -> ReleaseOut:
    """Put the location's waiting fulfilments (oldest first) on pick lists."""
    await _floor(runtime, code)
    async with runtime.uow() as uow:
        released = await service.release(
            uow,
            code,
            body.strategy,
            orders_per_batch=body.orders_per_batch,
            max_fulfilments=body.max_fulfilments,
        )
    return ReleaseOut(
        pick_lists=[_out(p) for p in released.lists],
        short=[
            ShortLineOut(
                fulfilment_id=s.fulfilment_id, order_id=s.order_id, sku=s.sku, missing=s.missing
            )
            for s in released.short
        ],
        skipped=[SkippedOut(**vars(s)) for s in released.skipped],
    )


@router.get(
    "/locations/{code}/queue",
    response_model=QueueOut,
    dependencies=[requires(Permission.FULFILMENTS_READ)],
)
async def queue(runtime: RuntimeDep, code: str) -> QueueOut:
    """The day's queue: fulfilments waiting for a pick list, and pick lists by status."""
    counts = await open_counts(runtime.pool, code)
    waiting = counts.pop("waiting_fulfilments")
    return QueueOut(location=code, waiting_fulfilments=waiting, pick_lists=counts)


@router.get(
    "/pick-lists", response_model=PickListsOut, dependencies=[requires(Permission.FULFILMENTS_READ)]
)
async def list_pick_lists(
    runtime: RuntimeDep,
    location: str | None = None,
    status: Annotated[list[Status] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> PickListsOut:
    """Pick lists, by wave then age; `status` may repeat (e.g. released and claimed)."""
    found = await stored_lists(
        runtime.pool, location, [s.value for s in status] if status else None, limit
    )
    return PickListsOut(pick_lists=[_out(p) for p in found])


@router.get(
    "/pick-lists/{pick_list_id}",
    response_model=PickListOut,
    dependencies=[requires(Permission.FULFILMENTS_READ)],
)
async def get_pick_list(runtime: RuntimeDep, pick_list_id: str) -> PickListOut:
    found = await stored_list(runtime.pool, pick_list_id)
    if found is None:
        raise ApiError(404, "pick_list_not_found", f"no pick list {pick_list_id}")
    return _out(found)


@_pick_list_action("/pick-lists/{pick_list_id}/claim")
async def claim(
    runtime: RuntimeDep,
    pick_list_id: str,
    principal: Principal = requires(Permission.FULFILMENTS_WRITE),
) -> PickListOut:
    """The calling picker takes the list (again: unchanged; another picker's: 409)."""
    with _refusals(pick_list_id):
        async with runtime.uow() as uow:
            claimed = await service.claim(uow, pick_list_id, principal.subject)
    return _out(claimed)


@_pick_list_action("/pick-lists/{pick_list_id}/picks")
async def confirm_pick(
    runtime: RuntimeDep,
    pick_list_id: str,
    body: PickRequest,
    principal: Principal = requires(Permission.FULFILMENTS_WRITE),
) -> PickListOut:
    """Units taken at a stop, the SKU's barcode scanned. Wrong barcode (409 `wrong_barcode`) or
    more than the stop waits for (409 `over_pick`): nothing is recorded."""
    with _refusals(pick_list_id):
        async with runtime.uow() as uow:
            picked = await service.confirm_pick(
                uow,
                pick_list_id,
                principal.subject,
                body.stop,
                body.barcode,
                body.quantity,
                body.scan_id,
            )
    return _out(picked)


@_pick_list_action("/pick-lists/{pick_list_id}/stops/{stop}/empty")
async def report_empty_bin(
    runtime: RuntimeDep,
    pick_list_id: str,
    stop: int,
    principal: Principal = requires(Permission.FULFILMENTS_WRITE),
) -> PickListOut:
    """The stop's bin is empty: what the stop still waits for is a short pick."""
    with _refusals(pick_list_id):
        async with runtime.uow() as uow:
            found = await service.report_empty_bin(uow, pick_list_id, principal.subject, stop)
    return _out(found)
