"""The pack station and the dock: parcels of a fulfilment, scans, weighing, labels (reprints
included), packing slips, shipping; and the carriers' signed tracking webhooks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.types import DecoratedCallable
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.fulfilment import refusals
from services.fulfilment.actions import FulfilmentNotFound, TrackingOutcome, UnknownTrackingNumber
from services.fulfilment.carriers.base import CarrierError, InvalidWebhookSignature
from services.fulfilment.carriers.rate_shopping import NoRateMeetsPromise
from services.fulfilment.carriers.registry import CarriersDep, UnknownCarrier
from services.fulfilment.domain import FulfilmentOnHold, TransitionRefused
from services.fulfilment.packing import service, store
from services.fulfilment.packing.boxes import PackingRefused
from services.fulfilment.packing.lifecycle import ParcelRefused, ParcelStatus
from services.fulfilment.packing.scan import ScanRefused
from services.fulfilment.packing.weights import WeightTolerance
from services.fulfilment.settings import FulfilmentSettings
from shared.platform.auth import Permission, Principal, requires, token_if_present
from shared.platform.errors import RETRY_AFTER_S, ApiError
from shared.platform.service import RuntimeDep

router = APIRouter(prefix="/v1", tags=["packing"])

Sku = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineIn(Body):
    sku: Sku
    quantity: int = Field(ge=1, le=100_000)


class ParcelIn(Body):
    lines: list[LineIn] = Field(min_length=1, max_length=500)


class PackRequest(Body):
    parcels: list[ParcelIn] | None = Field(
        default=None,
        max_length=100,
        description="omitted: the box chooser splits the picked units into the fewest, smallest"
        " boxes; given: these parcels, each in the smallest box that fits it",
    )


class ScanRequest(Body):
    barcode: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    quantity: int = Field(default=1, ge=1, le=1000)


class CloseRequest(Body):
    measured_weight_g: int | None = Field(
        default=None, ge=1, le=1_000_000, description="the scale's reading; omitted: not weighed"
    )


class LabelRequest(Body):
    carrier: str | None = Field(
        default=None, description="one carrier plug-in; omitted: the cheapest across all"
    )


class ParcelLineOut(BaseModel):
    sku: str
    quantity: int
    scanned: int


class ParcelOut(BaseModel):
    parcel_id: str
    fulfilment_id: str
    number: int
    status: ParcelStatus
    box: str | None  # None: packed by a 3PL or dropship supplier
    expected_weight_g: int
    measured_weight_g: int | None
    hold_reason: str | None
    carrier: str | None
    service: str | None
    tracking_number: str | None
    tracking_url: str | None
    label_cost: Decimal | None
    label_currency: str | None
    lines: list[ParcelLineOut]
    created_at: datetime
    shipped_at: datetime | None
    delivered_at: datetime | None


class ParcelList(BaseModel):
    fulfilment_id: str
    parcels: list[ParcelOut]


def _out(p: store.Parcel) -> ParcelOut:
    return ParcelOut(
        **{k: v for k, v in vars(p).items() if k in ParcelOut.model_fields and k != "lines"},
        lines=[ParcelLineOut(**vars(line)) for line in p.lines],
    )


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """What the pack station and the dock may refuse, as API errors."""
    try:
        yield
    except service.ParcelNotFound as exc:
        raise ApiError(404, "parcel_not_found", str(exc), parcel_id=exc.parcel_id) from exc
    except FulfilmentNotFound as exc:
        raise ApiError(
            404, "fulfilment_not_found", str(exc), fulfilment_id=exc.fulfilment_id
        ) from exc
    except ParcelRefused as exc:
        raise ApiError(409, exc.code, str(exc), current_status=exc.status.value) from exc
    except TransitionRefused as exc:
        raise ApiError(409, exc.code.value, str(exc), current_status=exc.status.value) from exc
    except FulfilmentOnHold as exc:
        raise refusals.on_hold(exc) from exc
    except ScanRefused as exc:
        missing = [{"sku": m.sku, "missing": m.missing} for m in exc.missing]
        raise ApiError(
            409, exc.code.value, str(exc), barcode=exc.barcode, sku=exc.sku, missing=missing
        ) from exc
    except PackingRefused as exc:
        raise ApiError(422, exc.code.value, str(exc), sku=exc.sku) from exc
    except service.PackStationRefused as exc:
        raise ApiError(409 if exc.conflict else 422, exc.code, str(exc), **exc.details) from exc
    except UnknownCarrier as exc:
        raise ApiError(422, "unknown_carrier", str(exc), field="carrier") from exc
    except NoRateMeetsPromise as exc:
        alternative = exc.alternative
        raise ApiError(
            422,
            exc.code.value,
            str(exc),
            alternative=None
            if alternative is None
            else {"carrier": alternative.carrier, "service": alternative.service},
        ) from exc
    except CarrierError as exc:
        if exc.retryable:
            raise ApiError(
                503,
                exc.code,
                f"the carrier did not answer: {exc}",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from exc
        raise ApiError(502, exc.code, f"the carrier refused: {exc}") from exc


_REFUSED: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "the parcel or fulfilment refuses in its state (parcel_<status>, fulfilment_on_hold, not_picked, wrong_barcode, over_scan, items_missing, ...)"
    }
}
"""The documented refusals of a parcel action at the pack station."""

_CARRIER_REFUSED: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "the parcel refuses in its state (or `fulfilment_on_hold`), or the"
        " floor is not set up"
    },
    502: {"description": "the carrier refused"},
}
"""The documented refusals of a parcel action that asks the carrier (label, void)."""


def _parcel_action(
    path: str, refusals: dict[int | str, dict[str, Any]] = _REFUSED
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """An action on one parcel (`fulfilments:write`) that answers the parcel as it is after."""
    return router.post(
        path,
        responses=refusals,
        response_model=ParcelOut,
        dependencies=[requires(Permission.FULFILMENTS_WRITE)],
    )


def _parcel_document(
    path: str, media_type: str
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """A parcel's printable document: it carries the customer's name and address, so it is
    only for whoever ships (`fulfilments:write`)."""
    return router.get(
        path,
        response_class=Response,
        responses={200: {"content": {media_type: {}}}},
        dependencies=[requires(Permission.FULFILMENTS_WRITE)],
    )


def _tolerance(runtime: RuntimeDep) -> WeightTolerance:
    settings = runtime.settings
    assert isinstance(settings, FulfilmentSettings)
    return WeightTolerance(
        settings.pack_weight_tolerance_g, Decimal(str(settings.pack_weight_tolerance_pct))
    )


@router.post(
    "/fulfilments/{fulfilment_id}/parcels",
    responses=_REFUSED,
    response_model=ParcelList,
    dependencies=[requires(Permission.FULFILMENTS_WRITE)],
)
async def pack(
    runtime: RuntimeDep, fulfilment_id: str, body: PackRequest | None = None
) -> ParcelList:
    """Open parcels for the fulfilment's picked, unpacked units (409 `not_picked` before its
    pick lists are finished)."""
    requested = (
        None
        if body is None or body.parcels is None
        else [{ln.sku: ln.quantity for ln in p.lines} for p in body.parcels]
    )
    with _refusals():
        async with runtime.uow() as uow:
            parcels = await service.pack(uow, fulfilment_id, requested)
    return ParcelList(fulfilment_id=fulfilment_id, parcels=[_out(p) for p in parcels])


@router.get(
    "/fulfilments/{fulfilment_id}/parcels",
    response_model=ParcelList,
    dependencies=[requires(Permission.FULFILMENTS_READ)],
)
async def parcels_of(runtime: RuntimeDep, fulfilment_id: str) -> ParcelList:
    found = await store.parcels_of(runtime.pool, fulfilment_id)
    return ParcelList(fulfilment_id=fulfilment_id, parcels=[_out(p) for p in found])


@router.get(
    "/parcels/{parcel_id}",
    response_model=ParcelOut,
    dependencies=[requires(Permission.FULFILMENTS_READ)],
)
async def get_parcel(runtime: RuntimeDep, parcel_id: str) -> ParcelOut:
    found = await store.get_parcel(runtime.pool, parcel_id)
    if found is None:
        raise ApiError(404, "parcel_not_found", f"no parcel {parcel_id}", parcel_id=parcel_id)
    return _out(found)


@_parcel_action("/parcels/{parcel_id}/scan")
async def scan(runtime: RuntimeDep, parcel_id: str, body: ScanRequest) -> ParcelOut:
    """Units going into the parcel, by barcode (409 `wrong_barcode` / `over_scan`: not
    counted)."""
    with _refusals():
        async with runtime.uow() as uow:
            parcel = await service.scan(uow, parcel_id, body.barcode, body.quantity)
    return _out(parcel)


@_parcel_action("/parcels/{parcel_id}/close")
async def close(runtime: RuntimeDep, parcel_id: str, body: CloseRequest | None = None) -> ParcelOut:
    """Close a fully scanned parcel (409 `items_missing` lists what is not scanned): packed, or
    held when the measured weight is off by more than the tolerance."""
    measured = body.measured_weight_g if body else None
    with _refusals():
        async with runtime.uow() as uow:
            parcel = await service.close(uow, parcel_id, measured, _tolerance(runtime))
    return _out(parcel)


@_parcel_action("/parcels/{parcel_id}/release")
async def release(runtime: RuntimeDep, parcel_id: str) -> ParcelOut:
    """Let a held parcel go after a person checked it."""
    with _refusals():
        async with runtime.uow() as uow:
            parcel = await service.release_hold(uow, parcel_id)
    return _out(parcel)


@_parcel_action("/parcels/{parcel_id}/label", _CARRIER_REFUSED)
async def label(
    runtime: RuntimeDep, carriers: CarriersDep, parcel_id: str, body: LabelRequest | None = None
) -> ParcelOut:
    """Buy the label: the cheapest rate meeting the order's shipping method (422
    `no_rate_meets_promise` names the fastest alternative). Again: the same label."""
    with _refusals():
        parcel, bought = await service.buy_label(
            runtime.pool, carriers, parcel_id, body.carrier if body else None
        )
        if bought is not None:
            async with runtime.uow() as uow:
                parcel = await service.save_label(uow, parcel_id, bought)
    return _out(parcel)


@_parcel_action("/parcels/{parcel_id}/void", _CARRIER_REFUSED)
async def void(runtime: RuntimeDep, carriers: CarriersDep, parcel_id: str) -> ParcelOut:
    """Void the label with its carrier; the parcel can be labelled again."""
    with _refusals():
        async with runtime.uow() as uow:
            parcel = await service.void_label(uow, carriers, parcel_id)
    return _out(parcel)


@_parcel_action("/parcels/{parcel_id}/ship")
async def ship(runtime: RuntimeDep, parcel_id: str) -> ParcelOut:
    """Hand the labelled parcel to the carrier: its stock is committed and its value captured.
    Again: 200, no second event."""
    with _refusals():
        async with runtime.uow() as uow:
            parcel = await service.ship_parcel(uow, parcel_id)
    return _out(parcel)


def _document(content: bytes | str | None, media_type: str, what: str, parcel_id: str) -> Response:
    if content is None:
        raise ApiError(404, "no_label", f"parcel {parcel_id} has no {what}", parcel_id=parcel_id)
    return Response(content, media_type=media_type)


@_parcel_document("/parcels/{parcel_id}/label.pdf", "application/pdf")
async def label_pdf(runtime: RuntimeDep, parcel_id: str) -> Response:
    """The label as bought (a reprint is the same document). Labels and slips carry the
    customer's name and address: only for whoever ships (`fulfilments:write`)."""
    pdf, _ = await store.label_documents(runtime.pool, parcel_id)
    return _document(pdf, "application/pdf", "label", parcel_id)


