"""The order saga with disputes (chargebacks) and refunds made at the provider: a dispute flags
the order, alerts finance and holds what has not shipped (a hold before fulfilment, HoldFulfilments
at fulfilment, only flagged once shipped or closed); a refund made at the provider is
recorded without changing the status. Both are facts: applied while parked, and the same one
again changes nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from services.order_intake.domain import saga as s
from services.order_intake.domain.saga import OrderSaga, Status
from shared.contracts.fulfilment import FulfilmentCreated, FulfilmentDelivered
from shared.contracts.order_intake import (
    CapturePayment,
    CreateFulfilment,
    HoldFulfilments,
    OperatorAlert,
    ReleaseFulfilments,
)
from shared.contracts.payment import PaymentDisputed, PaymentRefundedExternally
from tests.unit.order_intake.test_saga import (
    ORDER,
    POLICY,
    REFS,
    T0,
    _exhaust,
    at,
    authorized,
    captured,
    kinds,
    new_saga,
    reserved,
    shipped,
)

LATER = T0 + timedelta(hours=1)


def disputed(dispute_id: str = "dp_1", amount: str = "30.00") -> PaymentDisputed:
    return PaymentDisputed(
        order_id=ORDER,
        payment_id="p1",
        dispute_id=dispute_id,
        amount=Decimal(amount),
        currency="EUR",
        reason="fraudulent",
        gateway="stripe",
    )


def refunded(refund_id: str, amount: str, total: str) -> PaymentRefundedExternally:
    return PaymentRefundedExternally(
        order_id=ORDER,
        payment_id="p1",
        amount=Decimal(amount),
        currency="EUR",
        refunded_total=Decimal(total),
        gateway="stripe",
        gateway_refund_id=refund_id,
    )


def completed() -> OrderSaga:
    saga = at(new_saga(), Status.SHIPPED)
    for fid, amount, total in (("f1", "20.00", "20.00"), ("f2", "10.00", "30.00")):
        s.handle(saga, captured(fid, amount, total), T0, POLICY)
        delivered = FulfilmentDelivered(order_id=ORDER, fulfilment_id=fid, delivered_at=T0)
        s.handle(saga, delivered, T0, POLICY)
    assert saga.status == Status.COMPLETED
    return saga


def alerts(decision: s.Decision) -> list[OperatorAlert]:
    return [m for m in decision.messages if isinstance(m, OperatorAlert)]


def events(decision: s.Decision) -> list[str]:
    return [entry.event for entry in decision.timeline]


# --- disputes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status", [Status.RESERVING_STOCK, Status.AUTHORIZING_PAYMENT], ids=lambda st: st.value
)
def test_a_dispute_before_fulfilment_holds_the_order_where_it_would_confirm(status):
    saga = at(new_saga(), status)
    decision = s.handle(saga, disputed(), LATER, POLICY)

    assert saga.status == status, "the step in flight goes on"
    assert saga.hold is not None and saga.hold.reason == "payment_disputed"
    assert saga.hold.by == s.PAYMENT_PROVIDER
    assert saga.disputes["dp_1"].amount == Decimal("30.00")
    assert saga.disputes["dp_1"].reason == "fraudulent"
    assert saga.disputes["dp_1"].opened_at == LATER
    [alert] = alerts(decision)
    assert alert.kind == "payment_disputed"
    assert ORDER in alert.message and "30.00 EUR" in alert.message
    assert "fraudulent" in alert.message and "held before fulfilment" in alert.message
    assert events(decision) == ["payment_disputed", "hold_placed"]
    assert decision.timeline[0].detail["dispute_id"] == "dp_1"

    if status == Status.RESERVING_STOCK:
        s.handle(saga, reserved(), LATER, POLICY)
    answer = s.handle(saga, authorized(), LATER, POLICY)
    assert saga.status == Status.ON_HOLD
    assert CreateFulfilment not in kinds(answer), "a disputed order is not sent to fulfilment"


def test_a_dispute_never_cancels_and_releasing_its_hold_sends_the_order_on():
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    s.handle(saga, disputed(), LATER, POLICY)
    s.handle(saga, authorized(), LATER, POLICY)
    assert saga.status == Status.ON_HOLD
    decision = s.release_hold(saga, "finance", "dispute won", LATER, POLICY)
    assert saga.status == Status.CONFIRMED
    assert CreateFulfilment in kinds(decision)


def test_a_dispute_on_an_order_held_already_keeps_its_hold():
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    s.place_hold(saga, "address_check", None, "oncall", T0, POLICY)
    s.handle(saga, authorized(), T0, POLICY)
    assert saga.status == Status.ON_HOLD
    decision = s.handle(saga, disputed(), LATER, POLICY)
    assert saga.status == Status.ON_HOLD
    assert saga.hold is not None and saga.hold.reason == "address_check"
    assert "dp_1" in saga.disputes
    [alert] = alerts(decision)
    assert "do not release it" in alert.message
    assert events(decision) == ["payment_disputed", "dispute_on_held_order"]


@pytest.mark.parametrize(
    "status", [Status.CONFIRMED, Status.FULFILLING, Status.PARTIALLY_SHIPPED], ids=str
)
def test_a_dispute_at_fulfilment_holds_the_unshipped_fulfilments(status):
    saga = at(new_saga(), status)
    decision = s.handle(saga, disputed(), LATER, POLICY)

    assert saga.status == status, "not parked: the warehouse holds what has not shipped"
    assert saga.hold is not None and saga.hold.reason == "payment_disputed"
    assert saga.hold.fulfilments_held
    [hold] = [m for m in decision.messages if isinstance(m, HoldFulfilments)]
    assert hold == HoldFulfilments(order_id=ORDER, reason="payment_disputed")
    unshipped = {
        Status.CONFIRMED: "being created",
        Status.FULFILLING: "f1, f2",
        Status.PARTIALLY_SHIPPED: "f2",
    }[status]
    [alert] = alerts(decision)
    assert alert.kind == "payment_disputed" and unshipped in alert.message
    assert "dp_1" in saga.disputes


def test_a_held_disputed_order_still_applies_its_shipments_and_releases_on_review():
    saga = at(new_saga(), Status.FULFILLING)
    s.handle(saga, disputed(), LATER, POLICY)
    decision = s.handle(saga, shipped("f1", "berlin", "A", 2), LATER, POLICY)
    assert saga.status == Status.PARTIALLY_SHIPPED
    assert CapturePayment in kinds(decision), "a parcel that had left is applied as usual"
    released = s.release_hold(saga, "finance", "dispute won", LATER, POLICY)
    assert kinds(released) == [ReleaseFulfilments]
    assert saga.hold is None and "dp_1" in saga.disputes, "releasing keeps the dispute"


def test_a_second_dispute_on_a_held_order_sends_nothing_new():
    saga = at(new_saga(), Status.FULFILLING)
    s.handle(saga, disputed("dp_1"), LATER, POLICY)
    decision = s.handle(saga, disputed("dp_2"), LATER, POLICY)
    assert HoldFulfilments not in kinds(decision)
    assert "on hold already" in alerts(decision)[0].message


def test_a_dispute_after_compensate_is_a_cancel_of_the_rest():
    saga = at(new_saga(), Status.PARTIALLY_SHIPPED)
    s.handle(saga, disputed(), LATER, POLICY)
    s.operator_compensate(saga, LATER, POLICY)
    assert saga.status == Status.CANCELLING
    assert saga.cancel_rest


@pytest.mark.parametrize("status", [Status.SHIPPED, Status.COMPLETED], ids=str)
def test_a_dispute_after_everything_shipped_only_flags_and_alerts(status):
    saga = completed() if status == Status.COMPLETED else at(new_saga(), status)
    decision = s.handle(saga, disputed(), LATER, POLICY)
    assert saga.status == status
    assert saga.hold is None
    assert "dp_1" in saga.disputes
    assert kinds(decision) == [OperatorAlert]
    said = "the order is COMPLETED" if status == Status.COMPLETED else "everything shipped"
    assert said in alerts(decision)[0].message
    assert events(decision) == ["payment_disputed"]


def test_a_dispute_on_a_cancelled_order_only_flags():
    saga = at(new_saga(), Status.FULFILLING)
    s.request_cancel(saga, "customer", T0, POLICY)
    assert saga.status == Status.CANCELLING
    decision = s.handle(saga, disputed(), LATER, POLICY)
    assert saga.status == Status.CANCELLING
    assert kinds(decision) == [OperatorAlert]
    assert "dp_1" in saga.disputes


def test_a_dispute_while_parked_before_fulfilment_is_applied_underneath():
    saga = at(new_saga(), Status.CONFIRMED)
    _exhaust(saga)  # CreateFulfilment never answered: parked
    assert saga.status == Status.NEEDS_ATTENTION
    decision = s.handle(saga, disputed(), LATER, POLICY)
    assert saga.status == Status.NEEDS_ATTENTION
    assert saga.parked_from == Status.CONFIRMED
    assert saga.parked_step == s.Step.CREATE_FULFILMENT
    assert len(saga.attention_reasons) == 1, "held, not parked a second time"
    assert HoldFulfilments in kinds(decision), "fulfilments created later are created held"
    assert "payment_disputed" in [a.kind for a in alerts(decision)]
    assert "dp_1" in saga.disputes


def test_a_dispute_while_parked_before_authorisation_holds_it_underneath():
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    s._needs_attention(saga, "checked by hand", s.Decision())  # parked, however it came about
    decision = s.handle(saga, disputed(), LATER, POLICY)
    assert saga.status == Status.NEEDS_ATTENTION
    assert saga.parked_from == Status.AUTHORIZING_PAYMENT
    assert saga.hold is not None and saga.hold.reason == "payment_disputed"
    assert saga.attention_reasons == ("checked by hand",)
    assert [a.kind for a in alerts(decision)] == ["payment_disputed"]
    s.handle(saga, authorized(), LATER, POLICY)
    assert saga.parked_from == Status.ON_HOLD, "underneath it stops before fulfilment"
    resumed = s.operator_retry(saga, LATER, POLICY)
    assert saga.status == Status.ON_HOLD
    assert CreateFulfilment not in kinds(resumed)


def test_the_same_dispute_twice_changes_nothing():
    saga = at(new_saga(), Status.FULFILLING)
    s.handle(saga, disputed(), LATER, POLICY)
    before = saga.model_dump()
    decision = s.handle(saga, disputed(), LATER + timedelta(minutes=1), POLICY)
    assert decision.messages == [] and decision.timeline == []
    assert saga.model_dump() == before


def test_a_second_dispute_is_recorded_too():
    saga = completed()
    s.handle(saga, disputed("dp_1", "20.00"), LATER, POLICY)
    decision = s.handle(saga, disputed("dp_2", "10.00"), LATER, POLICY)
    assert list(saga.disputes) == ["dp_1", "dp_2"]
    assert kinds(decision) == [OperatorAlert]


def test_a_dispute_survives_the_saga_being_stored_and_loaded():
    saga = at(new_saga(), Status.FULFILLING)
    s.handle(saga, disputed(), LATER, POLICY)
    s.handle(saga, refunded("re_1", "5.00", "5.00"), LATER, POLICY)
    loaded = OrderSaga.model_validate(saga.model_dump(mode="json"))
    assert loaded.disputes == saga.disputes
    assert loaded.external_refunds == saga.external_refunds
    assert loaded.refunded_externally == Decimal("5.00")


# --- refunds made at the provider --------------------------------------------------------------


def test_a_refund_at_the_provider_on_a_completed_order_is_recorded_without_an_alert():
    saga = completed()
    decision = s.handle(saga, refunded("re_1", "10.00", "10.00"), LATER, POLICY)
    assert saga.status == Status.COMPLETED
    assert saga.refunded_externally == Decimal("10.00")
    assert saga.external_refunds["re_1"].amount == Decimal("10.00")
    assert decision.messages == []
    assert events(decision) == ["refunded_externally"]
    assert decision.timeline[0].detail["gateway_refund_id"] == "re_1"


def test_refunds_at_the_provider_add_up_and_alert_when_they_exceed_the_capture():
    saga = completed()
    s.handle(saga, refunded("re_1", "20.00", "20.00"), LATER, POLICY)
    decision = s.handle(saga, refunded("re_2", "15.00", "35.00"), LATER, POLICY)
    assert saga.refunded_externally == Decimal("35.00")
    assert list(saga.external_refunds) == ["re_1", "re_2"]
    [alert] = alerts(decision)
    assert alert.kind == "refunded_externally"
    assert "exceed what was captured" in alert.message


def test_a_refund_at_the_provider_while_the_order_ships_alerts_and_keeps_the_status():
    saga = at(new_saga(), Status.PARTIALLY_SHIPPED)
    s.handle(saga, captured("f1", "20.00", "20.00"), T0, POLICY)
    decision = s.handle(saga, refunded("re_1", "5.00", "5.00"), LATER, POLICY)
    assert saga.status == Status.PARTIALLY_SHIPPED
    assert saga.refunded_externally == Decimal("5.00")
    [alert] = alerts(decision)
    assert "PARTIALLY_SHIPPED, not completed" in alert.message
    assert "exceed" not in alert.message


def test_a_refund_at_the_provider_while_parked_is_recorded_and_stays_parked():
    saga = at(new_saga(), Status.CONFIRMED)
    _exhaust(saga)
    decision = s.handle(saga, refunded("re_1", "30.00", "30.00"), LATER, POLICY)
    assert saga.status == Status.NEEDS_ATTENTION
    assert saga.parked_from == Status.CONFIRMED
    assert saga.refunded_externally == Decimal("30.00")
    [alert] = alerts(decision)
    assert "exceed" in alert.message and "not completed" in alert.message
    # The order still goes on when fulfilment answers.
    s.handle(saga, FulfilmentCreated(order_id=ORDER, fulfilments=REFS), LATER, POLICY)
    assert saga.parked_from == Status.FULFILLING


def test_the_same_refund_twice_changes_nothing():
    saga = completed()
    s.handle(saga, refunded("re_1", "10.00", "10.00"), LATER, POLICY)
    before = saga.model_dump()
    decision = s.handle(saga, refunded("re_1", "10.00", "10.00"), LATER, POLICY)
    assert decision.messages == [] and decision.timeline == []
    assert saga.model_dump() == before
    assert saga.refunded_externally == Decimal("10.00")
