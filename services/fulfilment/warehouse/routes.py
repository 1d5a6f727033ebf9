"""Setting up the floor: locations, a warehouse's zones and bins, items, the box catalogue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.types import DecoratedCallable
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.fulfilment.warehouse import store
from services.fulfilment.warehouse.model import Bin, Dimensions, Item, LocationKind
from shared.platform.auth import Permission, requires
from shared.platform.errors import ApiError
from shared.platform.service import RuntimeDep

router = APIRouter(prefix="/v1", tags=["warehouse"])

Code = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Millimetres = Annotated[int, Field(strict=True, gt=0, le=10_000)]
Grams = Annotated[int, Field(strict=True, gt=0, le=1_000_000)]
Metres = Annotated[float, Field(ge=0, le=100_000)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddressIn(Body):
    name: Text
    line1: Text
    line2: Text | None = None
    city: Text
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)]
    region: Text | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
    phone: Text | None = None
    email: Text | None = None


class LocationIn(Body):
    kind: LocationKind
    name: Text
    address: AddressIn


class LocationOut(BaseModel):
    code: str
    kind: LocationKind
    name: str
    address: dict[str, Any]


class ZoneIn(Body):
    code: Code
    name: Text


class BinIn(Body):
    code: Code
    zone: Code
    sequence: Annotated[int, Field(ge=0, le=10_000_000)] = Field(
        description="rank on the pick path: pickers walk bins in this order"
    )
    x_m: Metres
    y_m: Metres
    skus: list[Code] = Field(default_factory=list, max_length=1000)


class LayoutIn(Body):
    zones: list[ZoneIn] = Field(min_length=1, max_length=1000)
    bins: list[BinIn] = Field(max_length=100_000)

    @model_validator(mode="after")
    def _consistent(self) -> LayoutIn:
        zones = {z.code for z in self.zones}
        if len(zones) != len(self.zones):
            raise ValueError("zones: a zone code appears twice")
        codes = [b.code for b in self.bins]
        if len(set(codes)) != len(codes):
            raise ValueError("bins: a bin code appears twice")
        unknown = sorted({b.zone for b in self.bins} - zones)
        if unknown:
            raise ValueError(f"bins: zone {unknown[0]!r} is not among the zones")
        return self


class LayoutOut(BaseModel):
    location: str
    zones: list[ZoneIn]
    bins: list[BinIn]


class DimensionsIn(Body):
    length_mm: Millimetres
    width_mm: Millimetres
    height_mm: Millimetres


class ItemIn(Body):
    barcode: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    description: Annotated[str, StringConstraints(max_length=200)] = ""
    dimensions: DimensionsIn
    weight_g: Grams


class ItemOut(ItemIn):
    sku: str


class BoxIn(Body):
    inner: DimensionsIn = Field(description="inner dimensions")
    max_weight_g: Grams = Field(description="the most the box may weigh, contents and box")
    tare_g: Annotated[int, Field(strict=True, ge=0, le=100_000)]


class BoxOut(BoxIn):
    code: str


class LocationList(BaseModel):
    locations: list[LocationOut]


class ItemList(BaseModel):
    items: list[ItemOut]


class BoxList(BaseModel):
    boxes: list[BoxOut]


def _dimensions(d: DimensionsIn) -> Dimensions:
    return Dimensions(d.length_mm, d.width_mm, d.height_mm)


def _create_or_replace(
    path: str, out: type[BaseModel], refusals: dict[int | str, dict[str, Any]] | None = None
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """A set-up PUT: it creates (201) or replaces (200) what the path names and answers `out`."""
    return router.put(
        path,
        responses={201: {"model": out, "description": "created"}, **(refusals or {})},
        response_model=out,
        dependencies=[requires(Permission.WAREHOUSE_SETUP)],
    )


def _created(response: Response, created: bool) -> None:
    response.status_code = 201 if created else 200


async def _known_location(runtime: RuntimeDep, code: str) -> store.Location:
    found = await store.get_location(runtime.pool, code)
    if found is None:
        raise ApiError(404, "location_not_found", f"no location {code}", location=code)
    return found


@_create_or_replace("/locations/{code}", LocationOut)
async def put_location(
    runtime: RuntimeDep,
    code: Annotated[Code, Path()],
    body: LocationIn,
    response: Response,
) -> LocationOut:
    """Create (201) or replace (200) a location; `code` is the location name inventory uses."""
    location = store.Location(code, body.kind, body.name, body.address.model_dump(mode="json"))
    async with runtime.uow() as uow:
        _created(response, await store.put_location(uow.conn, location))
    return LocationOut(**vars(location))


@router.get(
    "/locations",
    response_model=LocationList,
    dependencies=[requires(Permission.FULFILMENTS_READ)],
)
async def list_locations(runtime: RuntimeDep) -> LocationList:
    found = await store.list_locations(runtime.pool)
    return LocationList(locations=[LocationOut(**vars(loc)) for loc in found])


@router.get(
    "/locations/{code}",
    response_model=LocationOut,
    dependencies=[requires(Permission.FULFILMENTS_READ)],
)
async def get_location(runtime: RuntimeDep, code: str) -> LocationOut:
    return LocationOut(**vars(await _known_location(runtime, code)))


@router.put(
    "/locations/{code}/layout",
    responses={409: {"description": "location_has_no_floor: a 3PL or dropship location"}},
    response_model=LayoutOut,
    dependencies=[requires(Permission.WAREHOUSE_SETUP)],
)
async def put_layout(
    runtime: RuntimeDep,
    code: str,
    body: LayoutIn,
) -> LayoutOut:
    """Replace a warehouse's zones and bins and what lies in them, all at once."""
    location = await _known_location(runtime, code)
    if location.kind is not LocationKind.WAREHOUSE and location.kind is not LocationKind.STORE:
        raise ApiError(
            409,
            "location_has_no_floor",
            f"{code} is a {location.kind.value} location: its floor is not ours to lay out",
            location=code,
        )
    layout = store.Layout(
        zones=tuple(store.Zone(z.code, z.name) for z in body.zones),
        bins=tuple(Bin(b.code, b.zone, b.sequence, b.x_m, b.y_m) for b in body.bins),
        skus_by_bin={b.code: tuple(sorted(set(b.skus))) for b in body.bins if b.skus},
    )
    async with runtime.uow() as uow:
        await store.replace_layout(uow.conn, code, layout)
    return await get_layout(runtime, code)


