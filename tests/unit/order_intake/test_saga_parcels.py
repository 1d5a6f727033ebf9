"""The order saga with fulfilments that leave in several parcels: each parcel commits its stock,
captures its value and tells the customer; duplicates change nothing; the captures add up to
the total exactly; old-style events (no shipment id) and sagas stored before parcels still work."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.order_intake.domain import saga as s
from services.order_intake.domain.saga import OrderSaga, SagaLine, Status
from shared.contracts.common import Allocation, SkuQuantity
from shared.contracts.fulfilment import (
    FulfilmentCancelled,
    FulfilmentCreated,
    FulfilmentDelivered,
    FulfilmentRef,
    FulfilmentShipped,
)
from shared.contracts.inventory import StockReserved
from shared.contracts.order_intake import (
    CapturePayment,
    CommitStock,
    CustomerNotification,
    OperatorAlert,
    ReleaseStock,
    VoidPayment,
)
from shared.contracts.payment import PaymentAuthorized, PaymentCaptured, PaymentCaptureFailed
from shared.money import quantum, round_money
from tests.unit.order_intake.test_saga import (
    ORDER,
    POLICY,
    T0,
    at,
    kinds,
    new_saga,
    shipped,
)


def parcel(
    shipment_id: str | None,
    lines: dict[str, int],
    *,
    fid: str = "f1",
    location: str = "berlin",
    complete: bool = False,
    url: str | None = None,
) -> FulfilmentShipped:
    return FulfilmentShipped(
        order_id=ORDER,
        fulfilment_id=fid,
        location=location,
        lines=tuple(SkuQuantity(sku=sku, quantity=n) for sku, n in lines.items()),
        carrier="dhl",
        tracking_number=f"T-{shipment_id}",
        tracking_url=url,
        shipped_at=T0,
        shipment_id=shipment_id,
        fulfilment_complete=complete,
    )


def captured(shipment_id: str | None, amount: Decimal, total: Decimal, fid: str = "f1"):
    return PaymentCaptured(
        order_id=ORDER,
        fulfilment_id=fid,
        shipment_id=shipment_id,
        amount=amount,
        currency="EUR",
        captured_total=total,
    )


def delivered(fid: str, shipment_id: str | None = None) -> FulfilmentDelivered:
    return FulfilmentDelivered(
        order_id=ORDER, fulfilment_id=fid, delivered_at=T0, shipment_id=shipment_id
    )


def of(decision: s.Decision, kind: type) -> list[Any]:
    return [m for m in decision.messages if isinstance(m, kind)]


def one_fulfilment_saga(total: str = "33.33", **overrides: Any) -> OrderSaga:
    """An order of 3 x A at 10 and 1 x B at 5 (subtotal 35) whose total differs from the
    subtotal (shipping, discount, tax), so parcels' shares round; one fulfilment f1 at berlin."""
    saga = new_saga(
        total=Decimal(total),
        lines=(
            SagaLine(
                line_id="l1", sku="A", quantity=3, unit_price=Decimal(10), line_total=Decimal(30)
            ),
            SagaLine(
                line_id="l2", sku="B", quantity=1, unit_price=Decimal(5), line_total=Decimal(5)
            ),
        ),
        **overrides,
    )
    s.start(saga, T0, POLICY)
    allocations = (
        Allocation(line_id="l1", sku="A", location="berlin", quantity=3),
        Allocation(line_id="l2", sku="B", location="berlin", quantity=1),
    )
    s.handle(saga, StockReserved(order_id=ORDER, allocations=allocations), T0, POLICY)
    if not saga.paid_externally:
        authorised = PaymentAuthorized(
            order_id=ORDER,
            payment_id="p1",
            amount=saga.total,
            currency="EUR",
            gateway_reference="g1",
        )
        s.handle(saga, authorised, T0, POLICY)
    ref = FulfilmentRef(
        fulfilment_id="f1",
        location="berlin",
        lines=(SkuQuantity(sku="A", quantity=3), SkuQuantity(sku="B", quantity=1)),
    )
    s.handle(saga, FulfilmentCreated(order_id=ORDER, fulfilments=(ref,)), T0, POLICY)
    assert saga.status == Status.FULFILLING
    return saga


# --- two parcels of one fulfilment ------------------------------------------------------------


