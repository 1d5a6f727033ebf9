"""Several saga events in one consumer batch (one transaction): the sagas of the batch are
loaded with one statement and every step still applies exactly once, in offset order."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from services.order_intake.app import build
from shared.contracts.common import Allocation, Customer, SkuQuantity
from shared.contracts.fulfilment import FulfilmentCreated, FulfilmentRef
from shared.contracts.inventory import StockReserved
from shared.contracts.order_intake import CustomerNotification
from shared.contracts.payment import PaymentAuthorized
from shared.envelope import Contract, Envelope
from tests.support.component import ComponentHarness, FakeRecord, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component

_offsets = itertools.count(10_000)


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
        "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price": "10.00"}],
        "payment": {"method": "card", "token": "tok_visa"},
    }


async def place(intake: ComponentHarness) -> tuple[str, Decimal]:
    async with intake.http() as client:
        response = await client.post("/v1/orders", json=order_body())
        assert response.status_code == 202, response.text
        order_id: str = response.json()["order_id"]
        view = (await client.get(f"/v1/orders/{order_id}")).json()
    return order_id, Decimal(view["totals"]["total"])


def record(message: Contract, order_id: str, envelope: Envelope | None = None) -> FakeRecord:
    envelope = envelope or Envelope.wrap(message, correlation_id=order_id, producer="test")
    return FakeRecord(message.TOPIC, envelope.to_bytes(), order_id.encode(), offset=next(_offsets))


def reserved(order_id: str) -> StockReserved:
    allocation = Allocation(line_id="l1", sku="SKU-1", location="main", quantity=1)
    return StockReserved(order_id=order_id, allocations=(allocation,))


def authorized(order_id: str, total: Decimal) -> PaymentAuthorized:
    return PaymentAuthorized(
        order_id=order_id,
        payment_id=f"pay-{order_id}",
        amount=total,
        currency="EUR",
        gateway_reference=f"g-{order_id}",
    )


def created(order_id: str) -> FulfilmentCreated:
    lines = (SkuQuantity(sku="SKU-1", quantity=1),)
    ref = FulfilmentRef(fulfilment_id=f"f-{order_id}", location="main", lines=lines)
    return FulfilmentCreated(order_id=order_id, fulfilments=(ref,))


async def statuses(intake: ComponentHarness, order_id: str) -> list[str]:
    return [
        c.status
        for c in await intake.emitted_contracts("OrderStatusChanged")
        if c.order_id == order_id
    ]


async def test_one_batch_takes_one_order_several_steps_and_another_one_step(
    intake: ComponentHarness,
):
    a, total_a = await place(intake)
    b, _ = await place(intake)
    await intake.consumer.handle_records(
        [
            record(reserved(a), a),
            record(reserved(b), b),
            record(authorized(a, total_a), a),
            record(created(a), a),
        ]
    )
    [row_a] = await intake.fetch("SELECT status FROM orders WHERE order_id = $1", a)
    [row_b] = await intake.fetch("SELECT status FROM orders WHERE order_id = $1", b)
    assert (row_a["status"], row_b["status"]) == ("FULFILLING", "AUTHORIZING_PAYMENT")
    assert await statuses(intake, a) == [
        "RESERVING_STOCK",
        "AUTHORIZING_PAYMENT",
        "CONFIRMED",
        "FULFILLING",
    ]
    assert await statuses(intake, b) == ["RESERVING_STOCK", "AUTHORIZING_PAYMENT"]
    authorizations = await intake.emitted_contracts("AuthorizePayment")
    assert sorted(c.order_id for c in authorizations) == sorted([a, b])
    assert [c.order_id for c in await intake.emitted_contracts("CreateFulfilment")] == [a]
    timeline = await intake.fetch(
        "SELECT status FROM order_timeline WHERE order_id = $1 ORDER BY id", a
    )
    assert timeline[-1]["status"] == "FULFILLING", "timeline rows in the order they happened"


async def test_a_duplicate_inside_a_batch_is_skipped_and_the_next_step_sees_the_saved_saga(
    intake: ComponentHarness,
):
    a, total_a = await place(intake)
    first = Envelope.wrap(reserved(a), correlation_id=a, producer="test")
    await intake.consumer.handle_records(
        [
            record(reserved(a), a, first),
            record(reserved(a), a, first),  # the same message again: dropped by the inbox
            record(authorized(a, total_a), a),
        ]
    )
    [row] = await intake.fetch("SELECT status FROM orders WHERE order_id = $1", a)
    assert row["status"] == "CONFIRMED"
    assert await statuses(intake, a) == ["RESERVING_STOCK", "AUTHORIZING_PAYMENT", "CONFIRMED"]
    assert len(await intake.emitted_contracts("AuthorizePayment")) == 1
    assert len(await intake.emitted_contracts("CreateFulfilment")) == 1


async def test_a_message_of_another_handler_between_two_steps_sees_the_first_step_saved(
    intake: ComponentHarness,
):
    # Saga steps of a batch are written together before the commit; a handler that reads orders
    # itself (here the notification recorder), and the saga step after it, must still see them.
    a, total_a = await place(intake)
    notice = CustomerNotification(
        order_id=a, kind="confirmed", customer=Customer(email="ada@example.com", name="Ada")
    )
    await intake.consumer.handle_records(
        [record(reserved(a), a), record(notice, a), record(authorized(a, total_a), a)]
    )
    [row] = await intake.fetch("SELECT status, saga FROM orders WHERE order_id = $1", a)
    assert row["status"] == "CONFIRMED"
    assert row["saga"]["payment_authorized"] is True
    assert await statuses(intake, a) == ["RESERVING_STOCK", "AUTHORIZING_PAYMENT", "CONFIRMED"]
    timeline = await intake.fetch(
        "SELECT status, event FROM order_timeline WHERE order_id = $1 ORDER BY id", a
    )
    assert [r["status"] for r in timeline][-1] == "CONFIRMED"
    assert [r["status"] for r in timeline] == sorted(
        (r["status"] for r in timeline),
        key=["RESERVING_STOCK", "AUTHORIZING_PAYMENT", "CONFIRMED"].index,
    ), "timeline rows in the order they happened"
    [recorded] = await intake.fetch("SELECT kind FROM notifications WHERE order_id = $1", a)
    assert recorded["kind"] == "confirmed"
