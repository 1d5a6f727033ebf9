"""SQL of the warehouse model: locations, zones and bins, items, bin assignments, boxes."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.fulfilment.upserts import create_or_replace
from services.fulfilment.warehouse.model import Bin, Dimensions, Item, LocationKind
from shared.platform.db import DbConnection

Db = DbConnection | asyncpg.Pool


@dataclass(frozen=True)
class Location:
    code: str
    kind: LocationKind
    name: str
    address: dict[str, Any]


@dataclass(frozen=True)
class Zone:
    code: str
    name: str


@dataclass(frozen=True)
class Layout:
    """A warehouse's zones and bins, and which SKUs lie in each bin."""

    zones: tuple[Zone, ...]
    bins: tuple[Bin, ...]
    skus_by_bin: dict[str, tuple[str, ...]]

    def bins_of(self) -> dict[str, list[Bin]]:
        """SKU → the bins holding it, in walking order."""
        by_code = {b.code: b for b in self.bins}
        found: dict[str, list[Bin]] = defaultdict(list)
        for bin_code, skus in self.skus_by_bin.items():
            for sku in skus:
                found[sku].append(by_code[bin_code])
        return {sku: sorted(bins, key=lambda b: b.sequence) for sku, bins in found.items()}


@dataclass(frozen=True)
class Box:
    code: str
    inner: Dimensions
    max_weight_g: int
    tare_g: int


# --- locations ------------------------------------------------------------------------------


async def put_location(conn: DbConnection, location: Location) -> bool:
    """Create or replace; True when it was created."""
    return await create_or_replace(
        conn,
        "locations",
        {
            "code": location.code,
            "kind": location.kind.value,
            "name": location.name,
            "address": location.address,
        },
        stamp_updated_at=True,
    )


async def get_location(db: Db, code: str) -> Location | None:
    row = await db.fetchrow("SELECT code, kind, name, address FROM locations WHERE code = $1", code)
    return _location(row) if row else None


async def list_locations(db: Db) -> list[Location]:
    rows = await db.fetch("SELECT code, kind, name, address FROM locations ORDER BY code")
    return [_location(r) for r in rows]


def _location(row: asyncpg.Record) -> Location:
    return Location(row["code"], LocationKind(row["kind"]), row["name"], row["address"])


# --- layout ---------------------------------------------------------------------------------


async def replace_layout(conn: DbConnection, location: str, layout: Layout) -> None:
    """The location's zones, bins and bin assignments become exactly `layout`."""
    await conn.execute("DELETE FROM zones WHERE location = $1", location)
    await conn.executemany(
        "INSERT INTO zones (location, code, name) VALUES ($1, $2, $3)",
        [(location, z.code, z.name) for z in layout.zones],
    )
    await conn.execute(
        "INSERT INTO bins (location, code, zone, sequence, x_m, y_m)"
        " SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::float8[], $6::float8[])",
        location,
        [b.code for b in layout.bins],
        [b.zone for b in layout.bins],
        [b.sequence for b in layout.bins],
        [b.x_m for b in layout.bins],
        [b.y_m for b in layout.bins],
    )
    pairs = [(bin_code, sku) for bin_code, skus in layout.skus_by_bin.items() for sku in skus]
    await conn.execute(
        "INSERT INTO bin_skus (location, bin, sku)"
        " SELECT $1, * FROM unnest($2::text[], $3::text[])",
        location,
        [bin_code for bin_code, _ in pairs],
        [sku for _, sku in pairs],
    )


async def get_layout(db: Db, location: str) -> Layout:
    zones = await db.fetch(
        "SELECT code, name FROM zones WHERE location = $1 ORDER BY code", location
    )
    bins = await db.fetch(
        "SELECT code, zone, sequence, x_m, y_m FROM bins WHERE location = $1"
        " ORDER BY sequence, code",
        location,
    )
    assignments = await db.fetch(
        "SELECT bin, array_agg(sku ORDER BY sku) AS skus FROM bin_skus WHERE location = $1"
        " GROUP BY bin",
        location,
    )
    return Layout(
        zones=tuple(Zone(r["code"], r["name"]) for r in zones),
        bins=tuple(Bin(r["code"], r["zone"], r["sequence"], r["x_m"], r["y_m"]) for r in bins),
        skus_by_bin={r["bin"]: tuple(r["skus"]) for r in assignments},
    )


# --- items and boxes ------------------------------------------------------------------------


class BarcodeInUse(Exception):
    def __init__(self, barcode: str) -> None:
        super().__init__(f"barcode {barcode!r} already belongs to another SKU")
        self.barcode = barcode


async def put_item(conn: DbConnection, item: Item, description: str) -> bool:
    """Create or replace; raises BarcodeInUse when another SKU has the barcode."""
    try:
        async with conn.transaction():
            return await _upsert_item(conn, item, description)
    except asyncpg.UniqueViolationError as exc:
        raise BarcodeInUse(item.barcode) from exc


async def _upsert_item(conn: DbConnection, item: Item, description: str) -> bool:
    return await create_or_replace(
        conn,
        "items",
        {
            "sku": item.sku,
            "barcode": item.barcode,
            "description": description,
            **_dimension_columns(item.dimensions),
            "weight_g": item.weight_g,
        },
        stamp_updated_at=False,
    )


async def items(db: Db, skus: list[str]) -> dict[str, Item]:
    rows = await db.fetch(
        "SELECT sku, barcode, length_mm, width_mm, height_mm, weight_g FROM items"
        " WHERE sku = ANY($1::text[])",
        skus,
    )
    return {r["sku"]: _item(r) for r in rows}


async def item_descriptions(db: Db, skus: list[str]) -> dict[str, str]:
    rows = await db.fetch("SELECT sku, description FROM items WHERE sku = ANY($1::text[])", skus)
    return {r["sku"]: r["description"] for r in rows}


async def list_items(db: Db) -> list[tuple[Item, str]]:
    rows = await db.fetch(
        "SELECT sku, barcode, description, length_mm, width_mm, height_mm, weight_g FROM items"
        " ORDER BY sku"
    )
    return [(_item(r), r["description"]) for r in rows]


def _dimension_columns(d: Dimensions) -> dict[str, int]:
    return {"length_mm": d.length_mm, "width_mm": d.width_mm, "height_mm": d.height_mm}


def _item(r: asyncpg.Record) -> Item:
    return Item(
        r["sku"],
        r["barcode"],
        Dimensions(r["length_mm"], r["width_mm"], r["height_mm"]),
        r["weight_g"],
    )


async def put_box(conn: DbConnection, box: Box) -> bool:
    return await create_or_replace(
        conn,
        "boxes",
        {
            "code": box.code,
            **_dimension_columns(box.inner),
            "max_weight_g": box.max_weight_g,
            "tare_g": box.tare_g,
        },
        stamp_updated_at=False,
    )


async def list_boxes(db: Db) -> list[Box]:
    rows = await db.fetch(
        "SELECT code, length_mm, width_mm, height_mm, max_weight_g, tare_g FROM boxes"
        " ORDER BY length_mm * width_mm * height_mm, code"
    )
    return [
        Box(
            r["code"],
            Dimensions(r["length_mm"], r["width_mm"], r["height_mm"]),
            r["max_weight_g"],
            r["tare_g"],
        )
        for r in rows
    ]
