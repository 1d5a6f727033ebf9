"""Partner routes: a partner location's connector (warehouse:setup), the ops view of partner
requests and their retry, and the partner's signed shipment confirmation."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass

from services.fulfilment import refusals
from services.fulfilment.actions import FulfilmentNotFound
from services.fulfilment.domain import TransitionRefused, normalise_carrier
from services.fulfilment.partners import confirmations, dispatch, store
from services.fulfilment.partners.model import (
    PARTNER_KINDS,
    ConfirmationConflict,
    ConfirmedParcel,
    Connector,
    ConnectorKind,
    DispatchStatus,
    LinesExceedFulfilment,
    parcel_id_for,
    webhook_url_problem,
)
from services.fulfilment.partners.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureRefused,
    verify,
)
from services.fulfilment.settings import FulfilmentSettings
from services.fulfilment.store import TrackingNumberInUse
from services.fulfilment.warehouse import store as warehouse
from shared.platform.auth import Permission, Principal, requires, token_if_present
from shared.platform.errors import ApiError
from shared.platform.service import RuntimeDep, service_settings
from shared.platform.validation import Quantity, first_nul_character

router = APIRouter(prefix="/v1", tags=["partners"])

Settings = Annotated[FulfilmentSettings, Depends(service_settings(FulfilmentSettings))]

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- connectors -----------------------------------------------------------------------------


class ConnectorIn(Body):
    kind: ConnectorKind
    url: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = Field(
        default=None, description="webhook: the partner's HTTPS URL; kafka: none"
    )
    deadline_hours: Annotated[int, Field(strict=True, gt=0, le=8760)] = Field(
        default=48, description="how long the partner has to confirm the shipment"
    )


class ConnectorOut(BaseModel):
    location: str
    kind: ConnectorKind
    url: str | None
    deadline_hours: int
    secret_configured: bool = Field(
        description="whether OMS_PARTNER_SECRETS holds this location's secret (never shown)"
    )


async def _partner_location(runtime: RuntimeDep, code: str) -> warehouse.Location:
    found = await warehouse.get_location(runtime.pool, code)
    if found is None:
        raise ApiError(404, "location_not_found", f"no location {code}", location=code)
    if found.kind not in PARTNER_KINDS:
        raise ApiError(
            409,
            "location_not_a_partner",
            f"{code} is a {found.kind.value} location: connectors are for 3pl and"
            " dropship_supplier locations",
            location=code,
        )
    return found


def _connector_out(connector: Connector, settings: FulfilmentSettings) -> ConnectorOut:
    return ConnectorOut(
        location=connector.location,
        kind=connector.kind,
        url=connector.url,
        deadline_hours=connector.deadline_hours,
        secret_configured=connector.location in settings.partner_secrets,
    )


@router.put(
    "/locations/{code}/connector",
    responses={
        201: {"model": ConnectorOut, "description": "created"},
        409: {
            "description": "location_not_a_partner: connectors are for 3pl and dropship_supplier"
        },
    },
    response_model=ConnectorOut,
    dependencies=[requires(Permission.WAREHOUSE_SETUP)],
)
async def put_connector(
    runtime: RuntimeDep,
    settings: Settings,
    code: Annotated[str, Path()],
    body: ConnectorIn,
    response: Response,
) -> ConnectorOut:
    """How a 3PL or dropship supplier is reached: create (201) or replace (200). The webhook's
    signing secret comes from OMS_PARTNER_SECRETS, never from here."""
    await _partner_location(runtime, code)
    url = body.url or None
    if body.kind is ConnectorKind.WEBHOOK:
        if url is None:
            raise ApiError(422, "url_required", "url: a webhook connector needs one", field="url")
        problem = webhook_url_problem(url, allow_loopback_http=settings.env != "production")
        if problem is not None:
            raise ApiError(422, "invalid_url", f"url: {problem}", field="url")
    elif url is not None:
        raise ApiError(
            422, "url_not_allowed", "url: a kafka connector publishes, it has none", field="url"
        )
    connector = Connector(code, body.kind, url, body.deadline_hours)
    async with runtime.uow() as uow:
        created = await store.put_connector(uow.conn, connector)
    response.status_code = 201 if created else 200
    return _connector_out(connector, settings)


@router.get(
    "/locations/{code}/connector",
    responses={
        409: {"description": "location_not_a_partner: connectors are for 3pl and dropship_supplier"}
    },
    response_model=ConnectorOut,
    dependencies=[requires(Permission.FULFILMENTS_READ)],
)
async def get_connector(runtime: RuntimeDep, settings: Settings, code: str) -> ConnectorOut:
    await _partner_location(runtime, code)
    connector = await store.get_connector(runtime.pool, code)
    if connector is None:
        raise ApiError(
            404, "connector_not_found", f"location {code} has no connector yet", location=code
        )
    return _connector_out(connector, settings)


# --- the ops view of partner requests -------------------------------------------------------


@pydantic_dataclass(frozen=True)
class DispatchOut(store.Dispatch):
    """A partner request as operators see it (the store's record, as the API's schema)."""


class DispatchList(BaseModel):
    dispatches: list[DispatchOut]


def _dispatch_out(found: store.Dispatch) -> DispatchOut:
    return DispatchOut(**vars(found))


@router.get(
    "/partners/dispatches",
    response_model=DispatchList,
    dependencies=[requires(Permission.FULFILMENTS_READ)],
)
async def list_dispatches(
    runtime: RuntimeDep,
    status: DispatchStatus | None = None,
    location: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DispatchList:
    """Requests to partners, newest first; `status=dead` lists what an operator must look at."""
    found = await store.list_dispatches(runtime.pool, status, location, limit)
    return DispatchList(dispatches=[_dispatch_out(d) for d in found])


@router.post(
    "/partners/dispatches/{dispatch_id}/retry",
    responses={409: {"description": "the request was sent, or its fulfilment is no longer open"}},
    response_model=DispatchOut,
    dependencies=[requires(Permission.FULFILMENTS_WRITE)],
)
async def retry_dispatch(runtime: RuntimeDep, dispatch_id: str) -> DispatchOut:
    """Send a dead request again through the location's connector as it is now (webhook: a
    fresh round of attempts, due now; kafka: published at once). 409 when it was sent, or its
    fulfilment no longer waits for the partner, or the location has no connector."""
    try:
        async with runtime.uow() as uow:
            retried = await dispatch.retry(uow, dispatch_id)
    except dispatch.DispatchNotFound as exc:
        raise ApiError(404, "dispatch_not_found", str(exc), dispatch_id=dispatch_id) from exc
    except dispatch.RetryRefused as exc:
        raise ApiError(409, exc.code, str(exc), dispatch_id=dispatch_id) from exc
    return _dispatch_out(retried)


# --- the partner's shipment confirmation ----------------------------------------------------


class PartnerBody(BaseModel):
    """What partners send: fields we do not know (their own references) are ignored."""

    model_config = ConfigDict(extra="ignore")


class LineIn(PartnerBody):
    sku: Text
    quantity: Quantity


class ParcelIn(PartnerBody):
    carrier: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    tracking_number: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
    ]
    tracking_url: Annotated[str, StringConstraints(max_length=2000)] | None = None
    lines: list[LineIn] = Field(min_length=1, max_length=1000)


class ConfirmationIn(PartnerBody):
    fulfilment_id: Text
    parcels: list[ParcelIn] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _distinct_tracking_numbers(self) -> ConfirmationIn:
        counted = Counter(p.tracking_number for p in self.parcels)
        repeated = sorted(number for number, n in counted.items() if n > 1)
        if repeated:
            raise ValueError(f"parcels: tracking number {repeated[0]!r} appears twice")
        return self


class ParcelLineOut(BaseModel):
    sku: str
    quantity: int


class ConfirmedParcelOut(BaseModel):
    parcel_id: str
    carrier: str | None
    tracking_number: str | None
    tracking_url: str | None
    status: str
    shipped_at: datetime | None
    lines: list[ParcelLineOut]


class ConfirmationOut(BaseModel):
    fulfilment_id: str
    location: str
    fulfilment_status: str
    parcels: list[ConfirmedParcelOut]


def _inline(schema: Any, definitions: dict[str, Any]) -> Any:
    """A JSON schema with its `$defs` references written out (the route reads its body itself,
    so the document gets the schema by hand, and it must stand alone)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {k: _inline(v, definitions) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(item, definitions) for item in schema]
    return schema


