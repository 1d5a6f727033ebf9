"""Holds and fraud review through order-intake's real HTTP API and consumer on a real Postgres:
the velocity signals recorded and counted when orders are stored, an order scored for review
held after its authorisation (each step applied once through crashes and redeliveries), the
hold / release / reject routes (permissions, validation naming the field, 409s, the audit
trail), and the hold's SLA alert."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.order_intake.app import build
from services.order_intake.orders.service import policy_from, process_due_deadlines
from services.order_intake.settings import OrderIntakeSettings
from shared.contracts.common import Allocation
from shared.contracts.inventory import StockReleased, StockReserved
from shared.contracts.order_intake import (
    AuthorizePayment,
    CreateFulfilment,
    CustomerNotification,
    HoldFulfilments,
    OperatorAlert,
    ReleaseFulfilments,
    ReleaseStock,
    VoidPayment,
)
from shared.contracts.payment import PaymentAuthorized, PaymentVoided
from shared.platform.service import Runtime
from tests.component.order_intake.test_short_picks import saga_of, sent, timeline
from tests.support.component import ComponentHarness, start_harness
from tests.support.crash import CrashOnce, crash_once_for
from tests.support.env import Infra

pytestmark = pytest.mark.component

SETTINGS = OrderIntakeSettings(fraud_enabled=True, saga_hold_sla_s=3600)


def order_body(email: str = "mallory@example.com", token: str = "tok_visa") -> dict[str, Any]:
    return {
        "channel": "web",
        "customer": {"email": email, "name": "Mallory"},
        "shipping_address": {
            "line1": "7 Side St",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
        "currency": "EUR",
        "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price": "20.00"}],
        "payment": {"method": "card", "token": token},
    }


@pytest.fixture
async def intake(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build(SETTINGS)):
        yield harness


@pytest.fixture
def crash_once(intake: ComponentHarness, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrashOnce]:
    yield from crash_once_for(intake, monkeypatch)


async def _place(intake: ComponentHarness, **body: str) -> str:
    async with intake.http() as client:
        response = await client.post("/v1/orders", json=order_body(**body))
    assert response.status_code == 202, response.text
    order_id: str = response.json()["order_id"]
    return order_id


def _reserved(order_id: str) -> StockReserved:
    allocation = Allocation(line_id="l1", sku="SKU-1", location="main", quantity=1)
    return StockReserved(order_id=order_id, allocations=(allocation,))


def _authorized(order_id: str) -> PaymentAuthorized:
    return PaymentAuthorized(
        order_id=order_id,
        payment_id=f"pay-{order_id}",
        amount=Decimal("25.69"),
        currency="EUR",
        gateway_reference="g",
    )


async def _on_hold(intake: ComponentHarness, client: httpx.AsyncClient, reason: str) -> str:
    """An order an operator held, authorised and waiting in ON_HOLD."""
    order_id = await _place(intake, email=f"{reason}@example.com")
    held = await client.post(f"/v1/ops/orders/{order_id}/hold", json={"reason": reason})
    assert held.status_code == 202, held.text
    await intake.deliver(_reserved(order_id), correlation_id=order_id)
    await intake.deliver(_authorized(order_id), correlation_id=order_id)
    assert (await saga_of(intake, order_id))["status"] == "ON_HOLD"
    return order_id


async def _run_deadlines(intake: ComponentHarness, settings: OrderIntakeSettings) -> None:
    runtime = Runtime(
        intake.spec.settings,
        intake.pool,
        broker=None,  # type: ignore[arg-type]  (deadlines only write to the outbox)
        relay=None,  # type: ignore[arg-type]
        consumer=intake.consumer,
        migrations=intake.spec.migrations,
    )
    await process_due_deadlines(runtime, policy_from(settings))


async def test_velocity_is_counted_when_stored_and_a_review_order_is_held_once_through_crashes(
    intake: ComponentHarness, crash_once: CrashOnce
):
    async with intake.http() as client:
        orders = [await _place(intake, token=f"tok_card_{n}") for n in range(1, 5)]
        other = await _place(intake, email="someone.else@example.com", token="tok_card_9")
    signals = [(await saga_of(intake, o))["risk_signals"] for o in orders]
    assert [s["velocity"]["email_velocity"] for s in signals] == [1, 2, 3, 4]
    assert [s["cards"]["cards_per_email"] for s in signals] == [1, 2, 3, 4]
    assert [s["earlier_orders_by_email"] for s in signals] == [0, 1, 1, 1]
    assert all("ip_velocity" not in s["velocity"] for s in signals), "loopback: not counted"
    assert signals[0]["client_ip"] == "127.0.0.1", "the client address is kept on the order"
    assert (await saga_of(intake, other))["risk_signals"]["velocity"]["email_velocity"] == 1
    [row] = await intake.fetch("SELECT count(*) AS n FROM order_risk_signals")
    assert row["n"] == 5

    fourth = orders[3]
    # Scoring, where the saga would authorise: dies before its commit, the message comes again.
    crash_once("before_db_commit")
    envelope = await intake.deliver(_reserved(fourth), correlation_id=fourth)
    await intake.deliver(_reserved(fourth), correlation_id=fourth, envelope=envelope)
    # The authorisation: dies after its commit, comes again (the inbox drops it).
    crash_once("after_db_commit")
    envelope = await intake.deliver(_authorized(fourth), correlation_id=fourth)
    await intake.deliver(_authorized(fourth), correlation_id=fourth, envelope=envelope)
    assert crash_once.crashed == ["before_db_commit", "after_db_commit"]

    saga = await saga_of(intake, fourth)
    assert saga["status"] == "ON_HOLD"
    assert saga["hold"]["reason"] == "fraud_review" and saga["hold"]["by"] == "fraud rules"
    assert saga["risk"]["outcome"] == "review" and saga["risk"]["score"] == 60
    assert [a.order_id for a in await sent(intake, AuthorizePayment)] == [fourth]
    assert await sent(intake, CreateFulfilment) == []
    events = await timeline(intake, fourth)
    assert events.count("risk_assessed") == 1 and events.count("held") == 1

    async with intake.http() as client:
        view = (await client.get(f"/v1/orders/{fourth}")).json()
        assert view["status"] == "ON_HOLD" and view["hold"]["reason"] == "fraud_review"
        assert [r["rule"] for r in view["risk"]["reasons"]] == ["email_velocity", "cards_per_email"]
        listed = (await client.get("/v1/orders", params={"status": "ON_HOLD"})).json()
        assert [o["order_id"] for o in listed["orders"]] == [fourth]
        approved = await client.post(
            f"/v1/ops/orders/{fourth}/release", json={"by": "rita", "note": "known customer"}
        )
    assert approved.status_code == 202, approved.text
    assert approved.json()["status"] == "CONFIRMED" and approved.json()["hold"] is None
    assert approved.json()["sent"] == ["CreateFulfilment", "CustomerNotification"]
    view_rows = await intake.fetch(
        "SELECT event, detail FROM order_timeline WHERE order_id = $1 ORDER BY id", fourth
    )
    details = {r["event"]: r["detail"] for r in view_rows}
    assert details["review_decision"]["decision"] == "approve"
    assert details["review_decision"]["by"] == "rita"
    assert details["operator_action"] == {
        "action": "release",
        "subject": "test:admin",
        "by": "rita",
        "note": "known customer",
    }


async def test_hold_routes_need_the_operate_permission_and_name_the_invalid_field(
    intake: ComponentHarness,
):
    async with intake.http() as client:
        order_id = await _place(intake)
    async with intake.http("viewer") as viewer:
        for action, body in (("hold", {"reason": "x"}), ("release", {}), ("reject", {})):
            refused = await viewer.post(f"/v1/ops/orders/{order_id}/{action}", json=body)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "forbidden"
        view = (await viewer.get(f"/v1/orders/{order_id}")).json()
        assert view["risk"]["client_ip"] == "***", "an address is personal data"
    async with intake.http("operator") as client:
        missing = await client.post(f"/v1/ops/orders/{order_id}/hold", json={"note": "n"})
        assert missing.status_code == 422
        assert missing.json()["error"]["code"] == "validation_failed"
        assert missing.json()["error"]["message"].startswith("reason:")
        empty = await client.post(f"/v1/ops/orders/{order_id}/hold", json={"reason": "  "})
        assert empty.status_code == 422 and "reason" in empty.json()["error"]["message"]
        unknown = await client.post(
            f"/v1/ops/orders/{order_id}/hold", json={"reason": "x", "colour": "red"}
        )
        assert unknown.status_code == 422 and "colour" in unknown.json()["error"]["message"]
        nobody = await client.post("/v1/ops/orders/ord_nope/hold", json={"reason": "x"})
        assert nobody.status_code == 404
        assert nobody.json()["error"]["code"] == "order_not_found"
        not_held = await client.post(f"/v1/ops/orders/{order_id}/release")
        assert not_held.status_code == 409
        assert not_held.json()["error"]["code"] == "not_on_hold"
    assert (await saga_of(intake, order_id))["hold"] is None, "nothing refused changed it"


async def test_a_hold_at_fulfilment_sends_hold_fulfilments_and_its_release_releases_them(
    intake: ComponentHarness,
):
    async with intake.http("operator") as client:
        confirmed = await _place(intake, email="fine@example.com")
        await intake.deliver(_reserved(confirmed), correlation_id=confirmed)
        await intake.deliver(_authorized(confirmed), correlation_id=confirmed)
        assert (await saga_of(intake, confirmed))["status"] == "CONFIRMED"
        held = await client.post(
            f"/v1/ops/orders/{confirmed}/hold", json={"reason": "address_check"}
        )
        assert held.status_code == 202, held.text
        assert held.json()["sent"] == ["HoldFulfilments"]
        assert held.json()["status"] == "CONFIRMED"
        [hold] = await sent(intake, HoldFulfilments)
        assert hold == HoldFulfilments(order_id=confirmed, reason="address_check")
        again = await client.post(f"/v1/ops/orders/{confirmed}/hold", json={"reason": "other"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_on_hold"
        assert len(await sent(intake, HoldFulfilments)) == 1

        released = await client.post(f"/v1/ops/orders/{confirmed}/release")
        assert released.status_code == 202, released.text
        assert released.json()["sent"] == ["ReleaseFulfilments"]
        assert await sent(intake, ReleaseFulfilments) == [ReleaseFulfilments(order_id=confirmed)]


async def test_hold_is_refused_when_already_held(
    intake: ComponentHarness,
):
    async with intake.http("operator") as client:
        early = await _place(intake, email="early@example.com")
        held = await client.post(
            f"/v1/ops/orders/{early}/hold",
            json={"reason": "customer_request", "note": "wants to add an item", "by": "cs"},
        )
        assert held.status_code == 202, held.text
        answer = held.json()
        assert answer["status"] == "RESERVING_STOCK", "the saga goes on up to the authorisation"
        assert answer["hold"]["reason"] == "customer_request" and answer["hold"]["by"] == "cs"
        again = await client.post(f"/v1/ops/orders/{early}/hold", json={"reason": "other"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_on_hold"


async def test_rejecting_a_held_order_voids_and_releases_then_cancelled(
    intake: ComponentHarness,
):
    async with intake.http("operator") as client:
        order_id = await _on_hold(intake, client, "address_check")
        rejected = await client.post(
            f"/v1/ops/orders/{order_id}/reject", json={"note": "address does not exist"}
        )
        assert rejected.status_code == 202, rejected.text
        assert rejected.json()["status"] == "CANCELLING"
        assert sorted(rejected.json()["sent"]) == ["ReleaseStock", "VoidPayment"]
    [void] = await sent(intake, VoidPayment)
    assert void.idempotency_key == f"{order_id}:void"
    await intake.deliver(
        PaymentVoided(order_id=order_id, voided=True, reason="x"), correlation_id=order_id
    )
    await intake.deliver(StockReleased(order_id=order_id), correlation_id=order_id)
    saga = await saga_of(intake, order_id)
    assert saga["status"] == "CANCELLED"
    assert saga["reason"] == "rejected on review: address_check"
    kinds = [n.kind for n in await sent(intake, CustomerNotification)]
    assert kinds == ["cancelled"], "the customer hears of the cancel, never of the hold"


async def test_a_hold_past_its_sla_alerts_an_operator_once(intake: ComponentHarness):
    async with intake.http("operator") as client:
        order_id = await _on_hold(intake, client, "address_check")
    await intake.pool.execute(
        "UPDATE orders SET next_deadline_at = now() - interval '1 second',"
        " saga = jsonb_set(saga, '{hold,alert_at}', to_jsonb(now() - interval '1 second'))"
        " WHERE order_id = $1",
        order_id,
    )
    await _run_deadlines(intake, SETTINGS)
    await _run_deadlines(intake, SETTINGS)
    [alert] = await sent(intake, OperatorAlert)
    assert alert.kind == "hold_overdue" and alert.order_id == order_id
    saga = await saga_of(intake, order_id)
    assert saga["status"] == "ON_HOLD" and saga["hold"]["alerted"] is True
    [row] = await intake.fetch("SELECT next_deadline_at FROM orders WHERE order_id = $1", order_id)
    assert row["next_deadline_at"] is None
    assert await sent(intake, ReleaseStock) == [], "a long hold never cancels by itself"
