"""Order-intake's operator endpoints (/v1/ops) on a real Postgres: stuck orders, retry and
compensate through the saga."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.order_intake.app import build
from services.order_intake.orders.service import policy_from, process_due_deadlines
from services.order_intake.settings import OrderIntakeSettings
from shared.contracts.common import Allocation, SkuQuantity
from shared.contracts.fulfilment import FulfilmentCreated, FulfilmentRef, FulfilmentShipped
from shared.contracts.inventory import StockReleased, StockReserved
from shared.contracts.payment import PaymentAuthorized, PaymentCaptureFailed
from shared.platform.service import Runtime
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component

# Stock reservations time out at once and are given up after one try, so an order that never
# hears from inventory is overdue right away, and parked after two deadline passes.
SETTINGS = OrderIntakeSettings(
    saga_stock_timeout_s=0,
    saga_compensation_timeout_s=0,
    saga_max_attempts=1,
    saga_payment_timeout_s=3600,
    saga_fulfilment_timeout_s=3600,
)


def order_body() -> dict[str, Any]:
    return {
        "channel": "web",
        "customer": {"email": "ada@example.com", "name": "Ada"},
        "shipping_address": {
            "line1": "1 Main St",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
        "currency": "EUR",
        "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": "10.00"}],
        "payment": {"method": "card", "token": "tok_visa"},
    }


@pytest.fixture
async def intake(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build(SETTINGS)):
        yield harness


async def _place(client: httpx.AsyncClient) -> str:
    response = await client.post("/v1/orders", json=order_body())
    assert response.status_code == 202, response.text
    order_id: str = response.json()["order_id"]
    return order_id


async def _run_deadlines(intake: ComponentHarness) -> None:
    """One pass of the saga's deadline scheduler (which does not run in component tests)."""
    runtime = Runtime(
        intake.spec.settings,
        intake.pool,
        broker=None,  # type: ignore[arg-type]  (deadlines only write to the outbox)
        relay=None,  # type: ignore[arg-type]
        consumer=intake.consumer,
        migrations=intake.spec.migrations,
    )
    await process_due_deadlines(runtime, policy_from(SETTINGS))


async def _reserve_and_authorize(intake: ComponentHarness, order_id: str) -> None:
    allocation = Allocation(line_id="l1", sku="SKU-1", location="main", quantity=2)
    await intake.deliver(
        StockReserved(order_id=order_id, allocations=(allocation,)), correlation_id=order_id
    )
    await intake.deliver(
        PaymentAuthorized(
            order_id=order_id,
            payment_id="pay-1",
            amount=Decimal("29.69"),
            currency="EUR",
            gateway_reference="g-1",
        ),
        correlation_id=order_id,
    )


async def _ship_with_failed_capture(intake: ComponentHarness, order_id: str) -> None:
    lines = (SkuQuantity(sku="SKU-1", quantity=2),)
    await intake.deliver(
        FulfilmentCreated(
            order_id=order_id,
            fulfilments=(FulfilmentRef(fulfilment_id="f-1", location="main", lines=lines),),
        ),
        correlation_id=order_id,
    )
    await intake.deliver(
        FulfilmentShipped(
            order_id=order_id,
            fulfilment_id="f-1",
            location="main",
            lines=lines,
            carrier="dhl",
            tracking_number="T-1",
            shipped_at=datetime.now(UTC),
        ),
        correlation_id=order_id,
    )
    await intake.deliver(
        PaymentCaptureFailed(order_id=order_id, fulfilment_id="f-1", reason="card expired"),
        correlation_id=order_id,
    )


def _by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["order_id"]: o for o in body["orders"]}


async def test_stuck_lists_overdue_and_parked_orders_but_not_healthy_ones(
    intake: ComponentHarness,
):
    async with intake.http() as client:
        overdue = await _place(client)  # inventory never answers; its deadline is now
        healthy = await _place(client)
        await _reserve_and_authorize(intake, healthy)  # waits on fulfilment, deadline in 1 h
        parked = await _place(client)
        await _reserve_and_authorize(intake, parked)
        await _ship_with_failed_capture(intake, parked)

        stuck = await client.get("/v1/ops/orders/stuck")
        assert stuck.status_code == 200, stuck.text
        found = _by_id(stuck.json())
        assert set(found) == {overdue, parked}
        assert found[overdue]["stuck_because"] == "deadline_overdue"
        assert found[overdue]["status"] == "RESERVING_STOCK"
        assert found[overdue]["step"] == "reserve_stock" and found[overdue]["attempt"] == 1
        assert found[overdue]["overdue_s"] >= 0
        assert found[parked]["stuck_because"] == "needs_attention"
        assert found[parked]["reason"] == "capture failed after shipment (f-1): card expired"
        assert found[parked]["parked_from"] == "SHIPPED"

        generous = await client.get("/v1/ops/orders/stuck", params={"grace_s": 600})
        assert set(_by_id(generous.json())) == {parked}, "overdue by less than the grace period"

        bad = await client.get("/v1/ops/orders/stuck", params={"grace_s": -1})
        assert bad.status_code == 422
        assert bad.json()["error"]["code"] == "validation_failed"


