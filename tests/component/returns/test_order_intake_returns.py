"""Order-intake's side of returns: replacement orders of exchanges, the returns in the order
view, and what OrderStatusChanged tells returns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from services.order_intake.app import build
from shared.contracts.common import Allocation
from shared.contracts.inventory import StockReserved
from shared.contracts.returns import (
    CreateReplacementOrder,
    ReceivedLineSummary,
    ReplacementLine,
    ReturnLineSummary,
    ReturnStatusChanged,
)
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component

D = Decimal


@pytest.fixture
async def intake(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


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
        "lines": [{"sku": "A", "quantity": 2, "unit_price": "10.00"}],
        "payment": {"method": "card", "token": "tok_visa"},
    }


async def place(h: ComponentHarness) -> str:
    async with h.http() as client:
        response = await client.post("/v1/orders", json=order_body())
    assert response.status_code == 202, response.text
    order_id: str = response.json()["order_id"]
    return order_id


async def view(h: ComponentHarness, order_id: str) -> dict[str, Any]:
    async with h.http() as client:
        response = await client.get(f"/v1/orders/{order_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def replacement(return_id: str, original: str) -> CreateReplacementOrder:
    return CreateReplacementOrder(
        return_id=return_id,
        original_order_id=original,
        lines=(ReplacementLine(sku="A", quantity=1, unit_price=D("10.00")),),
    )


async def test_status_events_carry_the_totals_parts_for_returns(intake: ComponentHarness):
    order_id = await place(intake)
    [changed] = await intake.emitted_contracts("OrderStatusChanged")
    assert (changed.subtotal, changed.shipping, changed.discount, changed.tax) == (
        D("20.00"),
        D("4.95"),
        D("0.00"),
        D("4.74"),
    )
    assert (changed.paid_externally, changed.linked_return_id, changed.order_id) == (
        False,
        None,
        order_id,
    )


async def test_a_replacement_order_is_created_once_linked_and_goes_through_the_saga(
    intake: ComponentHarness,
):
    original = await place(intake)
    await intake.clear_outbox()
    await intake.deliver(replacement("ret_1", original), correlation_id="ret_1")
    await intake.deliver(replacement("ret_1", original), correlation_id="ret_1")
    answers = await intake.emitted_contracts("ReplacementOrderCreated")
    assert len(answers) == 2 and answers[0].order_id == answers[1].order_id
    new_id = answers[0].order_id
    assert (answers[0].original_order_id, answers[0].status, answers[0].total) == (
        original,
        "RESERVING_STOCK",
        D("11.90"),  # 10.00 + 19% tax, shipping free
    )
    assert len(await intake.fetch("SELECT 1 FROM orders")) == 2
    [reserve] = [r for r in await intake.emitted_contracts("ReserveStock") if r.order_id == new_id]
    assert [(li.sku, li.quantity) for li in reserve.lines] == [("A", 1)]
    [changed] = await intake.emitted_contracts("OrderStatusChanged")
    assert (changed.linked_return_id, changed.original_order_id, changed.paid_externally) == (
        "ret_1",
        original,
        True,
    )

    new = await view(intake, new_id)
    assert (new["linked_return_id"], new["original_order_id"]) == ("ret_1", original)
    assert new["customer"]["email"] == "ada@example.com"
    assert new["payment"]["status"] == "paid_externally"
    assert new["totals"]["shipping"] == "0.00"
    assert (await view(intake, original))["replacement_orders"] == [
        {"order_id": new_id, "return_id": "ret_1"}
    ]

    reserved = StockReserved(
        order_id=new_id,
        allocations=(Allocation(line_id="l1", sku="A", location="berlin", quantity=1),),
    )
    await intake.deliver(reserved, correlation_id=new_id)
    assert (await view(intake, new_id))["status"] == "CONFIRMED"
    assert [c.order_id for c in await intake.emitted_contracts("CreateFulfilment")] == [new_id]
    assert await intake.emitted("AuthorizePayment") == []


async def test_a_replacement_of_an_unknown_order_is_refused(intake: ComponentHarness):
    await intake.deliver(replacement("ret_2", "ord_nope"), correlation_id="ret_2")
    [refused] = await intake.emitted_contracts("ReplacementOrderRefused")
    assert (refused.return_id, refused.reason) == ("ret_2", "order_not_found")


def returned(
    order_id: str, return_id: str, revision: int, status: str, quantity: int, **extra: Any
) -> ReturnStatusChanged:
    return ReturnStatusChanged(
        return_id=return_id,
        order_id=order_id,
        status=status,
        revision=revision,
        currency="EUR",
        lines=(ReturnLineSummary(sku="A", quantity=quantity, reason="no_longer_needed"),),
        received=()
        if status in {"REQUESTED", "APPROVED"}
        else (ReceivedLineSummary(sku="A", quantity=quantity, condition="resellable"),),
        refund_status=extra.pop("refund_status", "pending"),
        at=datetime.now(UTC),
        **extra,
    )


async def test_the_order_view_shows_its_returns(intake: ComponentHarness):
    order_id = await place(intake)
    assert (await view(intake, order_id))["returns"]["state"] == "none"
    await intake.deliver(returned(order_id, "ret_a", 2, "APPROVED", 1), correlation_id="ret_a")
    assert (await view(intake, order_id))["returns"]["state"] == "return_requested"
    await intake.deliver(
        returned(
            order_id,
            "ret_a",
            7,
            "CLOSED",
            1,
            refund_status="refunded",
            refund_amount=D("14.85"),
            refunded_amount=D("14.85"),
        ),
        correlation_id="ret_a",
    )
    # a late, older revision changes nothing
    await intake.deliver(returned(order_id, "ret_a", 3, "RECEIVED", 1), correlation_id="ret_a")
    partial = (await view(intake, order_id))["returns"]
    assert (partial["state"], partial["refunded_amount"], partial["returned_quantities"]) == (
        "partially_returned",
        "14.85",
        {"A": 1},
    )
    await intake.deliver(
        returned(
            order_id,
            "ret_b",
            7,
            "CLOSED",
            1,
            refund_status="refunded",
            refund_amount=D("14.84"),
            refunded_amount=D("14.84"),
        ),
        correlation_id="ret_b",
    )
    full = (await view(intake, order_id))["returns"]
    assert (full["state"], full["refunded_amount"]) == ("returned", "29.69")
    assert [r["return_id"] for r in full["returns"]] == ["ret_a", "ret_b"]
