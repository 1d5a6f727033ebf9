"""How Stripe's answers become ours: decline codes, PaymentIntent statuses, webhook events."""

from __future__ import annotations

from typing import Any

import pytest

from services.payment.gateways.stripe_gateway import _authorization_result, decline_for
from services.payment.webhooks import DisputeOpened, RefundReported, stripe_actions


@pytest.mark.parametrize(
    ("code", "decline_code", "ours"),
    [
        ("card_declined", "generic_decline", "card_declined"),
        ("card_declined", "insufficient_funds", "insufficient_funds"),
        ("expired_card", None, "expired_card"),
        ("incorrect_cvc", None, "incorrect_cvc"),
        ("incorrect_number", None, "invalid_card"),
        ("processing_error", None, "processing_error"),
        ("card_declined", "authentication_required", "authentication_required"),
        # Lost, stolen and fraud: told as a plain decline, never why.
        ("card_declined", "stolen_card", "card_declined"),
        ("card_declined", "fraudulent", "card_declined"),
        # An issuer code we do not know: the general code; no code we know: Stripe's, kept.
        ("card_declined", "new_issuer_code", "card_declined"),
        ("new_stripe_code", None, "new_stripe_code"),
    ],
)
def test_decline_codes_map_to_ours(code: str, decline_code: str | None, ours: str) -> None:
    result = decline_for(code, decline_code)
    assert not result.approved
    assert result.decline_code == ours
    assert result.reason
    assert "stolen" not in result.reason and "fraud" not in result.reason


@pytest.mark.parametrize(
    ("status", "error", "approved", "code"),
    [
        ("requires_capture", None, True, None),
        ("requires_action", None, False, "authentication_required"),
        (
            "requires_payment_method",
            {"code": "card_declined", "decline_code": "insufficient_funds"},
            False,
            "insufficient_funds",
        ),
        ("processing", None, False, "payment_intent_processing"),
    ],
)
def test_a_confirmed_payment_intent_status_is_an_answer(
    status: str, error: dict[str, str] | None, approved: bool, code: str | None
) -> None:
    result = _authorization_result({"id": "pi_1", "status": status, "last_payment_error": error})
    assert (result.approved, result.decline_code) == (approved, code)
    if approved:
        assert result.reference == "pi_1"


def _event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": "evt_1", "type": kind, "data": {"object": obj}}


def test_webhook_events_become_actions() -> None:
    refund = {
        "id": "re_1",
        "object": "refund",
        "amount": 1500,
        "currency": "jpy",
        "payment_intent": "pi_1",
        "status": "succeeded",
    }
    assert stripe_actions(_event("refund.updated", refund)) == [
        RefundReported("re_1", "pi_1", 1500, "JPY")
    ]
    assert stripe_actions(_event("refund.created", {**refund, "status": "pending"})) == []
    charge = {
        "id": "ch_1",
        "payment_intent": "pi_1",
        "refunds": {"data": [refund, {**refund, "id": "re_2", "status": "failed"}]},
    }
    assert stripe_actions(_event("charge.refunded", charge)) == [
        RefundReported("re_1", "pi_1", 1500, "JPY")
    ]
    dispute = {
        "id": "dp_1",
        "amount": 2000,
        "currency": "usd",
        "payment_intent": "pi_1",
        "reason": "fraudulent",
        "status": "needs_response",
    }
    assert stripe_actions(_event("charge.dispute.created", dispute)) == [
        DisputeOpened("dp_1", "pi_1", 2000, "USD", "fraudulent", "needs_response")
    ]
    assert stripe_actions(_event("customer.created", {"id": "cus_1"})) == []
