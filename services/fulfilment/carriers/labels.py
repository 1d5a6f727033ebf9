"""Shipping labels we print ourselves (the table-rate carrier's): a 4x6 inch PDF and the same
label in ZPL for thermal printers. Both carry the tracking number as a Code 128 barcode with the
number readable under it. Deterministic: the same content renders the same bytes.

Addresses are the customer's text, so neither output lets it reach the format: the PDF draws it
as text only, and in ZPL every field is hex-escaped (`^FH`), so a `^XZ` in a street name prints
as those characters instead of ending the label.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.units import inch
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from services.fulfilment.carriers.base import ParcelSpec, PostalAddress

PAGE_WIDTH = 4 * inch  # 288 pt
PAGE_HEIGHT = 6 * inch  # 432 pt
MARGIN = 12.0

# Carriers' tracking numbers are letters and digits; anything else is refused rather than
# encoded, so the barcode and the ZPL barcode field can hold nothing unexpected.
_BARCODE_DATA = re.compile(r"^[A-Z0-9]{1,40}$")


@dataclass(frozen=True)
class LabelContent:
    carrier: str  # as printed, e.g. "OMS Post"
    service: str
    tracking_number: str
    parcel: ParcelSpec

    def __post_init__(self) -> None:
        if not _BARCODE_DATA.match(self.tracking_number):
            raise ValueError(
                f"a tracking number on a label is 1-40 capital letters and digits,"
                f" not {self.tracking_number!r}"
            )


def format_weight(weight_g: int) -> str:
    return f"{weight_g / 1000:.2f} kg" if weight_g >= 1000 else f"{weight_g} g"


def address_lines(address: PostalAddress) -> list[str]:
    """The address as printed, one entry per line, empty parts left out."""
    locality = " ".join(p for p in (address.postal_code, address.city) if p)
    lines = [address.name, address.line1, address.line2, locality, address.region, address.country]
    return [_one_line(line) for line in lines if line and line.strip()]


def grouped_tracking_number(tracking_number: str) -> str:
    """An S10 number grouped as printed (`RR 473 124 829 GB`); others unchanged."""
    if re.fullmatch(r"[A-Z]{2}\d{9}[A-Z]{2}", tracking_number):
        t = tracking_number
        return f"{t[:2]} {t[2:5]} {t[5:8]} {t[8:11]} {t[11:]}"
    return tracking_number


# --- PDF ------------------------------------------------------------------------------------


def render_pdf(content: LabelContent) -> bytes:
    """The label as a one-page 4x6 inch PDF."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=(PAGE_WIDTH, PAGE_HEIGHT), invariant=1, pageCompression=1)
    canvas.setTitle(f"{content.carrier} label {content.tracking_number}")
    canvas.setAuthor("OMS")
    width = PAGE_WIDTH - 2 * MARGIN
    parcel = content.parcel

    # Header: carrier left, service in a black box right.
    top = PAGE_HEIGHT - MARGIN
    service = content.service.upper()
    canvas.setFont("Helvetica-Bold", 18)
    service_width = stringWidth(_pdf_text(service), "Helvetica-Bold", 18) + 12
    canvas.rect(PAGE_WIDTH - MARGIN - service_width, top - 26, service_width, 26, fill=1)
    canvas.setFillGray(1)
    canvas.drawRightString(PAGE_WIDTH - MARGIN - 6, top - 20, _pdf_text(service))
    canvas.setFillGray(0)
    _draw_fitted(canvas, content.carrier, "Helvetica-Bold", 14, MARGIN, top - 19, width - 100)
    y = top - 34
    _rule(canvas, y)

    # From: small.
    y -= 10
    canvas.setFont("Helvetica-Bold", 7)
    canvas.drawString(MARGIN, y, "FROM")
    for line in address_lines(parcel.from_address):
        y -= 9
        _draw_fitted(canvas, line, "Helvetica", 8, MARGIN + 30, y, width - 30)
    y -= 8
    _rule(canvas, y)

    # To: large.
    y -= 12
    canvas.setFont("Helvetica-Bold", 8)
    canvas.drawString(MARGIN, y, "TO")
    for line in address_lines(parcel.to_address):
        y -= 17
        _draw_fitted(canvas, line, "Helvetica-Bold", 14, MARGIN + 20, y, width - 20)
    if parcel.to_address.phone:
        y -= 13
        _draw_fitted(
            canvas, f"Tel. {parcel.to_address.phone}", "Helvetica", 9, MARGIN + 20, y, width - 20
        )
    y -= 10
    _rule(canvas, y)

    # Parcel facts.
    y -= 13
    canvas.setFont("Helvetica", 9)
    canvas.drawString(MARGIN, y, f"Weight: {format_weight(parcel.weight_g)}")
    canvas.drawRightString(PAGE_WIDTH - MARGIN, y, _pdf_text(f"Service: {content.service}"))
    y -= 12
    _draw_fitted(canvas, f"Ref: {parcel.reference}", "Helvetica", 9, MARGIN, y, width)
    y -= 8
    _rule(canvas, y)

    # Barcode at the bottom, the number under it.
    _draw_barcode(canvas, content.tracking_number, bottom=MARGIN + 20, width=width)
    canvas.setFont("Helvetica-Bold", 13)
    canvas.drawCentredString(
        PAGE_WIDTH / 2, MARGIN + 4, grouped_tracking_number(content.tracking_number)
    )

    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _draw_barcode(canvas: Canvas, data: str, *, bottom: float, width: float) -> None:
    bar_width = 1.5  # pt, about 0.53 mm per module
    barcode = Code128(data, barWidth=bar_width, barHeight=80, humanReadable=False)
    if barcode.width > width:  # quiet zones included
        barcode = Code128(
            data, barWidth=bar_width * width / barcode.width, barHeight=80, humanReadable=False
        )
    barcode.drawOn(canvas, (PAGE_WIDTH - barcode.width) / 2, bottom)


