"""A dropship supplier's purchase order as a PDF (reportlab), free of I/O.

One A4 document: the PO number, the date, the supplier (name and address), the ship-to address
and shipping method, our order and fulfilment references, the lines (SKU, description where we
know it, quantity) and the date the shipment must be confirmed by. The same PO always renders to
the same bytes (reportlab's invariant mode), so a re-send carries an identical document. The
standard PDF fonts cover Latin-1; characters outside it print as blanks.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle


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


def _block(title: str, lines: list[str], style: ParagraphStyle) -> Paragraph:
    return Paragraph(f"<b>{escape(title)}</b><br/>" + "<br/>".join(escape(x) for x in lines), style)


def purchase_order_pdf(po: PurchaseOrder) -> bytes:
    styles = getSampleStyleSheet()
    body = styles["BodyText"]
    cell = ParagraphStyle("po-cell", parent=body, fontSize=9, leading=11)
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"Purchase order {po.number}",
        author="OMS",
        invariant=True,
    )
    header = Table(
        [
            ["PO number", po.number],
            ["Date", po.issued_at.strftime("%Y-%m-%d")],
            ["Confirm shipment by", po.confirm_by.strftime("%Y-%m-%d %H:%M UTC")],
            ["Our order", po.order_id],
            ["Our reference", po.fulfilment_id],
            ["Shipping method", po.shipping_method or "standard"],
        ],
        colWidths=[42 * mm, None],
        hAlign="LEFT",
    )
    header.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold"),
                ("FONTSIZE", (0, 0), (-1, -1), 10),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    parties = Table(
        [
            [
                _block(
                    "Supplier",
                    [po.supplier_name, *_address_lines(po.supplier_address)],
                    body,
                ),
                _block(
                    "Ship to (drop ship, no invoice in the parcel)",
                    _address_lines(po.ship_to),
                    body,
                ),
            ]
        ],
        colWidths=["50%", "50%"],
        hAlign="LEFT",
    )
    parties.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)])
    )
    rows: list[list[object]] = [["SKU", "Description", "Quantity"]]
    for line in po.lines:
        rows.append(
            [
                Paragraph(escape(line.sku), cell),
                Paragraph(escape(line.description or ""), cell),
                str(line.quantity),
            ]
        )
    table = Table(rows, colWidths=[45 * mm, None, 22 * mm], repeatRows=1, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.grey),
                ("ALIGN", (2, 0), (2, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    total = sum(line.quantity for line in po.lines)
    story: list[Flowable] = [
        Paragraph(f"Purchase order {escape(po.number)}", styles["Title"]),
        header,
        Spacer(1, 6 * mm),
        parties,
        Spacer(1, 6 * mm),
        table,
        Spacer(1, 3 * mm),
        Paragraph(f"{total} unit{'s' if total != 1 else ''} in total", body),
        Spacer(1, 6 * mm),
        Paragraph(
            "Ship to the address above and confirm the shipment (carrier and tracking number"
            f" per parcel) quoting our reference {escape(po.fulfilment_id)}.",
            body,
        ),
    ]
    footer = f"Purchase order {po.number} - {po.supplier_code}"

    def draw_footer(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(doc.leftMargin, 9 * mm, f"{footer} - page {doc.page}")
        canvas.restoreState()

    document.build(story, onFirstPage=draw_footer, onLaterPages=draw_footer)
    return buffer.getvalue()