async def test_retry_of_a_failed_capture_resends_it_and_compensate_is_refused_after_shipment(
    intake: ComponentHarness,
):
    async with intake.http() as client:
        order_id = await _place(client)
        await _reserve_and_authorize(intake, order_id)
        await _ship_with_failed_capture(intake, order_id)
        [first_capture] = await intake.emitted_contracts("CapturePayment")

        retried = await client.post(
            f"/v1/ops/orders/{order_id}/retry", json={"by": "oncall", "note": "card updated"}
        )
        assert retried.status_code == 202, retried.text
        assert retried.json()["previous_status"] == "NEEDS_ATTENTION"
        assert retried.json()["status"] == "SHIPPED"
        assert retried.json()["sent"] == ["CapturePayment"]

        refused = await client.post(f"/v1/ops/orders/{order_id}/compensate")
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "already_shipped"
        assert refused.json()["error"]["details"] == {"order_status": "SHIPPED"}

        view = (await client.get(f"/v1/orders/{order_id}")).json()
    captures = await intake.emitted_contracts("CapturePayment")
    assert len(captures) == 2
    assert captures[1].idempotency_key == first_capture.idempotency_key, "same key: charged once"
    assert captures[1].amount == first_capture.amount
    events = [(e["event"], e["detail"]) for e in view["timeline"]]
    audit = {"action": "retry", "subject": "test:admin", "by": "oncall", "note": "card updated"}
    assert ("operator_action", audit) in events, "who did it, from the token"
    assert any(event == "operator_retry" for event, _ in events)
    changes = await intake.emitted_contracts("OrderStatusChanged")
    assert changes[-1].status == "SHIPPED" and changes[-1].previous_status == "NEEDS_ATTENTION"


async def test_compensate_a_parked_cancellation_resends_the_release_then_the_order_closes(
    intake: ComponentHarness,
):
    async with intake.http() as client:
        order_id = await _place(client)
        await _run_deadlines(intake)  # the only try is up: give up, release the stock
        assert (await client.get(f"/v1/orders/{order_id}")).json()["status"] == "CANCELLING"
        await _run_deadlines(intake)  # the release was not confirmed in time: parked
        parked = (await client.get(f"/v1/orders/{order_id}")).json()
        assert parked["status"] == "NEEDS_ATTENTION", parked["timeline"]
        releases_before = len(await intake.emitted("ReleaseStock"))

        compensated = await client.post(f"/v1/ops/orders/{order_id}/compensate")
        assert compensated.status_code == 202, compensated.text
        assert compensated.json()["status"] == "CANCELLING"
        assert compensated.json()["sent"] == ["ReleaseStock"]
        assert compensated.json()["step"] == "compensate"
        assert len(await intake.emitted("ReleaseStock")) == releases_before + 1

        await intake.deliver(StockReleased(order_id=order_id), correlation_id=order_id)
        closed = (await client.get(f"/v1/orders/{order_id}")).json()
        assert closed["status"] == "CANCELLED"

        retry = await client.post(f"/v1/ops/orders/{order_id}/retry")
        assert retry.status_code == 409
        assert retry.json()["error"]["code"] == "nothing_to_retry"
        again = await client.post(f"/v1/ops/orders/{order_id}/compensate")
        assert again.status_code == 409 and again.json()["error"]["code"] == "order_closed"
        assert order_id not in _by_id((await client.get("/v1/ops/orders/stuck")).json())


async def test_retry_of_an_overdue_step_resends_its_command_with_a_fresh_deadline(
    intake: ComponentHarness,
):
    async with intake.http() as client:
        order_id = await _place(client)
        retried = await client.post(f"/v1/ops/orders/{order_id}/retry")
        assert retried.status_code == 202, retried.text
        body = retried.json()
        assert (body["status"], body["step"], body["attempt"]) == (
            "RESERVING_STOCK",
            "reserve_stock",
            1,
        )
        assert body["sent"] == ["ReserveStock"]
    reserves = await intake.emitted_contracts("ReserveStock")
    assert len(reserves) == 2 and reserves[0] == reserves[1]


async def test_unknown_orders_and_bad_bodies_are_clear_4xx(intake: ComponentHarness):
    async with intake.http() as client:
        for action in ("retry", "compensate"):
            missing = await client.post(f"/v1/ops/orders/ord_nope/{action}")
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "order_not_found"
        order_id = await _place(client)
        bad = await client.post(f"/v1/ops/orders/{order_id}/retry", json={"who": "me"})
        assert bad.status_code == 422
        assert bad.json()["error"]["code"] == "validation_failed"
