"""3-D Secure on Stripe: a PaymentIntent that `requires_action` (from a double of Stripe's
documented answer: stripe-mock approves everything) is recorded as waiting for the customer and
answered PaymentRequiresAction; Stripe's signed webhooks end it (authorised once, or declined);
redeliveries, re-sent commands, a void while waiting and crashes change nothing twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from services.payment import store
from services.payment.app import build
from shared.contracts.order_intake import AuthorizePayment, CapturePayment, VoidPayment
from shared.envelope import Envelope
from tests.component.payment.test_stripe import _authorize, _event, _post, _settings, signed
from tests.support.component import ComponentHarness, FakeRecord, start_harness
from tests.support.env import Infra
from tests.support.stripe_double import StripeDouble, requires_action, stripe_double

pytestmark = [pytest.mark.component, pytest.mark.timeout(240)]

D = Decimal
ORDER = "o-3ds"


class Waiting:
    def __init__(self, harness: ComponentHarness, double: StripeDouble) -> None:
        self.harness = harness
        self.double = double

    async def payment(self) -> Any:
        [row] = await self.harness.fetch("SELECT * FROM payments WHERE order_id = $1", ORDER)
        return row

    async def authorize_operations(self) -> list[Any]:
        return await self.harness.fetch(
            "SELECT outcome, answer_type, answer FROM payment_operations"
            " WHERE order_id = $1 AND kind = 'authorize' ORDER BY operation_id",
            ORDER,
        )

    def stripe_calls(self) -> list[tuple[str, str, str | None]]:
        return list(self.double.requests)


@pytest.fixture
async def waiting(infra: Infra) -> AsyncIterator[Waiting]:
    """The payment service (web orders routed to Stripe, here the double), and order o-3ds
    authorised into `requires_action`."""
    with stripe_double() as double:
        double.answer = requires_action()
        spec = build(_settings(double.base_url, default="test", by_channel={"web": "stripe"}))
        async for harness in start_harness(infra, spec):
            await _authorize(harness, ORDER, "web")
            yield Waiting(harness, double)


def _intent(status: str, **more: Any) -> dict[str, Any]:
    return {
        "id": "pi_3ds",
        "object": "payment_intent",
        "amount": 10000,
        "amount_capturable": 10000 if status == "requires_capture" else 0,
        "currency": "usd",
        "capture_method": "manual",
        "status": status,
        **more,
    }


def _capturable(event_id: str = "evt_capturable") -> tuple[bytes, str]:
    return signed(
        _event(event_id, "payment_intent.amount_capturable_updated", _intent("requires_capture"))
    )


def _failed(event_id: str = "evt_failed") -> tuple[bytes, str]:
    error = {
        "type": "card_error",
        "code": "payment_intent_authentication_failure",
        "message": "The provided PaymentMethod has failed authentication.",
    }
    intent = _intent("requires_payment_method", last_payment_error=error)
    return signed(_event(event_id, "payment_intent.payment_failed", intent))


async def test_requires_action_is_recorded_and_answered_with_the_client_secret(
    waiting: Waiting,
):
    [answer] = await waiting.harness.emitted_contracts("PaymentRequiresAction")
    row = await waiting.payment()
    assert (answer.order_id, answer.payment_id) == (ORDER, str(row["payment_id"]))
    assert (answer.client_secret, answer.next_action) == ("pi_3ds_secret_x", "use_stripe_sdk")
    assert answer.gateway_reference == "pi_3ds"
    assert (row["status"], row["gateway"], row["gateway_reference"]) == (
        "requires_action",
        "stripe",
        "pi_3ds",
    )
    [operation] = await waiting.authorize_operations()
    assert (operation["outcome"], operation["answer_type"]) == (
        "requires_action",
        "PaymentRequiresAction",
    )
    assert await waiting.harness.emitted_contracts("PaymentAuthorized") == []
    assert await waiting.harness.emitted_contracts("PaymentDeclined") == []


async def test_a_re_sent_authorisation_while_waiting_repeats_requires_action(waiting: Waiting):
    await _authorize(waiting.harness, ORDER, "web")  # the same key, redelivered
    await waiting.harness.deliver(  # a new key for the same order
        AuthorizePayment(
            order_id=ORDER,
            amount=D("100.00"),
            currency="USD",
            method="card",
            token="pm_card_visa",
            idempotency_key=f"{ORDER}:authorize:again",
            channel="web",
        ),
        correlation_id=ORDER,
    )
    answers = await waiting.harness.emitted_contracts("PaymentRequiresAction")
    assert [a.client_secret for a in answers] == ["pi_3ds_secret_x"] * 3
    assert len({a.payment_id for a in answers}) == 1
    assert len(waiting.stripe_calls()) == 1, "Stripe asked once"
    assert len(await waiting.harness.fetch("SELECT * FROM payments")) == 1


async def test_nothing_is_captured_while_waiting(waiting: Waiting):
    await waiting.harness.deliver(
        CapturePayment(
            order_id=ORDER,
            amount=D("10.00"),
            currency="USD",
            fulfilment_id="f-1",
            idempotency_key=f"{ORDER}:capture:f-1",
        ),
        correlation_id=ORDER,
    )
    [failed] = await waiting.harness.emitted_contracts("PaymentCaptureFailed")
    assert failed.reason == "no_authorization"
    assert len(waiting.stripe_calls()) == 1


async def test_the_capturable_webhook_authorises_once_even_delivered_twice(waiting: Waiting):
    body, signature = _capturable()
    first = await _post(waiting.harness, body, signature)
    assert first.status_code == 200, first.text
    assert (first.json()["duplicate"], first.json()["applied"]) == (False, 1)
    again = await _post(waiting.harness, body, signature)
    assert (again.json()["duplicate"], again.json()["applied"]) == (True, 0)
    # Stripe also sends other events for the same change: they find nothing waiting.
    other = await _post(waiting.harness, *_capturable("evt_capturable_2"))
    assert (other.json()["duplicate"], other.json()["applied"]) == (False, 0)

    [authorized] = await waiting.harness.emitted_contracts("PaymentAuthorized")
    row = await waiting.payment()
    assert (authorized.order_id, authorized.payment_id) == (ORDER, str(row["payment_id"]))
    assert (authorized.amount, authorized.gateway_reference) == (D("100.00"), "pi_3ds")
    assert row["status"] == "authorized"
    [operation] = await waiting.authorize_operations()
    assert (operation["outcome"], operation["answer_type"]) == ("succeeded", "PaymentAuthorized")

    # The command re-sent now gets the outcome, not the wait.
    await _authorize(waiting.harness, ORDER, "web")
    assert len(await waiting.harness.emitted_contracts("PaymentAuthorized")) == 2
    assert len(await waiting.harness.emitted_contracts("PaymentRequiresAction")) == 1
    # A failure reported afterwards (out of order) does not undo the authorisation.
    late = await _post(waiting.harness, *_failed())
    assert late.json()["applied"] == 0
    assert (await waiting.payment())["status"] == "authorized"


async def test_the_failed_webhook_declines_with_the_code_from_last_payment_error(
    waiting: Waiting,
):
    body, signature = _failed()
    answer = await _post(waiting.harness, body, signature)
    assert answer.status_code == 200 and answer.json()["applied"] == 1
    assert (await _post(waiting.harness, body, signature)).json()["duplicate"] is True
    [declined] = await waiting.harness.emitted_contracts("PaymentDeclined")
    assert (declined.order_id, declined.decline_code) == (
        ORDER,
        "payment_intent_authentication_failure",
    )
    row = await waiting.payment()
    assert (row["status"], row["decline_code"]) == (
        "declined",
        "payment_intent_authentication_failure",
    )
    await _authorize(waiting.harness, ORDER, "web")  # re-sent: the decline again
    assert len(await waiting.harness.emitted_contracts("PaymentDeclined")) == 2
    assert len(waiting.stripe_calls()) == 1
    # A success reported later is not applied to a declined attempt.
    assert (await _post(waiting.harness, *_capturable())).json()["applied"] == 0
    assert await waiting.harness.emitted_contracts("PaymentAuthorized") == []


async def test_a_cancelled_payment_intent_declines(waiting: Waiting):
    intent = _intent("canceled", cancellation_reason="abandoned")
    answer = await _post(
        waiting.harness, *signed(_event("evt_cancel", "payment_intent.canceled", intent))
    )
    assert answer.json()["applied"] == 1
    [declined] = await waiting.harness.emitted_contracts("PaymentDeclined")
    assert declined.decline_code == "payment_intent_canceled"


async def test_a_void_while_waiting_cancels_the_intent_and_a_late_success_is_ignored(
    waiting: Waiting,
):
    waiting.double.answer = (200, _intent("canceled", cancellation_reason="requested_by_customer"))
    await waiting.harness.deliver(
        VoidPayment(order_id=ORDER, reason="cancelled", idempotency_key=f"{ORDER}:void"),
        correlation_id=ORDER,
    )
    [voided] = await waiting.harness.emitted_contracts("PaymentVoided")
    assert voided.voided is True
    assert waiting.stripe_calls()[-1] == (
        "POST",
        "/v1/payment_intents/pi_3ds/cancel",
        f"{ORDER}:void",
    )
    assert (await waiting.payment())["status"] == "voided"
    answer = await _post(waiting.harness, *_capturable())
    assert answer.json()["applied"] == 0
    assert await waiting.harness.emitted_contracts("PaymentAuthorized") == []
    assert (await waiting.payment())["status"] == "voided"


async def test_a_webhook_rolled_back_midway_is_applied_once_when_stripe_redelivers(
    waiting: Waiting, monkeypatch: pytest.MonkeyPatch
):
    class Crash(Exception):
        pass

    settle = store.settle_authorization_answer

    async def crash(*args: Any, **kwargs: Any) -> None:
        raise Crash

    monkeypatch.setattr(store, "settle_authorization_answer", crash)
    body, signature = _capturable()
    try:
        crashed = await _post(waiting.harness, body, signature)
    except Crash:
        pass  # the test client re-raises the app's exception
    else:
        assert crashed.status_code >= 500
    assert (await waiting.payment())["status"] == "requires_action", "rolled back"
    assert await waiting.harness.fetch("SELECT * FROM gateway_webhook_events") == []

    monkeypatch.setattr(store, "settle_authorization_answer", settle)
    redelivered = await _post(waiting.harness, body, signature)
    assert redelivered.json() == {
        "event_id": "evt_capturable",
        "type": "payment_intent.amount_capturable_updated",
        "duplicate": False,
        "applied": 1,
    }
    assert len(await waiting.harness.emitted_contracts("PaymentAuthorized")) == 1
    assert (await waiting.payment())["status"] == "authorized"


async def test_a_rolled_back_requires_action_is_redone_under_the_same_key_once(infra: Infra):
    with stripe_double() as double:
        double.answer = requires_action()
        spec = build(_settings(double.base_url, default="test", by_channel={"web": "stripe"}))
        async for harness in start_harness(infra, spec):
            command = AuthorizePayment(
                order_id=ORDER,
                amount=D("100.00"),
                currency="USD",
                method="card",
                token="pm_card_visa",
                idempotency_key=f"{ORDER}:authorize",
                channel="web",
            )
            poison = AuthorizePayment(
                order_id="o-2",
                amount=D("5.00"),
                currency="EUR",
                method="card",
                token="tok_gateway_down",
                idempotency_key="o-2:authorize",
            )
            # One batch, one transaction: Stripe answers, then the neighbour fails and the
            # transaction rolls back; each message is then applied on its own.
            await harness.consumer.handle_records(
                [
                    FakeRecord(
                        AuthorizePayment.TOPIC,
                        Envelope.wrap(command, correlation_id=ORDER).to_bytes(),
                        offset=101,
                    ),
                    FakeRecord(
                        AuthorizePayment.TOPIC,
                        Envelope.wrap(poison, correlation_id="o-2").to_bytes(),
                        offset=102,
                    ),
                ]
            )
            keys = [key for _, _, key in double.requests]
            assert keys == [f"{ORDER}:authorize", f"{ORDER}:authorize"], "same key again"
            [answer] = await harness.emitted_contracts("PaymentRequiresAction")
            assert answer.client_secret == "pi_3ds_secret_x"
            rows = await harness.fetch("SELECT status FROM payments WHERE order_id = $1", ORDER)
            assert [r["status"] for r in rows] == ["requires_action"]
            assert len(harness.dead_letters) == 1