def test_two_parcels_commit_and_capture_each_with_its_own_key_and_add_up_to_the_total():
    saga = one_fulfilment_saga()
    first = s.handle(saga, parcel("p1", {"A": 2}, url="https://track.example/p1"), T0, POLICY)
    assert kinds(first) == [CommitStock, CapturePayment, CustomerNotification]
    assert saga.status == Status.PARTIALLY_SHIPPED
    [commit] = of(first, CommitStock)
    assert (commit.fulfilment_id, commit.shipment_id) == ("f1", "p1")
    assert [(li.sku, li.quantity) for li in commit.lines] == [("A", 2)]
    [capture1] = of(first, CapturePayment)
    assert capture1.shipment_id == "p1" and capture1.fulfilment_id == "f1"
    assert capture1.idempotency_key == f"{ORDER}:capture:p1"
    # 2 x A is 20 of 35: 33.33 * 20 / 35 = 19.045... -> 19.05
    assert capture1.amount == Decimal("19.05")

    second = s.handle(saga, parcel("p2", {"A": 1, "B": 1}, complete=True), T0, POLICY)
    assert kinds(second) == [CommitStock, CapturePayment, CustomerNotification]
    assert saga.status == Status.SHIPPED
    [commit2] = of(second, CommitStock)
    assert commit2.shipment_id == "p2"
    [capture2] = of(second, CapturePayment)
    assert capture2.idempotency_key == f"{ORDER}:capture:p2"
    assert capture2.amount == Decimal("14.28"), "the last parcel of the order takes the rest"
    assert capture1.amount + capture2.amount == saga.total
    assert saga.capture_requested == saga.total
    fulfilment = saga.fulfilments["f1"]
    assert fulfilment.shipped and list(fulfilment.shipments) == ["p1", "p2"]
    assert fulfilment.unshipped() == {}


def test_each_parcel_tells_the_customer_its_carrier_tracking_and_what_is_in_it():
    saga = one_fulfilment_saga()
    first = s.handle(saga, parcel("p1", {"A": 2}, url="https://track.example/p1"), T0, POLICY)
    [notice] = of(first, CustomerNotification)
    assert notice.kind == "shipped"
    assert notice.data == {
        "fulfilment_id": "f1",
        "shipment_id": "p1",
        "carrier": "dhl",
        "tracking_number": "T-p1",
        "tracking_url": "https://track.example/p1",
        "lines": [{"sku": "A", "quantity": 2}],
        "more_to_follow": True,
    }
    last = s.handle(saga, parcel("p2", {"A": 1, "B": 1}, complete=True), T0, POLICY)
    [notice2] = of(last, CustomerNotification)
    assert "more_to_follow" not in notice2.data and notice2.data["tracking_url"] is None
    shipped_notes = [e for e in first.timeline if e.event == "fulfilment_shipped"]
    assert shipped_notes[0].detail["shipment_id"] == "p1"
    assert shipped_notes[0].detail["fulfilment_complete"] is False


def test_the_same_parcel_again_changes_nothing():
    saga = one_fulfilment_saga()
    s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY)
    before = saga.model_dump()
    again = s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY)
    assert again.messages == []
    assert [e.event for e in again.timeline] == ["ignored"]
    assert again.timeline[0].detail["reason"] == "already shipped"
    assert saga.model_dump() == before


def test_all_lines_in_parcels_finish_the_fulfilment_without_the_complete_flag():
    saga = one_fulfilment_saga()
    s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY)
    s.handle(saga, parcel("p2", {"A": 1, "B": 1}, complete=False), T0, POLICY)
    assert saga.fulfilments["f1"].shipped and saga.status == Status.SHIPPED


def test_an_old_style_event_is_the_whole_fulfilment_under_the_old_key():
    saga = at(new_saga(), Status.FULFILLING)
    decision = s.handle(saga, shipped("f1", "berlin", "A", 2), T0, POLICY)
    [commit] = of(decision, CommitStock)
    [capture] = of(decision, CapturePayment)
    assert commit.shipment_id is None and capture.shipment_id is None
    assert capture.idempotency_key == f"{ORDER}:capture:f1", "the key of before parcels"
    assert list(saga.fulfilments["f1"].shipments) == ["f1"] and saga.fulfilments["f1"].shipped
    legacy_answer = PaymentCaptured(
        order_id=ORDER,
        fulfilment_id="f1",
        amount=capture.amount,
        currency="EUR",
        captured_total=capture.amount,
    )
    s.handle(saga, legacy_answer, T0, POLICY)
    assert saga.fulfilments["f1"].shipments["f1"].captured
    assert s.handle(saga, shipped("f1", "berlin", "A", 2), T0, POLICY).messages == []


