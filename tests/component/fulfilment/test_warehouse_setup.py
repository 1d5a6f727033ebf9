"""Setting up the floor through fulfilment's API: locations, layout, items, boxes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.fulfilment.app import build
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component

ADDRESS = {
    "name": "Berlin warehouse",
    "line1": "Lagerstr. 1",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}
LAYOUT = {
    "zones": [{"code": "A", "name": "Ambient"}, {"code": "B", "name": "Bulky"}],
    "bins": [
        {"code": "A-01", "zone": "A", "sequence": 1, "x_m": 0, "y_m": 2, "skus": ["MUG-1"]},
        {
            "code": "A-02",
            "zone": "A",
            "sequence": 2,
            "x_m": 0,
            "y_m": 4,
            "skus": ["CUP-1", "MUG-1"],
        },
        {"code": "B-01", "zone": "B", "sequence": 3, "x_m": 5, "y_m": 4, "skus": []},
    ],
}


@pytest.fixture
async def h(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


@pytest.fixture
async def client(h: ComponentHarness) -> AsyncIterator[httpx.AsyncClient]:
    async with h.http() as c:
        yield c


async def test_a_warehouse_is_set_up_and_read_back(client: httpx.AsyncClient) -> None:
    created = await client.put(
        "/v1/locations/berlin", json={"kind": "warehouse", "name": "Berlin", "address": ADDRESS}
    )
    assert created.status_code == 201, created.text
    again = await client.put(
        "/v1/locations/berlin", json={"kind": "warehouse", "name": "Berlin 2", "address": ADDRESS}
    )
    assert again.status_code == 200 and again.json()["name"] == "Berlin 2"

    laid = await client.put("/v1/locations/berlin/layout", json=LAYOUT)
    assert laid.status_code == 200, laid.text
    bins = {b["code"]: b for b in laid.json()["bins"]}
    assert bins["A-02"]["skus"] == ["CUP-1", "MUG-1"]
    assert [b["code"] for b in laid.json()["bins"]] == ["A-01", "A-02", "B-01"]

    smaller = {"zones": LAYOUT["zones"][:1], "bins": LAYOUT["bins"][:1]}
    assert (await client.put("/v1/locations/berlin/layout", json=smaller)).status_code == 200
    read = (await client.get("/v1/locations/berlin/layout")).json()
    assert [b["code"] for b in read["bins"]] == ["A-01"]


async def test_layout_refusals_name_the_field(client: httpx.AsyncClient) -> None:
    missing = await client.put("/v1/locations/nowhere/layout", json=LAYOUT)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "location_not_found"

    await client.put("/v1/locations/fba", json={"kind": "3pl", "name": "3PL", "address": ADDRESS})
    third_party = await client.put("/v1/locations/fba/layout", json=LAYOUT)
    assert third_party.status_code == 409
    assert third_party.json()["error"]["code"] == "location_has_no_floor"

    await client.put(
        "/v1/locations/hamburg", json={"kind": "warehouse", "name": "HH", "address": ADDRESS}
    )
    bad_zone = {"zones": LAYOUT["zones"], "bins": [{**LAYOUT["bins"][0], "zone": "Z"}]}
    refused = await client.put("/v1/locations/hamburg/layout", json=bad_zone)
    assert refused.status_code == 422
    assert "zone 'Z'" in refused.text


async def test_items_and_boxes(client: httpx.AsyncClient) -> None:
    mug = {
        "barcode": "4006381333931",
        "dimensions": {"length_mm": 120, "width_mm": 90, "height_mm": 100},
        "weight_g": 350,
        "description": "Mug",
    }
    assert (await client.put("/v1/items/MUG-1", json=mug)).status_code == 201
    taken = await client.put("/v1/items/CUP-1", json=mug)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "barcode_in_use"
    box = {
        "inner": {"length_mm": 200, "width_mm": 150, "height_mm": 100},
        "max_weight_g": 5000,
        "tare_g": 120,
    }
    assert (await client.put("/v1/boxes/S", json=box)).status_code == 201
    heavy_tare = {**box, "tare_g": 5000}
    refused = await client.put("/v1/boxes/T", json=heavy_tare)
    assert (
        refused.status_code == 422 and refused.json()["error"]["code"] == "tare_exceeds_max_weight"
    )
    assert [b["code"] for b in (await client.get("/v1/boxes")).json()["boxes"]] == ["S"]
    assert [i["sku"] for i in (await client.get("/v1/items")).json()["items"]] == ["MUG-1"]
