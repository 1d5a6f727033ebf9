"""Inventory's HTTP API on a real Postgres: SKUs, adjustments, stock, ledger, refusals."""

from __future__ import annotations

from typing import Any

import pytest

from shared.contracts.inventory import AvailabilityChanged
from tests.component.inventory.support import (
    assert_stock_consistent,
    define_sku,
    receive,
    stock_of,
)
from tests.support.component import ComponentHarness

pytestmark = pytest.mark.component


async def test_put_sku_creates_then_updates(inventory: ComponentHarness):
    body = {
        "name": "Blue mug",
        "barcode": "4006381333931",
        "weight_grams": 350,
        "dimensions": {"length_mm": 120, "width_mm": 90, "height_mm": 100},
    }
    async with inventory.http() as client:
        created = await client.put("/v1/skus/MUG-BLUE", json=body)
        updated = await client.put("/v1/skus/MUG-BLUE", json={**body, "name": "Blue mug XL"})
        fetched = await client.get("/v1/skus/MUG-BLUE")
    assert created.status_code == 201, created.text
    assert created.json() == {
        "sku": "MUG-BLUE",
        **body,
        "backorder_policy": "deny",
        "release_date": None,
        "fill_whole_first": False,
    }
    assert updated.status_code == 200, updated.text
    assert fetched.json()["name"] == "Blue mug XL"
    assert fetched.json()["dimensions"] == body["dimensions"]


async def test_a_barcode_belongs_to_one_sku(inventory: ComponentHarness):
    await define_sku(inventory, "A", barcode="123")
    async with inventory.http() as client:
        response = await client.put("/v1/skus/B", json={"name": "B", "barcode": "123"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "barcode_in_use"
    assert response.json()["error"]["details"]["sku"] == "A"


async def test_adjustments_change_stock_per_location_and_in_total(inventory: ComponentHarness):
    await define_sku(inventory, "A")
    await receive(inventory, "A", "east", 10)
    after = await receive(inventory, "A", "west", 4)
    async with inventory.http() as client:
        damaged = await client.post(
            "/v1/stock/adjustments",
            json={
                "sku": "A",
                "location": "east",
                "delta": -3,
                "reason": "damage",
                "reference": "dmg-7",
            },
        )
    assert after["on_hand"] == 14
    assert damaged.status_code == 200, damaged.text
    assert damaged.json()["adjustment"]["reference"] == "dmg-7"
    assert await stock_of(inventory, "A") == {
        "sku": "A",
        "on_hand": 11,
        "reserved": 0,
        "available": 11,
        "backordered": 0,
        "incoming": 0,
        "available_to_promise": 11,
        "locations": [
            {"location": "east", "on_hand": 7, "reserved": 0, "available": 7},
            {"location": "west", "on_hand": 4, "reserved": 0, "available": 4},
        ],
    }
    await assert_stock_consistent(inventory)


async def test_a_defined_sku_without_stock_has_none(inventory: ComponentHarness):
    await define_sku(inventory, "A")
    assert await stock_of(inventory, "A") == {
        "sku": "A",
        "on_hand": 0,
        "reserved": 0,
        "available": 0,
        "backordered": 0,
        "incoming": 0,
        "available_to_promise": 0,
        "locations": [],
    }


async def test_each_adjustment_is_in_the_ledger_and_announces_availability(
    inventory: ComponentHarness,
):
    await define_sku(inventory, "A")
    await receive(inventory, "A", "east", 10)
    await receive(inventory, "A", "west", 5)
    async with inventory.http() as client:
        ledger = await client.get("/v1/stock/A/ledger")
        east_only = await client.get("/v1/stock/A/ledger", params={"location": "east"})
    entries = ledger.json()["entries"]
    assert [
        (e["location"], e["on_hand_delta"], e["on_hand_after"], e["reason"]) for e in entries
    ] == [
        ("west", 5, 5, "receipt"),
        ("east", 10, 10, "receipt"),
    ]
    assert [e["location"] for e in east_only.json()["entries"]] == ["east"]
    announced = await inventory.emitted(AvailabilityChanged.TYPE)
    assert [e.correlation_id for e in announced] == ["A", "A"]
    assert [e.contract() for e in announced][-1] == AvailabilityChanged(
        sku="A", on_hand=15, reserved=0, available=15, available_to_promise=15
    )


async def test_stock_never_drops_below_zero(inventory: ComponentHarness):
    await define_sku(inventory, "A")
    await receive(inventory, "A", "east", 2)
    async with inventory.http() as client:
        response = await client.post(
            "/v1/stock/adjustments",
            json={"sku": "A", "location": "east", "delta": -3, "reason": "count"},
        )
        elsewhere = await client.post(
            "/v1/stock/adjustments",
            json={"sku": "A", "location": "nowhere", "delta": -1, "reason": "count"},
        )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "insufficient_stock"
    assert error["details"]["on_hand"] == 2
    assert elsewhere.status_code == 409
    stock = await stock_of(inventory, "A")
    assert stock["on_hand"] == 2
    assert [loc["location"] for loc in stock["locations"]] == ["east"]


async def test_unknown_skus_are_404(inventory: ComponentHarness):
    async with inventory.http() as client:
        responses = [
            await client.get("/v1/stock/NOPE"),
            await client.get("/v1/stock/NOPE/ledger"),
            await client.get("/v1/skus/NOPE"),
            await client.post(
                "/v1/stock/adjustments",
                json={"sku": "NOPE", "location": "east", "delta": 1, "reason": "receipt"},
            ),
        ]
    for response in responses:
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "unknown_sku"


GOOD_ADJUSTMENT: dict[str, Any] = {"sku": "A", "location": "east", "delta": 1, "reason": "receipt"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"delta": 0}, "delta"),
        ({"delta": "5"}, "delta"),
        ({"delta": 1.5}, "delta"),
        ({"delta": None}, "delta"),
        ({"reason": "theft-ish"}, "reason"),
        ({"location": "   "}, "location"),
        ({"sku": ""}, "sku"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_adjustments_are_422_naming_the_field(
    inventory: ComponentHarness, change: dict[str, Any], field: str
):
    await define_sku(inventory, "A")
    async with inventory.http() as client:
        response = await client.post("/v1/stock/adjustments", json={**GOOD_ADJUSTMENT, **change})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert [p["field"] for p in error["details"]["problems"]] == [field]
    assert await stock_of(inventory, "A") == {
        "sku": "A",
        "on_hand": 0,
        "reserved": 0,
        "available": 0,
        "backordered": 0,
        "incoming": 0,
        "available_to_promise": 0,
        "locations": [],
    }


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/skus/A", {}, "name"),
        ("/v1/skus/A", {"name": "x", "weight_grams": -1}, "weight_grams"),
        (
            "/v1/skus/A",
            {"name": "x", "dimensions": {"length_mm": 1, "width_mm": 1}},
            "dimensions.height_mm",
        ),
        (
            "/v1/skus/A",
            {"name": "x", "dimensions": {"length_mm": 0, "width_mm": 1, "height_mm": 1}},
            "dimensions.length_mm",
        ),
        ("/v1/skus/has%20space", {"name": "x"}, "path.sku"),
    ],
)
async def test_bad_sku_definitions_are_422_naming_the_field(
    inventory: ComponentHarness, path: str, body: dict[str, Any], field: str
):
    async with inventory.http() as client:
        response = await client.put(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["problems"][0]["field"] == field
