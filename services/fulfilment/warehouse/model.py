"""Pure value types of the warehouse floor, shared by picking, packing and carriers."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class LocationKind(StrEnum):
    WAREHOUSE = "warehouse"
    STORE = "store"
    THIRD_PARTY_LOGISTICS = "3pl"
    DROPSHIP_SUPPLIER = "dropship_supplier"


@dataclass(frozen=True, order=True)
class Dimensions:
    """Outer dimensions of an item, or inner dimensions of a box, in millimetres."""

    length_mm: int
    width_mm: int
    height_mm: int

    @property
    def volume_mm3(self) -> int:
        return self.length_mm * self.width_mm * self.height_mm


@dataclass(frozen=True)
class Item:
    """One SKU as the warehouse handles it."""

    sku: str
    barcode: str
    dimensions: Dimensions
    weight_g: int


@dataclass(frozen=True)
class Bin:
    """A storage place. `sequence` is its rank on the warehouse's walking path (the pick path);
    (x_m, y_m) its position on the floor, for distances."""

    code: str
    zone: str
    sequence: int
    x_m: float
    y_m: float


class BinStock(NamedTuple):
    """Units of one SKU lying in one bin. A plain `(bin, quantity)` pair reads the same."""

    bin: Bin
    quantity: int
