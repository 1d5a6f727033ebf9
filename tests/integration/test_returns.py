"""The returns saga across all five services, as real processes on real Kafka and Postgres."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support.env import Infra
from tests.support.system import System, order_body, start_system

pytestmark = pytest.mark.integration

D = Decimal

OVERRIDES = {
    "order_intake": {"OMS_DEADLINE_POLL_INTERVAL_S": "0.2"},
    "payment": {
        "OMS_GATEWAY_RETRY_ATTEMPTS": "2",
        "OMS_GATEWAY_RETRY_INITIAL_S": "0.05",
        "OMS_GATEWAY_RETRY_MAX_S": "0.1",
    },
    "returns": {
        "OMS_RETURN_WINDOW_DAYS_BY_CHANNEL": '{"web": 30, "phone": 0}',
        "OMS_NON_RETURNABLE_SKUS": '["RET-FINAL"]',
        "OMS_DAMAGED_REFUND_PERCENT": "50",
        "OMS_REFUND_SHIPPING": "full_return_only",
        "OMS_REFUND_MAX_ATTEMPTS": "3",
        "OMS_REFUND_RETRY_BACKOFF_S": "0.2",
        "OMS_SAGA_REFUND_TIMEOUT_S": "20",
        "OMS_DEADLINE_POLL_INTERVAL_S": "0.2",
        "OMS_RESTOCK_LOCATION": "returns-dc",
    },
}


@pytest.fixture(scope="module")
async def system(infra: Infra) -> AsyncIterator[System]:
    started = await start_system(infra, OVERRIDES)
    yield started
    await started.close()


# --- helpers ---------------------------------------------------------------------------------


async def delivered_order(system: System, lines: list[tuple[str, int, str]], **extra: Any) -> dict:
    order_id = await system.place(order_body(lines, **extra))
    await system.wait_status(order_id, "FULFILLING")
    for fulfilment in await system.fulfilments(order_id):
        assert (await system.ship(fulfilment["fulfilment_id"])).status_code == 200
    await system.wait_status(order_id, "SHIPPED")
    for fulfilment in await system.fulfilments(order_id):
        assert (await system.deliver(fulfilment["fulfilment_id"])).status_code == 200
    return await system.wait_status(order_id, "COMPLETED")


async def post_return(system: System, body: dict[str, Any]) -> httpx.Response:
    return await system.client.post(f"{system.url('returns')}/v1/returns", json=body)


def return_body(order_id: str, *lines: tuple[str, int], **extra: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "lines": [{"sku": sku, "quantity": q, "reason": "no_longer_needed"} for sku, q in lines],
        **extra,
    }


async def answer_once_known(
    system: System, body: dict[str, Any], *, not_yet: tuple[str, ...], timeout_s: float = 30
) -> httpx.Response:
    """POST a return once returns' read model caught up with the order's events."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = await post_return(system, body)
        code = response.json().get("error", {}).get("code") if response.status_code >= 400 else None
        if code not in not_yet or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.2)


async def create_return(system: System, body: dict[str, Any]) -> dict[str, Any]:
    response = await answer_once_known(system, body, not_yet=("order_not_found", "not_delivered"))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def refusal(system: System, body: dict[str, Any], *, not_yet: tuple[str, ...]) -> str:
    response = await answer_once_known(system, body, not_yet=not_yet)
    assert response.status_code in (404, 409, 422), response.text
    code: str = response.json()["error"]["code"]
    return code


