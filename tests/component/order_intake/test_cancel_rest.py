"""Cancelling the unshipped rest of a partly shipped order, through order-intake's real HTTP API
and consumer on a real Postgres: the cancel answers what it takes; a parcel that races it, and
fulfilment's answer, are each applied once also when the handler crashes before or after its
commit and the message comes again or is re-sent; the stock of the rest is released once, the
customer is e-mailed once what was cancelled and what is not charged, the captures come to
exactly the share of what shipped, and the order completes. An operator's compensation of a
partly shipped order is the same cancel of the rest."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest

from services.order_intake.app import build
from shared.contracts.fulfilment import FulfilmentCancelled
from shared.contracts.order_intake import (
    CancelFulfilment,
    CapturePayment,
    CommitStock,
    CustomerNotification,
    ReleaseStock,
    VoidPayment,
)
from shared.contracts.payment import PaymentCaptureFailed
from shared.money import round_money
from tests.component.order_intake.test_parcels import fulfilling_order, parcel
from tests.component.order_intake.test_short_picks import delivered_all, saga_of, sent, timeline
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


def cancelled_rest(order_id: str) -> FulfilmentCancelled:
    return FulfilmentCancelled(
        order_id=order_id, reason="requested by customer", partly_shipped=("ful-1",)
    )


def share(total: Decimal, goods: Decimal) -> Decimal:
    """The share of the total of goods worth `goods` (the order's goods are worth 58.87)."""
    return round_money(total * goods / Decimal("58.87"), "EUR")


async def test_the_customer_cancels_the_rest_applied_once_through_crashes_and_redeliveries(
    intake: ComponentHarness, crash_once: CrashOnce
):
    order_id, total = await fulfilling_order(intake)  # ful-1: 3 x MUG at 12.99, 1 x TEE 19.90
    await intake.deliver(parcel(order_id, "par-1", {"MUG": 1}, False), correlation_id=order_id)
    assert (await saga_of(intake, order_id))["status"] == "PARTIALLY_SHIPPED"
    [first_capture] = await sent(intake, CapturePayment)
    assert first_capture.amount == share(total, Decimal("12.99"))

    async with intake.http("customer_service") as client:
        cancel = await client.post(f"/v1/orders/{order_id}/cancel", json={"reason": "too slow"})
        assert cancel.status_code == 202, cancel.text
        assert cancel.json() == {
            "order_id": order_id,
            "status": "CANCELLING",
            "cancel": "pending",
            "scope": "unshipped_rest",
            "unshipped": [{"sku": "MUG", "quantity": 2}, {"sku": "TEE", "quantity": 1}],
            "not_charged": str(total - first_capture.amount),
            "currency": "EUR",
        }
        again = await client.post(f"/v1/orders/{order_id}/cancel")
        assert again.status_code == 202 and again.json()["scope"] == "unshipped_rest"
    assert len(await sent(intake, CancelFulfilment)) == 1, "a repeated cancel sends nothing"
    assert await sent(intake, VoidPayment) == [], "a parcel left: never a void"

    # A parcel leaves before the warehouse sees the cancel: applied once, though the handler
    # dies after its commit and the message comes again.
    raced = parcel(order_id, "par-2", {"MUG": 1}, False)
    crash_once("after_db_commit")
    envelope = await intake.deliver(raced, correlation_id=order_id)
    await intake.deliver(raced, correlation_id=order_id, envelope=envelope)
    assert [c.shipment_id for c in await sent(intake, CommitStock)] == ["par-1", "par-2"]
    captures = await sent(intake, CapturePayment)
    assert [c.shipment_id for c in captures] == ["par-1", "par-2"]
    assert (await saga_of(intake, order_id))["status"] == "CANCELLING"

    # Fulfilment's answer: dies before its commit, comes again, and is re-sent.
    crash_once("before_db_commit")
    envelope = await intake.deliver(cancelled_rest(order_id), correlation_id=order_id)
    await intake.deliver(cancelled_rest(order_id), correlation_id=order_id, envelope=envelope)
    await intake.deliver(cancelled_rest(order_id), correlation_id=order_id)
    assert crash_once.crashed == ["after_db_commit", "before_db_commit"]

    [release] = await sent(intake, ReleaseStock)
    assert release.order_id == order_id
    notices = [
        e for e in await intake.emitted(CustomerNotification.TYPE) if e.contract().kind != "shipped"
    ]
    [notice] = notices
    data = notice.contract().data
    shipped_share = share(total, Decimal("25.98"))
    assert data["lines"] == [{"sku": "MUG", "quantity": 1}, {"sku": "TEE", "quantity": 1}]
    assert Decimal(data["amount"]) == total - shipped_share
    assert sum(c.amount for c in captures) == shipped_share
    saga = await saga_of(intake, order_id)
    assert saga["status"] == "SHIPPED"
    assert saga["reason"] == "unshipped rest cancelled: too slow"

    # The e-mail, rendered by order-intake's notification consumer.
    await intake.deliver(notice.contract(), correlation_id=order_id, envelope=notice)
    [mail] = await intake.fetch(
        "SELECT subject, body FROM notifications WHERE order_id = $1 AND kind = 'rest_cancelled'",
        order_id,
    )
    assert mail["subject"] == f"The rest of your order {order_id} is cancelled"
    assert "  1 x MUG\n  1 x TEE" in mail["body"]
    assert f"not charged for them: {total - shipped_share} EUR less" in mail["body"]

    async with intake.http("customer_service") as client:
        refused = await client.post(f"/v1/orders/{order_id}/cancel")
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "already_shipped"
        await delivered_all(intake, order_id, captures)
        view = (await client.get(f"/v1/orders/{order_id}")).json()
    assert view["status"] == "COMPLETED"
    assert view["payment"] == {
        "status": "captured",
        "authorized": True,
        "captured_total": str(shipped_share),
        "capture_target": str(shipped_share),
        "next_action": None,
        "refunded_externally": "0.00",
        "external_refunds": [],
    }
    [fulfilment] = view["fulfilment"]["fulfilments"]
    assert fulfilment["rest_cancelled"] is True and fulfilment["status"] == "delivered"
    assert fulfilment["unshipped"] == [{"sku": "MUG", "quantity": 1}, {"sku": "TEE", "quantity": 1}]
    events = await timeline(intake, order_id)
    for event in ("cancel_requested", "cancel_repeated", "rest_cancelled"):
        assert events.count(event) == 1, (event, events)
    assert events.count("fulfilment_shipped") == 2
    assert not intake.dead_letters


async def test_an_operator_compensates_a_parked_partly_shipped_order_by_cancelling_its_rest(
    intake: ComponentHarness,
):
    order_id, total = await fulfilling_order(intake)
    await intake.deliver(parcel(order_id, "par-1", {"MUG": 3}, False), correlation_id=order_id)
    [capture] = await sent(intake, CapturePayment)
    failed = PaymentCaptureFailed(
        order_id=order_id, fulfilment_id="ful-1", shipment_id="par-1", reason="gateway_timeout"
    )
    await intake.deliver(failed, correlation_id=order_id)
    assert (await saga_of(intake, order_id))["status"] == "NEEDS_ATTENTION"
    async with intake.http("operator") as client:
        refused = await client.post(f"/v1/orders/{order_id}/cancel")
        assert refused.json()["error"]["code"] == "needs_attention"
        compensated = await client.post(
            f"/v1/ops/orders/{order_id}/compensate", json={"by": "oncall", "note": "no more"}
        )
    assert compensated.status_code == 202, compensated.text
    assert compensated.json()["previous_status"] == "NEEDS_ATTENTION"
    assert compensated.json()["status"] == "CANCELLING"
    assert compensated.json()["sent"] == ["CapturePayment", "CancelFulfilment"]
    assert (await sent(intake, CapturePayment))[-1] == capture, "the same capture, same key"
    await intake.deliver(cancelled_rest(order_id), correlation_id=order_id)
    saga = await saga_of(intake, order_id)
    assert saga["status"] == "SHIPPED"
    [notice] = [n for n in await sent(intake, CustomerNotification) if n.kind != "shipped"]
    assert notice.kind == "rest_cancelled"
    assert notice.data["lines"] == [{"sku": "TEE", "quantity": 1}]
    assert notice.data["reason"] == "cancelled by an operator"
    assert Decimal(notice.data["amount"]) == total - capture.amount
    assert await sent(intake, VoidPayment) == []