def _standalone_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    inlined: dict[str, Any] = _inline(schema, schema.get("$defs", {}))
    return inlined


_CONFIRMATION_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the parcels the partner shipped; signed with X-OMS-Signature"
        " (sha256=<hex HMAC-SHA256 of timestamp.body>) and X-OMS-Timestamp (Unix seconds)",
        "content": {"application/json": {"schema": _standalone_schema(ConfirmationIn)}},
    }
}


def _confirmed(fulfilment_id: str, body: ConfirmationIn) -> list[ConfirmedParcel]:
    found = []
    for parcel in body.parcels:
        units: Counter[str] = Counter()
        for line in parcel.lines:
            units[line.sku] += line.quantity
        found.append(
            ConfirmedParcel(
                parcel_id=parcel_id_for(fulfilment_id, parcel.tracking_number),
                carrier=normalise_carrier(parcel.carrier),
                tracking_number=parcel.tracking_number,
                tracking_url=parcel.tracking_url or None,
                lines=tuple(sorted(units.items())),
            )
        )
    return found


async def _check_signature(
    runtime: RuntimeDep, settings: FulfilmentSettings, location: str, request: Request, raw: bytes
) -> None:
    signature = request.headers.get(SIGNATURE_HEADER)
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        missing = SIGNATURE_HEADER if not signature else TIMESTAMP_HEADER
        raise ApiError(
            401, "invalid_signature", f"the {missing} header is missing (or send a bearer token)"
        )
    secret = settings.partner_secrets.get(location)
    if secret is None:
        known = await warehouse.get_location(runtime.pool, location)
        if known is not None and known.kind in PARTNER_KINDS:
            raise ApiError(
                503,
                "partner_not_configured",
                f"no secret is configured for partner {location} (OMS_PARTNER_SECRETS)",
                location=location,
            )
        # Not a partner of ours: answered as any signature that does not verify.
        raise ApiError(401, "invalid_signature", "the signature does not verify")
    try:
        verify(
            secret.get_secret_value().encode(),
            timestamp,
            signature,
            raw,
            now=time.time(),
            tolerance_s=settings.partner_signature_tolerance_s,
        )
    except SignatureRefused as exc:
        raise ApiError(401, exc.code.value, str(exc)) from exc