async def receive(
    system: System, return_id: str, *lines: tuple[str, int, str], location: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {
        "lines": [{"sku": sku, "quantity": q, "condition": c} for sku, q, c in lines]
    }
    if location:
        body["location"] = location
    return await system.client.post(
        f"{system.url('returns')}/v1/returns/{return_id}/receive", json=body
    )


async def get_return(system: System, return_id: str) -> dict[str, Any]:
    response = await system.client.get(f"{system.url('returns')}/v1/returns/{return_id}")
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


async def wait_return(
    system: System, return_id: str, *statuses: str, timeout_s: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = await get_return(system, return_id)
        if view["status"] in statuses:
            return view
        await asyncio.sleep(0.2)
    raise AssertionError(
        f"return {return_id} is {view.get('status')}, not {statuses}; "
        f"timeline: {[e['event'] for e in view.get('timeline', [])]}"
    )


async def wait_order_returns(
    system: System, order_id: str, state: str, refunded: str | None = None, timeout_s: float = 30
) -> dict[str, Any]:
    """The order view once it shows the returns' state (and refunded amount) expected."""
    deadline = time.monotonic() + timeout_s
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = await system.order(order_id)
        if view["returns"]["state"] == state and refunded in (
            None,
            view["returns"]["refunded_amount"],
        ):
            return view
        await asyncio.sleep(0.2)
    raise AssertionError(f"order {order_id} returns: {view.get('returns')}, not {state}")


async def refund_operations(system: System, order_id: str) -> list[dict[str, Any]]:
    [payment] = await system.payments(order_id)
    return [op for op in payment["operations"] if op["kind"] == "refund"]


async def on_hand(system: System, sku: str, location: str) -> int:
    stock = await system.stock(sku)
    return next((row["on_hand"] for row in stock["locations"] if row["location"] == location), 0)


# --- the scenarios -----------------------------------------------------------------------------


async def test_full_return_refunds_what_was_paid_once_restocks_and_shows_returned(
    system: System,
):
    await system.stock_up("RET-FULL-1", ("berlin", 10))
    order = await delivered_order(system, [("RET-FULL-1", 2, "12.50")])
    total = order["totals"]["total"]
    assert D(order["totals"]["shipping"]) > 0, "a full return refunds the shipping too"
    assert await on_hand(system, "RET-FULL-1", "berlin") == 8

    created = await create_return(system, return_body(order["order_id"], ("RET-FULL-1", 2)))
    return_id = created["return_id"]
    assert created["status"] == "APPROVED"
    # The same receipt sent twice at once: one applies, the other is answered as a repeat.
    first, second = await asyncio.gather(
        receive(system, return_id, ("RET-FULL-1", 2, "resellable"), location="berlin"),
        receive(system, return_id, ("RET-FULL-1", 2, "resellable"), location="berlin"),
    )
    assert {first.status_code, second.status_code} == {200}
    assert sorted(bool(r.json().get("duplicate")) for r in (first, second)) == [False, True]

    closed = await wait_return(system, return_id, "CLOSED")
    assert closed["refund"]["amount"] == closed["refund"]["refunded"] == total
    again = await receive(system, return_id, ("RET-FULL-1", 2, "resellable"), location="berlin")
    assert again.json()["duplicate"] is True

    assert await on_hand(system, "RET-FULL-1", "berlin") == 10
    refunds = await refund_operations(system, order["order_id"])
    assert [(op["idempotency_key"], op["outcome"], op["amount"]) for op in refunds] == [
        (f"{return_id}:refund", "succeeded", total)
    ]
    [payment] = await system.payments(order["order_id"])
    assert (payment["status"], payment["refunded_total"]) == ("refunded", total)

    view = await wait_order_returns(system, order["order_id"], "returned", refunded=total)
    assert view["returns"]["returned_quantities"] == {"RET-FULL-1": 2}


async def test_partial_return_then_the_rest_then_a_third_is_refused(system: System):
    await system.stock_up("RET-PART-1", ("berlin", 5))
    order = await delivered_order(system, [("RET-PART-1", 3, "10.00")])
    order_id, total = order["order_id"], D(order["totals"]["total"])

    one = await create_return(system, return_body(order_id, ("RET-PART-1", 1)))
    assert (await receive(system, one["return_id"], ("RET-PART-1", 1, "resellable"))).is_success
    first = await wait_return(system, one["return_id"], "CLOSED")
    assert D(0) < D(first["refund"]["refunded"]) < total
    await wait_order_returns(
        system, order_id, "partially_returned", refunded=first["refund"]["refunded"]
    )

    rest = await create_return(system, return_body(order_id, ("RET-PART-1", 2)))
    assert (await receive(system, rest["return_id"], ("RET-PART-1", 2, "resellable"))).is_success
    second = await wait_return(system, rest["return_id"], "CLOSED")
    assert D(first["refund"]["refunded"]) + D(second["refund"]["refunded"]) == total
    assert D(second["refund"]["shipping"]) > 0, "the return completing the order refunds shipping"

    third = await post_return(system, return_body(order_id, ("RET-PART-1", 1)))
    assert third.status_code == 422
    assert third.json()["error"]["code"] == "quantity_exceeds_delivered"
    assert third.json()["error"]["details"]["returnable"] == 0

    [payment] = await system.payments(order_id)
    assert D(payment["refunded_total"]) == total
    assert len({op["idempotency_key"] for op in await refund_operations(system, order_id)}) == 2
    # restocked at the configured default location
    assert await on_hand(system, "RET-PART-1", "returns-dc") == 3
    await wait_order_returns(system, order_id, "returned", refunded=str(total))


async def test_damaged_items_are_refunded_per_policy_written_off_not_restocked(system: System):
    await system.stock_up("RET-DMG-1", ("berlin", 5))
    order = await delivered_order(system, [("RET-DMG-1", 2, "20.00")])
    created = await create_return(system, return_body(order["order_id"], ("RET-DMG-1", 2)))
    return_id = created["return_id"]
    response = await receive(
        system,
        return_id,
        ("RET-DMG-1", 1, "resellable"),
        ("RET-DMG-1", 1, "damaged"),
        location="berlin",
    )
    assert response.status_code == 200, response.text
    closed = await wait_return(system, return_id, "CLOSED")
    refunds = {r["condition"]: D(r["refund"]) for r in closed["received"]}
    assert refunds["damaged"] == (refunds["resellable"] / 2).quantize(D("0.01")), "50% policy"
    assert D(closed["refund"]["refunded"]) == refunds["resellable"] + refunds["damaged"] + D(
        closed["refund"]["shipping"]
    )
    assert D(closed["refund"]["refunded"]) < D(order["totals"]["total"])

    assert await on_hand(system, "RET-DMG-1", "berlin") == 4, "only the resellable unit is back"
    r = await system.client.get(
        f"{system.url('inventory')}/v1/stock/RET-DMG-1/ledger", params={"location": "berlin"}
    )
    mine = [
        (e["reason"], e["on_hand_delta"])
        for e in r.json()["entries"]
        if e["reference"] == return_id
    ]
    assert sorted(mine) == sorted([("return", 1), ("return_damaged", 1), ("damage", -1)])


async def test_refusals_outside_the_window_not_delivered_not_returnable_more_than_bought(
    system: System,
):
    await system.stock_up("RET-REF-1", ("berlin", 10))
    await system.stock_up("RET-FINAL", ("berlin", 10))
    phone = await delivered_order(system, [("RET-REF-1", 1, "10.00")], channel="phone")
    code = await refusal(
        system,
        return_body(phone["order_id"], ("RET-REF-1", 1)),
        not_yet=("order_not_found", "not_delivered"),
    )
    assert code == "outside_return_window"

    pending_id = await system.place(order_body([("RET-REF-1", 1, "10.00")]))
    await system.wait_status(pending_id, "FULFILLING")
    code = await refusal(
        system, return_body(pending_id, ("RET-REF-1", 1)), not_yet=("order_not_found",)
    )
    assert code == "not_delivered"

    order = await delivered_order(system, [("RET-REF-1", 1, "10.00"), ("RET-FINAL", 1, "5.00")])
    known = ("order_not_found", "not_delivered")
    body = return_body(order["order_id"], ("RET-FINAL", 1))
    assert await refusal(system, body, not_yet=known) == "not_returnable"
    body = return_body(order["order_id"], ("RET-REF-1", 2))
    assert await refusal(system, body, not_yet=known) == "quantity_exceeds_delivered"
    body = return_body("ord_does_not_exist", ("RET-REF-1", 1))
    assert await refusal(system, body, not_yet=()) == "order_not_found"


async def test_exchange_places_a_linked_replacement_order_and_refunds_the_difference(
    system: System,
):
    await system.stock_up("RET-EXA-1", ("berlin", 5))
    await system.stock_up("RET-EXB-1", ("berlin", 5))
    order = await delivered_order(system, [("RET-EXA-1", 1, "30.00")])
    created = await create_return(
        system,
        return_body(
            order["order_id"],
            ("RET-EXA-1", 1),
            exchange=[{"sku": "RET-EXB-1", "quantity": 1, "unit_price": "20.00"}],
        ),
    )
    return_id = created["return_id"]
    # RET-EXB-1 is not in the order: its proposed price waits for an operator.
    assert created["status"] == "REQUESTED"
    approve = f"{system.url('returns')}/v1/returns/{return_id}/approve"
    assert (await system.client.post(approve)).json()["status"] == "APPROVED"
    assert (await receive(system, return_id, ("RET-EXA-1", 1, "resellable"))).is_success
    closed = await wait_return(system, return_id, "CLOSED")
    replacement_id = closed["exchange"]["replacement_order_id"]
    assert closed["exchange"]["status"] == "placed"
    changes = [e["detail"]["status"] for e in closed["timeline"] if e["event"] == "status_changed"]
    assert changes[-2:] == ["EXCHANGED", "CLOSED"]

    replacement = await system.wait_status(replacement_id, "FULFILLING")
    assert (replacement["linked_return_id"], replacement["original_order_id"]) == (
        return_id,
        order["order_id"],
    )
    assert [(li["sku"], li["quantity"]) for li in replacement["lines"]] == [("RET-EXB-1", 1)]
    assert (await system.stock("RET-EXB-1"))["reserved"] == 1
    assert replacement["payment"]["status"] == "paid_externally"

    replacement_total = D(replacement["totals"]["total"])
    assert D(closed["exchange"]["replacement_total"]) == replacement_total
    assert D(closed["refund"]["refunded"]) == D(order["totals"]["total"]) - replacement_total
    original = await system.order(order["order_id"])
    assert original["replacement_orders"] == [{"order_id": replacement_id, "return_id": return_id}]


async def test_refund_failing_at_the_gateway_retries_one_key_then_needs_attention(
    system: System,
):
    await system.stock_up("RET-FAIL-1", ("berlin", 5))
    order = await delivered_order(system, [("RET-FAIL-1", 1, "10.00")], token="tok_refund_fails")
    created = await create_return(system, return_body(order["order_id"], ("RET-FAIL-1", 1)))
    return_id = created["return_id"]
    assert (await receive(system, return_id, ("RET-FAIL-1", 1, "resellable"))).is_success
    assert (await receive(system, return_id, ("RET-FAIL-1", 1, "resellable"))).json()["duplicate"]
    parked = await wait_return(system, return_id, "NEEDS_ATTENTION")
    assert (parked["refund"]["status"], parked["saga"]["parked_step"]) == ("failed", "refund")

    refunds = await refund_operations(system, order["order_id"])
    assert len(refunds) == 3, "refund_max_attempts tries, no more"
    assert {op["idempotency_key"] for op in refunds} == {f"{return_id}:refund"}
    assert {op["outcome"] for op in refunds} == {"timed_out"}
    [payment] = await system.payments(order["order_id"])
    assert D(payment["refunded_total"]) == 0
    await asyncio.sleep(1)  # nothing more is sent after the last try
    assert len(await refund_operations(system, order["order_id"])) == 3
