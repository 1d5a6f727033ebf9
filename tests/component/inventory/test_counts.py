"""Cycle counts over HTTP on a real Postgres: deltas in the ledger, zero deltas reported,
counts below reserved refused whole, unknown SKUs, retries, roles."""

from __future__ import annotations

from typing import Any

import pytest

from shared.contracts.inventory import AvailabilityChanged
from tests.component.inventory.support import (
    assert_stock_consistent,
    define_sku,
    new_order_id,
    receive,
    reserve,
    stock_of,
)
from tests.support.component import ComponentHarness

pytestmark = pytest.mark.component


async def count(
    h: ComponentHarness,
    *lines: tuple[str, int],
    role: str = "warehouse",
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> Any:
    body = {
        "location": "east",
        "counts": [{"sku": sku, "counted": counted} for sku, counted in lines],
        **fields,
    }
    async with h.http(role) as client:
        return await client.post("/v1/stock/counts", json=body, headers=headers)


async def on_hand(h: ComponentHarness, sku: str) -> dict[str, int]:
    stock = await stock_of(h, sku)
    return {row["location"]: row["on_hand"] for row in stock["locations"]}


@pytest.fixture
async def stocked(inventory: ComponentHarness) -> ComponentHarness:
    for sku in ("A", "B", "C"):
        await define_sku(inventory, sku)
    await receive(inventory, "A", "east", 10)
    await receive(inventory, "B", "east", 4)
    await receive(inventory, "A", "west", 3)
    await inventory.clear_outbox()
    return inventory


async def test_a_count_becomes_count_adjustments_in_the_ledger(stocked: ComponentHarness):
    response = await count(stocked, ("A", 7), ("B", 4), ("C", 2), reference="aisle-3")

    assert response.status_code == 201, response.text
    answer = response.json()
    lines = {line["sku"]: line for line in answer["lines"]}
    assert [(ln["sku"], ln["before"], ln["counted"], ln["delta"]) for ln in answer["lines"]] == [
        ("A", 10, 7, -3),
        ("B", 4, 4, 0),
        ("C", 0, 2, 2),
    ]
    assert lines["B"]["ledger_id"] is None  # a matching count writes nothing
    assert answer["reason"] == "cycle_count"
    assert await on_hand(stocked, "A") == {"east": 7, "west": 3}  # west untouched
    assert await on_hand(stocked, "C") == {"east": 2}
    ledger = await stocked.fetch(
        "SELECT id, sku, location, on_hand_delta, reason, reference, detail FROM stock_ledger"
        " WHERE reason = 'count' ORDER BY sku"
    )
    assert [
        (r["id"], r["sku"], r["on_hand_delta"], r["reference"], r["detail"]) for r in ledger
    ] == [
        (lines["A"]["ledger_id"], "A", -3, "aisle-3", "cycle_count: counted 7, system had 10"),
        (lines["C"]["ledger_id"], "C", 2, "aisle-3", "cycle_count: counted 2, system had 0"),
    ]
    announced = {
        e.contract().sku: e.contract() for e in await stocked.emitted(AvailabilityChanged.TYPE)
    }
    assert set(announced) == {"A", "C"}
    assert announced["A"] == AvailabilityChanged(
        sku="A", on_hand=10, reserved=0, available=10, available_to_promise=10
    )
    await assert_stock_consistent(stocked)


async def test_a_count_below_reserved_is_refused_and_nothing_of_it_applied(
    stocked: ComponentHarness,
):
    order_id = new_order_id()
    await stocked.deliver(reserve(order_id, ("B", 3)), correlation_id=order_id)

    refused = await count(stocked, ("A", 1), ("B", 2), reason="spot_check")

    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "count_below_reserved"
    assert {k: error["details"][k] for k in ("sku", "counted", "reserved")} == {
        "sku": "B",
        "counted": 2,
        "reserved": 3,
    }
    assert await on_hand(stocked, "A") == {"east": 10, "west": 3}  # A's line was not applied
    assert await stocked.fetch("SELECT 1 FROM stock_ledger WHERE reason = 'count'") == []

    exactly_reserved = await count(stocked, ("B", 3))
    assert exactly_reserved.status_code == 201, exactly_reserved.text
    stock = await stock_of(stocked, "B")
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (3, 3, 0)
    await assert_stock_consistent(stocked)


async def test_an_unknown_sku_refuses_the_count(stocked: ComponentHarness):
    response = await count(stocked, ("A", 1), ("GHOST", 2))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_sku"
    assert response.json()["error"]["details"]["sku"] == "GHOST"
    assert await on_hand(stocked, "A") == {"east": 10, "west": 3}


async def test_a_retried_count_is_applied_once(stocked: ComponentHarness):
    key = {"Idempotency-Key": "count-7"}
    first = await count(stocked, ("A", 8), headers=key)
    # Stock moves between the count and its retry: the retry must not correct it again.
    await receive(stocked, "A", "east", 5)
    again = await count(stocked, ("A", 8), headers=key)
    other = await count(stocked, ("A", 9), headers=key)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True
    assert again.json()["lines"] == first.json()["lines"]
    assert again.json()["count_id"] == first.json()["count_id"]
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert await on_hand(stocked, "A") == {"east": 13, "west": 3}
    await assert_stock_consistent(stocked)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"counts": [{"sku": "A", "counted": -1}]}, "counts.0.counted"),
        ({"counts": [{"sku": "A", "counted": 1}, {"sku": "A", "counted": 2}]}, "counts"),
        ({"counts": []}, "counts"),
        ({"reason": "guess"}, "reason"),
    ],
)
async def test_a_bad_count_is_refused_naming_the_field(
    stocked: ComponentHarness, body: dict[str, Any], field: str
):
    request = {"location": "east", "counts": [{"sku": "A", "counted": 1}], **body}
    async with stocked.http("warehouse") as client:
        response = await client.post("/v1/stock/counts", json=request)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["problems"][0]["field"] == field


async def test_a_viewer_cannot_count(stocked: ComponentHarness):
    response = await count(stocked, ("A", 0), role="viewer")
    assert response.status_code == 403
    assert await on_hand(stocked, "A") == {"east": 10, "west": 3}
