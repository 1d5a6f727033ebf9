"""The label's barcode scans: a label bought from the table-rate carrier is rasterised the way a
printer would (pypdfium2) and decoded by a real decoder (zbarimg, Debian's zbar-tools)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from devtools.processes import InfraError, ensure_zbarimg
from services.fulfilment.carriers.base import ParcelSpec, PostalAddress
from services.fulfilment.carriers.labels import LabelContent, render_pdf
from services.fulfilment.carriers.table_rate import TableRateCarrier, default_table_rate_config
from services.fulfilment.carriers.tracking_numbers import InMemoryTrackingNumberAllocator
from services.fulfilment.warehouse.model import Dimensions

# A fresh machine installs zbar-tools in the fixture (apt-get update and install): more than the
# default 120 s per test may go into the first test's setup.
pytestmark = pytest.mark.timeout(900)

SENDER = PostalAddress("OMS Warehouse", "Lagerstraße 1", "Berlin", "10115", "DE")
RECIPIENT = PostalAddress(
    "Zoë Łukasiewicz ^XZ", "221B Baker Street", "London", "NW1 6XE", "GB", line2="Flat 2"
)


@pytest.fixture(scope="session")
def zbarimg() -> str:
    """Installed when missing (as root, as on CI); not skipped: without it the test fails."""
    try:
        return ensure_zbarimg()
    except InfraError as e:
        pytest.fail(f"zbarimg is needed to decode the label's barcode: {e}")


def rasterise(pdf: bytes, png: Path, dpi: int) -> Path:
    document = pdfium.PdfDocument(pdf)
    try:
        assert len(document) == 1
        document[0].render(scale=dpi / 72).to_pil().save(png)
    finally:
        document.close()
    return png


def decode(zbarimg: str, png: Path) -> str:
    result = subprocess.run(
        [zbarimg, "--quiet", str(png)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"zbarimg exit {result.returncode}: {result.stderr.strip()}"
    return result.stdout


@pytest.mark.parametrize("dpi", [300, 203])
async def test_bought_label_barcode_decodes_to_the_tracking_number(
    zbarimg: str, tmp_path: Path, dpi: int
) -> None:
    table = TableRateCarrier(default_table_rate_config(), InMemoryTrackingNumberAllocator())
    parcel = ParcelSpec("parcel-1", SENDER, RECIPIENT, Dimensions(300, 200, 100), 1250)
    express = next(r for r in await table.rates(parcel) if r.service == "express")
    label = await table.buy(parcel, express)
    png = rasterise(label.pdf, tmp_path / "label.png", dpi)
    assert decode(zbarimg, png) == f"CODE-128:{label.tracking_number}\n"


@pytest.mark.parametrize("tracking_number", ["RR473124829GB", "RR287043775IN", "CC000000080GB"])
def test_label_barcode_decodes_exactly(zbarimg: str, tmp_path: Path, tracking_number: str) -> None:
    parcel = ParcelSpec("parcel-2", SENDER, RECIPIENT, Dimensions(300, 200, 100), 31_500)
    pdf = render_pdf(LabelContent("OMS Post", "standard", tracking_number, parcel))
    png = rasterise(pdf, tmp_path / f"{tracking_number}.png", 300)
    assert decode(zbarimg, png) == f"CODE-128:{tracking_number}\n"
