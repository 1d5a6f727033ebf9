"""The Stripe gateway: against stripe-mock (Stripe's own mock: every request validated against
Stripe's OpenAPI spec, answered with fixed objects, nothing remembered), against a double of
Stripe's documented error answers (stripe-mock never declines), and Stripe's webhooks signed as
Stripe signs them.

What stripe-mock shows: every call the gateway makes (create+confirm with manual capture and
multicapture requested, retrieve with the charge expanded, capture with `amount_to_capture` and
`final_capture=false`, cancel, refund on the PaymentIntent) is a request Stripe's API accepts,
with the idempotency key on each. What it cannot show: amounts it would refuse, a second
capture after a final one, or declines (its fixtures always succeed)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from services.payment.app import build
from services.payment.gateways.base import GatewayTimeout
from services.payment.gateways.stripe_gateway import StripeGateway
from services.payment.settings import GatewayRoutes, PaymentSettings
from shared.contracts.order_intake import AuthorizePayment, CapturePayment, RefundPayment
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra
from tests.support.stripe_double import (
    card_error,
    requires_action,
    server_error,
    stripe_double,
)

pytestmark = [pytest.mark.component, pytest.mark.timeout(240)]

D = Decimal
API_KEY = "sk_test_oms"
WEBHOOK_SECRET = "whsec_oms_test"


# --- the gateway on its own, against stripe-mock ---------------------------------------------


async def test_authorise_capture_twice_refund_and_void_against_stripe_mock(stripe_mock_url: str):
    gateway = StripeGateway(API_KEY, api_base=stripe_mock_url)
    try:
        authorised = await gateway.authorize("o-1:authorize", D("100.00"), "USD", "pm_card_visa")
        assert authorised.approved, authorised
        assert authorised.reference and authorised.reference.startswith("pi_")
        # Yen have no minor unit: sent as 1234 (stripe-mock echoes the amount it was sent).
        assert (await gateway.authorize("o-2:authorize", D("1234"), "JPY", "pm_card_visa")).approved

        first = await gateway.capture("o-1:capture:s-1", authorised.reference, D("40.00"))
        second = await gateway.capture("o-1:capture:s-2", authorised.reference, D("60.00"))
        assert first.approved and second.approved
        assert first.reference and first.reference.startswith("ch_")

        refunded = await gateway.refund("o-1:refund:r-1", authorised.reference, D("10.00"))
        assert refunded.approved
        assert refunded.reference and refunded.reference.startswith("re_")

        voided = await gateway.void("o-3:void", authorised.reference)
        assert voided.approved
    finally:
        await gateway.aclose()


# --- declines and outages, against a double of Stripe's documented answers -------------------


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (
            card_error("card_declined", "insufficient_funds", "Insufficient funds."),
            "insufficient_funds",
        ),
        (card_error("expired_card", None, "Your card has expired."), "expired_card"),
        (card_error("card_declined", "generic_decline", "Declined."), "card_declined"),
    ],
)
async def test_declines_map_to_our_codes(answer: tuple[int, dict[str, Any]], code: str):
    with stripe_double() as double:
        double.answer = answer
        gateway = StripeGateway(API_KEY, api_base=double.base_url)
        try:
            result = await gateway.authorize("o-9:authorize", D("50.00"), "EUR", "pm_card_x")
        finally:
            await gateway.aclose()
    assert (result.approved, result.decline_code) == (False, code)
    assert double.requests == [("POST", "/v1/payment_intents", "o-9:authorize")]


async def test_requires_action_waits_for_the_customer_with_the_client_secret():
    with stripe_double() as double:
        double.answer = requires_action()
        gateway = StripeGateway(API_KEY, api_base=double.base_url)
        try:
            result = await gateway.authorize("o-9:authorize", D("50.00"), "EUR", "pm_card_x")
        finally:
            await gateway.aclose()
    assert (result.approved, result.decline_code, result.reference) == (False, None, "pi_3ds")
    assert result.customer_action is not None
    assert result.customer_action.client_secret == "pi_3ds_secret_x"
    assert result.customer_action.next_action == "use_stripe_sdk"


async def test_a_server_error_or_no_answer_is_an_ambiguous_timeout():
    with stripe_double() as double:
        double.answer = server_error()
        gateway = StripeGateway(API_KEY, api_base=double.base_url)
        try:
            with pytest.raises(GatewayTimeout):
                await gateway.authorize("o-9:authorize", D("50.00"), "EUR", "pm_card_x")
        finally:
            await gateway.aclose()
        port = double.port
    # Nobody listens there any more: a connection error.
    gateway = StripeGateway(API_KEY, api_base=f"http://127.0.0.1:{port}", timeout_s=2)
    try:
        with pytest.raises(GatewayTimeout):
            await gateway.authorize("o-9:authorize", D("50.00"), "EUR", "pm_card_x")
    finally:
        await gateway.aclose()


# --- the payment service routed to Stripe ---------------------------------------------------


def _settings(api_base: str, **routes: Any) -> PaymentSettings:
    return PaymentSettings(
        payment_gateways=GatewayRoutes(**routes),
        stripe_api_key=SecretStr(API_KEY),
        stripe_api_base=api_base,
        stripe_webhook_secret=SecretStr(WEBHOOK_SECRET),
        gateway_retry_attempts=2,
        gateway_retry_initial_s=0.001,
        gateway_retry_max_s=0.005,
    )


@pytest.fixture
async def stripe_payments(infra: Infra, stripe_mock_url: str) -> AsyncIterator[ComponentHarness]:
    spec = build(_settings(stripe_mock_url, default="test", by_channel={"web": "stripe"}))
    async for harness in start_harness(infra, spec):
        yield harness


async def _authorize(harness: ComponentHarness, order_id: str, channel: str | None) -> None:
    await harness.deliver(
        AuthorizePayment(
            order_id=order_id,
            amount=D("100.00"),
            currency="USD",
            method="card",
            token="pm_card_visa",
            idempotency_key=f"{order_id}:authorize",
            channel=channel,
        ),
        correlation_id=order_id,
    )


async def _capture(harness: ComponentHarness, order_id: str, shipment: str, amount: str) -> None:
    await harness.deliver(
        CapturePayment(
            order_id=order_id,
            amount=D(amount),
            currency="USD",
            fulfilment_id="f-1",
            shipment_id=shipment,
            idempotency_key=f"{order_id}:capture:{shipment}",
        ),
        correlation_id=order_id,
    )


async def _refund(harness: ComponentHarness, order_id: str, amount: str) -> None:
    await harness.deliver(
        RefundPayment(
            order_id=order_id,
            amount=D(amount),
            currency="USD",
            reason="returned",
            idempotency_key=f"{order_id}:refund:r-1",
            return_id="r-1",
        ),
        correlation_id=order_id,
    )


async def test_a_web_order_is_authorised_captured_twice_and_refunded_on_stripe(
    stripe_payments: ComponentHarness,
):
    harness = stripe_payments
    await _authorize(harness, "o-web", "web")
    await _authorize(harness, "o-phone", "phone")
    rows = {
        r["order_id"]: r for r in await harness.fetch("SELECT * FROM payments ORDER BY order_id")
    }
    assert (rows["o-web"]["gateway"], rows["o-web"]["status"]) == ("stripe", "authorized")
    assert rows["o-web"]["gateway_reference"].startswith("pi_")
    assert rows["o-phone"]["gateway"] == "test"  # not routed: the default
    assert rows["o-phone"]["gateway_reference"].startswith("tg_auth_")

    await _capture(harness, "o-web", "s-1", "40.00")
    await _capture(harness, "o-web", "s-2", "60.00")
    await _refund(harness, "o-web", "15.00")

    captured = await harness.emitted_contracts("PaymentCaptured")
    assert [(c.shipment_id, c.amount, c.captured_total) for c in captured] == [
        ("s-1", D("40.00"), D("40.00")),
        ("s-2", D("60.00"), D("100.00")),
    ]
    [refunded] = await harness.emitted_contracts("PaymentRefunded")
    assert (refunded.amount, refunded.refunded_total) == (D("15.00"), D("15.00"))
    [row] = await harness.fetch("SELECT * FROM payments WHERE order_id = 'o-web'")
    assert (row["status"], row["captured_total"], row["refunded_total"]) == (
        "partially_refunded",
        D("100.00"),
        D("15.00"),
    )
    operations = await harness.fetch(
        "SELECT kind, outcome, gateway_reference FROM payment_operations"
        " WHERE order_id = 'o-web' ORDER BY operation_id"
    )
    assert [(o["kind"], o["outcome"]) for o in operations] == [
        ("authorize", "succeeded"),
        ("capture", "succeeded"),
        ("capture", "succeeded"),
        ("refund", "succeeded"),
    ]
    # The test gateway's ledger saw none of the Stripe payment's calls.
    ledger = await harness.fetch("SELECT idempotency_key FROM test_gateway_ledger")
    assert {r["idempotency_key"] for r in ledger} == {"o-phone:authorize"}


# --- webhooks -------------------------------------------------------------------------------


def signed(
    payload: dict[str, Any], secret: str = WEBHOOK_SECRET, *, age_s: int = 0
) -> tuple[bytes, str]:
    """The body and its Stripe-Signature header, as Stripe signs them: HMAC-SHA256 of
    `"{timestamp}.{body}"` with the endpoint's secret, sent as `t=...,v1=...`."""
    body = json.dumps(payload).encode()
    timestamp = int(time.time()) - age_s
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={timestamp},v1={digest}"


