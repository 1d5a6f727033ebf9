"""What fulfilment's A4 documents share (reportlab): the page, a key/value header, an address
block, the lines table (SKU, description, quantity), a footer with the page number. No I/O:
documents come back as bytes, the same input always to the same bytes (invariant mode). The
standard fonts (Helvetica) cover Latin-1; characters outside it print as blanks."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, StyleSheet1, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Table, TableStyle


class A4Document:
    """One document being written: its styles, the building blocks, and `render`."""

    def __init__(self, title: str, footer: str) -> None:
        self.styles: StyleSheet1 = getSampleStyleSheet()
        self.body: ParagraphStyle = self.styles["BodyText"]
        self.cell = ParagraphStyle("cell", parent=self.body, fontSize=9, leading=11)
        self._title = title
        self._footer = footer

    def heading(self, text: str) -> Paragraph:
        return Paragraph(escape(text), self.styles["Title"])

    def text(self, text: str) -> Paragraph:
        return Paragraph(escape(text), self.body)

    def facts(self, rows: Sequence[tuple[str, str]], label_width_mm: float = 30) -> Table:
        """Label / value rows, labels bold."""
        table = Table(
            [list(row) for row in rows], colWidths=[label_width_mm * mm, None], hAlign="LEFT"
        )
        table.setStyle(
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
        return table

    def block(self, title: str, lines: Iterable[str]) -> Paragraph:
        """A titled block of lines, e.g. an address."""
        return Paragraph(
            f"<b>{escape(title)}</b><br/>" + "<br/>".join(escape(line) for line in lines),
            self.body,
        )

    def lines(self, lines: Iterable[tuple[str, str | None, int]]) -> Table:
        """SKU, description (when known) and quantity per line, the header repeated per page."""
        rows: list[list[object]] = [["SKU", "Description", "Quantity"]]
        for sku, description, quantity in lines:
            rows.append(
                [
                    Paragraph(escape(sku), self.cell),
                    Paragraph(escape(description or ""), self.cell),
                    str(quantity),
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
        return table

    def render(self, story: list[Flowable]) -> bytes:
        buffer = io.BytesIO()
        document = SimpleDocTemplate(
            buffer,
            pagesize=A4,
            leftMargin=18 * mm,
            rightMargin=18 * mm,
            topMargin=16 * mm,
            bottomMargin=16 * mm,
            title=self._title,
            author="OMS",
            invariant=True,
        )
        footer = self._footer

        def draw_footer(canvas: Canvas, doc: SimpleDocTemplate) -> None:
            canvas.saveState()
            canvas.setFont("Helvetica", 8)
            canvas.drawString(doc.leftMargin, 9 * mm, f"{footer} - page {doc.page}")
            canvas.restoreState()

        document.build(story, onFirstPage=draw_footer, onLaterPages=draw_footer)
        return buffer.getvalue()


def units(total: int) -> str:
    return f"{total} unit{'s' if total != 1 else ''}"