# --- captures, deliveries and completion per parcel -----------------------------------------


def test_answers_are_matched_to_their_parcel_and_the_order_completes_once_all_are_in():
    saga = one_fulfilment_saga()
    c1 = of(s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY), CapturePayment)[0]
    c2 = of(s.handle(saga, parcel("p2", {"A": 1, "B": 1}), T0, POLICY), CapturePayment)[0]
    s.handle(saga, captured("p1", c1.amount, c1.amount), T0, POLICY)
    f1 = saga.fulfilments["f1"]
    assert f1.shipments["p1"].captured and not f1.shipments["p2"].captured
    s.handle(saga, delivered("f1", "p1"), T0, POLICY)
    assert not f1.delivered and saga.status == Status.SHIPPED
    s.handle(saga, delivered("f1", "p2"), T0, POLICY)
    assert f1.delivered and saga.status == Status.DELIVERED, "p2 is not captured yet"
    assert s.handle(saga, captured("p1", c1.amount, c1.amount), T0, POLICY).messages == []
    s.handle(saga, captured("p2", c2.amount, saga.total), T0, POLICY)
    assert saga.status == Status.COMPLETED
    assert saga.captured_total == saga.total


def test_a_whole_fulfilment_delivery_delivers_every_parcel():
    saga = one_fulfilment_saga(paid_externally=True)
    s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY)
    s.handle(saga, parcel("p2", {"A": 1, "B": 1}, complete=True), T0, POLICY)
    s.handle(saga, delivered("f1"), T0, POLICY)
    assert saga.status == Status.COMPLETED


def test_a_delivery_before_the_last_parcel_left_waits_for_it():
    saga = one_fulfilment_saga(paid_externally=True)
    s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY)
    s.handle(saga, delivered("f1", "p1"), T0, POLICY)
    assert saga.status == Status.PARTIALLY_SHIPPED and not saga.fulfilments["f1"].delivered
    s.handle(saga, parcel("p2", {"A": 1, "B": 1}), T0, POLICY)
    assert saga.status == Status.SHIPPED
    s.handle(saga, delivered("f1", "p2"), T0, POLICY)
    assert saga.status == Status.COMPLETED


def test_a_failed_parcel_capture_parks_and_a_retry_resends_only_that_parcel():
    saga = one_fulfilment_saga()
    c1 = of(s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY), CapturePayment)[0]
    c2 = of(s.handle(saga, parcel("p2", {"A": 1, "B": 1}), T0, POLICY), CapturePayment)[0]
    s.handle(saga, captured("p1", c1.amount, c1.amount), T0, POLICY)
    failed = PaymentCaptureFailed(
        order_id=ORDER, fulfilment_id="f1", shipment_id="p2", reason="gateway_timeout"
    )
    decision = s.handle(saga, failed, T0, POLICY)
    assert saga.status == Status.NEEDS_ATTENTION and OperatorAlert in kinds(decision)
    assert "(p2)" in (saga.reason or "")
    assert saga.fulfilments["f1"].shipments["p2"].capture_failed
    retried = s.operator_retry(saga, T0, POLICY)
    assert of(retried, CapturePayment) == [c2], "the same command, key included"
    assert saga.status == Status.SHIPPED


