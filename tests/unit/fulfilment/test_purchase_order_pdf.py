"""The dropship purchase order PDF: a valid PDF with the PO number, supplier, ship-to, lines."""

from __future__ import annotations

from datetime import UTC, datetime

import pypdfium2 as pdfium
import pytest

from services.fulfilment.partners.purchase_order import PoLine, PurchaseOrder, purchase_order_pdf


def purchase_order(lines: tuple[PoLine, ...]) -> PurchaseOrder:
    return PurchaseOrder(
        number="PO-00000042",
        issued_at=datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        confirm_by=datetime(2026, 3, 4, 9, 30, tzinfo=UTC),
        supplier_code="dropship-acme",
        supplier_name="Acme Supplies & Sons <GmbH>",
        supplier_address={
            "line1": "Industriestr. 5",
            "city": "Köln",
            "postal_code": "50667",
            "country": "DE",
        },
        ship_to={
            "name": "Ada Lovelace",
            "line1": "12 St James's Square",
            "city": "London",
            "postal_code": "SW1Y 4JH",
            "country": "GB",
        },
        shipping_method="express",
        order_id="ord-123",
        fulfilment_id="5b0c6a52-8f3e-5d7a-9c1e-2f4b6d8a0e13",
        dispatch_id="d-1",
        lines=lines,
    )


def text_of(pdf: bytes) -> str:
    document = pdfium.PdfDocument(pdf)
    try:
        return "\n".join(
            document[index].get_textpage().get_text_range() for index in range(len(document))
        )
    finally:
        document.close()


def test_the_po_is_a_pdf_with_its_number_the_parties_and_the_lines() -> None:
    pdf = purchase_order_pdf(
        purchase_order((PoLine("MUG-BLUE-350", 2, "Stoneware mug, blue"), PoLine("PEN-BLK", 3)))
    )
    assert pdf.startswith(b"%PDF")
    text = text_of(pdf)
    for expected in (
        "Purchase order PO-00000042",
        "Acme Supplies & Sons <GmbH>",
        "Köln",
        "Ada Lovelace",
        "SW1Y 4JH",
        "MUG-BLUE-350",
        "Stoneware mug, blue",
        "PEN-BLK",
        "express",
        "ord-123",
        "5 units in total",
        "2026-03-04 09:30 UTC",
    ):
        assert expected in text, expected


def test_the_same_po_renders_to_the_same_bytes() -> None:
    po = purchase_order((PoLine("SKU-1", 1),))
    assert purchase_order_pdf(po) == purchase_order_pdf(po)


def test_many_lines_run_over_pages_and_all_are_there() -> None:
    lines = tuple(PoLine(f"SKU-{n:03d}", n) for n in range(1, 121))
    pdf = purchase_order_pdf(purchase_order(lines))
    document = pdfium.PdfDocument(pdf)
    try:
        assert len(document) > 1
    finally:
        document.close()
    text = text_of(pdf)
    assert all(f"SKU-{n:03d}" in text for n in range(1, 121))


def test_a_po_without_lines_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one line"):
        purchase_order(())
