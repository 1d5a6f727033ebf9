"""3-D Secure across the services, as real processes on real Kafka and Postgres: a web order
routed to Stripe (a double of Stripe's documented `requires_action` answer: stripe-mock approves
everything) waits in AWAITING_CUSTOMER_ACTION with the client secret on the order view, and a
signed `payment_intent.amount_capturable_updated` webhook, delivered twice, sends it on to
fulfilment with one authorisation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.support.env import Infra
from tests.support.stripe_double import (
    StripeDouble,
    requires_action,
    signed_event,
    stripe_double,
)
from tests.support.system import System, order_body, start_system

pytestmark = pytest.mark.integration

WEBHOOK_SECRET = "whsec_oms_3ds"


@pytest.fixture(scope="module")
def stripe() -> Iterator[StripeDouble]:
    with stripe_double() as double:
        double.answer = requires_action()
        yield double


@pytest.fixture(scope="module")
async def system(infra: Infra, stripe: StripeDouble) -> AsyncIterator[System]:
    payment = {
        "OMS_PAYMENT_GATEWAYS": json.dumps({"default": "test", "by_channel": {"web": "stripe"}}),
        "OMS_STRIPE_API_KEY": "sk_test_oms",
        "OMS_STRIPE_API_BASE": stripe.base_url,
        "OMS_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    started = await start_system(
        infra, {"order_intake": {"OMS_DEADLINE_POLL_INTERVAL_S": "0.2"}, "payment": payment}
    )
    yield started
    await started.close()


async def test_a_web_order_waits_for_3ds_and_goes_on_when_stripe_reports_it_done(
    system: System, stripe: StripeDouble
):
    await system.stock_up("SCA-1", ("berlin", 5))
    order_id = await system.place(order_body([("SCA-1", 1, "50.00")]))
    waiting = await system.wait_status(order_id, "AWAITING_CUSTOMER_ACTION")
    assert waiting["payment"]["status"] == "requires_action"
    assert waiting["payment"]["next_action"]["type"] == "use_stripe_sdk"
    assert waiting["payment"]["next_action"]["client_secret"] == "pi_3ds_secret_x"
    [payment] = await system.payments(order_id)
    assert (payment["status"], payment["gateway_reference"]) == ("requires_action", "pi_3ds")

    intent = {
        "id": "pi_3ds",
        "object": "payment_intent",
        "status": "requires_capture",
        "amount": 5000,
        "amount_capturable": 5000,
        "currency": "eur",
        "capture_method": "manual",
    }
    body, signature = signed_event(
        "evt_3ds_done", "payment_intent.amount_capturable_updated", intent, WEBHOOK_SECRET
    )
    async with httpx.AsyncClient(timeout=15) as stripe_side:
        for _ in range(2):  # Stripe delivers it again: nothing changes the second time
            answer = await stripe_side.post(
                f"{system.url('payment')}/v1/payments/webhooks/stripe",
                content=body,
                headers={"Content-Type": "application/json", "Stripe-Signature": signature},
            )
            assert answer.status_code == 200, answer.text

    done = await system.wait_status(order_id, "FULFILLING")
    assert done["payment"]["status"] == "authorized" and done["payment"]["next_action"] is None
    events = [e["event"] for e in done["timeline"]]
    assert events.count("payment_requires_action") == 1
    assert events.count("payment_authorized") == 1
    [payment] = await system.payments(order_id)
    assert payment["status"] == "authorized"
    assert [path for _, path, _ in stripe.requests] == ["/v1/payment_intents"], "asked once"
