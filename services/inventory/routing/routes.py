"""The location records' HTTP API: `PUT /v1/locations/{code}`, `GET /v1/locations`,
`GET /v1/locations/{code}`."""

from __future__ import annotations

import re
from datetime import time
from functools import cache
from typing import Annotated
from zoneinfo import available_timezones

from fastapi import APIRouter, Path, Response
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from services.inventory import api
from services.inventory.routing.config import CountryCode
from services.inventory.routing.domain import DEFAULT_PRIORITY, LocationKind, LocationRecord
from services.inventory.routing.store import LocationStore
from shared.platform.auth import Permission, requires
from shared.platform.errors import ApiError
from shared.platform.service import RuntimeDep

router = APIRouter(prefix="/v1", tags=["inventory"])

_TIMEZONE_KEY = re.compile(r"^[A-Za-z0-9_+\-]{1,30}(/[A-Za-z0-9_+\-]{1,30}){0,2}$")


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def _timezone(value: str) -> str:
    if not _TIMEZONE_KEY.match(value) or value not in _timezones():
        raise ValueError(f"{value!r} is not an IANA time zone name (such as Europe/Berlin)")
    return value


def _local_time(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a time of day without offset: the location's timezone says where")
    return value


class LocationIn(api.Body):
    name: api.Text
    kind: LocationKind = "warehouse"
    country: CountryCode = Field(description="ISO 3166-1 alpha-2, e.g. DE")
    postal_code: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)] | None
    ) = None
    latitude: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)] | None = None
    priority: Annotated[int, Field(strict=True, ge=0, le=1_000_000)] = Field(
        default=DEFAULT_PRIORITY, description="lower is cheaper, preferred"
    )
    ships_to: list[CountryCode] = Field(
        default_factory=list, max_length=300, description="country codes; empty: anywhere"
    )
    cutoff_local: Annotated[time, AfterValidator(_local_time)] | None = Field(
        default=None, description="the day's last pick-up, local time (HH:MM)"
    )
    timezone: Annotated[str, AfterValidator(_timezone)] = Field(
        default="UTC", description="IANA name, e.g. Europe/Berlin"
    )
    active: bool = True


class LocationOut(BaseModel):
    code: str
    name: str
    kind: LocationKind
    country: str
    postal_code: str | None
    latitude: float | None
    longitude: float | None
    priority: int
    ships_to: list[str]
    cutoff_local: time | None
    timezone: str
    active: bool


class LocationList(BaseModel):
    locations: list[LocationOut]


@api.create_or_replace(
    router,
    "/locations/{code}",
    LocationOut,
    {422: {"description": "validation_failed (names the field); coordinates_incomplete"}},
)
async def put_location(
    runtime: RuntimeDep,
    response: Response,
    code: Annotated[str, Path(pattern=api.CODE_PATTERN)],
    body: LocationIn,
) -> LocationOut:
    """Create (201) or replace (200) the record of a stock location; `code` is the location
    name stock is kept under (and fulfilment's location code)."""
    if (body.latitude is None) != (body.longitude is None):
        missing = "longitude" if body.longitude is None else "latitude"
        raise ApiError(
            422,
            "coordinates_incomplete",
            f"{missing}: latitude and longitude are given together or not at all",
            field=missing,
        )
    record = LocationRecord(
        code=code,
        name=body.name,
        kind=body.kind,
        country=body.country,
        postal_code=body.postal_code,
        latitude=body.latitude,
        longitude=body.longitude,
        priority=body.priority,
        ships_to=tuple(sorted(set(body.ships_to))),
        cutoff_local=body.cutoff_local,
        timezone=body.timezone,
        active=body.active,
    )
    async with runtime.uow() as uow:
        created = await LocationStore(uow.conn).put(record)
    response.status_code = 201 if created else 200
    return _view(record)


@router.get(
    "/locations", response_model=LocationList, dependencies=[requires(Permission.STOCK_READ)]
)
async def list_locations(runtime: RuntimeDep) -> LocationList:
    async with runtime.pool.acquire() as conn:
        found = await LocationStore(conn).all()
    return LocationList(locations=[_view(record) for record in found])


@router.get(
    "/locations/{code}",
    response_model=LocationOut,
    dependencies=[requires(Permission.STOCK_READ)],
    responses={404: {"description": "location_not_found: no record of this location"}},
)
async def get_location(runtime: RuntimeDep, code: str) -> LocationOut:
    async with runtime.pool.acquire() as conn:
        found = await LocationStore(conn).get(code)
    if found is None:
        raise ApiError(404, "location_not_found", f"no record of location {code}", location=code)
    return _view(found)


def _view(record: LocationRecord) -> LocationOut:
    assert record.country is not None, "a stored location has a country"
    return LocationOut(
        code=record.code,
        name=record.name,
        kind=record.kind,
        country=record.country,
        postal_code=record.postal_code,
        latitude=record.latitude,
        longitude=record.longitude,
        priority=record.priority,
        ships_to=list(record.ships_to),
        cutoff_local=record.cutoff_local,
        timezone=record.timezone,
        active=record.active,
    )
