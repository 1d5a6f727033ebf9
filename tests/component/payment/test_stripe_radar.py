"""Stripe Radar's verdict on an authorisation (the charge's outcome, from a double of Stripe's
documented answer) travels with PaymentAuthorized for order-intake's fraud rule, and is kept on
the payment so an authorisation re-sent later is answered with it too."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.payment.app import build
from shared.contracts.order_intake import AuthorizePayment
from shared.contracts.payment import PaymentRisk
from tests.component.payment.test_stripe import D, _authorize, _settings
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra
from tests.support.stripe_double import StripeDouble, stripe_double

pytestmark = pytest.mark.component


@pytest.fixture
async def radar(infra: Infra) -> AsyncIterator[tuple[ComponentHarness, StripeDouble]]:
    with stripe_double() as double:
        double.answer = (
            200,
            {
                "id": "pi_radar",
                "object": "payment_intent",
                "amount": 10000,
                "currency": "usd",
                "capture_method": "manual",
                "status": "requires_capture",
                "latest_charge": {
                    "id": "ch_radar",
                    "object": "charge",
                    "outcome": {"risk_level": "elevated", "risk_score": 72, "type": "authorized"},
                },
            },
        )
        spec = build(_settings(double.base_url, default="stripe"))
        async for harness in start_harness(infra, spec):
            yield harness, double


async def test_radar_verdict_comes_with_the_authorisation_and_its_repeats(
    radar: tuple[ComponentHarness, StripeDouble],
):
    harness, double = radar
    await _authorize(harness, "o-radar", "web")
    [first] = await harness.emitted_contracts("PaymentAuthorized")
    assert first.risk == PaymentRisk(level="elevated", score=72)
    [row] = await harness.fetch("SELECT risk_level, risk_score FROM payments")
    assert (row["risk_level"], row["risk_score"]) == ("elevated", 72)

    await harness.deliver(  # re-sent under a new key: answered from the payment held
        AuthorizePayment(
            order_id="o-radar",
            amount=D("100.00"),
            currency="USD",
            method="card",
            token="pm_card_visa",
            idempotency_key="o-radar:authorize:again",
        ),
        correlation_id="o-radar",
    )
    _, second = await harness.emitted_contracts("PaymentAuthorized")
    assert second.risk == first.risk
    posted = [path for method, path, _ in double.requests if method == "POST"]
    assert posted == ["/v1/payment_intents"], "Stripe asked once"
