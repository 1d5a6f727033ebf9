"""3-D Secure through order-intake's real consumer, HTTP API and deadlines on a real Postgres:
PaymentRequiresAction puts the order in AWAITING_CUSTOMER_ACTION (applied once through crashes
and redeliveries), the order view gives the shop front the action and, only to callers with
`personal_data:read`, the client secret; the payment's outcome confirms or cancels it; the wait
runs out and cancels it; a late authorisation is voided."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from services.order_intake.app import build
from services.order_intake.settings import OrderIntakeSettings
from shared.contracts.inventory import StockReleased
from shared.contracts.order_intake import (
    CreateFulfilment,
    ReleaseStock,
    VoidPayment,
)
from shared.contracts.payment import PaymentRequiresAction
from tests.component.order_intake.test_holds_api import (
    _authorized,
    _place,
    _reserved,
    _run_deadlines,
)
from tests.component.order_intake.test_short_picks import saga_of, sent, timeline
from tests.support.component import ComponentHarness, start_harness
from tests.support.crash import CrashOnce, crash_once_for
from tests.support.env import Infra

pytestmark = pytest.mark.component

SETTINGS = OrderIntakeSettings(fraud_enabled=False, saga_customer_action_timeout_s=600)


@pytest.fixture
async def intake(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build(SETTINGS)):
        yield harness


@pytest.fixture
def crash_once(intake: ComponentHarness, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrashOnce]:
    yield from crash_once_for(intake, monkeypatch)


def _requires_action(order_id: str) -> PaymentRequiresAction:
    return PaymentRequiresAction(
        order_id=order_id,
        payment_id=f"pay-{order_id}",
        client_secret=f"pi_{order_id}_secret_x",
        next_action="use_stripe_sdk",
        gateway_reference=f"pi_{order_id}",
    )


async def _awaiting(intake: ComponentHarness, email: str = "cara@example.com") -> str:
    order_id = await _place(intake, email=email)
    await intake.deliver(_reserved(order_id), correlation_id=order_id)
    await intake.deliver(_requires_action(order_id), correlation_id=order_id)
    assert (await saga_of(intake, order_id))["status"] == "AWAITING_CUSTOMER_ACTION"
    return order_id


async def test_requires_action_waits_once_through_crashes_and_completes_on_authorisation(
    intake: ComponentHarness, crash_once: CrashOnce
):
    order_id = await _place(intake)
    await intake.deliver(_reserved(order_id), correlation_id=order_id)
    crash_once("before_db_commit")
    envelope = await intake.deliver(_requires_action(order_id), correlation_id=order_id)
    await intake.deliver(_requires_action(order_id), correlation_id=order_id, envelope=envelope)
    crash_once("after_db_commit")
    envelope = await intake.deliver(_requires_action(order_id), correlation_id=order_id)
    await intake.deliver(_requires_action(order_id), correlation_id=order_id, envelope=envelope)
    assert crash_once.crashed == ["before_db_commit", "after_db_commit"]

    saga = await saga_of(intake, order_id)
    assert saga["status"] == "AWAITING_CUSTOMER_ACTION"
    assert saga["step"] is None and saga["deadline_at"] is None
    assert (await timeline(intake, order_id)).count("payment_requires_action") == 1
    [row] = await intake.fetch("SELECT next_deadline_at FROM orders WHERE order_id = $1", order_id)
    waited = row["next_deadline_at"] - datetime.fromisoformat(
        saga["customer_action"]["requested_at"]
    )
    assert waited == timedelta(seconds=600)

    crash_once("after_db_commit")
    envelope = await intake.deliver(_authorized(order_id), correlation_id=order_id)
    await intake.deliver(_authorized(order_id), correlation_id=order_id, envelope=envelope)
    saga = await saga_of(intake, order_id)
    assert saga["status"] == "CONFIRMED" and saga["customer_action"] is None
    assert [c.order_id for c in await sent(intake, CreateFulfilment)] == [order_id]
    async with intake.http() as client:
        view = (await client.get(f"/v1/orders/{order_id}")).json()
    assert view["payment"]["status"] == "authorized" and view["payment"]["next_action"] is None


async def test_the_order_view_gives_the_client_secret_only_with_personal_data(
    intake: ComponentHarness,
):
    order_id = await _awaiting(intake)
    async with intake.http("customer_service") as client:
        view = (await client.get(f"/v1/orders/{order_id}")).json()
    assert view["status"] == "AWAITING_CUSTOMER_ACTION"
    assert view["payment"]["status"] == "requires_action"
    action = view["payment"]["next_action"]
    assert action["type"] == "use_stripe_sdk"
    assert action["client_secret"] == f"pi_{order_id}_secret_x"
    assert action["expires_at"]
    async with intake.http("viewer") as viewer:
        masked = (await viewer.get(f"/v1/orders/{order_id}")).json()
    assert masked["payment"]["next_action"]["type"] == "use_stripe_sdk"
    assert masked["payment"]["next_action"]["client_secret"] is None
    assert f"pi_{order_id}_secret_x" not in str(masked)


async def test_a_cancel_while_waiting_voids_and_releases_at_once(intake: ComponentHarness):
    order_id = await _awaiting(intake)
    async with intake.http() as client:
        answer = await client.post(f"/v1/orders/{order_id}/cancel", json={"reason": "changed"})
    assert answer.status_code in (200, 202), answer.text
    assert (await saga_of(intake, order_id))["status"] == "CANCELLING"
    assert [v.order_id for v in await sent(intake, VoidPayment)] == [order_id]
    assert [r.order_id for r in await sent(intake, ReleaseStock)] == [order_id]


async def test_the_wait_running_out_cancels_and_a_late_authorisation_is_voided(
    intake: ComponentHarness,
):
    order_id = await _awaiting(intake)
    await intake.fetch(
        "UPDATE orders SET next_deadline_at = $2 WHERE order_id = $1",
        order_id,
        datetime.now(UTC) - timedelta(seconds=1),
    )
    saga = await saga_of(intake, order_id)
    expired = datetime.now(UTC) - timedelta(seconds=1)
    saga["customer_action"]["expires_at"] = expired.isoformat()
    await intake.fetch(
        "UPDATE orders SET saga = saga || jsonb_build_object('customer_action', $2::jsonb)"
        " WHERE order_id = $1",
        order_id,
        saga["customer_action"],
    )
    await _run_deadlines(intake, SETTINGS)
    saga = await saga_of(intake, order_id)
    assert saga["status"] == "CANCELLING"
    assert saga["reason"].startswith("customer_action_expired")
    assert len(await sent(intake, VoidPayment)) == 1
    await intake.deliver(StockReleased(order_id=order_id, released=()), correlation_id=order_id)

    await intake.deliver(_authorized(order_id), correlation_id=order_id)  # late success
    assert len(await sent(intake, VoidPayment)) == 2
    assert "late_payment_authorized_voided" in await timeline(intake, order_id)
