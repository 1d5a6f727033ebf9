"""The order saga cancelling the unshipped rest of a partly shipped order: what left stays
shipped and captured, what has not is cancelled at fulfilment, cancelled from the order (the
capture target lowered by its share), its stock released and the customer told; the order
completes when what shipped is delivered. A parcel that races the cancel ships; duplicates
change nothing; the authorisation is never voided once a parcel left; the captures add up to
exactly the share of what shipped."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.order_intake.domain import saga as s
from services.order_intake.domain.saga import OrderSaga, ShortState, Status, Step
from shared.contracts.fulfilment import FulfilmentCancelled, FulfilmentCreated, FulfilmentFailed
from shared.contracts.order_intake import (
    CancelFulfilment,
    CapturePayment,
    CommitStock,
    CustomerNotification,
    OperatorAlert,
    ReleaseStock,
    VoidPayment,
)
from shared.contracts.payment import PaymentCaptureFailed
from shared.money import quantum, round_money
from tests.unit.order_intake.test_saga import ORDER, POLICY, T0, at, kinds, new_saga
from tests.unit.order_intake.test_saga_parcels import (
    _parcels,
    _random_order,
    captured,
    delivered,
    of,
    one_fulfilment_saga,
    parcel,
)
from tests.unit.order_intake.test_saga_short_picks import reallocated, short_pick, to_hamburg


def events(decision: s.Decision) -> list[str]:
    return [e.event for e in decision.timeline]


def note(decision: s.Decision, event: str) -> dict[str, Any]:
    [entry] = [e for e in decision.timeline if e.event == event]
    return entry.detail


def rest_notice(decision: s.Decision) -> CustomerNotification:
    [notice] = [n for n in of(decision, CustomerNotification) if n.kind == "rest_cancelled"]
    return notice


def answer(**fields: tuple[str, ...]) -> FulfilmentCancelled:
    return FulfilmentCancelled(order_id=ORDER, reason="customer", **fields)


def complete(saga: OrderSaga, captures: list[CapturePayment]) -> None:
    """Every capture answered and every shipment delivered."""
    running = Decimal(0)
    for capture in captures:
        running += capture.amount
        reply = captured(capture.shipment_id, capture.amount, running, fid=capture.fulfilment_id)
        s.handle(saga, reply, T0, POLICY)
    for f in list(saga.fulfilments.values()):
        for shipment_id in list(f.shipments):
            s.handle(saga, delivered(f.fulfilment_id, shipment_id), T0, POLICY)


# --- one fulfilment, one parcel left ---------------------------------------------------------


def test_cancel_after_one_parcel_cancels_the_unshipped_rest_and_captures_only_the_parcel():
    saga = one_fulfilment_saga()  # f1: 3 x A at 10, 1 x B at 5 (35 of goods), total 33.33
    first = s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY)
    [capture] = of(first, CapturePayment)
    assert capture.amount == Decimal("19.05") and saga.status == Status.PARTIALLY_SHIPPED

    requested = s.request_cancel(saga, "customer", T0, POLICY)
    assert kinds(requested) == [CancelFulfilment], "the fulfilment first; never a void"
    assert saga.status == Status.CANCELLING and saga.cancel_rest
    assert saga.pending_compensations == (s.Compensation.FULFILMENT, s.Compensation.STOCK)
    assert note(requested, "cancel_requested") == {
        "reason": "customer",
        "scope": "unshipped_rest",
        "unshipped": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1}],
        "not_charged": "14.28",
        "currency": "EUR",
    }
    assert note(requested, "compensating")["scope"] == "unshipped_rest"

    answered = s.handle(saga, answer(partly_shipped=("f1",)), T0, POLICY)
    assert kinds(answered) == [ReleaseStock, CustomerNotification]
    notice = rest_notice(answered)
    assert notice.data == {
        "reason": "customer",
        "lines": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1}],
        "amount": "14.28",
        "currency": "EUR",
        "cancelled_fulfilments": [],
        "partly_cancelled_fulfilments": ["f1"],
        "too_late": False,
        "paid_externally": False,
    }
    rest = note(answered, "rest_cancelled")
    assert rest["value"] == "14.28" and rest["capture_target"] == "19.05"
    assert "cancel_too_late" not in events(answered), "nothing raced: the cancel was in time"
    f1 = saga.fulfilments["f1"]
    assert f1.rest_cancelled and f1.shipped and not f1.cancelled
    assert s.cancelled_units(saga) == {"A": 1, "B": 1}
    assert s.capture_target(saga) == capture.amount == saga.capture_requested
    assert saga.status == Status.SHIPPED and saga.step is None
    assert saga.reason == "unshipped rest cancelled: customer"
    assert saga.sla_deadline_at == T0 + POLICY.delivery_sla

    complete(saga, [capture])
    assert saga.status == Status.COMPLETED
    assert saga.captured_total == Decimal("19.05")
    late = s.handle(saga, parcel("p2", {"A": 1, "B": 1}), T0 + timedelta(hours=1), POLICY)
    assert late.messages == [], "the rest was cancelled: a parcel of it changes nothing"


def test_a_fulfilment_not_started_is_cancelled_whole_and_the_shipped_one_stands():
    saga = at(new_saga(), Status.PARTIALLY_SHIPPED)  # f1 (2 x A, 20.00) shipped; f2 (B) not
    s.request_cancel(saga, "customer", T0, POLICY)
    decision = s.handle(saga, answer(cancelled=("f2",), already_shipped=("f1",)), T0, POLICY)
    assert kinds(decision) == [ReleaseStock, CustomerNotification]
    notice = rest_notice(decision)
    assert notice.data["lines"] == [{"sku": "B", "quantity": 1}]
    assert notice.data["amount"] == "10.00"
    assert notice.data["cancelled_fulfilments"] == ["f2"]
    assert saga.fulfilments["f2"].cancelled and saga.status == Status.SHIPPED
    assert s.capture_target(saga) == Decimal("20.00") == saga.capture_requested
    s.handle(saga, captured("f1", Decimal("20.00"), Decimal("20.00")), T0, POLICY)
    s.handle(saga, delivered("f1"), T0, POLICY)
    assert saga.status == Status.COMPLETED, "the cancelled fulfilment is not waited for"


def test_the_order_completes_at_once_when_what_shipped_was_already_delivered_and_paid():
    saga = one_fulfilment_saga()
    [capture] = of(s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY), CapturePayment)
    complete(saga, [capture])
    assert saga.status == Status.PARTIALLY_SHIPPED
    s.request_cancel(saga, "customer", T0, POLICY)
    s.handle(saga, answer(partly_shipped=("f1",)), T0, POLICY)
    assert saga.status == Status.COMPLETED


# --- races and duplicates ----------------------------------------------------------------------


def test_a_parcel_that_leaves_before_fulfilment_sees_the_cancel_ships_and_is_captured():
    saga = one_fulfilment_saga()
    first = s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY)
    s.request_cancel(saga, "customer", T0, POLICY)
    raced = s.handle(saga, parcel("p2", {"A": 1}), T0, POLICY)
    assert kinds(raced) == [CommitStock, CapturePayment, CustomerNotification]
    [shipped_notice] = of(raced, CustomerNotification)
    assert shipped_notice.data["cancel_too_late"] is True
    assert saga.status == Status.CANCELLING, "the cancel's answer decides the rest"
    decision = s.handle(saga, answer(partly_shipped=("f1",)), T0, POLICY)
    notice = rest_notice(decision)
    assert notice.data["lines"] == [{"sku": "B", "quantity": 1}], "not the parcel that left"
    captures = [*of(first, CapturePayment), *of(raced, CapturePayment)]
    shipped_share = round_money(Decimal("33.33") * 30 / 35, "EUR")
    assert sum(c.amount for c in captures) == shipped_share == s.capture_target(saga)
    assert Decimal(notice.data["amount"]) == saga.total - shipped_share
    assert saga.status == Status.SHIPPED
    complete(saga, captures)
    assert saga.status == Status.COMPLETED


def test_when_the_racing_parcel_held_all_the_rest_nothing_is_cancelled():
    saga = one_fulfilment_saga()
    first = s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY)
    s.request_cancel(saga, "customer", T0, POLICY)
    raced = s.handle(saga, parcel("p2", {"A": 1, "B": 1}, complete=True), T0, POLICY)
    decision = s.handle(saga, answer(already_shipped=("f1",)), T0, POLICY)
    assert decision.messages == [], "nothing to release, nothing to tell but the parcel's notice"
    captures = [*of(first, CapturePayment), *of(raced, CapturePayment)]
    assert sum(c.amount for c in captures) == saga.total == s.capture_target(saga)
    assert saga.status == Status.SHIPPED and saga.reason == "unshipped rest cancelled: customer"


def test_duplicates_change_nothing():
    saga = one_fulfilment_saga()
    s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY)
    s.request_cancel(saga, "customer", T0, POLICY)
    again = s.request_cancel(saga, "customer again", T0, POLICY)
    assert again.messages == [] and events(again) == ["cancel_repeated"]
    s.handle(saga, answer(partly_shipped=("f1",)), T0, POLICY)
    before = saga.model_dump()
    duplicate = s.handle(saga, answer(partly_shipped=("f1",)), T0, POLICY)
    assert duplicate.messages == [] and events(duplicate) == ["ignored"]
    assert s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY).messages == []
    assert saga.model_dump() == before
    with pytest.raises(s.CancelRefused) as refused:
        s.request_cancel(saga, "customer", T0, POLICY)
    assert refused.value.code == "already_shipped", "everything left has shipped"


# --- deadlines, operators and parking ------------------------------------------------------------


def test_an_unanswered_cancel_is_re_sent_then_parked_and_never_voids():
    saga = one_fulfilment_saga()
    [capture] = of(s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY), CapturePayment)
    s.request_cancel(saga, "customer", T0, POLICY)
    sent: list[type] = []
    while saga.deadline_at is not None:
        sent.extend(kinds(s.on_deadline(saga, saga.deadline_at + timedelta(seconds=1), POLICY)))
    assert sent == [CancelFulfilment, CancelFulfilment, OperatorAlert]
    assert saga.status == Status.NEEDS_ATTENTION and saga.parked_from == Status.CANCELLING
    resent = s.operator_compensate(saga, T0, POLICY)
    assert kinds(resent) == [CancelFulfilment, CapturePayment], "p1 was never confirmed"
    assert of(resent, CapturePayment) == [capture], "the same capture, key included"
    assert saga.status == Status.CANCELLING
    decision = s.handle(saga, answer(partly_shipped=("f1",)), T0, POLICY)
    assert VoidPayment not in kinds(decision) and saga.status == Status.SHIPPED


def test_an_operator_compensation_of_a_partly_shipped_order_cancels_its_rest():
    saga = one_fulfilment_saga()
    s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY)
    decision = s.operator_compensate(saga, T0, POLICY)
    assert kinds(decision) == [CapturePayment, CancelFulfilment]
    assert saga.status == Status.CANCELLING and saga.cancel_rest
    answered = s.handle(saga, answer(partly_shipped=("f1",)), T0, POLICY)
    assert rest_notice(answered).data["reason"] == "cancelled by an operator"
    assert saga.status == Status.SHIPPED


def test_an_operator_compensation_of_a_parked_partly_shipped_order_re_sends_its_capture():
    saga = one_fulfilment_saga()
    [capture] = of(s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY), CapturePayment)
    failed = PaymentCaptureFailed(
        order_id=ORDER, fulfilment_id="f1", shipment_id="p1", reason="gateway_timeout"
    )
    s.handle(saga, failed, T0, POLICY)
    assert saga.status == Status.NEEDS_ATTENTION
    with pytest.raises(s.CancelRefused, match="operator"):
        s.request_cancel(saga, "customer", T0, POLICY)
    decision = s.operator_compensate(saga, T0, POLICY)
    assert kinds(decision) == [CapturePayment, CancelFulfilment]
    assert of(decision, CapturePayment) == [capture]
    assert saga.status == Status.CANCELLING and saga.attention_reasons == ()
    assert VoidPayment not in kinds(decision)


def test_a_lost_parcel_while_the_rest_is_cancelled_parks_and_the_answer_applies_underneath():
    saga = one_fulfilment_saga()
    s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY)
    s.request_cancel(saga, "customer", T0, POLICY)
    lost = s.handle(
        saga, FulfilmentFailed(order_id=ORDER, fulfilment_id="f1", reason="lost"), T0, POLICY
    )
    assert kinds(lost) == [OperatorAlert] and saga.status == Status.NEEDS_ATTENTION
    decision = s.handle(saga, answer(partly_shipped=("f1",)), T0, POLICY)
    assert kinds(decision) == [ReleaseStock, CustomerNotification], "parking never drops a fact"
    assert saga.status == Status.NEEDS_ATTENTION and saga.parked_from == Status.SHIPPED


def test_a_cancel_during_a_short_re_allocation_waits_then_takes_the_short_units_too():
    saga = one_fulfilment_saga()
    [capture] = of(s.handle(saga, parcel("p1", {"A": 1}), T0, POLICY), CapturePayment)
    s.handle(saga, short_pick("A", 1), T0, POLICY)
    assert saga.step == Step.REALLOCATE_STOCK
    requested = s.request_cancel(saga, "customer", T0, POLICY)
    assert requested.messages == [] and saga.status == Status.PARTIALLY_SHIPPED
    detail = note(requested, "cancel_requested")
    assert detail["applied_when"] == "reallocate_stock"
    assert detail["unshipped"] == [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}]
    applied = s.handle(saga, reallocated("s1", to_hamburg()), T0, POLICY)
    assert kinds(applied) == [CancelFulfilment] and saga.status == Status.CANCELLING
    assert saga.shorts["s1"].state == ShortState.CANCELLED and saga.shorts["s1"].with_cancel
    decision = s.handle(saga, answer(partly_shipped=("f1",)), T0, POLICY)
    assert kinds(decision) == [ReleaseStock, CustomerNotification], "hamburg's units too"
    notice = rest_notice(decision)
    assert notice.data["lines"] == [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}]
    assert notice.data["amount"] == detail["not_charged"] == str(saga.total - capture.amount)
    assert s.capture_target(saga) == capture.amount


def test_an_order_paid_on_the_channel_cancels_its_rest_without_payment_commands():
    saga = one_fulfilment_saga(paid_externally=True)
    s.handle(saga, parcel("p1", {"A": 2}), T0, POLICY)
    s.request_cancel(saga, "channel", T0, POLICY)
    decision = s.handle(saga, answer(partly_shipped=("f1",)), T0, POLICY)
    assert kinds(decision) == [ReleaseStock, CustomerNotification]
    s.handle(saga, delivered("f1", "p1"), T0, POLICY)
    assert saga.status == Status.COMPLETED


# --- property: the captures are exactly the share of what shipped ---------------------------


@pytest.mark.parametrize("currency", ["EUR", "JPY", "BHD"])
def test_random_partly_shipped_orders_cancelled_capture_exactly_what_shipped(currency: str):
    rng = random.Random(f"cancel-rest-{currency}")
    tried = 0
    while tried < 200:
        saga, refs = _random_order(rng, currency)
        saga.status, saga.step = Status.CONFIRMED, Step.CREATE_FULFILMENT
        saga.stock_reserved = saga.payment_authorized = True
        s.handle(saga, FulfilmentCreated(order_id=ORDER, fulfilments=tuple(refs)), T0, POLICY)
        pending = [_parcels(rng, ref) for ref in refs]
        total_parcels = sum(len(q) for q in pending)
        if total_parcels < 2:
            continue
        decisions: list[s.Decision] = []
        # Some parcels leave (at least one, not all), the customer cancels, maybe one more
        # parcel races the cancel, then fulfilment answers.
        for _ in range(rng.randint(1, total_parcels - 1)):
            queue = rng.choice([q for q in pending if q])
            decisions.append(s.handle(saga, queue.pop(0), T0, POLICY))
        if saga.status != Status.PARTIALLY_SHIPPED:
            continue  # every fulfilment finished early (its last parcel said so)
        tried += 1
        requested = s.request_cancel(saga, "customer", T0, POLICY)
        preview = note(requested, "cancel_requested")
        decisions.append(requested)
        raced = rng.random() < 0.3
        if raced:
            queue = rng.choice([q for q in pending if q])
            decisions.append(s.handle(saga, queue.pop(0), T0, POLICY))
        fulfilments = saga.fulfilments.values()
        reply = answer(
            already_shipped=tuple(f.fulfilment_id for f in fulfilments if f.shipped),
            partly_shipped=tuple(
                f.fulfilment_id for f in fulfilments if f.shipments and not f.shipped
            ),
            cancelled=tuple(f.fulfilment_id for f in fulfilments if not f.shipments),
        )
        answered = s.handle(saga, reply, T0, POLICY)
        decisions.append(answered)
        context = f"{saga.total} {currency}: {saga.lines}, raced {raced}"

        assert not any(VoidPayment in kinds(d) for d in decisions), context
        assert saga.status == Status.SHIPPED, context
        captures = [c for d in decisions for c in of(d, CapturePayment)]
        captured_sum = sum((c.amount for c in captures), Decimal(0))
        assert captured_sum == s.capture_target(saga) == saga.capture_requested, context
        shipped = s.shipped_units(saga)
        left = Counter(s.ordered_units(saga))
        left.subtract(shipped)
        unshipped = {sku: n for sku, n in left.items() if n > 0}
        if unshipped:
            notice = rest_notice(answered)
            assert notice.data["lines"] == [
                {"sku": k, "quantity": n} for k, n in sorted(unshipped.items())
            ], context
            assert Decimal(notice.data["amount"]) == saga.total - captured_sum, context
            assert kinds(answered).count(ReleaseStock) == 1, context
            if not raced:
                assert preview["unshipped"] == notice.data["lines"], context
                assert preview["not_charged"] == notice.data["amount"], context
        subtotal = sum((li.line_total for li in saga.lines), Decimal(0))
        if subtotal == 0:
            assert captured_sum == (saga.total if not unshipped else 0), context
        else:
            # Exactly the share of what shipped, rounded once (whatever the parcels were).
            exact = saga.total * _value(saga, shipped) / subtotal
            assert abs(captured_sum - exact) <= quantum(currency) / 2, context
        assert all(c.amount > 0 for c in captures), context
        complete(saga, captures)
        assert saga.status == Status.COMPLETED, context
    assert tried == 200


def _value(saga: OrderSaga, units: dict[str, int]) -> Decimal:
    by_sku: dict[str, tuple[Decimal, int]] = {}
    for li in saga.lines:
        value, quantity = by_sku.get(li.sku, (Decimal(0), 0))
        by_sku[li.sku] = (value + li.line_total, quantity + li.quantity)
    return sum((by_sku[k][0] * n / by_sku[k][1] for k, n in units.items()), Decimal(0))
