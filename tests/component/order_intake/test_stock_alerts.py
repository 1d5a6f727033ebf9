"""Inventory's LowStock becomes one operator alert on the notifications topic, keyed by SKU;
a redelivered LowStock changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.order_intake.app import build
from shared.contracts.inventory import LowStock
from shared.contracts.order_intake import OperatorStockAlert
from shared.topics import NOTIFICATIONS
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component


@pytest.fixture
async def intake(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


def low(sku: str, days_of_cover: float | None) -> LowStock:
    return LowStock(
        sku=sku,
        location="berlin",
        on_hand=9,
        reserved=1,
        available=8,
        reorder_point=10,
        reorder_point_source="velocity",
        velocity_per_day=2.0,
        days_of_cover=days_of_cover,
    )


async def test_low_stock_is_one_operator_alert_also_when_redelivered(
    intake: ComponentHarness,
) -> None:
    envelope = await intake.deliver(low("TEA", 4.0), correlation_id="TEA")
    await intake.deliver(low("TEA", 4.0), correlation_id="TEA", envelope=envelope)
    await intake.deliver(low("JAM", None), correlation_id="JAM")

    alerts = await intake.emitted_contracts(OperatorStockAlert.TYPE)
    assert [(a.kind, a.sku, a.location) for a in alerts] == [
        ("low_stock", "TEA", "berlin"),
        ("low_stock", "JAM", "berlin"),
    ]
    assert alerts[0].message == (
        "TEA is low at berlin: 8 available, reorder point 10 (velocity), 4 days of cover at 2 a day"
    )
    assert "nothing shipped" in alerts[1].message
    rows = await intake.fetch("SELECT topic, msg_key FROM outbox ORDER BY id")
    assert [tuple(r) for r in rows] == [(NOTIFICATIONS, "TEA"), (NOTIFICATIONS, "JAM")]
    assert await intake.emitted("OperatorAlert") == [], "no order to point at"
