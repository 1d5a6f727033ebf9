"""A small warehouse set up through fulfilment's API, for tests of the floor."""

from __future__ import annotations

from typing import Any

import httpx

ADDRESS = {
    "name": "OMS Berlin",
    "line1": "Lagerstr. 1",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}
# Two zones of bins; the mug lies in two bins, the lamp is bulky (one per box M).
LAYOUT = {
    "zones": [{"code": "A", "name": "Small"}, {"code": "B", "name": "Bulky"}],
    "bins": [
        {"code": "A-01", "zone": "A", "sequence": 1, "x_m": 0, "y_m": 2, "skus": ["MUG-1"]},
        {"code": "A-02", "zone": "A", "sequence": 2, "x_m": 0, "y_m": 4, "skus": ["CUP-1"]},
        {"code": "A-03", "zone": "A", "sequence": 3, "x_m": 0, "y_m": 6, "skus": ["MUG-1"]},
        {"code": "B-01", "zone": "B", "sequence": 4, "x_m": 6, "y_m": 6, "skus": ["LAMP-1"]},
    ],
}
ITEMS = {
    "MUG-1": {
        "barcode": "4006381333931",
        "description": "Mug",
        "weight_g": 350,
        "dimensions": {"length_mm": 120, "width_mm": 90, "height_mm": 100},
    },
    "CUP-1": {
        "barcode": "4006381333948",
        "description": "Cup",
        "weight_g": 200,
        "dimensions": {"length_mm": 90, "width_mm": 90, "height_mm": 80},
    },
    "LAMP-1": {
        "barcode": "4006381333955",
        "description": "Lamp",
        "weight_g": 2100,
        "dimensions": {"length_mm": 380, "width_mm": 280, "height_mm": 270},
    },
}
BOXES = {
    "S": {
        "inner": {"length_mm": 250, "width_mm": 200, "height_mm": 150},
        "max_weight_g": 5000,
        "tare_g": 150,
    },
    "M": {
        "inner": {"length_mm": 400, "width_mm": 300, "height_mm": 300},
        "max_weight_g": 15000,
        "tare_g": 400,
    },
}


async def set_up_floor(client: httpx.AsyncClient, location: str = "berlin") -> None:
    answers = [
        await client.put(
            f"/v1/locations/{location}",
            json={"kind": "warehouse", "name": "Berlin", "address": ADDRESS},
        ),
        await client.put(f"/v1/locations/{location}/layout", json=LAYOUT),
        *[await client.put(f"/v1/items/{sku}", json=item) for sku, item in ITEMS.items()],
        *[await client.put(f"/v1/boxes/{code}", json=box) for code, box in BOXES.items()],
    ]
    for answer in answers:
        assert answer.status_code in (200, 201), answer.text


async def pick_everything(client: httpx.AsyncClient, pick_list: dict[str, Any]) -> dict[str, Any]:
    """Claim the list and pick every stop in full, scanning each SKU's barcode."""
    list_id = pick_list["pick_list_id"]
    answer = await client.post(f"/v1/pick-lists/{list_id}/claim")
    assert answer.status_code == 200, answer.text
    for stop in pick_list["stops"]:
        answer = await client.post(
            f"/v1/pick-lists/{list_id}/picks",
            json={
                "stop": stop["stop"],
                "barcode": ITEMS[stop["sku"]]["barcode"],
                "quantity": stop["quantity"],
            },
        )
        assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def pack_and_label(client: httpx.AsyncClient, fulfilment_id: str) -> list[dict[str, Any]]:
    """Pack a picked fulfilment as the box chooser plans it, scan every unit, close and label
    each parcel; the parcels, labelled."""
    packed = await client.post(f"/v1/fulfilments/{fulfilment_id}/parcels")
    assert packed.status_code == 200, packed.text
    labelled = []
    for parcel in packed.json()["parcels"]:
        parcel_id = parcel["parcel_id"]
        for line in parcel["lines"]:
            scanned = await client.post(
                f"/v1/parcels/{parcel_id}/scan",
                json={"barcode": ITEMS[line["sku"]]["barcode"], "quantity": line["quantity"]},
            )
            assert scanned.status_code == 200, scanned.text
        closed = await client.post(f"/v1/parcels/{parcel_id}/close")
        assert closed.json()["status"] == "packed", closed.text
        label = await client.post(f"/v1/parcels/{parcel_id}/label")
        assert label.status_code == 200, label.text
        labelled.append(label.json())
    return labelled
