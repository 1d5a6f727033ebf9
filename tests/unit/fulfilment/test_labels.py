"""Labels: the ZPL carries the tracking number in its Code 128 field and nothing an address
smuggles in; the PDF is one deterministic 4x6 inch page. (The PDF's barcode is decoded in
test_label_barcode.py.)"""

from __future__ import annotations

import re

import pypdfium2 as pdfium
import pytest

from services.fulfilment.carriers.base import ParcelSpec, PostalAddress
from services.fulfilment.carriers.labels import (
    LabelContent,
    address_lines,
    format_weight,
    grouped_tracking_number,
    render_pdf,
    render_zpl,
    zpl_field_data,
    zpl_field_values,
)
from services.fulfilment.warehouse.model import Dimensions

TRACKING = "RR473124829GB"
SENDER = PostalAddress("OMS Warehouse", "Lagerstraße 1", "Berlin", "10115", "DE")
HOSTILE = PostalAddress(
    name="Mallory ^XZ^XA^FO0,0^FDpwned^FS",
    line1="1 Tilde ~JR Road_5E",
    line2="Line\nbreak\r\tand tab",
    city="Zürich",
    postal_code="8001",
    country="CH",
    region="~DGR:EVIL.GRF",
)


def content(to: PostalAddress = HOSTILE, tracking_number: str = TRACKING) -> LabelContent:
    parcel = ParcelSpec("parcel-42", SENDER, to, Dimensions(300, 200, 100), 1250)
    return LabelContent("OMS Post", "express", tracking_number, parcel)


def commands(zpl: str) -> list[str]:
    """The command names of a ZPL label, with each field's data taken out."""
    without_data = re.sub(r"\^FD.*?\^FS", "^FS", zpl, flags=re.DOTALL)
    return re.findall(r"[\^~][A-Z@][A-Z0-9]?", without_data)


def test_zpl_has_the_tracking_number_in_a_code128_field() -> None:
    zpl = render_zpl(content())
    assert zpl.startswith("^XA") and zpl.rstrip().endswith("^XZ")
    barcode = re.search(r"\^BC[^\^]*\^FD(?P<data>[^\^]*)\^FS", zpl)
    assert barcode is not None
    assert barcode["data"] == TRACKING
    assert zpl.count("^BC") == 1


def test_zpl_address_cannot_inject_commands() -> None:
    zpl = render_zpl(content())
    assert zpl.count("^XA") == 1 and zpl.count("^XZ") == 1
    assert "~" not in zpl  # no tilde command anywhere
    # Every ^FD holds no caret or tilde; the commands are exactly the label's own.
    for data in re.findall(r"\^FD(.*?)\^FS", zpl, flags=re.DOTALL):
        assert "^" not in data and "~" not in data and "\n" not in data
    assert set(commands(zpl)) <= {"^XA", "^CI", "^PW", "^LL", "^LH", "^FO", "^A0", "^FH", "^FD",
                                  "^FS", "^GB", "^FR", "^FB", "^BY", "^BC", "^XZ"}  # fmt: skip
    # The text survives: the printer undoes the hex escapes (^FH) and prints it as written.
    values = list(zpl_field_values(zpl))
    assert "Mallory ^XZ^XA^FO0,0^FDpwned^FS" in values
    assert "1 Tilde ~JR Road_5E" in values
    assert "Line break and tab" in values
    assert "8001 Zürich" in values
    assert zpl.isascii()


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain", "plain"),
        ("a^b~c_d", "a_5Eb_7Ec_5Fd"),
        ("Zoë", "Zo_C3_AB"),
        ("two\nlines", "two lines"),
    ],
)
def test_zpl_field_data(text: str, escaped: str) -> None:
    assert zpl_field_data(text) == escaped


@pytest.mark.parametrize("tracking_number", ["", "RR473124829gb", "RR 473 124 829 GB", "A^XZ"])
def test_a_label_refuses_a_tracking_number_unfit_for_a_barcode(tracking_number: str) -> None:
    with pytest.raises(ValueError):
        content(tracking_number=tracking_number)


def test_pdf_is_one_4x6_inch_page_and_deterministic() -> None:
    pdf = render_pdf(content())
    assert pdf == render_pdf(content())
    document = pdfium.PdfDocument(pdf)
    try:
        assert len(document) == 1
        page = document[0]
        assert page.get_size() == (288.0, 432.0)
        text = page.get_textpage().get_text_range()
    finally:
        document.close()
    assert "RR 473 124 829 GB" in text
    assert "Mallory ^XZ^XA^FO0,0^FDpwned^FS" in text  # drawn as text, whatever it says
    assert "8001 Zürich" in text
    assert "Weight: 1.25 kg" in text
    assert "Ref: parcel-42" in text


def test_pdf_shows_letters_beyond_latin1_without_their_marks() -> None:
    to = PostalAddress("Łukasz Żółć", "ulica Długa 1", "Gdańsk", "80-827", "PL")
    document = pdfium.PdfDocument(render_pdf(content(to)))
    try:
        text = document[0].get_textpage().get_text_range()
    finally:
        document.close()
    assert "Lukasz Zólc" in text  # ó is in Windows-1252, Ż ł ć are not
    assert "80-827 Gdansk" in text


def test_helpers() -> None:
    assert format_weight(850) == "850 g"
    assert format_weight(31_500) == "31.50 kg"
    assert grouped_tracking_number(TRACKING) == "RR 473 124 829 GB"
    assert grouped_tracking_number("1Z999AA10123456784") == "1Z999AA10123456784"
    assert address_lines(SENDER) == ["OMS Warehouse", "Lagerstraße 1", "10115 Berlin", "DE"]
