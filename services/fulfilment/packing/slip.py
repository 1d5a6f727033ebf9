"""The packing slip that goes into each parcel, as a PDF (reportlab).

One page per parcel unless its lines run over: the order and fulfilment ids, "parcel 1 of 2",
the ship-to address, the lines (SKU, description when known, quantity) and a Code 128 barcode of
the parcel id for the pack station's scanner. No I/O: the PDF comes back as bytes, and the same
slip always renders to the same bytes (reportlab's invariant mode), so a reprint is identical.

The standard PDF fonts (Helvetica) cover Latin-1; characters outside it print as blanks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Spacer

from services.fulfilment.carriers.base import PostalAddress
from services.fulfilment.documents import A4Document, units
from services.fulfilment.packing.boxes import PackedBox


@dataclass(frozen=True)
class SlipLine:
    sku: str
    quantity: int
    description: str | None = None


@dataclass(frozen=True)
class PackingSlip:
    """What one parcel's slip shows. `parcel_number` counts from 1 up to `parcel_count`."""

    order_id: str
    fulfilment_id: str
    parcel_id: str
    parcel_number: int
    parcel_count: int
    ship_to: PostalAddress
    lines: tuple[SlipLine, ...]

    def __post_init__(self) -> None:
        if not 1 <= self.parcel_number <= self.parcel_count:
            raise ValueError(f"parcel {self.parcel_number} of {self.parcel_count}")
        if not self.parcel_id or not all(" " <= c <= "~" for c in self.parcel_id):
            raise ValueError(f"parcel id {self.parcel_id!r} is not printable ASCII (Code 128)")
        if not self.lines:
            raise ValueError("a packing slip needs at least one line")
        for line in self.lines:
            if line.quantity <= 0:
                raise ValueError(f"{line.sku} has quantity {line.quantity}")


def slip_lines(
    packed: PackedBox, descriptions: Mapping[str, str] | None = None
) -> tuple[SlipLine, ...]:
    """The slip's lines for one box of a packing plan, by SKU, with descriptions where given."""
    descriptions = descriptions or {}
    return tuple(
        SlipLine(sku, quantity, descriptions.get(sku))
        for sku, quantity in packed.quantities().items()
    )


def _address_lines(address: PostalAddress) -> list[str]:
    locality = " ".join(part for part in (address.postal_code, address.city) if part)
    lines = [address.name, address.line1, address.line2, locality, address.region, address.country]
    return [line for line in lines if line]


def _barcode(parcel_id: str) -> Flowable:
    # X-dimension 0.33 mm (13 mil), well above scanners' minimum; bars 15 mm tall.
    return Code128(parcel_id, barWidth=0.33 * mm, barHeight=15 * mm, humanReadable=True)


def packing_slip_pdf(slip: PackingSlip) -> bytes:
    """The slip as a PDF document (A4)."""
    doc = A4Document(
        title=f"Packing slip {slip.order_id} parcel {slip.parcel_number} of {slip.parcel_count}",
        footer=f"Order {slip.order_id} - parcel {slip.parcel_number} of {slip.parcel_count}",
    )
    total = sum(line.quantity for line in slip.lines)
    return doc.render(
        [
            doc.heading("Packing slip"),
            doc.facts(
                [
                    ("Order", slip.order_id),
                    ("Fulfilment", slip.fulfilment_id),
                    ("Parcel", f"{slip.parcel_number} of {slip.parcel_count}"),
                    ("Parcel id", slip.parcel_id),
                ]
            ),
            Spacer(1, 4 * mm),
            _barcode(slip.parcel_id),
            Spacer(1, 6 * mm),
            doc.block("Ship to", _address_lines(slip.ship_to)),
            Spacer(1, 6 * mm),
            doc.lines((line.sku, line.description, line.quantity) for line in slip.lines),
            Spacer(1, 3 * mm),
            doc.text(f"{units(total)} in this parcel"),
        ]
    )
