"""The warehouse floor's steps land on the order timeline, once each, on a real Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.order_intake.app import build
from shared.contracts.common import SkuQuantity
from shared.contracts.fulfilment import (
    LabelCreated,
    LinePicked,
    ParcelPacked,
    PickListEntry,
    PickListReleased,
    ShortPick,
)
from tests.component.order_intake.test_ops_api import order_body
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component


@pytest.fixture
async def intake(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


async def _place(intake: ComponentHarness) -> str:
    async with intake.http() as client:
        response = await client.post("/v1/orders", json=order_body())
    assert response.status_code == 202, response.text
    order_id: str = response.json()["order_id"]
    return order_id


async def _timeline(intake: ComponentHarness, order_id: str) -> list[tuple[str, dict[str, object]]]:
    rows = await intake.fetch(
        "SELECT event, detail FROM order_timeline WHERE order_id = $1 ORDER BY id", order_id
    )
    return [(r["event"], r["detail"]) for r in rows]


async def test_each_floor_step_is_one_timeline_entry_even_when_redelivered(
    intake: ComponentHarness,
) -> None:
    first, second = await _place(intake), await _place(intake)
    released = PickListReleased(
        pick_list_id="pl-1",
        location="berlin",
        strategy="batch",
        wave=1,
        fulfilments=(
            PickListEntry(order_id=first, fulfilment_id="f-1"),
            PickListEntry(order_id=second, fulfilment_id="f-2"),
            PickListEntry(order_id="not-an-order", fulfilment_id="f-3"),
        ),
    )
    envelope = await intake.deliver(released, correlation_id="pl-1")
    await intake.deliver(released, correlation_id="pl-1", envelope=envelope)  # redelivered
    steps = [
        LinePicked(
            order_id=first,
            fulfilment_id="f-1",
            pick_list_id="pl-1",
            sku="SKU-1",
            quantity=2,
            bin="A-01",
        ),
        ShortPick(
            order_id=first,
            fulfilment_id="f-1",
            location="berlin",
            pick_list_id="pl-1",
            sku="SKU-2",
            missing=1,
            bin="A-02",
        ),
        ParcelPacked(
            order_id=first,
            fulfilment_id="f-1",
            parcel_id="p-1",
            box="S",
            weight_g=820,
            lines=(SkuQuantity(sku="SKU-1", quantity=2),),
        ),
        LabelCreated(
            order_id=first,
            fulfilment_id="f-1",
            parcel_id="p-1",
            carrier="table_rate",
            service="standard",
            tracking_number="RR000000015DE",
        ),
    ]
    for step in steps:
        sent = await intake.deliver(step, correlation_id=first)
        await intake.deliver(step, correlation_id=first, envelope=sent)

    floor = [
        (event, detail)
        for event, detail in await _timeline(intake, first)
        if event
        in {"pick_list_released", "line_picked", "short_pick", "parcel_packed", "label_created"}
    ]
    assert [event for event, _ in floor] == [
        "pick_list_released",
        "line_picked",
        "short_pick",
        "parcel_packed",
        "label_created",
    ]
    assert floor[0][1] == {"pick_list_id": "pl-1", "strategy": "batch", "wave": 1}
    assert floor[4][1]["tracking_number"] == "RR000000015DE"
    assert [e for e, _ in await _timeline(intake, second)].count("pick_list_released") == 1
    assert not intake.dead_letters

    async with intake.http() as client:
        order = (await client.get(f"/v1/orders/{first}")).json()
    assert "label_created" in [entry["event"] for entry in order["timeline"]]
