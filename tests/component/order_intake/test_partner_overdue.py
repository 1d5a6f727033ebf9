"""A 3PL or dropship supplier past its deadline: one timeline entry and one operator alert per
fulfilment, also when the event is redelivered; the order's status is left alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from services.order_intake.app import build
from shared.contracts.fulfilment import PartnerFulfilmentOverdue
from shared.contracts.order_intake import OperatorAlert
from tests.component.order_intake.test_ops_api import order_body
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component


@pytest.fixture
async def intake(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


def overdue(order_id: str) -> PartnerFulfilmentOverdue:
    requested = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    return PartnerFulfilmentOverdue(
        order_id=order_id,
        fulfilment_id="f-1",
        location="3pl-east",
        request_kind="fulfilment_request",
        requested_at=requested,
        deadline_at=requested + timedelta(hours=24),
    )


async def test_an_overdue_partner_is_one_timeline_entry_and_one_alert(
    intake: ComponentHarness,
) -> None:
    async with intake.http() as client:
        placed = await client.post("/v1/orders", json=order_body())
    assert placed.status_code == 202, placed.text
    order_id: str = placed.json()["order_id"]
    [status_before] = await intake.fetch("SELECT status FROM orders WHERE order_id = $1", order_id)
    await intake.clear_outbox()

    envelope = await intake.deliver(overdue(order_id), correlation_id=order_id)
    await intake.deliver(overdue(order_id), correlation_id=order_id, envelope=envelope)
    await intake.deliver(overdue("not-an-order"), correlation_id="not-an-order")

    rows = await intake.fetch(
        "SELECT detail FROM order_timeline WHERE order_id = $1 AND event = 'partner_overdue'",
        order_id,
    )
    assert [r["detail"] for r in rows] == [
        {
            "fulfilment_id": "f-1",
            "location": "3pl-east",
            "request_kind": "fulfilment_request",
            "deadline_at": "2026-03-03T09:00:00+00:00",
        }
    ]
    [alert] = await intake.emitted_contracts("OperatorAlert")
    assert isinstance(alert, OperatorAlert)
    assert (alert.order_id, alert.kind) == (order_id, "partner_overdue")
    assert "3pl-east" in alert.message
    [status_after] = await intake.fetch("SELECT status FROM orders WHERE order_id = $1", order_id)
    assert status_after["status"] == status_before["status"]
    assert not intake.dead_letters
