"""Fulfilment's HTTP API (DESIGN.md §9): look up fulfilments, ship, deliver, carrier webhooks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from services.fulfilment import actions, refusals, store
from services.fulfilment.actions import (
    FulfilmentNotFound,
    TrackingOutcome,
    UnknownTrackingNumber,
)
from services.fulfilment.carriers.base import TrackingUpdate
from services.fulfilment.domain import FulfilmentOnHold, TrackingStatus, TransitionRefused
from services.fulfilment.packing import service as packing
from services.fulfilment.store import Fulfilment, FulfilmentFacts, TrackingNumberInUse
from shared.platform.auth import (
    Permission,
    Principal,
    mask_personal_data,
    requires,
    requires_carrier,
)
from shared.platform.errors import ApiError
from shared.platform.service import RuntimeDep

router = APIRouter(prefix="/v1", tags=["fulfilment"])


# --- shapes ---------------------------------------------------------------------------------


class TrackingEventOut(BaseModel):
    status: str
    at: datetime | None = Field(description="when the carrier says it happened, if it said")
    description: str | None
    received_at: datetime


@pydantic_dataclass(frozen=True)
class FulfilmentOut(FulfilmentFacts):
    tracking_events: list[TrackingEventOut]


class FulfilmentList(BaseModel):
    order_id: str
    fulfilments: list[FulfilmentOut]


class ShipRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carrier: str | None = Field(
        default=None,
        min_length=1,
        description="omitted: chosen by destination country (US/CA ups, GB royal_mail, most of"
        " the EU dhl, elsewhere fedex)",
    )
    tracking_number: str | None = Field(
        default=None,
        min_length=1,
        description="omitted: issued (derived from the fulfilment, so a retry gets the same one)",
    )


class CarrierEventRequest(BaseModel):
    tracking_number: str = Field(min_length=1)
    status: TrackingStatus
    at: datetime | None = Field(default=None, description="without a zone it is taken as UTC")
    description: str | None = None


class CarrierEventResult(BaseModel):
    outcome: TrackingOutcome = Field(
        description="delivered / failed: the update changed the fulfilment; recorded: kept in"
        " its history only; duplicate: the same update was received before"
    )
    fulfilment: FulfilmentOut


def _out(fulfilment: Fulfilment, principal: Principal) -> FulfilmentOut:
    """The address shows to whoever ships (or may see personal data); masked for the rest."""
    sees_address = principal.can(Permission.PERSONAL_DATA) or principal.can(
        Permission.FULFILMENTS_WRITE
    )
    facts = {f.name: getattr(fulfilment, f.name) for f in fields(FulfilmentFacts)}
    if not sees_address:
        facts["shipping_address"] = mask_personal_data(fulfilment.shipping_address)
    return FulfilmentOut(
        **facts,
        tracking_events=[
            TrackingEventOut(
                status=e.status,
                at=e.reported_at,
                description=e.description,
                received_at=e.received_at,
            )
            for e in fulfilment.tracking_events
        ],
    )


def _not_found(fulfilment_id: str) -> ApiError:
    return ApiError(
        404,
        "fulfilment_not_found",
        f"no fulfilment with id {fulfilment_id}",
        fulfilment_id=fulfilment_id,
    )


ON_HOLD_RESPONSE: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "`fulfilment_on_hold`: the order's hold stops the fulfilment (also the"
        " other refusals of its state)"
    }
}


@contextlib.contextmanager
def _refusals(fulfilment_id: str) -> Iterator[None]:
    """What an action on one fulfilment may refuse, as API errors."""
    try:
        yield
    except FulfilmentNotFound as exc:
        raise _not_found(fulfilment_id) from exc
    except TransitionRefused as exc:
        raise refusals.transition_refused(exc, fulfilment_id) from exc
    except FulfilmentOnHold as exc:
        raise refusals.on_hold(exc) from exc
    except TrackingNumberInUse as exc:
        raise refusals.tracking_refusal(409, "tracking_number_in_use", exc) from exc


# --- routes ---------------------------------------------------------------------------------


@router.get("/fulfilments", response_model=FulfilmentList)
async def list_fulfilments(
    runtime: RuntimeDep,
    order_id: Annotated[str, Query(min_length=1)],
    principal: Principal = requires(Permission.FULFILMENTS_READ),
) -> FulfilmentList:
    """The order's fulfilments, one per stock location (empty when none were created)."""
    found = await store.fulfilments_of_order(runtime.pool, order_id, with_events=True)
    return FulfilmentList(order_id=order_id, fulfilments=[_out(f, principal) for f in found])


@router.get("/fulfilments/{fulfilment_id}", response_model=FulfilmentOut)
async def get_fulfilment(
    runtime: RuntimeDep,
    fulfilment_id: str,
    principal: Principal = requires(Permission.FULFILMENTS_READ),
) -> FulfilmentOut:
    found = await store.get_fulfilment(runtime.pool, fulfilment_id, with_events=True)
    if found is None:
        raise _not_found(fulfilment_id)
    return _out(found, principal)


@router.post(
    "/fulfilments/{fulfilment_id}/ship", response_model=FulfilmentOut, responses=ON_HOLD_RESPONSE
)
async def ship_fulfilment(
    runtime: RuntimeDep,
    fulfilment_id: str,
    body: Annotated[ShipRequest | None, Body()] = None,
    principal: Principal = requires(Permission.FULFILMENTS_WRITE),
) -> FulfilmentOut:
    """Ship. Shipping again with the same carrier and tracking number (or again without them,
    which resolves to the same ones) answers 200 with no second event; anything else on a
    shipped fulfilment is 409 `already_shipped`; while the order's hold stops it, 409
    `fulfilment_on_hold`."""
    body = body or ShipRequest()
    if body.tracking_number and not body.carrier:
        raise ApiError(
            422,
            "carrier_required",
            "carrier: a tracking number needs the carrier that issued it",
            field="carrier",
        )
    with _refusals(fulfilment_id):
        async with runtime.uow() as uow:
            shipped = await actions.ship(uow, fulfilment_id, body.carrier, body.tracking_number)
    return _out(shipped, principal)


@router.post("/fulfilments/{fulfilment_id}/deliver", response_model=FulfilmentOut)
async def deliver_fulfilment(
    runtime: RuntimeDep,
    fulfilment_id: str,
    principal: Principal = requires(Permission.FULFILMENTS_WRITE),
) -> FulfilmentOut:
    """Deliver a shipped fulfilment (409 `not_shipped` before). Again: 200, no second event."""
    with _refusals(fulfilment_id):
        async with runtime.uow() as uow:
            delivered = await actions.deliver(uow, fulfilment_id)
    return _out(delivered, principal)


@router.post("/carriers/{carrier}/events", response_model=CarrierEventResult)
async def carrier_event(
    runtime: RuntimeDep,
    carrier: str,
    body: CarrierEventRequest,
    principal: Principal = requires_carrier(),
) -> CarrierEventResult:
    """A carrier's tracking update for one of its shipments (by tracking number), from that
    carrier (a `carrier:<name>` token) or an operator tool (an unscoped role)."""
    at = body.at
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    update = TrackingUpdate(carrier, body.tracking_number, body.status, at, body.description)
    try:
        async with runtime.uow() as uow:
            result = await packing.record_tracking_update(uow, update)
    except UnknownTrackingNumber as exc:
        raise refusals.tracking_refusal(404, "unknown_tracking_number", exc) from exc
    return CarrierEventResult(outcome=result.outcome, fulfilment=_out(result.fulfilment, principal))