def _event(event_id: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "api_version": "2025-01-01",
        "created": int(time.time()),
        "data": {"object": obj},
    }


async def _post(harness: ComponentHarness, body: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    async with harness.anonymous() as client:
        return await client.post("/v1/payments/webhooks/stripe", content=body, headers=headers)


async def _stripe_payment(harness: ComponentHarness) -> tuple[str, Any]:
    await _authorize(harness, "o-web", "web")
    await _capture(harness, "o-web", "s-1", "100.00")
    [row] = await harness.fetch("SELECT * FROM payments WHERE order_id = 'o-web'")
    return row["gateway_reference"], row


async def test_a_dispute_is_recorded_once_and_announced(stripe_payments: ComponentHarness):
    harness = stripe_payments
    reference, row = await _stripe_payment(harness)
    dispute = {
        "id": "dp_1",
        "object": "dispute",
        "amount": 10000,
        "currency": "usd",
        "payment_intent": reference,
        "charge": "ch_1",
        "reason": "fraudulent",
        "status": "needs_response",
    }
    body, signature = signed(_event("evt_dispute", "charge.dispute.created", dispute))
    first = await _post(harness, body, signature)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "event_id": "evt_dispute",
        "type": "charge.dispute.created",
        "duplicate": False,
        "applied": 1,
    }
    again = await _post(harness, body, signature)
    assert again.status_code == 200
    assert (again.json()["duplicate"], again.json()["applied"]) == (True, 0)

    [disputed] = await harness.emitted_contracts("PaymentDisputed")
    assert (disputed.order_id, disputed.payment_id, disputed.amount, disputed.reason) == (
        "o-web",
        str(row["payment_id"]),
        D("100.00"),
        "fraudulent",
    )
    [recorded] = await harness.fetch("SELECT * FROM payment_disputes")
    assert (recorded["dispute_id"], recorded["order_id"], recorded["amount"]) == (
        "dp_1",
        "o-web",
        D("100.00"),
    )