def test_a_parcel_worth_nothing_is_not_captured():
    saga = new_saga(
        total=Decimal("20.00"),
        lines=(
            SagaLine(
                line_id="l1", sku="A", quantity=2, unit_price=Decimal(10), line_total=Decimal(20)
            ),
            SagaLine(
                line_id="l2", sku="GIFT", quantity=1, unit_price=Decimal(0), line_total=Decimal(0)
            ),
        ),
    )
    s.start(saga, T0, POLICY)
    allocations = (
        Allocation(line_id="l1", sku="A", location="berlin", quantity=2),
        Allocation(line_id="l2", sku="GIFT", location="berlin", quantity=1),
    )
    s.handle(saga, StockReserved(order_id=ORDER, allocations=allocations), T0, POLICY)
    s.handle(
        saga,
        PaymentAuthorized(
            order_id=ORDER,
            payment_id="p",
            amount=Decimal(20),
            currency="EUR",
            gateway_reference="g",
        ),
        T0,
        POLICY,
    )
    ref = FulfilmentRef(
        fulfilment_id="f1",
        location="berlin",
        lines=(SkuQuantity(sku="A", quantity=2), SkuQuantity(sku="GIFT", quantity=1)),
    )
    s.handle(saga, FulfilmentCreated(order_id=ORDER, fulfilments=(ref,)), T0, POLICY)
    gift = s.handle(saga, parcel("gift", {"GIFT": 1}), T0, POLICY)
    assert kinds(gift) == [CommitStock, CustomerNotification]
    assert "capture_skipped" in [e.event for e in gift.timeline]
    assert saga.fulfilments["f1"].shipments["gift"].captured
    rest = s.handle(saga, parcel("goods", {"A": 2}), T0, POLICY)
    assert [c.amount for c in of(rest, CapturePayment)] == [Decimal("20.00")]


# --- a parcel that does not fit --------------------------------------------------------------


def test_a_parcel_with_more_than_is_left_unshipped_is_not_applied_and_parks_the_order():
    saga = one_fulfilment_saga()
    s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY)
    decision = s.handle(saga, parcel("p2", {"A": 2}), T0, POLICY)
    assert CommitStock not in kinds(decision) and CapturePayment not in kinds(decision)
    assert OperatorAlert in kinds(decision)
    assert saga.status == Status.NEEDS_ATTENTION
    assert saga.parked_from == Status.PARTIALLY_SHIPPED
    assert "p2" in (saga.reason or "") and "1 x A" in (saga.reason or "")
    assert "p2" not in saga.fulfilments["f1"].shipments
    assert saga.fulfilments["f1"].refused_shipments == ("p2",)
    assert s.handle(saga, parcel("p2", {"A": 2}), T0, POLICY).messages == [], "remembered"
    # Parking never drops a fact: the parcel that does fit is still applied.
    fits = s.handle(saga, parcel("p3", {"A": 1, "B": 1}), T0, POLICY)
    assert kinds(fits) == [CommitStock, CapturePayment, CustomerNotification]
    assert saga.status == Status.NEEDS_ATTENTION and saga.parked_from == Status.SHIPPED


@pytest.mark.parametrize("lines", [{"C": 1}, {"A": 4}])
def test_a_parcel_of_what_the_fulfilment_does_not_hold_is_refused(lines: dict[str, int]):
    saga = one_fulfilment_saga()
    decision = s.handle(saga, parcel("px", lines), T0, POLICY)
    assert kinds(decision) == [OperatorAlert]
    assert saga.status == Status.NEEDS_ATTENTION


def test_a_new_parcel_after_the_fulfilment_finished_is_refused():
    saga = one_fulfilment_saga()
    s.handle(saga, parcel("p1", {"A": 3, "B": 1}, complete=True), T0, POLICY)
    assert saga.status == Status.SHIPPED
    decision = s.handle(saga, parcel("p9", {"A": 1}), T0, POLICY)
    assert kinds(decision) == [OperatorAlert] and saga.parked_from == Status.SHIPPED


def test_a_fulfilment_complete_short_releases_what_never_shipped_and_captures_what_did():
    saga = one_fulfilment_saga()
    decision = s.handle(saga, parcel("p1", {"A": 2}, complete=True), T0, POLICY)
    assert saga.status == Status.SHIPPED
    assert kinds(decision) == [CommitStock, CapturePayment, CustomerNotification, ReleaseStock]
    assert "shipped_short" in [e.event for e in decision.timeline]
    [capture] = of(decision, CapturePayment)
    assert capture.amount == Decimal("19.05"), "only what shipped, not the rest of the total"


# --- cancel racing the parcels ------------------------------------------------------------


