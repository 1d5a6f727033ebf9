"""The packing slip PDF: valid, readable, with the ids, the parcel count and the lines."""

from __future__ import annotations

import pypdfium2 as pdfium
import pytest

from services.fulfilment.carriers.base import PostalAddress
from services.fulfilment.packing.boxes import BoxType, choose_boxes
from services.fulfilment.packing.slip import (
    PackingSlip,
    SlipLine,
    packing_slip_pdf,
    slip_lines,
)
from services.fulfilment.warehouse.model import Dimensions, Item

SHIP_TO = PostalAddress(
    name="Ada Lovelace & Co <Ltd>",
    line1="12 St James's Square",
    line2="Floor 2",
    city="London",
    postal_code="SW1Y 4JH",
    country="GB",
)


LINES = (
    SlipLine("MUG-BLUE-350", 2, "Stoneware mug, blue, 350 ml"),
    SlipLine("PEN-BLK", 3),
)


def slip(**changes: object) -> PackingSlip:
    fields: dict[str, object] = {
        "order_id": "ORD-2026-000123",
        "fulfilment_id": "5b0c6a52-8f3e-5d7a-9c1e-2f4b6d8a0e13",
        "parcel_id": "PCL-000123-1",
        "parcel_number": 1,
        "parcel_count": 2,
        "ship_to": SHIP_TO,
        "lines": LINES,
    }
    fields.update(changes)
    return PackingSlip(**fields)  # type: ignore[arg-type]


def page_texts(pdf: bytes) -> list[str]:
    document = pdfium.PdfDocument(pdf)
    try:
        return [document[index].get_textpage().get_text_range() for index in range(len(document))]
    finally:
        document.close()


def test_the_slip_is_a_pdf_with_the_ids_the_parcel_count_and_the_lines() -> None:
    pdf = packing_slip_pdf(slip())
    assert pdf.startswith(b"%PDF")
    (text,) = page_texts(pdf)
    for expected in (
        "ORD-2026-000123",
        "5b0c6a52-8f3e-5d7a-9c1e-2f4b6d8a0e13",
        "1 of 2",
        "PCL-000123-1",
        "MUG-BLUE-350",
        "Stoneware mug, blue, 350 ml",
        "PEN-BLK",
        "SW1Y 4JH London",
        "Ada Lovelace & Co <Ltd>",  # escaped for reportlab's markup, printed as written
    ):
        assert expected in text, expected


def test_the_same_slip_renders_to_the_same_bytes() -> None:
    assert packing_slip_pdf(slip()) == packing_slip_pdf(slip())


def test_many_lines_run_onto_more_pages_each_naming_the_order() -> None:
    lines = tuple(SlipLine(f"SKU-{index:03d}", index + 1) for index in range(120))
    texts = page_texts(packing_slip_pdf(slip(lines=lines)))
    assert len(texts) > 1
    assert all("ORD-2026-000123" in text for text in texts)
    everything = "\n".join(texts)
    assert all(f"SKU-{index:03d}" in everything for index in range(120))


def test_slip_lines_come_from_a_box_of_the_plan() -> None:
    mug = Item("MUG-BLUE-350", "4000000000017", Dimensions(120, 100, 90), 350)
    pen = Item("PEN-BLK", "4000000000024", Dimensions(140, 10, 10), 12)
    box = BoxType("M", Dimensions(300, 200, 150), 10_000, 250)
    (packed,) = choose_boxes([(pen, 3), (mug, 2)], [box]).boxes
    assert slip_lines(packed, {"MUG-BLUE-350": "Stoneware mug"}) == (
        SlipLine("MUG-BLUE-350", 2, "Stoneware mug"),
        SlipLine("PEN-BLK", 3, None),
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"parcel_number": 3},
        {"parcel_number": 0},
        {"parcel_id": ""},
        {"parcel_id": "PCL-Ü"},  # Code 128 takes ASCII only
        {"lines": ()},
    ],
)
def test_a_slip_that_cannot_be_right_is_rejected(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        slip(**changes)


def test_a_line_needs_a_positive_quantity() -> None:
    with pytest.raises(ValueError):
        slip(lines=(SlipLine("PEN-BLK", 0),))
