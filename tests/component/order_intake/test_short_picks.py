"""Short picks through order-intake's real consumer on a real Postgres: each new saga step
(the short pick, the re-allocation and its failure, the added fulfilment, the write-off) is
applied once also when the handler crashes before or after its commit and the message comes
again or is re-sent; the order completes capturing the total, or — shipping what is available —
the total less the missing units' value, and the customer gets one e-mail naming them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest

from services.order_intake.app import build
from services.order_intake.settings import OrderIntakeSettings
from shared.contracts.common import Allocation, SkuQuantity
from shared.contracts.fulfilment import (
    FulfilmentDelivered,
    FulfilmentRef,
    FulfilmentsAdded,
    ShortPick,
)
from shared.contracts.inventory import (
    ShortPickWrittenOff,
    StockReallocated,
    StockReallocationFailed,
)
from shared.contracts.order_intake import (
    AddFulfilment,
    CapturePayment,
    CustomerNotification,
    ReallocateStock,
    WriteOffShortPick,
)
from shared.contracts.payment import PaymentCaptured
from tests.component.order_intake.test_parcels import NOW, fulfilling_order, parcel
from tests.support.component import ComponentHarness, start_harness
from tests.support.crash import CrashOnce, crash_once_for
from tests.support.env import Infra

pytestmark = pytest.mark.component


@pytest.fixture
async def intake(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


@pytest.fixture
async def shipping_available(infra: Infra) -> AsyncIterator[ComponentHarness]:
    settings = OrderIntakeSettings(saga_short_pick_policy="ship_available")
    async for harness in start_harness(infra, build(settings)):
        yield harness


@pytest.fixture
def crash_once(intake: ComponentHarness, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrashOnce]:
    yield from crash_once_for(intake, monkeypatch)


def short(order_id: str, missing: int = 1) -> ShortPick:
    return ShortPick(
        order_id=order_id,
        fulfilment_id="ful-1",
        location="main",
        pick_list_id="pl-1",
        sku="MUG",
        missing=missing,
        bin="A-01",
        short_id="short-1",
    )


async def sent(h: ComponentHarness, kind: type) -> list[Any]:
    return await h.emitted_contracts(kind.TYPE)


async def saga_of(h: ComponentHarness, order_id: str) -> dict[str, Any]:
    [row] = await h.fetch("SELECT status, saga FROM orders WHERE order_id = $1", order_id)
    return {"status": row["status"], **row["saga"]}


async def timeline(h: ComponentHarness, order_id: str) -> list[str]:
    rows = await h.fetch(
        "SELECT event FROM order_timeline WHERE order_id = $1 ORDER BY id", order_id
    )
    return [r["event"] for r in rows]


async def test_a_short_is_reallocated_once_through_crashes_and_the_order_completes(
    intake: ComponentHarness, crash_once: CrashOnce
):
    order_id, total = await fulfilling_order(intake)  # ful-1 at main: 3 x MUG, 1 x TEE

    # The short pick: the handler dies before its commit; the message comes again.
    crash_once("before_db_commit")
    first = await intake.deliver(short(order_id), correlation_id=order_id)
    await intake.deliver(short(order_id), correlation_id=order_id, envelope=first)
    await intake.deliver(short(order_id), correlation_id=order_id)  # the floor re-sends it
    [reallocate] = await sent(intake, ReallocateStock)
    assert (reallocate.short_id, reallocate.location, reallocate.sku, reallocate.quantity) == (
        "short-1",
        "main",
        "MUG",
        1,
    )
    assert (await saga_of(intake, order_id))["step"] == "reallocate_stock"

    # Inventory's answer: the handler dies after its commit; redelivered, then re-sent.
    answer = StockReallocated(
        order_id=order_id,
        short_id="short-1",
        sku="MUG",
        location="main",
        written_off=1,
        allocations=(Allocation(line_id="l1", sku="MUG", location="hamburg", quantity=1),),
    )
    crash_once("after_db_commit")
    envelope = await intake.deliver(answer, correlation_id=order_id)
    await intake.deliver(answer, correlation_id=order_id, envelope=envelope)
    await intake.deliver(answer, correlation_id=order_id)
    [add] = await sent(intake, AddFulfilment)
    assert add.short_id == "short-1" and add.allocations == answer.allocations

    # Fulfilment's answer: dies before its commit, comes again, and is re-sent.
    added = FulfilmentsAdded(
        order_id=order_id,
        short_id="short-1",
        fulfilments=(
            FulfilmentRef(
                fulfilment_id="ful-2",
                location="hamburg",
                lines=(SkuQuantity(sku="MUG", quantity=1),),
            ),
        ),
    )
    crash_once("before_db_commit")
    await intake.deliver(added, correlation_id=order_id)
    await intake.deliver(added, correlation_id=order_id)
    assert crash_once.crashed == ["before_db_commit", "after_db_commit", "before_db_commit"]
    saga = await saga_of(intake, order_id)
    assert saga["status"] == "FULFILLING" and saga["step"] is None
    assert set(saga["fulfilments"]) == {"ful-1", "ful-2"}
    assert saga["shorts"]["short-1"]["state"] == "reallocated"

    # Both locations ship; delivered and captured: completed, captures add up to the total.
    await intake.deliver(
        parcel(order_id, "par-1", {"MUG": 2, "TEE": 1}, complete=True), correlation_id=order_id
    )
    assert (await saga_of(intake, order_id))["status"] == "PARTIALLY_SHIPPED"
    hamburg = parcel(order_id, "par-2", {"MUG": 1}, complete=True).model_copy(
        update={"fulfilment_id": "ful-2", "location": "hamburg"}
    )
    await intake.deliver(hamburg, correlation_id=order_id)
    assert (await saga_of(intake, order_id))["status"] == "SHIPPED"
    captures = await sent(intake, CapturePayment)
    assert sum(c.amount for c in captures) == total
    await delivered_all(intake, order_id, captures)
    assert (await saga_of(intake, order_id))["status"] == "COMPLETED"

    events = await timeline(intake, order_id)
    for step in ("short_pick", "reallocating", "stock_reallocated", "fulfilment_added"):
        assert events.count(step) == 1, (step, events)
    async with intake.http() as client:
        view = (await client.get(f"/v1/orders/{order_id}")).json()
    [picked_short] = view["fulfilment"]["short_picks"]
    assert (picked_short["state"], picked_short["fulfilments"]) == ("reallocated", ["ful-2"])
    assert not intake.dead_letters


async def test_a_failed_reallocation_cancels_the_units_and_the_capture_is_reduced(
    intake: ComponentHarness,
):
    order_id, total = await fulfilling_order(intake)
    await intake.deliver(short(order_id), correlation_id=order_id)
    await intake.deliver(
        StockReallocationFailed(
            order_id=order_id,
            short_id="short-1",
            sku="MUG",
            location="main",
            written_off=1,
            requested=1,
            available=0,
            reason="insufficient_stock",
        ),
        correlation_id=order_id,
    )
    [notice] = [n for n in await sent(intake, CustomerNotification) if n.kind != "shipped"]
    assert notice.kind == "items_unavailable"
    value = Decimal(notice.data["amount"])
    await intake.deliver(
        parcel(order_id, "par-1", {"MUG": 2, "TEE": 1}, complete=True), correlation_id=order_id
    )
    [capture] = await sent(intake, CapturePayment)
    assert capture.amount == total - value
    assert (await saga_of(intake, order_id))["status"] == "SHIPPED"


async def test_shipping_what_is_available_cancels_the_missing_units_once(
    shipping_available: ComponentHarness, monkeypatch: pytest.MonkeyPatch
):
    h = shipping_available
    crash = next(crash_once_for(h, monkeypatch))
    order_id, total = await fulfilling_order(h)
    crash("after_db_commit")
    envelope = await h.deliver(short(order_id, missing=2), correlation_id=order_id)
    await h.deliver(short(order_id, missing=2), correlation_id=order_id, envelope=envelope)
    await h.deliver(short(order_id, missing=2), correlation_id=order_id)
    assert crash.crashed == ["after_db_commit"]
    [write_off] = await sent(h, WriteOffShortPick)
    assert (write_off.short_id, write_off.location, write_off.quantity) == ("short-1", "main", 2)
    assert await sent(h, ReallocateStock) == []
    [notice] = await h.emitted(CustomerNotification.TYPE)
    await h.deliver(notice.contract(), correlation_id=order_id, envelope=notice)
    [mail] = await h.fetch(
        "SELECT kind, subject, body FROM notifications WHERE order_id = $1", order_id
    )
    assert mail["kind"] == "items_unavailable"
    assert "2 x MUG" in mail["body"] and "cannot be sent" in mail["subject"]
    value = Decimal(notice.contract().data["amount"])
    assert f"{value} EUR less" in mail["body"]

    written = ShortPickWrittenOff(
        order_id=order_id, short_id="short-1", sku="MUG", location="main", written_off=2
    )
    await h.deliver(written, correlation_id=order_id)
    await h.deliver(
        parcel(order_id, "par-1", {"MUG": 1, "TEE": 1}, complete=True), correlation_id=order_id
    )
    [capture] = await sent(h, CapturePayment)
    assert capture.amount == total - value
    await delivered_all(h, order_id, [capture])
    assert (await saga_of(h, order_id))["status"] == "COMPLETED"
    events = await timeline(h, order_id)
    assert events.count("short_pick_cancelled") == 1 and "stock_written_off" in events


async def delivered_all(h: ComponentHarness, order_id: str, captures: list[CapturePayment]) -> None:
    """Every capture answered, every shipment of the order delivered."""
    running = Decimal(0)
    for capture in captures:
        running += capture.amount
        await h.deliver(
            PaymentCaptured(
                order_id=order_id,
                fulfilment_id=capture.fulfilment_id,
                shipment_id=capture.shipment_id,
                amount=capture.amount,
                currency="EUR",
                captured_total=running,
            ),
            correlation_id=order_id,
        )
    saga = await saga_of(h, order_id)
    for fulfilment_id, fulfilment in saga["fulfilments"].items():
        for shipment_id in fulfilment["shipments"]:
            await h.deliver(
                FulfilmentDelivered(
                    order_id=order_id,
                    fulfilment_id=fulfilment_id,
                    delivered_at=NOW,
                    shipment_id=shipment_id,
                ),
                correlation_id=order_id,
            )
