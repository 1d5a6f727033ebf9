"""Location records over HTTP, and ReserveStock routed by them through the real consumer on a
real Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.inventory.app import build
from services.inventory.routing.config import RoutingSettings, RuleSettings
from services.inventory.settings import InventorySettings
from shared.contracts.common import OrderLineRef
from shared.contracts.inventory import RoutingDecision, StockReservationFailed, StockReserved
from shared.contracts.order_intake import ReserveStock, ShipTo
from tests.component.inventory.support import (
    assert_stock_consistent,
    define_sku,
    new_order_id,
    receive,
)
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component

BERLIN = {
    "name": "Berlin warehouse",
    "kind": "warehouse",
    "country": "DE",
    "postal_code": "10115",
    "latitude": 52.53,
    "longitude": 13.38,
    "priority": 50,
    "cutoff_local": "17:00",
    "timezone": "Europe/Berlin",
}
HAMBURG = {"name": "Hamburg", "country": "DE", "postal_code": "20457", "priority": 20}
VIENNA = {"name": "Vienna 3PL", "kind": "3pl", "country": "at", "postal_code": "1010",
          "latitude": 48.21, "longitude": 16.37, "priority": 30, "ships_to": ["AT", "DE", "ch"]}  # fmt: skip

ROUTING = RoutingSettings(
    strategy="nearest",
    channels={"app": "lowest_cost"},
    rules=(RuleSettings(channel="amazon", locations=("vienna",)),),
)


@pytest.fixture
async def routed(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build(InventorySettings(routing=ROUTING))):
        yield harness


async def put_location(h: ComponentHarness, code: str, body: dict[str, Any]) -> Any:
    async with h.http() as client:
        return await client.put(f"/v1/locations/{code}", json=body)


@pytest.fixture
async def stocked(routed: ComponentHarness) -> ComponentHarness:
    """A at berlin, hamburg and vienna (5 each), with their records; and at `attic` (50), a
    location with no record."""
    for code, body in (("berlin", BERLIN), ("hamburg", HAMBURG), ("vienna", VIENNA)):
        assert (await put_location(routed, code, body)).status_code == 201
    await define_sku(routed, "A")
    for location, units in (("berlin", 5), ("hamburg", 5), ("vienna", 5), ("attic", 50)):
        await receive(routed, "A", location, units)
    await routed.clear_outbox()
    return routed


def reserve(
    order_id: str, quantity: int, *, channel: str = "web", ship_to: ShipTo | None = None
) -> ReserveStock:
    return ReserveStock(
        order_id=order_id,
        channel=channel,
        lines=(OrderLineRef(line_id=f"{order_id}-l1", sku="A", quantity=quantity),),
        ship_to=ship_to,
    )


async def reserved_at(h: ComponentHarness, order_id: str) -> list[tuple[str, int]]:
    rows = await h.fetch(
        "SELECT location, quantity FROM reservations WHERE order_id = $1 ORDER BY location",
        order_id,
    )
    return [(r["location"], r["quantity"]) for r in rows]


# --- the location API ----------------------------------------------------------------------


async def test_a_location_record_is_created_replaced_and_read_back(routed: ComponentHarness):
    created = await put_location(routed, "berlin", BERLIN)
    assert created.status_code == 201, created.text
    assert created.json() == {
        "code": "berlin",
        "name": "Berlin warehouse",
        "kind": "warehouse",
        "country": "DE",
        "postal_code": "10115",
        "latitude": 52.53,
        "longitude": 13.38,
        "priority": 50,
        "ships_to": [],
        "cutoff_local": "17:00:00",
        "timezone": "Europe/Berlin",
        "active": True,
    }
    replaced = await put_location(routed, "berlin", {**BERLIN, "priority": 10, "active": False})
    assert replaced.status_code == 200, replaced.text
    vienna = await put_location(routed, "vienna", VIENNA)
    assert vienna.json()["country"] == "AT" and vienna.json()["ships_to"] == ["AT", "CH", "DE"]
    async with routed.http("viewer") as client:
        one = await client.get("/v1/locations/berlin")
        every = await client.get("/v1/locations")
        missing = await client.get("/v1/locations/nowhere")
    assert one.status_code == 200
    assert (one.json()["priority"], one.json()["active"]) == (10, False)
    assert [loc["code"] for loc in every.json()["locations"]] == ["berlin", "vienna"]
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "location_not_found"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"country": "XX"}, "country"),
        ({"country": "Germany"}, "country"),
        ({"ships_to": ["DE", "ZZ"]}, "ships_to.1"),
        ({"latitude": 91}, "latitude"),
        ({"longitude": -180.5}, "longitude"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"cutoff_local": "25:00"}, "cutoff_local"),
        ({"cutoff_local": "17:00+02:00"}, "cutoff_local"),
        ({"kind": "depot"}, "kind"),
        ({"priority": -1}, "priority"),
        ({"name": ""}, "name"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_a_bad_location_is_refused_naming_the_field(
    routed: ComponentHarness, change: dict[str, Any], field: str
):
    refused = await put_location(routed, "berlin", {**BERLIN, **change})
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "validation_failed"
    assert error["details"]["problems"][0]["field"] == field
    assert await routed.fetch("SELECT * FROM locations") == []


async def test_coordinates_come_in_pairs(routed: ComponentHarness):
    body = {key: value for key, value in BERLIN.items() if key != "longitude"}
    refused = await put_location(routed, "berlin", body)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "coordinates_incomplete"
    assert refused.json()["error"]["details"] == {"field": "longitude"}


async def test_writing_locations_needs_stock_write(routed: ComponentHarness):
    async with routed.http("viewer") as client:
        refused = await client.put("/v1/locations/berlin", json=BERLIN)
    assert refused.status_code == 403


# --- reserving, routed ---------------------------------------------------------------------


async def test_reserve_ships_from_the_nearest_location_and_says_why(stocked: ComponentHarness):
    order_id = new_order_id()
    await stocked.deliver(
        reserve(order_id, 2, ship_to=ShipTo(country="DE", postal_code="10178")),
        correlation_id=order_id,
    )
    [answer] = await stocked.emitted_contracts(StockReserved.TYPE)
    assert [(a.location, a.quantity) for a in answer.allocations] == [("berlin", 2)]
    assert answer.routing == RoutingDecision(
        strategy="nearest",
        locations=("berlin",),
        reason="nearest to DE 10178: berlin (same country, postal code starts 101 like the"
        " customer's)",
    )
    assert await reserved_at(stocked, order_id) == [("berlin", 2)]
    [stored] = await stocked.fetch(
        "SELECT routing FROM order_reservations WHERE order_id = $1", order_id
    )
    assert stored["routing"]["locations"] == ["berlin"]
    await assert_stock_consistent(stocked)


async def test_a_channel_s_strategy_and_a_channel_s_rule_apply(stocked: ComponentHarness):
    cheapest, ruled = new_order_id(), new_order_id()
    to_berlin = ShipTo(country="DE", postal_code="10178")
    await stocked.deliver(
        reserve(cheapest, 1, channel="app", ship_to=to_berlin), correlation_id=cheapest
    )
    await stocked.deliver(
        reserve(ruled, 1, channel="amazon", ship_to=to_berlin), correlation_id=ruled
    )
    assert await reserved_at(stocked, cheapest) == [("hamburg", 1)]
    assert await reserved_at(stocked, ruled) == [("vienna", 1)]
    answers = {a.order_id: a.routing for a in await stocked.emitted_contracts(StockReserved.TYPE)}
    assert answers[cheapest].strategy == "lowest_cost"
    assert answers[ruled].reason.startswith("rule channel amazon: vienna; ")


async def test_a_location_that_does_not_ship_to_the_customer_is_passed_over(
    stocked: ComponentHarness,
):
    order_id = new_order_id()
    # Only Vienna ships to Switzerland among the recorded ones; the attic, with no record,
    # ships anywhere — but nearest measures the attic last (nowhere known).
    await put_location(stocked, "berlin", {**BERLIN, "ships_to": ["DE"]})
    await put_location(stocked, "hamburg", {**HAMBURG, "active": False})
    await stocked.deliver(
        reserve(order_id, 3, ship_to=ShipTo(country="CH", postal_code="8001")),
        correlation_id=order_id,
    )
    [answer] = await stocked.emitted_contracts(StockReserved.TYPE)
    assert [(a.location, a.quantity) for a in answer.allocations] == [("vienna", 3)]
    assert answer.routing is not None
    assert "berlin (does not ship to CH)" in answer.routing.reason
    assert "hamburg (inactive)" in answer.routing.reason


async def test_stock_only_where_the_order_may_not_ship_from_refuses_it(
    stocked: ComponentHarness,
):
    order_id = new_order_id()
    await stocked.deliver(
        reserve(order_id, 6, channel="amazon", ship_to=ShipTo(country="DE")),
        correlation_id=order_id,
    )
    [refused] = await stocked.emitted_contracts(StockReservationFailed.TYPE)
    assert (refused.reason, refused.short_lines[0].available) == ("insufficient_stock", 5)
    assert await reserved_at(stocked, order_id) == []


async def test_a_reserve_without_ship_to_is_still_routed(stocked: ComponentHarness):
    """Older sagas send no ship_to: nothing is excluded for where it ships; nearest has no
    destination and goes by priority."""
    order_id = new_order_id()
    await stocked.deliver(reserve(order_id, 2), correlation_id=order_id)
    assert await reserved_at(stocked, order_id) == [("hamburg", 2)]


async def test_a_re_sent_reserve_repeats_the_routing_without_reserving_again(
    stocked: ComponentHarness,
):
    order_id = new_order_id()
    command = reserve(order_id, 2, ship_to=ShipTo(country="DE", postal_code="20095"))
    first = await stocked.deliver(command, correlation_id=order_id)
    await stocked.deliver(command, correlation_id=order_id, envelope=first)  # redelivered
    await stocked.deliver(command, correlation_id=order_id)  # re-sent by the saga
    answers = await stocked.emitted_contracts(StockReserved.TYPE)
    assert len(answers) == 2, "the redelivery is dropped by the inbox, the re-send answered"
    assert answers[0] == answers[1]
    assert answers[0].routing.locations == ("hamburg",)
    assert await reserved_at(stocked, order_id) == [("hamburg", 2)]
    await assert_stock_consistent(stocked)