def _rule(canvas: Canvas, y: float) -> None:
    canvas.setLineWidth(1)
    canvas.line(MARGIN, y, PAGE_WIDTH - MARGIN, y)


def _draw_fitted(
    canvas: Canvas, text: str, font: str, size: float, x: float, y: float, max_width: float
) -> None:
    """Draw one line, shrunk down to 6 pt to fit and then cut with an ellipsis."""
    text = _pdf_text(text)
    while size > 6 and stringWidth(text, font, size) > max_width:
        size -= 0.5
    if stringWidth(text, font, size) > max_width:
        while text and stringWidth(text + "...", font, size) > max_width:
            text = text[:-1]
        text += "..."
    canvas.setFont(font, size)
    canvas.drawString(x, y, text)


def _pdf_text(text: str) -> str:
    """What the standard PDF fonts can show (Windows-1252): other letters lose their accents
    (NFKD), and what is left unprintable becomes `?`."""
    out: list[str] = []
    for char in _one_line(text):
        if _cp1252(char):
            out.append(char)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", char) if _cp1252(c))
        out.append(base or _TRANSLITERATIONS.get(char, "?"))
    return "".join(out)


# Letters NFKD leaves whole (a stroke is not a combining mark).
_TRANSLITERATIONS = {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ø": "O", "ø": "o", "\u0131": "i"}


def _cp1252(char: str) -> bool:
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return not unicodedata.category(char).startswith("M")


def _one_line(text: str) -> str:
    """Control characters (newlines, tabs) become spaces; runs of spaces one."""
    cleaned = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text)
    return " ".join(cleaned.split())


# --- ZPL ------------------------------------------------------------------------------------

ZPL_DOTS_PER_INCH = 203
_ZPL_WIDTH = 4 * ZPL_DOTS_PER_INCH
_ZPL_HEIGHT = 6 * ZPL_DOTS_PER_INCH
_ZPL_MODULE = 3  # dots per barcode module
_ZPL_MAX_FIELD = 60  # characters of one text line


