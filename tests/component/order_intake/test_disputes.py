"""Disputes and refunds made at the provider through order-intake's real consumer on a real
Postgres: each is applied once when the handler crashes before or after its commit and the
message comes again, or the gateway reports the same one in a new message; a dispute before
fulfilment holds the order, at fulfilment parks it for an operator; the order view shows the
disputes and the refunds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest

from services.order_intake.app import build
from shared.contracts.common import Allocation
from shared.contracts.inventory import StockReserved
from shared.contracts.order_intake import CreateFulfilment, HoldFulfilments, OperatorAlert
from shared.contracts.payment import PaymentAuthorized, PaymentDisputed, PaymentRefundedExternally
from tests.component.order_intake.test_parcels import fulfilling_order, order_body
from tests.component.order_intake.test_short_picks import saga_of, sent, timeline
from tests.support.component import ComponentHarness, start_harness
from tests.support.crash import CrashOnce, crash_once_for
from tests.support.env import Infra

pytestmark = pytest.mark.component


@pytest.fixture
async def intake(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


@pytest.fixture
def crash_once(intake: ComponentHarness, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrashOnce]:
    yield from crash_once_for(intake, monkeypatch)


def disputed(order_id: str, amount: Decimal) -> PaymentDisputed:
    return PaymentDisputed(
        order_id=order_id,
        payment_id="pay-1",
        dispute_id="dp_1",
        amount=amount,
        currency="EUR",
        reason="fraudulent",
        gateway="stripe",
    )


def refunded(order_id: str) -> PaymentRefundedExternally:
    return PaymentRefundedExternally(
        order_id=order_id,
        payment_id="pay-1",
        amount=Decimal("5.00"),
        currency="EUR",
        refunded_total=Decimal("5.00"),
        gateway="stripe",
        gateway_refund_id="re_1",
    )


async def _alerts(intake: ComponentHarness, kind: str) -> list[Any]:
    return [a for a in await sent(intake, OperatorAlert) if a.kind == kind]


async def test_a_dispute_at_fulfilment_holds_its_fulfilments_once_through_crashes_and_redeliveries(
    intake: ComponentHarness, crash_once: CrashOnce
):
    order_id, total = await fulfilling_order(intake)

    # The handler dies before its commit; the message comes again and is applied.
    crash_once("before_db_commit")
    first = await intake.deliver(disputed(order_id, total), correlation_id=order_id)
    await intake.deliver(disputed(order_id, total), correlation_id=order_id, envelope=first)
    # The handler dies after its commit; the message comes again (the inbox drops it).
    crash_once("after_db_commit")
    again = await intake.deliver(disputed(order_id, total), correlation_id=order_id)
    await intake.deliver(disputed(order_id, total), correlation_id=order_id, envelope=again)
    assert crash_once.crashed == ["before_db_commit", "after_db_commit"]

    saga = await saga_of(intake, order_id)
    assert saga["status"] == "FULFILLING", "held at the warehouse, not parked"
    assert saga["hold"]["reason"] == "payment_disputed" and saga["hold"]["fulfilments_held"]
    assert list(saga["disputes"]) == ["dp_1"]
    [hold] = await sent(intake, HoldFulfilments)
    assert hold == HoldFulfilments(order_id=order_id, reason="payment_disputed")
    [alert] = await _alerts(intake, "payment_disputed")
    assert order_id in alert.message and f"{total} EUR" in alert.message
    assert "fraudulent" in alert.message and "ful-1" in alert.message
    assert await _alerts(intake, "needs_attention") == []
    assert (await timeline(intake, order_id)).count("payment_disputed") == 1

    # A refund made in the dashboard while the order still ships: recorded once, alerted once.
    crash_once("before_db_commit")
    refund = await intake.deliver(refunded(order_id), correlation_id=order_id)
    await intake.deliver(refunded(order_id), correlation_id=order_id, envelope=refund)
    await intake.deliver(refunded(order_id), correlation_id=order_id)  # reported once more
    saga = await saga_of(intake, order_id)
    assert saga["status"] == "FULFILLING", "a refund does not change the status"
    assert Decimal(saga["refunded_externally"]) == Decimal("5.00")
    assert list(saga["external_refunds"]) == ["re_1"]
    [refund_alert] = await _alerts(intake, "refunded_externally")
    assert "not completed" in refund_alert.message
    assert (await timeline(intake, order_id)).count("refunded_externally") == 1

    async with intake.http() as client:
        view = (await client.get(f"/v1/orders/{order_id}")).json()
    assert view["status"] == "FULFILLING"
    assert view["disputes"] == [
        {
            "dispute_id": "dp_1",
            "amount": str(total),
            "currency": "EUR",
            "reason": "fraudulent",
            "gateway": "stripe",
            "opened_at": view["disputes"][0]["opened_at"],
        }
    ]
    assert view["payment"]["refunded_externally"] == "5.00"
    [shown] = view["payment"]["external_refunds"]
    assert shown["gateway_refund_id"] == "re_1" and shown["amount"] == "5.00"
    events = [entry["event"] for entry in view["timeline"]]
    assert "payment_disputed" in events and "refunded_externally" in events


async def test_a_dispute_before_fulfilment_holds_the_order_where_it_would_confirm(
    intake: ComponentHarness,
):
    async with intake.http() as client:
        response = await client.post("/v1/orders", json=order_body())
        assert response.status_code == 202, response.text
        order_id: str = response.json()["order_id"]
        total = Decimal((await client.get(f"/v1/orders/{order_id}")).json()["totals"]["total"])
    allocations = (
        Allocation(line_id="l1", sku="MUG", location="main", quantity=3),
        Allocation(line_id="l2", sku="TEE", location="main", quantity=1),
    )
    await intake.deliver(
        StockReserved(order_id=order_id, allocations=allocations), correlation_id=order_id
    )
    await intake.deliver(disputed(order_id, total), correlation_id=order_id)
    authorized = PaymentAuthorized(
        order_id=order_id, payment_id="pay-1", amount=total, currency="EUR", gateway_reference="g"
    )
    await intake.deliver(authorized, correlation_id=order_id)

    saga = await saga_of(intake, order_id)
    assert saga["status"] == "ON_HOLD"
    assert saga["hold"]["reason"] == "payment_disputed"
    assert await sent(intake, CreateFulfilment) == []
    assert len(await _alerts(intake, "payment_disputed")) == 1
    async with intake.http() as client:
        view = (await client.get(f"/v1/orders/{order_id}")).json()
    assert view["hold"]["reason"] == "payment_disputed"
    assert [d["dispute_id"] for d in view["disputes"]] == ["dp_1"]
