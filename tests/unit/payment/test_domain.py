"""Payment rules: capture limits, void rules, refund limits, statuses, idempotency keys."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.payment import domain
from services.payment.domain import (
    Allowed,
    AnsweredOperation,
    OperationKind,
    Payment,
    PaymentRuleViolated,
    PaymentStatus,
    Reason,
    Refused,
    authorized,
    check_authorization,
    check_capture,
    check_refund,
    check_void,
    declined,
    is_same_request,
    status_for,
    with_capture,
    with_refund,
    with_void,
)

D = Decimal


def held(amount: str = "100.00", currency: str = "EUR") -> Payment:
    return authorized("p-1", "o-1", D(amount), currency, "tg_auth_1")


def refused(decision: Allowed | Refused | None) -> Reason | None:
    return decision.reason if isinstance(decision, Refused) else None


# --- authorise ------------------------------------------------------------------------------


def test_authorized_payment_holds_the_full_amount_and_nothing_captured():
    payment = held()
    assert payment.status is PaymentStatus.AUTHORIZED
    assert payment.holds_authorization
    assert payment.capturable == D("100.00")
    assert payment.refundable == D(0)


def test_currency_is_normalised_to_upper_case():
    assert authorized("p", "o", D(1), "eur", "r").currency == "EUR"


def test_declined_payment_holds_nothing():
    payment = declined("p-2", "o-1", D("10"), "EUR", "card_declined", "no")
    assert payment.status is PaymentStatus.DECLINED
    assert not payment.holds_authorization
    assert payment.capturable == D(0)


@pytest.mark.parametrize(
    ("amount", "currency", "reason"),
    [
        ("0", "EUR", Reason.INVALID_AMOUNT),
        ("-1", "EUR", Reason.INVALID_AMOUNT),
        ("NaN", "EUR", Reason.INVALID_AMOUNT),
        ("10", "EURO", Reason.INVALID_CURRENCY),
        ("10", "", Reason.INVALID_CURRENCY),
        ("10", "eur", None),
        ("0.01", "JPY", None),
    ],
)
def test_authorization_refuses_what_no_gateway_should_see(amount, currency, reason):
    assert refused(check_authorization(D(amount), currency)) is reason


# --- capture --------------------------------------------------------------------------------


def test_capture_partial_then_the_rest():
    payment = with_capture(held(), D("30.00"))
    assert payment.status is PaymentStatus.PARTIALLY_CAPTURED
    assert payment.captured_total == D("30.00")
    assert payment.capturable == D("70.00")
    payment = with_capture(payment, D("70.00"))
    assert payment.status is PaymentStatus.CAPTURED
    assert payment.captured_total == D("100.00")
    assert payment.capturable == D(0)


def test_capture_is_allowed_against_the_authorisation_reference():
    decision = check_capture(held(), D("10"), "EUR")
    assert isinstance(decision, Allowed)
    assert decision.gateway_reference == "tg_auth_1"


def test_capture_beyond_what_remains_is_refused():
    payment = with_capture(held(), D("60"))
    assert refused(check_capture(payment, D("40.01"), "EUR")) is Reason.EXCEEDS_AUTHORIZED
    assert refused(check_capture(payment, D("40"), "EUR")) is None


def test_over_capture_applied_anyway_is_a_rule_violation():
    with pytest.raises(PaymentRuleViolated) as raised:
        with_capture(held(), D("100.01"))
    assert raised.value.reason is Reason.EXCEEDS_AUTHORIZED


@pytest.mark.parametrize(
    ("payment", "amount", "currency", "reason"),
    [
        (None, "1", "EUR", Reason.NO_AUTHORIZATION),
        (
            declined("p", "o", D(5), "EUR", "card_declined", "no"),
            "1",
            "EUR",
            Reason.PAYMENT_DECLINED,
        ),
        (with_void(held()), "1", "EUR", Reason.AUTHORIZATION_VOIDED),
        (held(), "1", "USD", Reason.CURRENCY_MISMATCH),
        (held(), "0", "EUR", Reason.INVALID_AMOUNT),
        (held(), "-5", "EUR", Reason.INVALID_AMOUNT),
        (held(), "1", "eur", None),
    ],
)
def test_capture_refusals(payment, amount, currency, reason):
    assert refused(check_capture(payment, D(amount), currency)) is reason


def test_capture_after_a_refund_of_a_partial_capture_may_take_the_rest():
    payment = with_refund(with_capture(held(), D("40")), D("40"))
    assert payment.status is PaymentStatus.REFUNDED
    payment = with_capture(payment, D("60"))
    assert payment.captured_total == D("100")
    assert payment.status is PaymentStatus.PARTIALLY_REFUNDED


# --- void -----------------------------------------------------------------------------------


def test_void_an_untouched_authorisation():
    assert isinstance(check_void(held()), Allowed)
    payment = with_void(held())
    assert payment.status is PaymentStatus.VOIDED
    assert payment.capturable == D(0)


@pytest.mark.parametrize(
    ("payment", "reason"),
    [
        (None, Reason.NO_AUTHORIZATION),
        (declined("p", "o", D(5), "EUR", "card_declined", "no"), Reason.PAYMENT_DECLINED),
        (with_void(held()), Reason.ALREADY_VOIDED),
        (with_capture(held(), D("1")), Reason.ALREADY_CAPTURED),
        (with_refund(with_capture(held(), D("5")), D("5")), Reason.ALREADY_CAPTURED),
    ],
)
def test_nothing_to_void(payment, reason):
    assert refused(check_void(payment)) is reason


def test_voiding_a_captured_payment_is_a_rule_violation():
    with pytest.raises(PaymentRuleViolated):
        with_void(with_capture(held(), D("1")))


# --- refund ---------------------------------------------------------------------------------


def test_refund_within_what_was_captured():
    payment = with_capture(held(), D("80"))
    payment = with_refund(payment, D("30"))
    assert payment.status is PaymentStatus.PARTIALLY_REFUNDED
    assert payment.refunded_total == D("30")
    assert payment.refundable == D("50")
    payment = with_refund(payment, D("50"))
    assert payment.status is PaymentStatus.REFUNDED
    assert payment.refundable == D(0)


def test_refund_beyond_captured_minus_refunded_is_refused():
    payment = with_refund(with_capture(held(), D("80")), D("30"))
    assert refused(check_refund(payment, D("50.01"), "EUR")) is Reason.EXCEEDS_REFUNDABLE
    assert refused(check_refund(payment, D("50"), "EUR")) is None


def test_refund_cannot_reach_authorised_but_uncaptured_money():
    payment = with_capture(held(), D("10"))
    assert refused(check_refund(payment, D("10.01"), "EUR")) is Reason.EXCEEDS_REFUNDABLE


@pytest.mark.parametrize(
    ("payment", "amount", "currency", "reason"),
    [
        (None, "1", "EUR", Reason.NO_AUTHORIZATION),
        (
            declined("p", "o", D(5), "EUR", "card_declined", "no"),
            "1",
            "EUR",
            Reason.PAYMENT_DECLINED,
        ),
        (held(), "1", "EUR", Reason.NOTHING_CAPTURED),
        (with_void(held()), "1", "EUR", Reason.NOTHING_CAPTURED),
        (with_capture(held(), D(5)), "1", "GBP", Reason.CURRENCY_MISMATCH),
        (with_capture(held(), D(5)), "0", "EUR", Reason.INVALID_AMOUNT),
    ],
)
def test_refund_refusals(payment, amount, currency, reason):
    assert refused(check_refund(payment, D(amount), currency)) is reason


def test_over_refund_applied_anyway_is_a_rule_violation():
    with pytest.raises(PaymentRuleViolated) as raised:
        with_refund(with_capture(held(), D("10")), D("11"))
    assert raised.value.reason is Reason.EXCEEDS_REFUNDABLE


# --- statuses and invariants ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("captured", "refunded", "status"),
    [
        ("0", "0", PaymentStatus.AUTHORIZED),
        ("10", "0", PaymentStatus.PARTIALLY_CAPTURED),
        ("100", "0", PaymentStatus.CAPTURED),
        ("100", "10", PaymentStatus.PARTIALLY_REFUNDED),
        ("100", "100", PaymentStatus.REFUNDED),
        ("40", "40", PaymentStatus.REFUNDED),
    ],
)
def test_status_follows_the_totals(captured, refunded, status):
    assert status_for(D("100"), D(captured), D(refunded)) is status


def test_any_sequence_of_allowed_operations_keeps_the_invariants():
    payment = held("50")
    steps = [("capture", "20"), ("refund", "5"), ("capture", "30"), ("refund", "45")]
    for kind, amount in steps:
        if kind == "capture":
            payment = with_capture(payment, D(amount))
        else:
            payment = with_refund(payment, D(amount))
        assert D(0) <= payment.refunded_total <= payment.captured_total <= payment.amount
    assert payment.status is PaymentStatus.REFUNDED
    assert refused(check_capture(payment, D("0.01"), "EUR")) is Reason.EXCEEDS_AUTHORIZED
    assert refused(check_refund(payment, D("0.01"), "EUR")) is Reason.EXCEEDS_REFUNDABLE


# --- idempotency keys -----------------------------------------------------------------------


def test_a_key_re_sent_for_the_same_request_is_the_same_request():
    answered = AnsweredOperation(OperationKind.CAPTURE, "o-1", D("10.00"))
    assert is_same_request(answered, OperationKind.CAPTURE, "o-1", D("10.0"))
    assert is_same_request(answered, OperationKind.CAPTURE, "o-1", None)


@pytest.mark.parametrize(
    ("kind", "order_id", "amount"),
    [
        (OperationKind.REFUND, "o-1", D("10")),
        (OperationKind.CAPTURE, "o-2", D("10")),
        (OperationKind.CAPTURE, "o-1", D("11")),
    ],
)
def test_a_key_reused_for_another_request_is_a_conflict(kind, order_id, amount):
    answered = AnsweredOperation(OperationKind.CAPTURE, "o-1", D("10.00"))
    assert not is_same_request(answered, kind, order_id, amount)


# --- 3-D Secure: waiting for the customer ---------------------------------------------------


def waiting() -> Payment:
    return domain.requiring_action("p-1", "o-1", D("100.00"), "eur", "pi_3ds")


def test_a_payment_waiting_for_the_customer_holds_its_reference_but_no_money():
    payment = waiting()
    assert payment.status is PaymentStatus.REQUIRES_ACTION and payment.awaits_customer
    assert payment.gateway_reference == "pi_3ds" and payment.currency == "EUR"
    assert payment.capturable == D(0)
    assert refused(check_capture(payment, D("10.00"), "EUR")) is Reason.NO_AUTHORIZATION
    assert refused(check_refund(payment, D("10.00"), "EUR")) is Reason.NO_AUTHORIZATION


def test_a_waiting_payment_may_be_voided():
    decision = check_void(waiting())
    assert isinstance(decision, Allowed) and decision.gateway_reference == "pi_3ds"
    assert with_void(waiting()).status is PaymentStatus.VOIDED


def test_the_customer_completing_authorises_it_once():
    completed = domain.customer_completed(waiting())
    assert completed is not None and completed.status is PaymentStatus.AUTHORIZED
    assert completed.capturable == D("100.00")
    assert domain.customer_completed(completed) is None  # not waiting any more
    assert domain.customer_failed(completed, "card_declined", "x") is None


def test_the_customer_failing_declines_it_unless_it_no_longer_waits():
    failed = domain.customer_failed(waiting(), "payment_intent_authentication_failure", "3DS")
    assert failed is not None and failed.status is PaymentStatus.DECLINED
    assert failed.decline_code == "payment_intent_authentication_failure"
    assert not failed.holds_authorization
    assert domain.customer_completed(with_void(waiting())) is None
