"""PayPal's pure rules: money strings, error issues as decline codes, refunds over captures."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.payment.gateways.paypal_rules import (
    AmountNotRepresentable,
    CaptureBalance,
    PayPalError,
    RefundPiece,
    decline_code,
    decline_reason,
    format_money,
    is_ambiguous,
    money,
    plan_refund,
    refund_request_id,
    request_id,
)

D = Decimal


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (D("10"), "EUR", "10.00"),
        (D("10.5"), "usd", "10.50"),
        (D("0.01"), "GBP", "0.01"),
        (D("1000"), "JPY", "1000"),
        (D("1000.00"), "HUF", "1000"),
    ],
)
def test_money_is_written_with_the_currency_decimals(amount: Decimal, currency: str, text: str):
    assert format_money(amount, currency) == text


@pytest.mark.parametrize(
    ("amount", "currency"), [(D("10.005"), "EUR"), (D("10.5"), "JPY"), (D("0"), "EUR")]
)
def test_money_that_paypal_cannot_take_is_refused_not_rounded(amount: Decimal, currency: str):
    with pytest.raises(AmountNotRepresentable):
        format_money(amount, currency)


def test_money_object():
    assert money(D("12.3"), "eur") == {"currency_code": "EUR", "value": "12.30"}


def test_an_error_body_is_read_with_its_first_issue():
    body = {
        "name": "UNPROCESSABLE_ENTITY",
        "message": "The requested action could not be performed.",
        "debug_id": "90957fca61718",
        "details": [
            {"issue": "INSTRUMENT_DECLINED", "description": "The instrument was declined."}
        ],
    }
    error = PayPalError.from_body(422, body)
    assert (error.issue, error.description, error.debug_id) == (
        "INSTRUMENT_DECLINED",
        "The instrument was declined.",
        "90957fca61718",
    )
    assert decline_code(error) == "instrument_declined"
    assert decline_reason(error) == "The instrument was declined. (PayPal debug id 90957fca61718)"


@pytest.mark.parametrize(
    ("issue", "code"),
    [
        ("PAYER_ACTION_REQUIRED", "payer_action_required"),
        ("AUTHORIZATION_VOIDED", "authorization_voided"),
        ("PREVIOUSLY_VOIDED", "already_voided"),
        ("PREVIOUSLY_CAPTURED", "already_captured"),
        ("MAX_CAPTURE_AMOUNT_EXCEEDED", "amount_exceeds_authorization"),
        ("REFUND_AMOUNT_EXCEEDED", "amount_exceeds_captured"),
        ("CAPTURE_FULLY_REFUNDED", "amount_exceeds_captured"),
        ("SOMETHING_NEW", "something_new"),
    ],
)
def test_issues_become_decline_codes(issue: str, code: str):
    assert decline_code(PayPalError(422, "UNPROCESSABLE_ENTITY", issue, "x")) == code


def test_errors_without_an_issue_are_named_by_status_or_name():
    assert decline_code(PayPalError.from_body(404, {"name": "RESOURCE_NOT_FOUND"})) == (
        "unknown_reference"
    )
    oauth = PayPalError.from_body(401, {"error": "invalid_token", "error_description": "stale"})
    assert (oauth.name, oauth.description) == ("invalid_token", "stale")
    assert decline_code(PayPalError.from_body(418, "not json")) == "http_418"


@pytest.mark.parametrize(
    ("status", "ambiguous"),
    [(500, True), (503, True), (409, True), (408, True), (422, False), (404, False)],
)
def test_which_statuses_are_ambiguous(status: int, ambiguous: bool):
    assert is_ambiguous(status) is ambiguous


def _capture(cid: str, captured: str, refunded: str = "0", by_this: str = "0") -> CaptureBalance:
    return CaptureBalance(cid, D(captured), D(refunded), D(by_this))


def test_a_refund_fills_the_oldest_captures_first():
    plan = plan_refund(D("50"), [_capture("A", "30", refunded="10"), _capture("B", "70")])
    assert plan.pieces == (RefundPiece("A", D("20")), RefundPiece("B", D("30")))
    assert plan.refused is None


def test_a_refund_within_one_capture_is_one_piece():
    plan = plan_refund(D("5"), [_capture("A", "30"), _capture("B", "70")])
    assert plan.pieces == (RefundPiece("A", D("5")),)


def test_a_refund_beyond_what_is_left_is_refused_whole():
    plan = plan_refund(D("60.01"), [_capture("A", "30", refunded="10"), _capture("B", "40")])
    assert (plan.pieces, plan.refused) == ((), "amount_exceeds_captured")


def test_a_retried_refund_sends_only_what_its_key_has_not_refunded_yet():
    # The first attempt refunded 30 of A under this key, then lost B's piece.
    captures = [_capture("A", "30", refunded="30", by_this="30"), _capture("B", "70")]
    assert plan_refund(D("50"), captures).pieces == (RefundPiece("B", D("20")),)


def test_a_retried_refund_already_complete_sends_nothing():
    captures = [
        _capture("A", "30", refunded="30", by_this="30"),
        _capture("B", "70", refunded="20", by_this="20"),
    ]
    plan = plan_refund(D("50"), captures)
    assert (plan.pieces, plan.refused) == ((), None)


def test_request_ids_are_stable_and_fit_paypal():
    assert request_id("o-1:capture:p-1") == "o-1:capture:p-1"
    long_key = "k" * 200
    assert request_id(long_key) == request_id(long_key)
    assert len(request_id(long_key)) <= 108
    assert refund_request_id("o-1:refund:r-1", "7TK53561YB803214S") == (
        "o-1:refund:r-1:7TK53561YB803214S"
    )
