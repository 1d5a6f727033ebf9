"""The order saga with holds and fraud rules: held orders stop in ON_HOLD after their
authorisation, facts keep being applied while held, release and reject (the review's
decisions), cancels while held, the hold's SLA alert, and the rules' accept / review / reject."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from services.order_intake.domain import saga as s
from services.order_intake.domain.saga import OperatorActionRefused, Status
from services.order_intake.risk.domain import (
    OrderValueRule,
    ProviderRiskRule,
    RiskSignals,
    RuleSet,
    VelocityKey,
    VelocityRule,
)
from shared.contracts.inventory import StockReleased
from shared.contracts.order_intake import (
    AuthorizePayment,
    CancelFulfilment,
    CreateFulfilment,
    HoldFulfilments,
    OperatorAlert,
    ReleaseFulfilments,
    ReleaseStock,
    VoidPayment,
)
from shared.contracts.payment import PaymentDeclined, PaymentRisk, PaymentVoided
from tests.unit.order_intake.test_saga import (
    ORDER,
    POLICY,
    T0,
    at,
    authorized,
    kinds,
    new_saga,
    notices,
    reserved,
    shipped,
)
from tests.unit.order_intake.test_saga_backorders import backordered

RULES = RuleSet.model_validate(
    {
        "review_at": 50,
        "reject_at": 100,
        "rules": [
            VelocityRule(
                name="email_velocity", key=VelocityKey.EMAIL, window_s=60, max_orders=3, points=60
            ).model_dump(),
            OrderValueRule(
                name="high_value", above={"EUR": Decimal(1000)}, points=100
            ).model_dump(),
            ProviderRiskRule(
                name="provider_risk", points={"elevated": 50, "highest": 100}
            ).model_dump(),
        ],
    }
)
FRAUD = replace(POLICY, fraud_rules=RULES)
LATER = T0 + timedelta(minutes=5)


def held_at(status: Status, reason: str = "address_check") -> s.OrderSaga:
    saga = at(new_saga(), status)
    s.place_hold(saga, reason, "check the house number", "oncall", T0, POLICY)
    return saga


def voided() -> PaymentVoided:
    return PaymentVoided(order_id=ORDER, voided=True, reason="cancelled")


def released() -> StockReleased:
    return StockReleased(order_id=ORDER)


# --- holds -------------------------------------------------------------------------------------


def test_held_before_reservation_the_saga_authorises_then_waits_on_hold_instead_of_fulfilling():
    saga = held_at(Status.RESERVING_STOCK)
    assert saga.status == Status.RESERVING_STOCK and saga.hold is not None
    authorize = s.handle(saga, reserved(), T0, POLICY)
    assert kinds(authorize) == [AuthorizePayment], "the authorisation goes on while held"
    assert saga.status == Status.AUTHORIZING_PAYMENT

    decision = s.handle(saga, authorized(), T0, POLICY)
    assert saga.status == Status.ON_HOLD
    assert CreateFulfilment not in kinds(decision) and notices(decision) == []
    assert saga.step is None and saga.deadline_at is None
    assert saga.payment_authorized and saga.stock_reserved
    assert ("held", {"reason": "address_check", "by": "oncall"}) in [
        (e.event, e.detail) for e in decision.timeline
    ]
    assert saga.next_deadline == T0 + POLICY.hold_sla, "only the hold's alert is due"


def test_release_from_on_hold_sends_the_order_to_fulfilment_and_tells_the_customer():
    saga = held_at(Status.AUTHORIZING_PAYMENT)
    s.handle(saga, authorized(), T0, POLICY)
    decision = s.release_hold(saga, "oncall", "address confirmed", LATER, POLICY)
    assert saga.status == Status.CONFIRMED and saga.hold is None
    assert kinds(decision)[0] is CreateFulfilment
    assert notices(decision) == ["confirmed"]
    released_note = next(e for e in decision.timeline if e.event == "hold_released")
    assert released_note.detail["by"] == "oncall" and released_note.detail["held_s"] == 300


def test_released_before_the_authorisation_answered_the_saga_just_goes_on():
    saga = held_at(Status.AUTHORIZING_PAYMENT)
    decision = s.release_hold(saga, "oncall", None, T0, POLICY)
    assert decision.messages == [] and saga.status == Status.AUTHORIZING_PAYMENT
    s.handle(saga, authorized(), T0, POLICY)
    assert saga.status == Status.CONFIRMED


def test_facts_arriving_while_held_are_applied_backorder_then_stock_then_hold():
    saga = held_at(Status.RESERVING_STOCK)
    s.handle(saga, backordered(), T0, POLICY)
    assert saga.status == Status.BACKORDERED and saga.hold is not None
    s.handle(saga, reserved(), T0, POLICY)
    assert saga.status == Status.AUTHORIZING_PAYMENT
    s.handle(saga, authorized(), T0, POLICY)
    assert saga.status == Status.ON_HOLD


def test_a_decline_while_held_cancels_as_usual_and_the_hold_goes_with_it():
    saga = held_at(Status.AUTHORIZING_PAYMENT)
    decision = s.handle(
        saga,
        PaymentDeclined(order_id=ORDER, reason="no", decline_code="card_declined"),
        T0,
        POLICY,
    )
    assert kinds(decision) == [ReleaseStock]
    assert saga.hold is None, "no hold alert for a cancelled order"
    s.handle(saga, released(), T0, POLICY)
    assert saga.status == Status.CANCELLED and saga.next_deadline is None


def test_a_repeated_authorisation_while_on_hold_changes_nothing():
    saga = held_at(Status.AUTHORIZING_PAYMENT)
    s.handle(saga, authorized(), T0, POLICY)
    again = s.handle(saga, authorized(), T0, POLICY)
    assert again.messages == [] and saga.status == Status.ON_HOLD


def test_cancel_while_on_hold_voids_and_releases_then_cancelled():
    saga = held_at(Status.AUTHORIZING_PAYMENT)
    s.handle(saga, authorized(), T0, POLICY)
    decision = s.request_cancel(saga, "customer changed their mind", T0, POLICY)
    assert saga.status == Status.CANCELLING
    assert sorted(k.__name__ for k in kinds(decision)) == ["ReleaseStock", "VoidPayment"]
    s.handle(saga, voided(), T0, POLICY)
    end = s.handle(saga, released(), T0, POLICY)
    assert saga.status == Status.CANCELLED and saga.hold is None
    assert notices(end) == ["cancelled"]


def test_cancel_while_held_before_authorisation_waits_for_its_answer_then_compensates():
    saga = held_at(Status.AUTHORIZING_PAYMENT)
    s.request_cancel(saga, "customer", T0, POLICY)
    decision = s.handle(saga, authorized(), T0, POLICY)
    assert saga.status == Status.CANCELLING
    assert sorted(k.__name__ for k in kinds(decision)) == ["ReleaseStock", "VoidPayment"]


def test_operator_compensate_of_a_held_order_cancels_it():
    saga = held_at(Status.AUTHORIZING_PAYMENT)
    s.handle(saga, authorized(), T0, POLICY)
    decision = s.operator_compensate(saga, T0, POLICY)
    assert saga.status == Status.CANCELLING and VoidPayment in kinds(decision)


@pytest.mark.parametrize("status", [Status.SHIPPED])
def test_an_order_that_shipped_everything_cannot_be_held(status: Status):
    saga = at(new_saga(), status)
    with pytest.raises(OperatorActionRefused) as refused:
        s.place_hold(saga, "address_check", None, "oncall", T0, POLICY)
    assert refused.value.code == "already_fulfilling"
    assert saga.hold is None


@pytest.mark.parametrize(
    "status", [Status.CONFIRMED, Status.FULFILLING, Status.PARTIALLY_SHIPPED], ids=str
)
def test_a_hold_at_fulfilment_holds_the_unshipped_fulfilments(status: Status):
    saga = at(new_saga(), status)
    decision = s.place_hold(saga, "address_check", "call back", "oncall", T0, POLICY)
    assert kinds(decision) == [HoldFulfilments]
    assert decision.messages[0] == HoldFulfilments(order_id=saga.order_id, reason="address_check")
    assert saga.status == status, "the status is unchanged: the warehouse holds"
    assert saga.hold is not None and saga.hold.fulfilments_held


def test_releasing_a_hold_at_fulfilment_sends_release_fulfilments():
    saga = at(new_saga(), Status.FULFILLING)
    s.place_hold(saga, "address_check", None, "oncall", T0, POLICY)
    decision = s.release_hold(saga, "oncall", "address fine", T0, POLICY)
    assert kinds(decision) == [ReleaseFulfilments]
    assert saga.hold is None and saga.status == Status.FULFILLING
    with pytest.raises(OperatorActionRefused) as again:
        s.release_hold(saga, "oncall", None, T0, POLICY)
    assert again.value.code == "not_on_hold"


def test_a_second_hold_at_fulfilment_is_refused_and_sends_nothing():
    saga = at(new_saga(), Status.FULFILLING)
    s.place_hold(saga, "address_check", None, "oncall", T0, POLICY)
    with pytest.raises(OperatorActionRefused) as twice:
        s.place_hold(saga, "customer_request", None, "other", T0, POLICY)
    assert twice.value.code == "already_on_hold"


def test_a_release_of_a_hold_placed_before_fulfilment_sends_no_release_fulfilments():
    saga = held_at(Status.RESERVING_STOCK)
    decision = s.release_hold(saga, "oncall", None, T0, POLICY)
    assert ReleaseFulfilments not in kinds(decision)


def test_shipments_apply_while_held_at_fulfilment():
    saga = at(new_saga(), Status.FULFILLING)
    s.place_hold(saga, "address_check", None, "oncall", T0, POLICY)
    s.handle(saga, shipped("f1", "berlin", "A", 2), T0, POLICY)
    assert saga.status == Status.PARTIALLY_SHIPPED
    assert saga.hold is not None


def test_rejecting_a_hold_at_fulfilment_cancels_the_rest():
    saga = at(new_saga(), Status.FULFILLING)
    s.place_hold(saga, "address_check", None, "oncall", T0, POLICY)
    decision = s.reject_held(saga, "oncall", None, T0, POLICY)
    assert saga.status == Status.CANCELLING
    assert CancelFulfilment in kinds(decision)


def test_hold_refusals_closed_already_held_and_release_or_reject_without_a_hold():
    cancelled = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    s.request_cancel(cancelled, "x", T0, POLICY)
    with pytest.raises(OperatorActionRefused) as closed:
        s.place_hold(cancelled, "address_check", None, "oncall", T0, POLICY)
    assert closed.value.code == "order_closed"

    held = held_at(Status.RESERVING_STOCK)
    with pytest.raises(OperatorActionRefused) as twice:
        s.place_hold(held, "customer_request", None, "other", T0, POLICY)
    assert twice.value.code == "already_on_hold"
    assert held.hold is not None and held.hold.reason == "address_check"

    free = at(new_saga(), Status.RESERVING_STOCK)
    for action in (s.release_hold, s.reject_held):
        with pytest.raises(OperatorActionRefused) as not_held:
            action(free, "oncall", None, T0, POLICY)
        assert not_held.value.code == "not_on_hold"


def test_a_long_hold_alerts_an_operator_once_and_never_cancels():
    saga = held_at(Status.AUTHORIZING_PAYMENT)
    s.handle(saga, authorized(), T0, POLICY)
    early = s.on_deadline(saga, T0 + POLICY.hold_sla - timedelta(seconds=1), POLICY)
    assert early.messages == []
    due = s.on_deadline(saga, T0 + POLICY.hold_sla, POLICY)
    [alert] = due.messages
    assert isinstance(alert, OperatorAlert) and alert.kind == "hold_overdue"
    assert "address_check" in alert.message
    assert saga.next_deadline is None, "alerted once: nothing more is due"
    later = s.on_deadline(saga, T0 + 10 * POLICY.hold_sla, POLICY)
    assert later.messages == [] and saga.status == Status.ON_HOLD


def test_the_hold_is_kept_when_the_saga_is_stored_and_loaded_again():
    saga = held_at(Status.AUTHORIZING_PAYMENT)
    loaded = s.OrderSaga.model_validate_json(saga.model_dump_json())
    assert loaded.hold == saga.hold
    older = s.OrderSaga.model_validate_json(at(new_saga(), Status.CONFIRMED).model_dump_json())
    assert older.hold is None and older.risk is None


# --- fraud rules -------------------------------------------------------------------------------


def scored(velocity: int = 1, total: str = "30.00", **overrides: object) -> s.OrderSaga:
    saga = new_saga(
        total=Decimal(total),
        risk_signals=RiskSignals(velocity={"email_velocity": velocity}),
        **overrides,
    )
    s.start(saga, T0, FRAUD)
    return saga


def test_accepted_the_order_is_authorised_with_its_score_on_the_timeline():
    saga = scored(velocity=1)
    decision = s.handle(saga, reserved(), T0, FRAUD)
    assert kinds(decision) == [AuthorizePayment] and saga.hold is None
    note = next(e for e in decision.timeline if e.event == "risk_assessed")
    assert note.detail == {"score": 0, "outcome": "accept", "reasons": []}


def test_for_review_it_is_authorised_then_on_hold_for_fraud_review_nothing_captured():
    saga = scored(velocity=4)
    decision = s.handle(saga, reserved(), T0, FRAUD)
    assert kinds(decision) == [AuthorizePayment]
    note = next(e for e in decision.timeline if e.event == "risk_assessed")
    assert note.detail["outcome"] == "review" and note.detail["score"] == 60
    assert note.detail["reasons"][0]["rule"] == "email_velocity"
    assert saga.hold is not None and saga.hold.reason == "fraud_review"
    assert saga.hold.by == "fraud rules" and "4 orders" in (saga.hold.note or "")
    s.handle(saga, authorized(), T0, FRAUD)
    assert saga.status == Status.ON_HOLD

    approve = s.release_hold(saga, "reviewer", "known customer", LATER, FRAUD)
    assert kinds(approve)[0] is CreateFulfilment and saga.status == Status.CONFIRMED
    review = next(e for e in approve.timeline if e.event == "review_decision")
    assert review.detail["decision"] == "approve" and review.detail["by"] == "reviewer"
    assert review.detail["at"] == LATER.isoformat() and review.detail["score"] == 60


def test_rejected_by_the_rules_the_stock_is_released_nothing_authorised_customer_told():
    saga = scored(total="2000.00")
    decision = s.handle(saga, reserved(), T0, FRAUD)
    assert kinds(decision) == [ReleaseStock], "no AuthorizePayment, no VoidPayment"
    assert saga.status == Status.CANCELLING and saga.reason == "fraud_rejected"
    end = s.handle(saga, released(), T0, FRAUD)
    assert saga.status == Status.CANCELLED and saga.reason == "fraud_rejected"
    assert notices(end) == ["cancelled"]
    assert not saga.payment_authorized


def test_review_reject_of_a_held_order_voids_and_releases_with_reason_fraud_rejected():
    saga = scored(velocity=5)
    s.handle(saga, reserved(), T0, FRAUD)
    s.handle(saga, authorized(), T0, FRAUD)
    decision = s.reject_held(saga, "reviewer", "stolen cards", LATER, FRAUD)
    assert sorted(k.__name__ for k in kinds(decision)) == ["ReleaseStock", "VoidPayment"]
    review = next(e for e in decision.timeline if e.event == "review_decision")
    assert review.detail["decision"] == "reject" and review.detail["by"] == "reviewer"
    s.handle(saga, voided(), T0, FRAUD)
    s.handle(saga, released(), T0, FRAUD)
    assert saga.status == Status.CANCELLED and saga.reason == "fraud_rejected"
    assert saga.payment_voided


def test_reject_of_an_order_held_before_authorisation_cancels_when_it_answers():
    saga = held_at(Status.AUTHORIZING_PAYMENT, reason="customer_request")
    decision = s.reject_held(saga, "oncall", None, T0, POLICY)
    assert (
        decision.messages == [] and saga.cancel_requested == "rejected on review: customer_request"
    )
    answer = s.handle(saga, authorized(), T0, POLICY)
    assert saga.status == Status.CANCELLING and VoidPayment in kinds(answer)


def test_marketplace_paid_orders_are_not_scored():
    saga = scored(total="2000.00", paid_externally=True, payment_token=None)
    decision = s.handle(saga, reserved(), T0, FRAUD)
    assert saga.status == Status.CONFIRMED and kinds(decision)[0] is CreateFulfilment
    assert saga.risk is None


def test_without_a_rule_set_nothing_is_scored():
    saga = new_saga(total=Decimal("2000.00"))
    s.start(saga, T0, POLICY)
    decision = s.handle(saga, reserved(), T0, POLICY)
    assert kinds(decision) == [AuthorizePayment] and saga.risk is None


def test_the_providers_risk_verdict_holds_or_rejects_what_was_authorised():
    elevated = scored()
    s.handle(elevated, reserved(), T0, FRAUD)
    event = authorized().model_copy(update={"risk": PaymentRisk(level="elevated", score=70)})
    s.handle(elevated, event, T0, FRAUD)
    assert elevated.status == Status.ON_HOLD and elevated.hold is not None
    assert elevated.hold.reason == "fraud_review"

    highest = scored()
    s.handle(highest, reserved(), T0, FRAUD)
    event = authorized().model_copy(update={"risk": PaymentRisk(level="highest")})
    decision = s.handle(highest, event, T0, FRAUD)
    assert highest.status == Status.CANCELLING and highest.reason == "fraud_rejected"
    assert sorted(k.__name__ for k in kinds(decision)) == ["ReleaseStock", "VoidPayment"]

    normal = scored()
    s.handle(normal, reserved(), T0, FRAUD)
    event = authorized().model_copy(update={"risk": PaymentRisk(level="normal")})
    s.handle(normal, event, T0, FRAUD)
    assert normal.status == Status.CONFIRMED


def test_an_operator_hold_before_scoring_is_the_one_the_review_happens_on():
    saga = scored(velocity=4)
    s.place_hold(saga, "address_check", None, "oncall", T0, FRAUD)
    s.handle(saga, reserved(), T0, FRAUD)
    s.handle(saga, authorized(), T0, FRAUD)
    assert saga.status == Status.ON_HOLD
    assert saga.hold is not None and saga.hold.reason == "address_check"
