"""Stripe across the services, as real processes on real Kafka and Postgres, against stripe-mock
(Stripe's own mock server): a web order routed to Stripe is authorised, captured once per
shipment from two locations, completes, and a return of part of it is refunded through Stripe;
a phone order stays on the test gateway. stripe-mock checks every request against Stripe's API
but keeps no state, so what it answers is its fixture: the OMS's own books are what is checked."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from tests.support.env import Infra
from tests.support.system import System, order_body, start_system

pytestmark = pytest.mark.integration

D = Decimal


@pytest.fixture(scope="module")
async def system(infra: Infra, stripe_mock_url: str) -> AsyncIterator[System]:
    payment = {
        "OMS_PAYMENT_GATEWAYS": json.dumps({"default": "test", "by_channel": {"web": "stripe"}}),
        "OMS_STRIPE_API_KEY": "sk_test_oms",
        "OMS_STRIPE_API_BASE": stripe_mock_url,
    }
    started = await start_system(
        infra,
        {
            "order_intake": {"OMS_DEADLINE_POLL_INTERVAL_S": "0.2"},
            "payment": payment,
            "returns": {"OMS_DEADLINE_POLL_INTERVAL_S": "0.2"},
        },
    )
    yield started
    await started.close()


async def wait_return_closed(system: System, return_id: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await system.client.get(f"{system.url('returns')}/v1/returns/{return_id}")
        view = response.json()
        if view.get("status") == "CLOSED":
            return view
        await asyncio.sleep(0.2)
    raise AssertionError(f"return {return_id} is {view.get('status')}")


async def test_two_shipments_captured_and_a_return_refunded_through_stripe(system: System):
    await system.stock_up("STR-MUG", ("berlin", 5))
    await system.stock_up("STR-PLATE", ("hamburg", 5))
    order_id = await system.place(
        order_body([("STR-MUG", 2, "10.00"), ("STR-PLATE", 1, "30.00")], token="pm_card_visa")
    )
    await system.wait_status(order_id, "FULFILLING")
    fulfilments = await system.fulfilments(order_id)
    assert {f["location"] for f in fulfilments} == {"berlin", "hamburg"}
    for fulfilment in fulfilments:  # two shipments, one capture each
        shipped = await system.ship(fulfilment["fulfilment_id"], carrier="dhl")
        assert shipped.status_code == 200, shipped.text
    await system.wait_status(order_id, "SHIPPED", "DELIVERED", "COMPLETED")
    for fulfilment in fulfilments:
        assert (await system.deliver(fulfilment["fulfilment_id"])).status_code == 200
    done = await system.wait_status(order_id, "COMPLETED")
    total = D(done["totals"]["total"])

    [payment] = await system.payments(order_id)
    assert payment["gateway"] == "stripe"
    captures = [op for op in payment["operations"] if op["kind"] == "capture"]
    assert len(captures) == 2 and all(op["outcome"] == "succeeded" for op in captures)
    assert sum(D(op["amount"]) for op in captures) == total == D(payment["captured_total"])

    returned = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # returns' read model catches up with the delivery
        returned = await system.client.post(
            f"{system.url('returns')}/v1/returns",
            json={
                "order_id": order_id,
                "lines": [{"sku": "STR-MUG", "quantity": 1, "reason": "no_longer_needed"}],
            },
        )
        if returned.status_code == 201:
            break
        await asyncio.sleep(0.3)
    assert returned is not None and returned.status_code == 201, returned.text
    return_id = returned.json()["return_id"]
    received = await system.client.post(
        f"{system.url('returns')}/v1/returns/{return_id}/receive",
        json={"lines": [{"sku": "STR-MUG", "quantity": 1, "condition": "resellable"}]},
    )
    assert received.is_success, received.text
    closed = await wait_return_closed(system, return_id)
    refunded = D(closed["refund"]["refunded"])
    assert D(0) < refunded < total

    [payment] = await system.payments(order_id)
    refunds = [op for op in payment["operations"] if op["kind"] == "refund"]
    assert [(op["outcome"], D(op["amount"])) for op in refunds] == [("succeeded", refunded)]
    assert D(payment["refunded_total"]) == refunded


async def test_a_phone_order_stays_on_the_test_gateway(system: System):
    await system.stock_up("STR-CUP", ("berlin", 2))
    order_id = await system.place(order_body([("STR-CUP", 1, "5.00")], channel="phone"))
    await system.wait_status(order_id, "FULFILLING")
    [payment] = await system.payments(order_id)
    assert payment["gateway"] == "test"