@router.get(
    "/locations/{code}/layout",
    response_model=LayoutOut,
    dependencies=[requires(Permission.FULFILMENTS_READ)],
)
async def get_layout(runtime: RuntimeDep, code: str) -> LayoutOut:
    await _known_location(runtime, code)
    layout = await store.get_layout(runtime.pool, code)
    return LayoutOut(
        location=code,
        zones=[ZoneIn(code=z.code, name=z.name) for z in layout.zones],
        bins=[
            BinIn(
                code=b.code,
                zone=b.zone,
                sequence=b.sequence,
                x_m=b.x_m,
                y_m=b.y_m,
                skus=list(layout.skus_by_bin.get(b.code, ())),
            )
            for b in layout.bins
        ],
    )


@_create_or_replace(
    "/items/{sku}",
    ItemOut,
    {409: {"description": "barcode_in_use: the barcode belongs to another SKU"}},
)
async def put_item(
    runtime: RuntimeDep,
    sku: Annotated[Code, Path()],
    body: ItemIn,
    response: Response,
) -> ItemOut:
    """A SKU as the floor handles it: the barcode scanned at pick and pack, size, weight."""
    item = Item(sku, body.barcode, _dimensions(body.dimensions), body.weight_g)
    try:
        async with runtime.uow() as uow:
            _created(response, await store.put_item(uow.conn, item, body.description))
    except store.BarcodeInUse as exc:
        raise ApiError(409, "barcode_in_use", str(exc), field="barcode") from exc
    return ItemOut(sku=sku, **body.model_dump())


@router.get("/items", response_model=ItemList, dependencies=[requires(Permission.FULFILMENTS_READ)])
async def list_items(runtime: RuntimeDep) -> ItemList:
    return ItemList(
        items=[
            ItemOut(
                sku=item.sku,
                barcode=item.barcode,
                description=description,
                dimensions=DimensionsIn(**vars(item.dimensions)),
                weight_g=item.weight_g,
            )
            for item, description in await store.list_items(runtime.pool)
        ]
    )


@_create_or_replace("/boxes/{code}", BoxOut)
async def put_box(
    runtime: RuntimeDep,
    code: Annotated[Code, Path()],
    body: BoxIn,
    response: Response,
) -> BoxOut:
    if body.tare_g >= body.max_weight_g:
        raise ApiError(
            422,
            "tare_exceeds_max_weight",
            "tare_g: the box alone weighs its maximum",
            field="tare_g",
        )
    box = store.Box(code, _dimensions(body.inner), body.max_weight_g, body.tare_g)
    async with runtime.uow() as uow:
        _created(response, await store.put_box(uow.conn, box))
    return BoxOut(code=code, **body.model_dump())


@router.get("/boxes", response_model=BoxList, dependencies=[requires(Permission.FULFILMENTS_READ)])
async def list_boxes(runtime: RuntimeDep) -> BoxList:
    return BoxList(
        boxes=[
            BoxOut(
                code=b.code,
                inner=DimensionsIn(**vars(b.inner)),
                max_weight_g=b.max_weight_g,
                tare_g=b.tare_g,
            )
            for b in await store.list_boxes(runtime.pool)
        ]
    )