@_parcel_document("/parcels/{parcel_id}/label.zpl", "text/plain")
async def label_zpl(runtime: RuntimeDep, parcel_id: str) -> Response:
    """The label for thermal printers (ZPL), when the carrier issues one."""
    _, zpl = await store.label_documents(runtime.pool, parcel_id)
    return _document(zpl, "text/plain", "ZPL label", parcel_id)


@_parcel_document("/parcels/{parcel_id}/slip.pdf", "application/pdf")
async def slip_pdf(runtime: RuntimeDep, parcel_id: str) -> Response:
    with _refusals():
        pdf = await service.packing_slip(runtime.pool, parcel_id)
    return Response(pdf, media_type="application/pdf")


class WebhookResult(BaseModel):
    updates: int
    outcomes: list[TrackingOutcome]


@router.post("/carriers/{plugin}/webhooks", response_model=WebhookResult)
async def carrier_webhook(
    runtime: RuntimeDep,
    carriers: CarriersDep,
    plugin: str,
    request: Request,
    principal: Principal | None = token_if_present(Permission.CARRIER_EVENTS),
) -> WebhookResult:
    """A carrier plug-in's own tracking webhook (the table-rate carrier's, EasyPost's), proven
    by its signature, always: 401 `unauthenticated` when it does not verify (400
    `invalid_signature` when a valid token came with it: the caller is known, the body is not
    signed)."""
    try:
        carrier = carriers.get(plugin)
    except UnknownCarrier as exc:
        if principal is None:  # nothing to verify the signature with: unauthenticated
            raise ApiError(401, "unauthenticated", f"{exc}: no signature verifies") from exc
        raise ApiError(404, "unknown_carrier", str(exc)) from exc
    body = await request.body()
    try:
        updates = carrier.tracking_updates(request.headers, body)
    except InvalidWebhookSignature as exc:
        if principal is None:
            raise ApiError(401, "unauthenticated", "the webhook signature does not verify") from exc
        raise ApiError(400, "invalid_signature", "the webhook signature does not verify") from exc
    except CarrierError as exc:
        raise ApiError(400, exc.code, str(exc)) from exc
    outcomes: list[TrackingOutcome] = []
    for update in updates:
        try:
            async with runtime.uow() as uow:
                result = await service.record_tracking_update(uow, update)
        except UnknownTrackingNumber:
            continue  # not one of ours (another system shares the carrier account)
        outcomes.append(result.outcome)
    return WebhookResult(updates=len(updates), outcomes=outcomes)