def _parse(raw: bytes) -> ConfirmationIn:
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not JSON: {exc}") from exc
    nul = first_nul_character(document)
    if nul is not None:
        raise ApiError(422, "invalid_value", f"{nul}: must not hold a NUL character", field=nul)
    try:
        return ConfirmationIn.model_validate(document)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]
        raise RequestValidationError(errors) from exc


@router.post(
    "/partners/{location}/shipments",
    response_model=ConfirmationOut,
    openapi_extra=_CONFIRMATION_SCHEMA,
    responses={
        400: {"description": "the body is not JSON"},
        401: {"description": "invalid_signature (missing, or does not verify) or stale_signature"},
        404: {"description": "no such fulfilment at this partner location"},
        409: {"description": "the fulfilment was cancelled or failed, or a tracking number is"},
        422: {"description": "lines_exceed_fulfilment (names the SKU), or a malformed body"},
        503: {"description": "the partner's secret is not configured"},
    },
)
async def confirm_shipments(
    runtime: RuntimeDep,
    settings: Settings,
    location: str,
    request: Request,
    principal: Principal | None = token_if_present(Permission.FULFILMENTS_WRITE),
) -> ConfirmationOut:
    """A 3PL or dropship supplier confirms what it shipped: each parcel (carrier, tracking
    number, lines) ships through the parcel path, one FulfilmentShipped each. Proven by the
    location's HMAC signature; an operator may post one with a `fulfilments:write` token
    instead. The same confirmation again changes nothing and answers the same."""
    raw = await request.body()
    if principal is None:
        await _check_signature(runtime, settings, location, request, raw)
    body = _parse(raw)
    known = await warehouse.get_location(runtime.pool, location)
    if known is None or known.kind not in PARTNER_KINDS:
        raise ApiError(
            404, "partner_not_found", f"{location} is not a partner location", location=location
        )
    not_found = ApiError(
        404,
        "fulfilment_not_found",
        f"no fulfilment {body.fulfilment_id} at {location}",
        fulfilment_id=body.fulfilment_id,
        location=location,
    )
    try:
        async with runtime.uow() as uow:
            result = await confirmations.confirm(
                uow, location, body.fulfilment_id, _confirmed(body.fulfilment_id, body)
            )
    except FulfilmentNotFound as exc:
        raise not_found from exc
    except LinesExceedFulfilment as exc:
        raise ApiError(
            422,
            "lines_exceed_fulfilment",
            str(exc),
            sku=exc.sku,
            confirmed=exc.confirmed,
            unshipped=exc.unshipped,
        ) from exc
    except ConfirmationConflict as exc:
        raise ApiError(
            409, "confirmation_conflict", str(exc), tracking_number=exc.tracking_number
        ) from exc
    except TransitionRefused as exc:
        raise refusals.transition_refused(exc, body.fulfilment_id) from exc
    except TrackingNumberInUse as exc:
        raise refusals.tracking_refusal(409, "tracking_number_in_use", exc) from exc
    return ConfirmationOut(
        fulfilment_id=result.fulfilment_id,
        location=location,
        fulfilment_status=result.status.value,
        parcels=[
            ConfirmedParcelOut(
                parcel_id=p.parcel_id,
                carrier=p.carrier,
                tracking_number=p.tracking_number,
                tracking_url=p.tracking_url,
                status=p.status.value,
                shipped_at=p.shipped_at,
                lines=[ParcelLineOut(sku=line.sku, quantity=line.quantity) for line in p.lines],
            )
            for p in result.parcels
        ],
    )
