"""A fulfilment that leaves in two parcels, through order-intake's real consumer on a real
Postgres: each parcel commits its stock and captures its share once — also when the handler
crashes before or after its commit and the message comes again, and when the parcel is re-sent
— and the customer gets one e-mail per parcel with its tracking link."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from services.order_intake.app import build
from shared.contracts.common import Allocation, SkuQuantity
from shared.contracts.fulfilment import (
    FulfilmentCreated,
    FulfilmentDelivered,
    FulfilmentRef,
    FulfilmentShipped,
)
from shared.contracts.inventory import StockReserved
from shared.contracts.order_intake import CapturePayment, CommitStock, CustomerNotification
from shared.contracts.payment import PaymentAuthorized, PaymentCaptured
from shared.envelope import Envelope
from shared.platform import consumer as consumer_module
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def intake(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


class Crash(Exception):
    """Stands in for the process dying at a crash point (the real one is a SIGKILL)."""


class CrashOnce:
    """`crash_once(point)`: the next batch dies at `before_db_commit` (rolled back) or
    `after_db_commit` (committed, offset not): the consumer then handles the message again, as
    Kafka redelivers it after a restart. `crashed`: the points it died at."""

    def __init__(self, intake: ComponentHarness) -> None:
        self.intake = intake
        self.crashed: list[str] = []

    def __call__(self, point: str) -> None:
        self.intake.consumer._crash_point = point

    def crash_now(self, point: str) -> None:
        self.intake.consumer._crash_point = None
        self.crashed.append(point)
        raise Crash(point)


@pytest.fixture
def crash_once(intake: ComponentHarness, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrashOnce]:
    crash = CrashOnce(intake)
    monkeypatch.setattr(consumer_module, "crash_now", crash.crash_now)
    yield crash
    intake.consumer._crash_point = None


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
        "lines": [
            {"sku": "MUG", "quantity": 3, "unit_price": "12.99"},
            {"sku": "TEE", "quantity": 1, "unit_price": "19.90"},
        ],
        "payment": {"method": "card", "token": "tok_visa"},
    }


async def fulfilling_order(intake: ComponentHarness) -> tuple[str, Decimal]:
    async with intake.http() as client:
        response = await client.post("/v1/orders", json=order_body())
        assert response.status_code == 202, response.text
        order_id: str = response.json()["order_id"]
        total = Decimal((await client.get(f"/v1/orders/{order_id}")).json()["totals"]["total"])
    allocations = (
        Allocation(line_id="l1", sku="MUG", location="main", quantity=3),
        Allocation(line_id="l2", sku="TEE", location="main", quantity=1),
    )
    ref = FulfilmentRef(
        fulfilment_id="ful-1",
        location="main",
        lines=(SkuQuantity(sku="MUG", quantity=3), SkuQuantity(sku="TEE", quantity=1)),
    )
    for event in (
        StockReserved(order_id=order_id, allocations=allocations),
        PaymentAuthorized(
            order_id=order_id,
            payment_id="pay-1",
            amount=total,
            currency="EUR",
            gateway_reference="g-1",
        ),
        FulfilmentCreated(order_id=order_id, fulfilments=(ref,)),
    ):
        await intake.deliver(event, correlation_id=order_id)
    [row] = await intake.fetch("SELECT status FROM orders WHERE order_id = $1", order_id)
    assert row["status"] == "FULFILLING"
    await intake.clear_outbox()
    return order_id, total


def parcel(order_id: str, shipment_id: str, lines: dict[str, int], complete: bool):
    return FulfilmentShipped(
        order_id=order_id,
        fulfilment_id="ful-1",
        location="main",
        lines=tuple(SkuQuantity(sku=sku, quantity=n) for sku, n in lines.items()),
        carrier="dhl",
        tracking_number=f"JJD-{shipment_id}",
        tracking_url=f"https://track.example/JJD-{shipment_id}",
        shipped_at=NOW,
        shipment_id=shipment_id,
        fulfilment_complete=complete,
    )


async def commands(intake: ComponentHarness, kind: type) -> list[Any]:
    return await intake.emitted_contracts(kind.TYPE)


async def test_two_parcels_each_applied_once_through_crashes_and_redeliveries(
    intake: ComponentHarness, crash_once: CrashOnce
):
    order_id, total = await fulfilling_order(intake)

    # Parcel 1: the handler dies before its commit; the message comes again and is applied.
    first = parcel(order_id, "par-1", {"MUG": 2}, complete=False)
    crash_once("before_db_commit")
    first_envelope = await intake.deliver(first, correlation_id=order_id)
    # Parcel 2: the handler dies after its commit, before the offset was committed; the
    # redelivered message is dropped by the inbox.
    second = parcel(order_id, "par-2", {"MUG": 1, "TEE": 1}, complete=True)
    crash_once("after_db_commit")
    await intake.deliver(second, correlation_id=order_id)
    # Kafka redelivers parcel 1 as is, and the warehouse re-sends it (a new message id).
    await intake.deliver(first, correlation_id=order_id, envelope=first_envelope)
    await intake.deliver(first, correlation_id=order_id)
    assert crash_once.crashed == ["before_db_commit", "after_db_commit"]

    commits = await commands(intake, CommitStock)
    assert [(c.fulfilment_id, c.shipment_id) for c in commits] == [
        ("ful-1", "par-1"),
        ("ful-1", "par-2"),
    ]
    assert [[(li.sku, li.quantity) for li in c.lines] for c in commits] == [
        [("MUG", 2)],
        [("MUG", 1), ("TEE", 1)],
    ]
    captures = await commands(intake, CapturePayment)
    assert [c.idempotency_key for c in captures] == [
        f"{order_id}:capture:par-1",
        f"{order_id}:capture:par-2",
    ]
    assert sum(c.amount for c in captures) == total
    assert all(c.amount > 0 for c in captures)
    notices = [n for n in await commands(intake, CustomerNotification) if n.kind == "shipped"]
    assert [n.data["tracking_url"] for n in notices] == [
        "https://track.example/JJD-par-1",
        "https://track.example/JJD-par-2",
    ]
    [row] = await intake.fetch("SELECT status, saga FROM orders WHERE order_id = $1", order_id)
    assert row["status"] == "SHIPPED"
    partly, shipped = [
        e for e in await intake.emitted_contracts("OrderStatusChanged") if e.order_id == order_id
    ]
    assert partly.status == "PARTIALLY_SHIPPED" and shipped.status == "SHIPPED"
    assert [(s.sku, s.quantity) for s in partly.shipped] == [("MUG", 2)], "for returns"
    assert [(s.sku, s.quantity) for s in shipped.shipped] == [("MUG", 3), ("TEE", 1)]
    assert list(row["saga"]["fulfilments"]["ful-1"]["shipments"]) == ["par-1", "par-2"]
    timeline = await intake.fetch(
        "SELECT event FROM order_timeline WHERE order_id = $1 AND event = 'fulfilment_shipped'",
        order_id,
    )
    assert len(timeline) == 2

    # Captured (one answer redelivered) and delivered parcel by parcel: completed.
    for capture in captures:
        answer = PaymentCaptured(
            order_id=order_id,
            fulfilment_id=capture.fulfilment_id,
            shipment_id=capture.shipment_id,
            amount=capture.amount,
            currency="EUR",
            captured_total=capture.amount,
        )
        crash_once("after_db_commit")
        await intake.deliver(answer, correlation_id=order_id)
    for shipment_id in ("par-1", "par-2"):
        delivered = FulfilmentDelivered(
            order_id=order_id, fulfilment_id="ful-1", delivered_at=NOW, shipment_id=shipment_id
        )
        await intake.deliver(delivered, correlation_id=order_id)
    assert crash_once.crashed[2:] == ["after_db_commit", "after_db_commit"]
    [row] = await intake.fetch("SELECT status FROM orders WHERE order_id = $1", order_id)
    assert row["status"] == "COMPLETED"

    async with intake.http() as client:
        view = (await client.get(f"/v1/orders/{order_id}")).json()
    [fulfilment] = view["fulfilment"]["fulfilments"]
    assert fulfilment["status"] == "delivered"
    assert [
        (s["shipment_id"], s["tracking_number"], s["tracking_url"], s["captured"], s["lines"])
        for s in fulfilment["shipments"]
    ] == [
        (
            "par-1",
            "JJD-par-1",
            "https://track.example/JJD-par-1",
            True,
            [{"sku": "MUG", "quantity": 2}],
        ),
        (
            "par-2",
            "JJD-par-2",
            "https://track.example/JJD-par-2",
            True,
            [{"sku": "MUG", "quantity": 1}, {"sku": "TEE", "quantity": 1}],
        ),
    ]
    assert sum(Decimal(s["capture_amount"]) for s in fulfilment["shipments"]) == total
    assert fulfilment["unshipped"] == []


async def test_each_parcel_e_mail_names_its_tracking_link_and_contents(intake: ComponentHarness):
    order_id, _ = await fulfilling_order(intake)
    await intake.deliver(parcel(order_id, "par-1", {"MUG": 2}, False), correlation_id=order_id)
    [notice] = await intake.emitted(CustomerNotification.TYPE)
    # The notice comes back to order-intake's notification consumer, which renders the e-mail.
    await intake.deliver(notice.contract(), correlation_id=order_id, envelope=notice)
    [mail] = await intake.fetch(
        "SELECT kind, subject, body FROM notifications WHERE order_id = $1", order_id
    )
    assert mail["kind"] == "shipped"
    body = mail["body"]
    assert "Tracking number: JJD-par-1" in body
    assert "Track it:        https://track.example/JJD-par-1" in body
    assert "In this parcel:\n  2 x MUG" in body and "TEE" not in body
    assert "follows in another parcel" in body


async def test_a_saga_envelope_without_the_new_fields_still_ships(intake: ComponentHarness):
    """An event from a fulfilment service of before parcels: no shipment id, no flags."""
    order_id, total = await fulfilling_order(intake)
    payload = {
        "order_id": order_id,
        "fulfilment_id": "ful-1",
        "location": "main",
        "lines": [{"sku": "MUG", "quantity": 3}, {"sku": "TEE", "quantity": 1}],
        "carrier": "ups",
        "tracking_number": "1Z999",
        "shipped_at": NOW.isoformat(),
    }
    envelope = Envelope(
        type="FulfilmentShipped", correlation_id=order_id, producer="fulfilment", payload=payload
    )
    await intake.deliver_raw(FulfilmentShipped.TOPIC, envelope.to_bytes(), order_id.encode())
    [commit] = await commands(intake, CommitStock)
    [capture] = await commands(intake, CapturePayment)
    assert commit.shipment_id is None and capture.shipment_id is None
    assert capture.idempotency_key == f"{order_id}:capture:ful-1"
    assert capture.amount == total
    [row] = await intake.fetch("SELECT status FROM orders WHERE order_id = $1", order_id)
    assert row["status"] == "SHIPPED"
