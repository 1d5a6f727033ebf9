"""Scan verification at the pack station, free of I/O.

Each unit's barcode is scanned as it goes into the parcel. A parcel knows how many units of each
SKU it should hold (its box in the packing plan) and the barcodes of the whole fulfilment:

    in_progress     --scan-->   in_progress      (units still to scan)
    in_progress     --scan-->   ready_to_close   (the last expected unit)
    ready_to_close  --close-->  closed

Refused, with the parcel unchanged (stable codes, also the HTTP error codes):

    wrong_barcode   the barcode belongs to no item of the fulfilment
    over_scan       one unit more of a SKU than the parcel should hold; a SKU of the fulfilment
                    that belongs in another parcel is an over-scan here, as this one expects none
    items_missing   closing while units are still to be scanned (the refusal lists them)
    parcel_closed   scanning into a parcel already closed

Closing a closed parcel is an idempotent repeat: it stays closed, nothing is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from services.fulfilment.packing.boxes import PackedBox
from services.fulfilment.warehouse.model import Item


class ScanStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    READY_TO_CLOSE = "ready_to_close"
    CLOSED = "closed"


class ScanRefusal(StrEnum):
    WRONG_BARCODE = "wrong_barcode"
    OVER_SCAN = "over_scan"
    ITEMS_MISSING = "items_missing"
    PARCEL_CLOSED = "parcel_closed"


@dataclass(frozen=True)
class MissingUnits:
    sku: str
    expected: int
    scanned: int

    @property
    def missing(self) -> int:
        return self.expected - self.scanned


class ScanRefused(Exception):
    """A scan or close the parcel refuses. `barcode` and `sku` name what was scanned, where known;
    `missing` lists what is still to scan (for `items_missing`)."""

    def __init__(
        self,
        code: ScanRefusal,
        message: str,
        *,
        barcode: str | None = None,
        sku: str | None = None,
        missing: tuple[MissingUnits, ...] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.barcode = barcode
        self.sku = sku
        self.missing = missing


@dataclass(frozen=True)
class ParcelScan:
    """One parcel being packed. Build it with `start` (or `for_box`); `scan` and `close` return
    the next state and leave this one as it was."""

    expected: Mapping[str, int]  # SKU -> units this parcel should hold
    sku_by_barcode: Mapping[str, str]  # every barcode of the fulfilment
    scanned: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    closed: bool = False

    @classmethod
    def start(cls, expected: Mapping[str, int], fulfilment_items: Iterable[Item]) -> ParcelScan:
        sku_by_barcode: dict[str, str] = {}
        for item in fulfilment_items:
            barcode = item.barcode.strip()
            if not barcode:
                raise ValueError(f"{item.sku} has no barcode")
            if sku_by_barcode.setdefault(barcode, item.sku) != item.sku:
                raise ValueError(
                    f"barcode {barcode} belongs to both {sku_by_barcode[barcode]} and {item.sku}"
                )
        scannable = set(sku_by_barcode.values())
        for sku, quantity in expected.items():
            if quantity <= 0:
                raise ValueError(f"{sku} is expected {quantity} times")
            if sku not in scannable:
                raise ValueError(f"{sku} is expected but no item of the fulfilment has its barcode")
        if not expected:
            raise ValueError("a parcel must expect at least one unit")
        return cls(
            expected=MappingProxyType(dict(sorted(expected.items()))),
            sku_by_barcode=MappingProxyType(sku_by_barcode),
        )

    @classmethod
    def for_box(cls, packed: PackedBox, fulfilment_items: Iterable[Item]) -> ParcelScan:
        """The parcel for one box of a packing plan."""
        return cls.start(packed.quantities(), fulfilment_items)

    @property
    def missing(self) -> tuple[MissingUnits, ...]:
        """What is still to scan, by SKU."""
        return tuple(
            MissingUnits(sku, quantity, self.scanned.get(sku, 0))
            for sku, quantity in self.expected.items()
            if self.scanned.get(sku, 0) < quantity
        )

    @property
    def status(self) -> ScanStatus:
        if self.closed:
            return ScanStatus.CLOSED
        return ScanStatus.IN_PROGRESS if self.missing else ScanStatus.READY_TO_CLOSE

    @property
    def ready_to_close(self) -> bool:
        return self.status is ScanStatus.READY_TO_CLOSE

    def scan(self, barcode: str) -> ParcelScan:
        """The parcel with one more unit of the scanned barcode's SKU; raises ScanRefused."""
        barcode = barcode.strip()
        if self.closed:
            raise ScanRefused(
                ScanRefusal.PARCEL_CLOSED, "the parcel is already closed", barcode=barcode
            )
        sku = self.sku_by_barcode.get(barcode)
        if sku is None:
            raise ScanRefused(
                ScanRefusal.WRONG_BARCODE,
                f"barcode {barcode} is not an item of this fulfilment",
                barcode=barcode,
            )
        already = self.scanned.get(sku, 0)
        expected = self.expected.get(sku, 0)
        if already >= expected:
            raise ScanRefused(
                ScanRefusal.OVER_SCAN,
                f"this parcel takes {expected} of {sku} and has {already}",
                barcode=barcode,
                sku=sku,
            )
        scanned = dict(self.scanned)
        scanned[sku] = already + 1
        return replace(self, scanned=MappingProxyType(dict(sorted(scanned.items()))))

    def close(self) -> ParcelScan:
        """The parcel closed; raises ScanRefused (`items_missing`) while units are still to scan."""
        if self.closed:
            return self
        missing = self.missing
        if missing:
            listed = ", ".join(f"{gap.missing} x {gap.sku}" for gap in missing)
            raise ScanRefused(
                ScanRefusal.ITEMS_MISSING, f"still to scan: {listed}", missing=missing
            )
        return replace(self, closed=True)
