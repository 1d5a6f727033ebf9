"""Scan verification at the pack station: every transition and refusal."""

from __future__ import annotations

import pytest

from services.fulfilment.packing.boxes import BoxType, choose_boxes
from services.fulfilment.packing.scan import (
    MissingUnits,
    ParcelScan,
    ScanRefusal,
    ScanRefused,
    ScanStatus,
)
from services.fulfilment.warehouse.model import Dimensions, Item

MUG = Item("mug", "4000000000017", Dimensions(120, 100, 90), 350)
PEN = Item("pen", "4000000000024", Dimensions(140, 10, 10), 12)
LAMP = Item("lamp", "4000000000031", Dimensions(300, 200, 200), 1_200)  # in the other parcel
FULFILMENT = (MUG, PEN, LAMP)


def parcel() -> ParcelScan:
    return ParcelScan.start({"mug": 2, "pen": 1}, FULFILMENT)


def refusal(scan: ParcelScan, barcode: str) -> ScanRefused:
    with pytest.raises(ScanRefused) as refused:
        scan.scan(barcode)
    return refused.value


def test_scanning_every_expected_unit_makes_the_parcel_ready_to_close() -> None:
    scan = parcel()
    assert scan.status is ScanStatus.IN_PROGRESS
    scan = scan.scan(MUG.barcode).scan(PEN.barcode)
    assert scan.status is ScanStatus.IN_PROGRESS
    assert scan.missing == (MissingUnits("mug", expected=2, scanned=1),)
    scan = scan.scan(MUG.barcode)
    assert scan.status is ScanStatus.READY_TO_CLOSE
    assert scan.ready_to_close
    assert scan.missing == ()
    closed = scan.close()
    assert closed.status is ScanStatus.CLOSED
    assert dict(closed.scanned) == {"mug": 2, "pen": 1}


def test_a_scan_leaves_the_previous_state_as_it_was() -> None:
    before = parcel()
    after = before.scan(MUG.barcode)
    assert dict(before.scanned) == {}
    assert dict(after.scanned) == {"mug": 1}


def test_a_barcode_not_in_the_fulfilment_is_refused() -> None:
    scan = parcel().scan(MUG.barcode)
    refused = refusal(scan, "9999999999999")
    assert refused.code is ScanRefusal.WRONG_BARCODE
    assert refused.code == "wrong_barcode"
    assert refused.barcode == "9999999999999"
    assert refused.sku is None


def test_one_unit_more_than_expected_is_an_over_scan() -> None:
    scan = parcel().scan(PEN.barcode)
    refused = refusal(scan, PEN.barcode)
    assert refused.code is ScanRefusal.OVER_SCAN
    assert refused.sku == "pen"
    ready = scan.scan(MUG.barcode).scan(MUG.barcode)
    assert refusal(ready, MUG.barcode).code is ScanRefusal.OVER_SCAN


def test_an_item_of_the_fulfilment_meant_for_another_parcel_is_an_over_scan_here() -> None:
    refused = refusal(parcel(), LAMP.barcode)
    assert refused.code is ScanRefusal.OVER_SCAN
    assert refused.sku == "lamp"


def test_closing_with_units_missing_is_refused_listing_them() -> None:
    scan = parcel().scan(MUG.barcode)
    with pytest.raises(ScanRefused) as refused:
        scan.close()
    assert refused.value.code is ScanRefusal.ITEMS_MISSING
    assert refused.value.missing == (
        MissingUnits("mug", expected=2, scanned=1),
        MissingUnits("pen", expected=1, scanned=0),
    )
    assert [gap.missing for gap in refused.value.missing] == [1, 1]
    assert "1 x mug" in str(refused.value)


def test_a_closed_parcel_takes_no_more_scans_and_closing_again_is_a_repeat() -> None:
    closed = parcel().scan(MUG.barcode).scan(MUG.barcode).scan(PEN.barcode).close()
    assert refusal(closed, MUG.barcode).code is ScanRefusal.PARCEL_CLOSED
    assert closed.close() == closed


def test_barcodes_are_read_without_surrounding_whitespace() -> None:
    scan = parcel().scan(f"  {MUG.barcode}\n")
    assert dict(scan.scanned) == {"mug": 1}


def test_a_parcel_for_a_box_of_the_plan_expects_that_box_s_units() -> None:
    box = BoxType("M", Dimensions(300, 200, 150), 10_000, 250)
    plan = choose_boxes([(MUG, 2), (PEN, 3)], [box])
    scan = ParcelScan.for_box(plan.boxes[0], FULFILMENT)
    assert dict(scan.expected) == {"mug": 2, "pen": 3}


def test_a_parcel_must_be_scannable() -> None:
    with pytest.raises(ValueError, match="no item"):
        ParcelScan.start({"ghost": 1}, FULFILMENT)
    with pytest.raises(ValueError):
        ParcelScan.start({"mug": 0}, FULFILMENT)
    with pytest.raises(ValueError):
        ParcelScan.start({}, FULFILMENT)
    twin = Item("mug_blue", MUG.barcode, MUG.dimensions, MUG.weight_g)
    with pytest.raises(ValueError, match="belongs to both"):
        ParcelScan.start({"mug": 1}, (MUG, twin))
