"""Order routing across the real services: each channel has its own strategy (one system for
all of them), and each order's timeline says where it ships from and why."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.env import Infra
from tests.support.system import System, order_body, start_system

pytestmark = pytest.mark.integration

ROUTING = {
    "strategy": "single_location_first",
    "channels": {"app": "nearest", "phone": "fewest_parcels", "kiosk": "lowest_cost"},
    "rules": [{"channel": "b2b", "locations": ["munich"]}],
}
LOCATIONS = {
    "berlin": {"name": "Berlin", "country": "DE", "postal_code": "10115", "priority": 50,
               "latitude": 52.53, "longitude": 13.38},
    "hamburg": {"name": "Hamburg", "country": "DE", "postal_code": "20457", "priority": 20,
                "latitude": 53.54, "longitude": 9.98},
    "munich": {"name": "Munich", "country": "DE", "postal_code": "80331", "priority": 100,
               "latitude": 48.14, "longitude": 11.57},
}  # fmt: skip


@pytest.fixture(scope="module")
async def system(infra: Infra) -> AsyncIterator[System]:
    started = await start_system(
        infra,
        {
            "inventory": {"OMS_ROUTING": json.dumps(ROUTING)},
            "order_intake": {"OMS_DEADLINE_POLL_INTERVAL_S": "0.2"},
        },
    )
    for code, body in LOCATIONS.items():
        r = await started.client.put(f"{started.url('inventory')}/v1/locations/{code}", json=body)
        assert r.status_code in (200, 201), r.text
    yield started
    await started.close()


async def place_and_route(
    system: System, channel: str, lines: list[tuple[str, int]], postal_code: str = "10115"
) -> tuple[dict[str, Any], set[str]]:
    """Place an order on `channel` to a Berlin (or `postal_code`) address; wait until it is
    fulfilling: its stock_reserved timeline entry, and the locations it was reserved at."""
    body = order_body([(sku, n, "10.00") for sku, n in lines], channel=channel)
    body["shipping_address"]["postal_code"] = postal_code
    order_id = await system.place(body)
    view = await system.wait_status(order_id, "FULFILLING")
    [reserved] = [e for e in view["timeline"] if e["event"] == "stock_reserved"]
    locations = {a["location"] for a in view["fulfilment"]["allocations"]}
    assert set(reserved["detail"]["locations"]) == locations
    return reserved["detail"], locations


async def test_single_location_first_ships_from_the_location_with_most_stock(system: System):
    await system.stock_up("RT-SLF", ("berlin", 3), ("hamburg", 9), ("munich", 4))
    detail, locations = await place_and_route(system, "web", [("RT-SLF", 2)])
    assert locations == {"hamburg"}
    assert detail["strategy"] == "single_location_first"
    assert detail["reason"] == "single_location_first: hamburg can ship the whole order"


async def test_nearest_ships_from_the_location_nearest_to_the_customer(system: System):
    await system.stock_up("RT-NEAR", ("berlin", 3), ("hamburg", 9), ("munich", 9))
    detail, locations = await place_and_route(system, "app", [("RT-NEAR", 2)], "10178")
    assert locations == {"berlin"}
    assert detail["strategy"] == "nearest"
    assert detail["reason"] == (
        "nearest to DE 10178: berlin (same country, postal code starts 101 like the customer's)"
    )
    _, from_munich = await place_and_route(system, "app", [("RT-NEAR", 1)], "80469")
    assert from_munich == {"munich"}


async def test_fewest_parcels_ships_in_two_where_the_greedy_split_takes_three(system: System):
    skus = [f"RT-FEW-{n}" for n in range(1, 7)]
    holdings = {"berlin": [1, 2, 3], "hamburg": [4, 5, 6], "munich": [1, 2, 4, 5]}
    for n, sku in enumerate(skus, start=1):
        await system.stock_up(sku, *[(loc, 2) for loc, held in holdings.items() if n in held])
    detail, locations = await place_and_route(system, "phone", [(sku, 1) for sku in skus])
    assert locations == {"berlin", "hamburg"}
    assert detail["reason"] == "fewest_parcels: 2 parcels from hamburg, berlin"
    _, greedy = await place_and_route(system, "web", [(sku, 1) for sku in skus])
    assert len(greedy) == 3, "the default's greedy split, for comparison"


async def test_lowest_cost_ships_from_the_cheapest_location_that_has_it_all(system: System):
    await system.stock_up("RT-COST", ("berlin", 9), ("hamburg", 1), ("munich", 9))
    detail, locations = await place_and_route(system, "kiosk", [("RT-COST", 2)])
    assert locations == {"berlin"}, "hamburg is cheaper but has only one"
    assert detail["strategy"] == "lowest_cost"
    assert detail["reason"] == (
        "lowest_cost: berlin (priority 50) is the cheapest that can ship the whole order"
    )


async def test_a_channel_rule_ships_only_from_its_locations(system: System):
    await system.stock_up("RT-RULE", ("berlin", 9), ("hamburg", 9), ("munich", 2))
    detail, locations = await place_and_route(system, "b2b", [("RT-RULE", 2)])
    assert locations == {"munich"}
    assert detail["reason"].startswith("rule channel b2b: munich; ")
