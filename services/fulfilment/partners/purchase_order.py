"""A dropship supplier's purchase order as a PDF (reportlab), free of I/O.

One A4 document: the PO number, the date, the supplier (name and address), the ship-to address
and shipping method, our order and fulfilment references, the lines (SKU, description where we
know it, quantity) and the date the shipment must be confirmed by. The same PO always renders to
the same bytes (reportlab's invariant mode), so a re-send carries an identical document. The
standard PDF fonts cover Latin-1; characters outside it print as blanks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import Spacer, Table, TableStyle

from services.fulfilment.documents import A4Document, units


@dataclass(frozen=True)
class PoLine:
    sku: str
    quantity: int
    description: str | None = None


@dataclass(frozen=True)
class PurchaseOrder:
    number: str
    issued_at: datetime
    confirm_by: datetime
    supplier_code: str
    supplier_name: str
    supplier_address: Mapping[str, Any]
    ship_to: Mapping[str, Any]
    shipping_method: str | None
    order_id: str
    fulfilment_id: str
    dispatch_id: str
    lines: tuple[PoLine, ...]

    def __post_init__(self) -> None:
        if not self.lines:
            raise ValueError("a purchase order needs at least one line")


def _address_lines(address: Mapping[str, Any]) -> list[str]:
    def part(key: str) -> str:
        value = address.get(key)
        return str(value).strip() if value not in (None, "") else ""

    locality = " ".join(p for p in (part("postal_code"), part("city")) if p)
    lines = [part("name"), part("line1"), part("line2"), locality, part("region"), part("country")]
    return [line for line in lines if line]


def purchase_order_pdf(po: PurchaseOrder) -> bytes:
    doc = A4Document(
        title=f"Purchase order {po.number}",
        footer=f"Purchase order {po.number} - {po.supplier_code}",
    )
    parties = Table(
        [
            [
                doc.block("Supplier", [po.supplier_name, *_address_lines(po.supplier_address)]),
                doc.block(
                    "Ship to (drop ship, no invoice in the parcel)", _address_lines(po.ship_to)
                ),
            ]
        ],
        colWidths=["50%", "50%"],
        hAlign="LEFT",
    )
    parties.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)])
    )
    total = sum(line.quantity for line in po.lines)
    return doc.render(
        [
            doc.heading(f"Purchase order {po.number}"),
            doc.facts(
                [
                    ("PO number", po.number),
                    ("Date", po.issued_at.strftime("%Y-%m-%d")),
                    ("Confirm shipment by", po.confirm_by.strftime("%Y-%m-%d %H:%M UTC")),
                    ("Our order", po.order_id),
                    ("Our reference", po.fulfilment_id),
                    ("Shipping method", po.shipping_method or "standard"),
                ],
                label_width_mm=42,
            ),
            Spacer(1, 6 * mm),
            parties,
            Spacer(1, 6 * mm),
            doc.lines((line.sku, line.description, line.quantity) for line in po.lines),
            Spacer(1, 3 * mm),
            doc.text(f"{units(total)} in total"),
            Spacer(1, 6 * mm),
            doc.text(
                "Ship to the address above and confirm the shipment (carrier and tracking number"
                f" per parcel) quoting our reference {po.fulfilment_id}."
            ),
        ]
    )