@pytest.mark.parametrize("answer_field", ["partly_shipped", "cancelled"])
def test_cancel_after_one_parcel_keeps_it_and_releases_the_unshipped_rest(answer_field: str):
    saga = one_fulfilment_saga()
    s.request_cancel(saga, "customer", T0, POLICY)
    assert saga.status == Status.CANCELLING
    first = s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY)
    assert kinds(first) == [CommitStock, CapturePayment, CustomerNotification]
    assert first.messages[2].data["cancel_too_late"] is True  # type: ignore[attr-defined]
    [capture] = of(first, CapturePayment)
    answer = FulfilmentCancelled.model_validate(
        {"order_id": ORDER, "reason": "customer", answer_field: ["f1"]}
    )
    decision = s.handle(saga, answer, T0, POLICY)
    assert kinds(decision) == [ReleaseStock, CustomerNotification]
    assert VoidPayment not in kinds(decision), "a capture happened: the rest lapses"
    [notice] = of(decision, CustomerNotification)
    assert notice.kind == "rest_cancelled" and notice.data["too_late"] is True
    assert notice.data["partly_cancelled_fulfilments"] == ["f1"]
    assert notice.data["lines"] == [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1}]
    assert Decimal(notice.data["amount"]) == saga.total - Decimal("19.05")
    f1 = saga.fulfilments["f1"]
    assert f1.rest_cancelled and f1.shipped and not f1.cancelled
    assert saga.status == Status.SHIPPED and "too late" in (saga.reason or "")
    s.handle(saga, delivered("f1", "p1"), T0, POLICY)
    s.handle(saga, captured("p1", capture.amount, capture.amount), T0, POLICY)
    assert saga.status == Status.COMPLETED
    assert saga.captured_total == Decimal("19.05") < saga.total
    late = s.handle(saga, parcel("p2", {"A": 1}), T0 + timedelta(hours=1), POLICY)
    assert late.messages == []


def test_cancel_with_another_fulfilment_cancelled_whole_and_one_partly_shipped():
    saga = at(new_saga(), Status.FULFILLING)  # f1: 2 x A at berlin, f2: 1 x B at hamburg
    s.request_cancel(saga, "customer", T0, POLICY)
    s.handle(saga, parcel("p1", {"A": 1}), T0, POLICY)
    answer = FulfilmentCancelled(
        order_id=ORDER, reason="customer", cancelled=("f2",), partly_shipped=("f1",)
    )
    decision = s.handle(saga, answer, T0, POLICY)
    assert kinds(decision) == [ReleaseStock, CustomerNotification]
    [notice] = of(decision, CustomerNotification)
    assert notice.data["cancelled_fulfilments"] == ["f2"]
    assert notice.data["partly_cancelled_fulfilments"] == ["f1"]
    assert saga.fulfilments["f2"].cancelled and saga.fulfilments["f1"].rest_cancelled
    assert saga.status == Status.SHIPPED


def test_a_fulfilment_the_cancel_answer_calls_shipped_has_finished_shipping():
    saga = at(new_saga(), Status.FULFILLING)  # f1: 2 x A at berlin, f2: 1 x B at hamburg
    s.request_cancel(saga, "customer", T0, POLICY)
    s.handle(saga, parcel("p1", {"A": 1}), T0, POLICY)
    s.handle(saga, parcel("p2", {"A": 1}), T0, POLICY)  # all lines: finished anyway
    s.handle(saga, parcel("q1", {"B": 1}, fid="f2", location="hamburg"), T0, POLICY)
    assert saga.fulfilments["f1"].shipped and saga.fulfilments["f2"].shipped
    answer = FulfilmentCancelled(order_id=ORDER, reason="customer", already_shipped=("f1", "f2"))
    decision = s.handle(saga, answer, T0, POLICY)
    assert ReleaseStock not in kinds(decision) and VoidPayment not in kinds(decision)
    assert saga.status == Status.SHIPPED


def test_an_already_shipped_answer_finishes_a_fulfilment_whose_last_parcel_said_nothing():
    saga = one_fulfilment_saga()
    s.request_cancel(saga, "customer", T0, POLICY)
    s.handle(saga, parcel("p1", {"A": 3}), T0, POLICY)  # B never in a parcel, not complete
    assert not saga.fulfilments["f1"].shipped
    answer = FulfilmentCancelled(order_id=ORDER, reason="customer", already_shipped=("f1",))
    decision = s.handle(saga, answer, T0, POLICY)
    assert saga.fulfilments["f1"].shipped and saga.status == Status.SHIPPED
    assert kinds(decision) == [ReleaseStock], "shipped short: B's reservation goes back"


