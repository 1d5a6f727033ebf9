"""Admission control: new orders get 429 while the saga has too many in flight."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.order_intake.app import build
from services.order_intake.operators.admission import Admission, recount
from services.order_intake.settings import OrderIntakeSettings
from shared.contracts.common import ShortLine
from shared.contracts.inventory import StockReservationFailed
from tests.component.order_intake.test_orders_api import order_body
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component


@pytest.fixture
async def intake(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build(OrderIntakeSettings(max_orders_in_flight=2))):
        yield harness


async def test_refuses_new_orders_at_the_limit_and_accepts_again_when_the_saga_catches_up(
    intake: ComponentHarness,
):
    async with intake.http() as client:
        assert intake.runtime is not None
        admission = Admission(limit=2)
        intake.runtime.state["admission"] = admission
        await recount(intake.runtime, admission)
        assert admission.in_flight == 0

        first = await client.post("/v1/orders", json=order_body(external_id="A-1"))
        second = await client.post("/v1/orders", json=order_body(external_id="A-2"))
        assert (first.status_code, second.status_code) == (202, 202)

        refused = await client.post("/v1/orders", json=order_body(external_id="A-3"))
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == "1"
        error = refused.json()["error"]
        assert error["code"] == "intake_overloaded"
        assert error["details"] == {"in_flight": 2, "limit": 2}
        assert [r["external_id"] for r in await intake.fetch("SELECT external_id FROM orders")] in (
            ["A-1", "A-2"],
            ["A-2", "A-1"],
        )
        # Bad input is still told what is wrong with it first.
        invalid = await client.post("/v1/orders", json=order_body(currency="XX"))
        assert invalid.status_code == 422

        # The count from Postgres agrees; one order leaves the machine-paced states.
        await recount(intake.runtime, admission)
        assert admission.in_flight == 2
        order_id = first.json()["order_id"]
        await intake.deliver(
            StockReservationFailed(
                order_id=order_id,
                reason="insufficient_stock",
                short_lines=(ShortLine(line_id="1", sku="SKU-1", requested=2, available=0),),
            ),
            correlation_id=order_id,
        )
        await recount(intake.runtime, admission)
        assert admission.in_flight == 1
        again = await client.post("/v1/orders", json=order_body(external_id="A-3"))
        assert again.status_code == 202, again.text
        assert admission.in_flight == 2


def test_the_count_runs_only_when_there_is_a_limit():
    def background_names(limit: int) -> set[str]:
        spec = build(OrderIntakeSettings(max_orders_in_flight=limit))
        return {task.__name__ for task in spec.background}

    assert "count_orders_in_flight" in background_names(500)
    assert "count_orders_in_flight" not in background_names(0)
