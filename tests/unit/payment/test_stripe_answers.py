"""How Stripe's answers become ours: decline codes, PaymentIntent statuses, webhook events."""

from __future__ import annotations

from typing import Any

import pytest

from services.payment.gateways.stripe_gateway import _authorization_result, decline_for
from services.payment.webhooks import (
    CustomerActionCompleted,
    CustomerActionFailed,
    DisputeOpened,
    RefundReported,
    stripe_actions,
)


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


# --- 3-D Secure ------------------------------------------------------------------------------


def test_requires_action_with_a_client_secret_waits_for_the_customer() -> None:
    result = _authorization_result(
        {
            "id": "pi_3ds",
            "status": "requires_action",
            "client_secret": "pi_3ds_secret_abc",
            "next_action": {"type": "use_stripe_sdk", "use_stripe_sdk": {}},
        }
    )
    assert not result.approved and result.decline_code is None
    assert result.reference == "pi_3ds"
    assert result.customer_action is not None
    assert result.customer_action.client_secret == "pi_3ds_secret_abc"
    assert result.customer_action.next_action == "use_stripe_sdk"


def test_a_redirect_action_names_its_type() -> None:
    result = _authorization_result(
        {
            "id": "pi_3ds",
            "status": "requires_action",
            "client_secret": "pi_3ds_secret_abc",
            "next_action": {"type": "redirect_to_url", "redirect_to_url": {"url": "https://x"}},
        }
    )
    assert result.customer_action is not None
    assert result.customer_action.next_action == "redirect_to_url"


def _intent_event(kind: str, intent: dict[str, Any]) -> dict[str, Any]:
    return {"id": "evt_1", "type": kind, "data": {"object": intent}}


def test_amount_capturable_updated_completes_the_customer_action() -> None:
    intent = {"id": "pi_3ds", "object": "payment_intent", "status": "requires_capture"}
    actions = stripe_actions(_intent_event("payment_intent.amount_capturable_updated", intent))
    assert actions == [CustomerActionCompleted("pi_3ds")]
    # Not (yet) capturable: nothing to do.
    waiting = {**intent, "status": "requires_action"}
    assert stripe_actions(_intent_event("payment_intent.amount_capturable_updated", waiting)) == []


def test_payment_failed_declines_with_our_code_from_last_payment_error() -> None:
    intent = {
        "id": "pi_3ds",
        "status": "requires_payment_method",
        "last_payment_error": {
            "code": "payment_intent_authentication_failure",
            "decline_code": None,
        },
    }
    [failed] = stripe_actions(_intent_event("payment_intent.payment_failed", intent))
    assert isinstance(failed, CustomerActionFailed)
    assert failed.authorization_reference == "pi_3ds"
    assert failed.decline_code == "payment_intent_authentication_failure"
    insufficient = {
        **intent,
        "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"},
    }
    [failed] = stripe_actions(_intent_event("payment_intent.payment_failed", insufficient))
    assert isinstance(failed, CustomerActionFailed)
    assert failed.decline_code == "insufficient_funds"


def test_a_cancelled_payment_intent_is_a_decline() -> None:
    intent = {"id": "pi_3ds", "status": "canceled", "cancellation_reason": "abandoned"}
    [failed] = stripe_actions(_intent_event("payment_intent.canceled", intent))
    assert isinstance(failed, CustomerActionFailed)
    assert failed.decline_code == "payment_intent_canceled"
    assert "abandoned" in failed.reason


def test_other_payment_intent_events_are_ignored() -> None:
    intent = {"id": "pi_3ds", "status": "succeeded"}
    assert stripe_actions(_intent_event("payment_intent.succeeded", intent)) == []


def test_radar_verdict_on_the_charge_comes_with_the_authorisation() -> None:
    from services.payment.gateways.base import GatewayRisk

    intent = {
        "id": "pi_1",
        "status": "requires_capture",
        "latest_charge": {"id": "ch_1", "outcome": {"risk_level": "elevated", "risk_score": 67}},
    }
    assert _authorization_result(intent).risk == GatewayRisk("elevated", 67)
    not_assessed = {**intent, "latest_charge": {"outcome": {"risk_level": "not_assessed"}}}
    assert _authorization_result(not_assessed).risk is None
    unexpanded = {**intent, "latest_charge": "ch_1"}
    assert _authorization_result(unexpanded).risk is None