def test_cancel_refused_once_every_parcel_left():
    saga = one_fulfilment_saga()
    s.handle(saga, parcel("p1", {"A": 1}), T0, POLICY)
    s.handle(saga, parcel("p2", {"A": 2, "B": 1}), T0, POLICY)
    assert saga.status == Status.SHIPPED
    with pytest.raises(s.CancelRefused):
        s.request_cancel(saga, "customer", T0, POLICY)
    with pytest.raises(s.OperatorActionRefused):
        s.operator_compensate(saga, T0, POLICY)


# --- sagas stored before parcels ---------------------------------------------------------


def test_a_saga_stored_before_parcels_loads_and_goes_on():
    stored: dict[str, Any] = at(new_saga(), Status.FULFILLING).model_dump(mode="json")
    stored["fulfilments"] = {
        "f1": {
            "fulfilment_id": "f1",
            "location": "berlin",
            "lines": [{"sku": "A", "quantity": 2}],
            "shipped": True,
            "delivered": True,
            "cancelled": False,
            "capture_amount": "20.00",
            "captured": False,
            "capture_failed": False,
            "carrier": "dhl",
            "tracking_number": "T-f1",
        },
        "f2": {
            "fulfilment_id": "f2",
            "location": "hamburg",
            "lines": [{"sku": "B", "quantity": 1}],
            "shipped": False,
            "delivered": False,
            "cancelled": False,
            "capture_amount": None,
            "captured": False,
            "capture_failed": False,
            "carrier": None,
            "tracking_number": None,
        },
    }
    stored.update(status="PARTIALLY_SHIPPED", capture_requested="20.00")
    saga = OrderSaga.model_validate(stored)
    f1, f2 = saga.fulfilments["f1"], saga.fulfilments["f2"]
    [only] = f1.shipments.values()
    assert (only.shipment_id, only.capture_amount, only.captured, only.delivered) == (
        "f1",
        Decimal("20.00"),
        False,
        True,
    )
    assert only.carrier == "dhl" and only.tracking_number == "T-f1"
    assert f2.shipments == {} and not f2.shipped
    assert OrderSaga.model_validate_json(saga.model_dump_json()) == saga, "stable once saved"
    # A capture answer of before parcels (no shipment id) still finds its shipment.
    s.handle(saga, captured(None, Decimal("20.00"), Decimal("20.00")), T0, POLICY)
    assert only.captured
    last = s.handle(saga, shipped("f2", "hamburg", "B", 1), T0, POLICY)
    assert [c.amount for c in of(last, CapturePayment)] == [Decimal("10.00")]
    s.handle(saga, delivered("f2"), T0, POLICY)
    s.handle(saga, captured(None, Decimal("10.00"), Decimal("30.00"), fid="f2"), T0, POLICY)
    assert saga.status == Status.COMPLETED


# --- property: the captures add up to the total -------------------------------------------


def _random_order(rng: random.Random, currency: str) -> tuple[OrderSaga, list[FulfilmentRef]]:
    lines = []
    for index in range(rng.randint(1, 5)):
        quantity = rng.randint(1, 6)
        unit = round_money(Decimal(rng.randint(0, 20_000)) / 100, currency)
        lines.append(
            SagaLine(
                line_id=f"l{index}",
                sku=f"S{rng.randint(0, 3)}",  # a SKU may appear on several lines
                quantity=quantity,
                unit_price=unit,
                line_total=unit * quantity,
            )
        )
    subtotal = sum((li.line_total for li in lines), Decimal(0))
    extra = Decimal(rng.randint(-500, 3000)) / 100  # shipping + tax - discount
    total = round_money(max(subtotal + extra, Decimal(1)), currency)
    saga = new_saga(currency=currency, total=total, lines=tuple(lines))
    # The order's units spread over 1-3 fulfilments.
    units: list[str] = [li.sku for li in lines for _ in range(li.quantity)]
    rng.shuffle(units)
    count = rng.randint(1, min(3, len(units)))
    cuts = sorted(rng.sample(range(1, len(units)), count - 1)) if count > 1 else []
    refs = []
    for index, chunk in enumerate(_chunks(units, cuts)):
        held = Counter(chunk)
        refs.append(
            FulfilmentRef(
                fulfilment_id=f"f{index}",
                location="main",
                lines=tuple(SkuQuantity(sku=k, quantity=n) for k, n in sorted(held.items())),
            )
        )
    return saga, refs


