"""A kit order across all five services, as real processes on real Kafka and Postgres: the kit's
components are reserved at two locations, ship as two fulfilments, are committed, and the
captures add up to the total; the kit's availability follows its components'."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from shared.money import round_money
from tests.support.env import Infra
from tests.support.system import System, order_body, start_system

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def system(infra: Infra) -> AsyncIterator[System]:
    started = await start_system(infra, {"order_intake": {"OMS_DEADLINE_POLL_INTERVAL_S": "0.2"}})
    yield started
    await started.close()


async def test_a_kit_order_ships_its_components_from_two_locations_and_completes(system: System):
    await system.stock_up("SET-MUG", ("berlin", 10))
    await system.stock_up("SET-SPOON", ("hamburg", 5))
    await system.stock_up("SET-BOX")  # the kit: no stock of its own
    inventory = system.url("inventory")
    defined = await system.client.put(
        f"{inventory}/v1/kits/SET-BOX",
        json={
            "components": [{"sku": "SET-MUG", "quantity": 2}, {"sku": "SET-SPOON", "quantity": 1}]
        },
    )
    assert defined.status_code == 201, defined.text
    assert (await system.stock("SET-BOX"))["available"] == 0  # no location has both

    order_id = await system.place(order_body([("SET-BOX", 2, "30.00")]))
    confirmed = await system.wait_status(order_id, "FULFILLING")
    allocations = confirmed["fulfilment"]["allocations"]
    assert sorted((a["sku"], a["location"], a["quantity"]) for a in allocations) == [
        ("SET-MUG", "berlin", 4),
        ("SET-SPOON", "hamburg", 2),
    ]
    fulfilments = {f["location"]: f for f in await system.fulfilments(order_id)}
    assert set(fulfilments) == {"berlin", "hamburg"}

    # The mugs leave first: 4 of the 6 component units, 2/3 of the kits' value.
    berlin = fulfilments["berlin"]["fulfilment_id"]
    shipped = await system.ship(berlin, carrier="dhl", tracking_number=f"T-{berlin}")
    assert shipped.status_code == 200, shipped.text
    await system.wait_status(order_id, "PARTIALLY_SHIPPED")
    hamburg = fulfilments["hamburg"]["fulfilment_id"]
    shipped = await system.ship(hamburg, carrier="dhl", tracking_number=f"T-{hamburg}")
    assert shipped.status_code == 200, shipped.text
    await system.wait_status(order_id, "SHIPPED", "DELIVERED", "COMPLETED")
    for fulfilment_id in (berlin, hamburg):
        delivered = await system.deliver(fulfilment_id)
        assert delivered.status_code == 200, delivered.text
    done = await system.wait_status(order_id, "COMPLETED")

    total = Decimal(done["totals"]["total"])
    [payment] = await system.payments(order_id)
    captures = [op for op in payment["operations"] if op["kind"] == "capture"]
    assert [Decimal(op["amount"]) for op in captures] == [
        round_money(total * 2 / 3, "EUR"),
        total - round_money(total * 2 / 3, "EUR"),
    ]
    assert Decimal(payment["captured_total"]) == total
    mug, spoon = await system.stock("SET-MUG"), await system.stock("SET-SPOON")
    assert (mug["on_hand"], mug["reserved"]) == (6, 0)
    assert (spoon["on_hand"], spoon["reserved"]) == (3, 0)
    kit = await system.stock("SET-BOX")
    assert kit["kit"] is True and kit["available"] == 0