async def test_a_refund_made_in_the_dashboard_is_recorded_and_ours_is_not_counted_twice(
    stripe_payments: ComponentHarness,
):
    harness = stripe_payments
    reference, _ = await _stripe_payment(harness)

    def refund_event(event_id: str, refund_id: str, amount: int) -> dict[str, Any]:
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "currency": "usd",
            "payment_intent": reference,
            "status": "succeeded",
        }
        return _event(event_id, "refund.updated", refund)

    answer = await _post(harness, *signed(refund_event("evt_r1", "re_dashboard", 2500)))
    assert answer.status_code == 200 and answer.json()["applied"] == 1
    [external] = await harness.emitted_contracts("PaymentRefundedExternally")
    assert (external.amount, external.refunded_total, external.gateway_refund_id) == (
        D("25.00"),
        D("25.00"),
        "re_dashboard",
    )

    # A refund the OMS made itself (RefundPayment): Stripe reports it too, under its refund id.
    await _refund(harness, "o-web", "10.00")
    [ours] = await harness.fetch(
        "SELECT gateway_reference FROM payment_operations WHERE order_id = 'o-web'"
        " AND kind = 'refund' AND idempotency_key = 'o-web:refund:r-1'"
    )
    echo = refund_event("evt_r2", ours["gateway_reference"], 1000)
    answer = await _post(harness, *signed(echo))
    assert answer.status_code == 200 and answer.json()["applied"] == 0

    [row] = await harness.fetch("SELECT * FROM payments WHERE order_id = 'o-web'")
    assert (row["refunded_total"], row["status"]) == (D("35.00"), "partially_refunded")
    assert len(await harness.emitted_contracts("PaymentRefundedExternally")) == 1


async def test_a_wrong_or_missing_signature_is_400_and_changes_nothing(
    stripe_payments: ComponentHarness,
):
    harness = stripe_payments
    reference, _ = await _stripe_payment(harness)
    dispute = {
        "id": "dp_2",
        "amount": 10000,
        "currency": "usd",
        "payment_intent": reference,
        "reason": "fraudulent",
        "status": "needs_response",
    }
    body, _ = signed(_event("evt_forged", "charge.dispute.created", dispute))
    _, wrong = signed(_event("evt_forged", "charge.dispute.created", dispute), "whsec_other")
    # Signed with the right secret, but an hour ago (a replay): beyond the tolerance.
    stale_body, stale = signed(_event("evt_forged", "charge.dispute.created", dispute), age_s=3600)
    for attempt_body, signature in ((body, wrong), (body, None), (stale_body, stale)):
        answer = await _post(harness, attempt_body, signature)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "invalid_signature"
    assert await harness.fetch("SELECT * FROM gateway_webhook_events") == []
    assert await harness.fetch("SELECT * FROM payment_disputes") == []
    assert await harness.emitted_contracts("PaymentDisputed") == []


async def test_other_events_are_acknowledged_and_ignored(stripe_payments: ComponentHarness):
    harness = stripe_payments
    body, signature = signed(_event("evt_other", "customer.created", {"id": "cus_1"}))
    answer = await _post(harness, body, signature)
    assert answer.status_code == 200
    assert answer.json()["applied"] == 0
    assert len(await harness.fetch("SELECT * FROM gateway_webhook_events")) == 1