def zpl_field_data(text: str) -> str:
    """`text` as hex-escaped ZPL field data (for after `^FH^FD`): printable ASCII as is except
    `^`, `~` and the escape character `_`; those and every other byte of the UTF-8 text as
    `_XX`. The result holds no command prefix at all, whatever the text."""
    out: list[str] = []
    for byte in _one_line(text).encode("utf-8"):
        char = chr(byte)
        if 0x20 <= byte <= 0x7E and char not in "^~_":
            out.append(char)
        else:
            out.append(f"_{byte:02X}")
    return "".join(out)


def render_zpl(content: LabelContent) -> str:
    """The label in ZPL II for a 4x6 inch, 203 dpi thermal printer (UTF-8, `^CI28`)."""
    parcel = content.parcel
    commands: list[str] = ["^XA", "^CI28", f"^PW{_ZPL_WIDTH}", f"^LL{_ZPL_HEIGHT}", "^LH0,0"]

    def text(x: int, y: int, height: int, value: str) -> None:
        commands.append(
            f"^FO{x},{y}^A0N,{height},{height}^FH^FD{zpl_field_data(value[:_ZPL_MAX_FIELD])}^FS"
        )

    text(30, 30, 40, content.carrier)
    commands.append("^FO560,20^GB230,60,60^FS")
    commands.append(
        f"^FO560,32^FR^A0N,44,44^FB230,1,0,C^FH^FD{zpl_field_data(content.service.upper()[:10])}^FS"
    )
    commands.append("^FO30,95^GB752,3,3^FS")

    y = 110
    text(30, y, 20, "FROM")
    for line in address_lines(parcel.from_address):
        text(110, y, 22, line)
        y += 26
    y += 6
    commands.append(f"^FO30,{y}^GB752,3,3^FS")

    y += 16
    text(30, y, 24, "TO")
    for line in address_lines(parcel.to_address):
        text(90, y, 42, line)
        y += 50
    if parcel.to_address.phone:
        text(90, y, 26, f"Tel. {parcel.to_address.phone}")
        y += 32
    commands.append(f"^FO30,{y}^GB752,3,3^FS")

    y += 16
    text(30, y, 26, f"Weight: {format_weight(parcel.weight_g)} | Service: {content.service}")
    y += 34
    text(30, y, 26, f"Ref: {parcel.reference}")
    y += 40
    commands.append(f"^FO30,{y}^GB752,3,3^FS")

    # Code 128, subset B throughout (^BC without a mode): start, data, check, stop symbols of
    # 11 modules each and 2 more for the stop's final bar.
    barcode_width = (len(content.tracking_number) + 3) * 11 * _ZPL_MODULE + 2 * _ZPL_MODULE
    x = max(30, (_ZPL_WIDTH - barcode_width) // 2)
    commands.append(f"^BY{_ZPL_MODULE},3,200")
    commands.append(f"^FO{x},{_ZPL_HEIGHT - 330}^BCN,200,N,N,N^FD{content.tracking_number}^FS")
    commands.append(
        f"^FO0,{_ZPL_HEIGHT - 110}^A0N,40,40^FB{_ZPL_WIDTH},1,0,C"
        f"^FD{grouped_tracking_number(content.tracking_number)}^FS"
    )
    commands.append("^XZ")
    return "\n".join(commands) + "\n"


def zpl_field_values(zpl: str) -> Iterable[str]:
    """The decoded data of every `^FD` field (the inverse of `zpl_field_data`), for checks."""
    for raw in re.findall(r"\^FD(.*?)\^FS", zpl, flags=re.DOTALL):
        decoded = re.sub(rb"_([0-9A-F]{2})", lambda m: bytes([int(m[1], 16)]), raw.encode())
        yield decoded.decode("utf-8")
