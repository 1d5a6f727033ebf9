"""Fraud rules and holds across the five services, as real processes on real Kafka and Postgres,
with the default rule set: a velocity attack is held for review with nothing captured; a
reviewer's release sends an order to fulfilment, a reject voids it and releases its stock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tests.support.env import Infra
from tests.support.system import System, order_body, start_system

pytestmark = pytest.mark.integration

FRAUD_ON = {"OMS_FRAUD_ENABLED": "true", "OMS_DEADLINE_POLL_INTERVAL_S": "0.2"}


@pytest.fixture(scope="module")
async def system(infra: Infra) -> AsyncIterator[System]:
    started = await start_system(infra, {"order_intake": FRAUD_ON})
    yield started
    await started.close()


def attack_order(n: int) -> dict[str, object]:
    return order_body(
        [("FRAUD-1", 1, "19.90")],
        token=f"tok_stolen_{n}",
        customer={"email": "mallory@example.com", "name": "Mallory"},
        shipping_address={
            "line1": "13 Drop St",
            "city": "Hamburg",
            "postal_code": "20095",
            "country": "DE",
        },
    )


async def _ops(system: System, order_id: str, action: str, **body: str) -> dict[str, object]:
    r = await system.client.post(
        f"{system.url('order_intake')}/v1/ops/orders/{order_id}/{action}", json=body
    )
    assert r.status_code == 202, r.text
    answer: dict[str, object] = r.json()
    return answer


async def test_a_velocity_attack_is_held_uncaptured_and_the_reviewer_releases_or_rejects(
    system: System,
):
    await system.stock_up("FRAUD-1", ("berlin", 20))
    # Ten orders within a minute from one e-mail, each with another card.
    orders = [await system.place(attack_order(n)) for n in range(1, 11)]
    accepted, held = orders[:3], orders[3:]
    for order_id in accepted:
        view = await system.wait_status(order_id, "FULFILLING")
        assert view["risk"]["outcome"] == "accept"
    for order_id in held:
        view = await system.wait_status(order_id, "ON_HOLD")
        assert view["hold"]["reason"] == "fraud_review"
        assert view["risk"]["outcome"] == "review"
        assert {r["rule"] for r in view["risk"]["reasons"]} >= {
            "email_velocity",
            "cards_per_email",
        }
        assert view["payment"]["status"] == "authorized"
        assert await system.fulfilments(order_id) == [], "nothing went to the warehouse"
        [payment] = await system.payments(order_id)
        assert payment["status"] == "authorized"
        assert Decimal(payment["captured_total"]) == 0
        assert not [op for op in payment["operations"] if op["kind"] == "capture"]
    stock = await system.stock("FRAUD-1")
    assert (stock["on_hand"], stock["reserved"]) == (20, 10), "held orders keep their stock"

    approved, rejected = held[0], held[1]
    answer = await _ops(system, approved, "release", by="rita", note="customer called back")
    assert answer["previous_status"] == "ON_HOLD"
    fulfilling = await system.wait_status(approved, "FULFILLING")
    assert len(await system.fulfilments(approved)) == 1
    review = next(e for e in fulfilling["timeline"] if e["event"] == "review_decision")
    assert review["detail"]["decision"] == "approve" and review["detail"]["by"] == "rita"

    await _ops(system, rejected, "reject", by="rita", note="stolen cards")
    cancelled = await system.wait_status(rejected, "CANCELLED")
    assert cancelled["reason"] == "fraud_rejected"
    assert cancelled["payment"]["status"] == "voided"
    [payment] = await system.payments(rejected)
    assert payment["status"] == "voided" and Decimal(payment["captured_total"]) == 0
    review = next(e for e in cancelled["timeline"] if e["event"] == "review_decision")
    assert review["detail"]["decision"] == "reject"
    stock = await system.stock("FRAUD-1")
    assert (stock["on_hand"], stock["reserved"]) == (20, 9), "the rejected order's unit released"

    for order_id in held[2:]:
        assert (await system.order(order_id))["status"] == "ON_HOLD", "the rest wait for review"


async def test_an_operator_hold_waits_after_authorisation_and_a_cancel_still_works(
    system: System,
):
    await system.stock_up("HOLD-1", ("berlin", 5))
    body = order_body([("HOLD-1", 1, "9.90")], customer={"email": "ann@example.com"})
    order_id = await system.place(body)
    await system.wait_status(order_id, "FULFILLING")
    # Held at the warehouse: its unshipped fulfilment refuses to ship until released.
    await _ops(system, order_id, "hold", reason="address_check")
    deadline = time.monotonic() + 30
    [fulfilment] = await system.fulfilments(order_id)
    while fulfilment.get("hold_reason") is None and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        [fulfilment] = await system.fulfilments(order_id)
    assert fulfilment["hold_reason"] == "address_check", fulfilment
    refused = await system.ship(fulfilment["fulfilment_id"])
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "fulfilment_on_hold"
    await _ops(system, order_id, "release")

    # Held before its authorisation answered (payment is down meanwhile): once payment is
    # back it is authorised, then waits.
    system.stop("payment")
    second = await system.place(
        order_body([("HOLD-1", 1, "9.90")], customer={"email": "bob@example.com"})
    )
    held = await _ops(system, second, "hold", reason="customer_request", note="gift wrap")
    assert held["status"] in {"RESERVING_STOCK", "AUTHORIZING_PAYMENT"}
    await system.start("payment")
    view = await system.wait_status(second, "ON_HOLD")
    assert view["payment"]["status"] == "authorized" and view["hold"]["by"] == "test:admin"
    cancel = await system.cancel(second)
    assert cancel.status_code == 202, cancel.text
    cancelled = await system.wait_status(second, "CANCELLED")
    assert cancelled["payment"]["status"] == "voided"
    assert (await system.stock("HOLD-1"))["reserved"] == 1, "only the first order's unit"