def _chunks(items: list[str], cuts: list[int]) -> list[list[str]]:
    bounds = [0, *cuts, len(items)]
    return [items[a:b] for a, b in itertools.pairwise(bounds)]


def _parcels(rng: random.Random, ref: FulfilmentRef) -> list[FulfilmentShipped]:
    units = [line.sku for line in ref.lines for _ in range(line.quantity)]
    rng.shuffle(units)
    count = rng.randint(1, len(units))
    cuts = sorted(rng.sample(range(1, len(units)), count - 1)) if count > 1 else []
    chunks = _chunks(units, cuts)
    return [
        parcel(
            f"{ref.fulfilment_id}-p{index}",
            dict(sorted(Counter(chunk).items())),
            fid=ref.fulfilment_id,
            location=ref.location,
            # The last parcel says so, or not: all lines shipped finishes it either way.
            complete=index == len(chunks) - 1 and rng.random() < 0.5,
        )
        for index, chunk in enumerate(chunks)
    ]


@pytest.mark.parametrize("currency", ["EUR", "JPY", "BHD"])
def test_random_orders_in_random_parcels_capture_exactly_the_total(currency: str):
    rng = random.Random(f"parcels-{currency}")
    for _ in range(300):
        saga, refs = _random_order(rng, currency)
        saga.status, saga.step = Status.CONFIRMED, s.Step.CREATE_FULFILMENT
        saga.stock_reserved = saga.payment_authorized = True
        s.handle(saga, FulfilmentCreated(order_id=ORDER, fulfilments=tuple(refs)), T0, POLICY)
        assert saga.status == Status.FULFILLING
        pending = [_parcels(rng, ref) for ref in refs]
        captures: list[CapturePayment] = []
        parcels = 0
        while any(pending):
            queue = rng.choice([q for q in pending if q])  # fulfilments interleave
            event = queue.pop(0)
            decision = s.handle(saga, event, T0, POLICY)
            assert CommitStock in kinds(decision), decision.timeline
            captures.extend(of(decision, CapturePayment))
            parcels += 1
        context = f"{saga.total} {currency} over {parcels} parcels: {captures}"
        assert saga.status == Status.SHIPPED, context
        assert sum(c.amount for c in captures) == saga.total, context
        assert all(c.amount > 0 for c in captures), context
        assert len({c.idempotency_key for c in captures}) == len(captures), context
        assert all(c.amount == round_money(c.amount, currency) for c in captures), context
        skipped = parcels - len(captures)
        assert skipped == sum(
            1
            for f in saga.fulfilments.values()
            for p in f.shipments.values()
            if p.capture_amount == 0 and p.captured
        ), context
        if sum((li.line_total for li in saga.lines), Decimal(0)) == 0:
            continue  # all free: the last parcel takes the whole total (shipping)
        # Each parcel's capture is its value give or take the rounding of the parcels before.
        tolerance = quantum(currency) * parcels
        for f in saga.fulfilments.values():
            for p in f.shipments.values():
                assert p.capture_amount is not None
                exact = _exact_value(saga, p)
                assert abs(p.capture_amount - exact) <= tolerance, (p, exact, context)
        # Every capture is for a shipment the saga recorded, under that shipment's key.
        recorded = {
            saga.capture_key(p.shipment_id)
            for f in saga.fulfilments.values()
            for p in f.shipments.values()
        }
        assert {c.idempotency_key for c in captures} <= recorded, context


def _exact_value(saga: OrderSaga, shipment: Any) -> Decimal:
    """The unrounded share of the total the shipment's lines stand for."""
    subtotal = sum((li.line_total for li in saga.lines), Decimal(0))
    assert subtotal > 0
    by_sku: dict[str, tuple[Decimal, int]] = {}
    for li in saga.lines:
        value, quantity = by_sku.get(li.sku, (Decimal(0), 0))
        by_sku[li.sku] = (value + li.line_total, quantity + li.quantity)
    value = sum(
        (by_sku[line.sku][0] * line.quantity / by_sku[line.sku][1] for line in shipment.lines),
        Decimal(0),
    )
    return saga.total * value / subtotal
