"""The payment service on a real Postgres: its real handlers through the real Consumer, the
built-in test gateway with its own ledger, and the HTTP API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import cast

import asyncpg
import pytest

from services.payment.app import build
from services.payment.gateway import GatewayResult, TestGateway
from services.payment.settings import PaymentSettings
from shared.contracts.order_intake import (
    AuthorizePayment,
    CapturePayment,
    RefundPayment,
    VoidPayment,
)
from shared.envelope import Envelope
from shared.platform.service import ServiceSpec
from tests.support.component import ComponentHarness, FakeRecord, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component

D = Decimal
RETRY_ATTEMPTS = 3


@dataclass
class RecordingGateway:
    """The test gateway, with every call (operation, idempotency key) it received written down."""

    inner: TestGateway
    calls: list[tuple[str, str]] = field(default_factory=list)

    def keys(self, operation: str) -> list[str]:
        return [key for op, key in self.calls if op == operation]

    async def authorize(
        self, idempotency_key: str, amount: Decimal, currency: str, token: str
    ) -> GatewayResult:
        self.calls.append(("authorize", idempotency_key))
        return await self.inner.authorize(idempotency_key, amount, currency, token)

    async def capture(self, idempotency_key: str, reference: str, amount: Decimal) -> GatewayResult:
        self.calls.append(("capture", idempotency_key))
        return await self.inner.capture(idempotency_key, reference, amount)

    async def void(self, idempotency_key: str, reference: str) -> GatewayResult:
        self.calls.append(("void", idempotency_key))
        return await self.inner.void(idempotency_key, reference)

    async def refund(self, idempotency_key: str, reference: str, amount: Decimal) -> GatewayResult:
        self.calls.append(("refund", idempotency_key))
        return await self.inner.refund(idempotency_key, reference, amount)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Payments:
    harness: ComponentHarness
    gateway: RecordingGateway

    async def authorize(
        self,
        order_id: str = "o-1",
        *,
        token: str = "tok_visa",
        amount: str = "100.00",
        key: str | None = None,
    ) -> None:
        await self.harness.deliver(
            AuthorizePayment(
                order_id=order_id,
                amount=D(amount),
                currency="EUR",
                method="card",
                token=token,
                idempotency_key=key or f"{order_id}:authorize",
            ),
            correlation_id=order_id,
        )

    async def capture(
        self,
        amount: str,
        *,
        order_id: str = "o-1",
        fulfilment_id: str = "f-1",
        shipment_id: str | None = None,
        key: str = "",
    ) -> None:
        await self.harness.deliver(
            CapturePayment(
                order_id=order_id,
                amount=D(amount),
                currency="EUR",
                fulfilment_id=fulfilment_id,
                shipment_id=shipment_id,
                idempotency_key=key or f"{order_id}:capture:{shipment_id or fulfilment_id}",
            ),
            correlation_id=order_id,
        )

    async def void(self, *, order_id: str = "o-1", key: str = "") -> None:
        await self.harness.deliver(
            VoidPayment(
                order_id=order_id,
                reason="order cancelled",
                idempotency_key=key or f"{order_id}:void",
            ),
            correlation_id=order_id,
        )

    async def refund(
        self, amount: str, *, order_id: str = "o-1", return_id: str = "r-1", key: str = ""
    ) -> None:
        await self.harness.deliver(
            RefundPayment(
                order_id=order_id,
                amount=D(amount),
                currency="EUR",
                reason="returned",
                idempotency_key=key or f"{order_id}:refund:{return_id}",
                return_id=return_id,
            ),
            correlation_id=order_id,
        )

    async def emitted(self, message_type: str) -> list:
        return await self.harness.emitted_contracts(message_type)

    async def payment_row(self, order_id: str = "o-1") -> asyncpg.Record:
        rows = await self.harness.fetch(
            "SELECT * FROM payments WHERE order_id = $1 AND status <> 'declined'", order_id
        )
        assert len(rows) == 1
        return rows[0]

    async def ledger(self, operation: str | None = None) -> list[asyncpg.Record]:
        rows = await self.harness.fetch("SELECT * FROM test_gateway_ledger ORDER BY recorded_at")
        return [r for r in rows if operation is None or r["operation"] == operation]


@pytest.fixture
async def payments(infra: Infra) -> AsyncIterator[Payments]:
    settings = PaymentSettings(
        gateway_retry_attempts=RETRY_ATTEMPTS,
        gateway_retry_initial_s=0.001,
        gateway_retry_max_s=0.005,
    )
    specs: list[ServiceSpec] = []
    gateway = RecordingGateway(TestGateway(lambda: cast(PaymentSettings, specs[0].settings)))
    specs.append(build(settings, gateway=gateway))
    try:
        async for harness in start_harness(infra, specs[0]):
            yield Payments(harness, gateway)
    finally:
        await gateway.aclose()


# --- authorise ------------------------------------------------------------------------------


async def test_authorize_approved(payments: Payments):
    await payments.authorize(amount="120.50")
    [authorized] = await payments.emitted("PaymentAuthorized")
    assert (authorized.order_id, authorized.amount, authorized.currency) == (
        "o-1",
        D("120.50"),
        "EUR",
    )
    assert authorized.gateway_reference.startswith("tg_auth_")
    row = await payments.payment_row()
    assert row["status"] == "authorized"
    assert str(row["payment_id"]) == authorized.payment_id
    assert row["gateway_reference"] == authorized.gateway_reference
    [entry] = await payments.ledger()
    assert (entry["idempotency_key"], entry["approved"]) == ("o-1:authorize", True)
    assert await payments.emitted("PaymentDeclined") == []


@pytest.mark.parametrize(
    ("token", "code"),
    [("tok_declined", "card_declined"), ("tok_insufficient_funds", "insufficient_funds")],
)
async def test_authorize_declined(payments: Payments, token: str, code: str):
    await payments.authorize(token=token)
    [answer] = await payments.emitted("PaymentDeclined")
    assert answer.decline_code == code
    assert answer.reason
    assert await payments.emitted("PaymentAuthorized") == []
    rows = await payments.harness.fetch("SELECT status, decline_code FROM payments")
    assert [(r["status"], r["decline_code"]) for r in rows] == [("declined", code)]
    [entry] = await payments.ledger()
    assert entry["approved"] is False


async def test_an_ambiguous_timeout_is_retried_with_the_same_key_and_authorises_once(
    payments: Payments,
):
    await payments.authorize(token="tok_gateway_timeout")
    # The first call was recorded by the gateway and timed out; the retry used the same key.
    assert payments.gateway.keys("authorize") == ["o-1:authorize", "o-1:authorize"]
    [entry] = await payments.ledger("authorize")
    assert entry["idempotency_key"] == "o-1:authorize"
    [authorized] = await payments.emitted("PaymentAuthorized")
    assert authorized.gateway_reference == entry["reference"]
    assert len(await payments.harness.fetch("SELECT 1 FROM payments")) == 1
    assert payments.harness.dead_letters == []


async def test_a_gateway_that_never_answers_fails_the_message_which_is_dead_lettered(
    payments: Payments,
):
    await payments.authorize(token="tok_gateway_down")
    keys = payments.gateway.keys("authorize")
    # Bounded retries per handling, the consumer's bounded retries of the message: same key.
    assert len(keys) > RETRY_ATTEMPTS
    assert len(keys) % RETRY_ATTEMPTS == 0
    assert set(keys) == {"o-1:authorize"}
    assert [h["x-dlq-reason"] for _, h in payments.harness.dead_letters] == ["handler_failed"]
    assert "GatewayTimeout" in payments.harness.dead_letters[0][1]["x-dlq-error"]
    assert await payments.harness.emitted() == []
    assert await payments.harness.fetch("SELECT 1 FROM payments") == []
    assert await payments.ledger() == []


async def test_a_re_sent_authorize_gets_the_same_answer_without_a_second_authorisation(
    payments: Payments,
):
    await payments.authorize()
    await payments.authorize()  # new message id, same idempotency key
    first, second = await payments.emitted("PaymentAuthorized")
    assert first == second
    assert payments.gateway.keys("authorize") == ["o-1:authorize"]
    assert len(await payments.ledger("authorize")) == 1
    assert len(await payments.harness.fetch("SELECT 1 FROM payments")) == 1


async def test_a_re_sent_declined_authorize_is_declined_again_without_asking_the_gateway(
    payments: Payments,
):
    await payments.authorize(token="tok_declined")
    await payments.authorize(token="tok_declined")
    first, second = await payments.emitted("PaymentDeclined")
    assert first == second
    assert payments.gateway.keys("authorize") == ["o-1:authorize"]


async def test_an_order_is_never_authorised_twice_even_under_a_new_key(payments: Payments):
    await payments.authorize()
    await payments.authorize(key="o-1:authorize:other")
    first, second = await payments.emitted("PaymentAuthorized")
    assert first == second
    assert payments.gateway.keys("authorize") == ["o-1:authorize"]
    assert len(await payments.ledger("authorize")) == 1


async def test_after_a_decline_a_new_key_is_a_new_attempt(payments: Payments):
    await payments.authorize(token="tok_declined")
    await payments.authorize(token="tok_visa", key="o-1:authorize:2")
    assert len(await payments.emitted("PaymentDeclined")) == 1
    assert len(await payments.emitted("PaymentAuthorized")) == 1
    rows = await payments.harness.fetch("SELECT status FROM payments ORDER BY created_at")
    assert [r["status"] for r in rows] == ["declined", "authorized"]


async def test_an_invalid_amount_is_declined_without_asking_the_gateway(payments: Payments):
    await payments.authorize(amount="0")
    [answer] = await payments.emitted("PaymentDeclined")
    assert answer.decline_code == "invalid_amount"
    assert payments.gateway.calls == []


# --- capture --------------------------------------------------------------------------------


async def test_capture_partial_then_the_rest(payments: Payments):
    await payments.authorize(amount="100.00")
    await payments.capture("30.00", fulfilment_id="f-1")
    row = await payments.payment_row()
    assert (row["status"], row["captured_total"]) == ("partially_captured", D("30.00"))
    await payments.capture("70.00", fulfilment_id="f-2")
    first, second = await payments.emitted("PaymentCaptured")
    assert (first.fulfilment_id, first.amount, first.captured_total) == ("f-1", D("30"), D("30"))
    assert (second.fulfilment_id, second.amount, second.captured_total) == (
        "f-2",
        D("70"),
        D("100"),
    )
    row = await payments.payment_row()
    assert (row["status"], row["captured_total"]) == ("captured", D("100.00"))
    assert len(await payments.ledger("capture")) == 2


async def test_a_re_sent_capture_answers_the_same_and_captures_once(payments: Payments):
    await payments.authorize()
    await payments.capture("30.00")
    await payments.capture("30.00")  # the saga re-sent it: new message id, same key
    first, second = await payments.emitted("PaymentCaptured")
    assert first == second
    assert second.captured_total == D("30.00")
    assert payments.gateway.keys("capture") == ["o-1:capture:f-1"]
    assert (await payments.payment_row())["captured_total"] == D("30.00")


async def test_over_capture_is_refused(payments: Payments):
    await payments.authorize(amount="100.00")
    await payments.capture("60.00", fulfilment_id="f-1")
    await payments.capture("40.01", fulfilment_id="f-2")
    [failed] = await payments.emitted("PaymentCaptureFailed")
    assert (failed.fulfilment_id, failed.reason) == ("f-2", "exceeds_authorized")
    assert len(await payments.emitted("PaymentCaptured")) == 1
    assert (await payments.payment_row())["captured_total"] == D("60.00")
    assert payments.gateway.keys("capture") == ["o-1:capture:f-1"]


async def test_the_parcels_of_one_fulfilment_are_captured_each_once_and_named(
    payments: Payments,
):
    await payments.authorize(amount="100.00")
    await payments.capture("30.00", shipment_id="p-1")
    await payments.capture("70.00", shipment_id="p-2")
    await payments.capture("30.00", shipment_id="p-1")  # re-sent by the saga: same key
    first, second, again = await payments.emitted("PaymentCaptured")
    assert (first.fulfilment_id, first.shipment_id, first.amount) == ("f-1", "p-1", D("30"))
    assert (second.fulfilment_id, second.shipment_id, second.captured_total) == (
        "f-1",
        "p-2",
        D("100"),
    )
    assert again == first
    assert payments.gateway.keys("capture") == ["o-1:capture:p-1", "o-1:capture:p-2"]
    assert (await payments.payment_row())["status"] == "captured"
    async with payments.harness.http() as client:
        response = await client.get("/v1/payments", params={"order_id": "o-1"})
    [payment] = response.json()["payments"]
    captures = [op for op in payment["operations"] if op["kind"] == "capture"]
    assert [(op["fulfilment_id"], op["shipment_id"]) for op in captures] == [
        ("f-1", "p-1"),
        ("f-1", "p-2"),
    ]


async def test_a_refused_parcel_capture_names_the_parcel(payments: Payments):
    await payments.authorize(amount="100.00")
    await payments.capture("60.00", shipment_id="p-1")
    await payments.capture("40.01", shipment_id="p-2")
    [failed] = await payments.emitted("PaymentCaptureFailed")
    assert (failed.fulfilment_id, failed.shipment_id, failed.reason) == (
        "f-1",
        "p-2",
        "exceeds_authorized",
    )


async def test_a_whole_fulfilment_capture_answers_without_a_shipment_id(payments: Payments):
    await payments.authorize(amount="100.00")
    await payments.capture("100.00")
    [answer] = await payments.emitted("PaymentCaptured")
    assert answer.shipment_id is None and answer.fulfilment_id == "f-1"
    [op] = await payments.harness.fetch(
        "SELECT fulfilment_id, shipment_id FROM payment_operations WHERE kind = 'capture'"
    )
    assert tuple(op) == ("f-1", None)


async def test_capture_without_an_authorisation_is_refused(payments: Payments):
    await payments.capture("10.00")
    [failed] = await payments.emitted("PaymentCaptureFailed")
    assert failed.reason == "no_authorization"
    assert payments.gateway.calls == []


async def test_capture_of_a_voided_authorisation_is_refused(payments: Payments):
    await payments.authorize()
    await payments.void()
    await payments.capture("10.00")
    [failed] = await payments.emitted("PaymentCaptureFailed")
    assert failed.reason == "authorization_voided"


# --- void -----------------------------------------------------------------------------------


async def test_void_an_authorisation(payments: Payments):
    await payments.authorize()
    await payments.void()
    await payments.void()  # re-sent with the same key: the same answer
    first, second = await payments.emitted("PaymentVoided")
    assert first == second
    assert (first.voided, first.reason) == (True, "order cancelled")
    assert (await payments.payment_row())["status"] == "voided"
    assert payments.gateway.keys("void") == ["o-1:void"]
    assert len(await payments.ledger("void")) == 1


async def test_nothing_to_void_is_still_answered(payments: Payments):
    await payments.void(order_id="o-none")
    await payments.authorize(order_id="o-declined", token="tok_declined")
    await payments.void(order_id="o-declined")
    answers = await payments.emitted("PaymentVoided")
    assert [(a.order_id, a.voided, a.reason) for a in answers] == [
        ("o-none", False, "no_authorization"),
        ("o-declined", False, "payment_declined"),
    ]
    assert payments.gateway.keys("void") == []


async def test_a_captured_payment_is_not_voided(payments: Payments):
    await payments.authorize()
    await payments.capture("10.00")
    await payments.void()
    [answer] = await payments.emitted("PaymentVoided")
    assert (answer.voided, answer.reason) == (False, "already_captured")
    assert (await payments.payment_row())["status"] == "partially_captured"


async def test_a_second_void_under_another_key_finds_it_already_voided(payments: Payments):
    await payments.authorize()
    await payments.void()
    await payments.void(key="o-1:void:again")
    answers = await payments.emitted("PaymentVoided")
    assert [(a.voided, a.reason) for a in answers] == [
        (True, "order cancelled"),
        (False, "already_voided"),
    ]


async def test_a_late_authorisation_is_voided_by_the_same_void_re_sent(payments: Payments):
    await payments.void()  # the saga gave up before the authorisation landed
    await payments.authorize()
    await payments.void()  # the compensation for the late success, same key
    answers = await payments.emitted("PaymentVoided")
    assert [(a.voided, a.reason) for a in answers] == [
        (False, "no_authorization"),
        (True, "order cancelled"),
    ]
    assert (await payments.payment_row())["status"] == "voided"


# --- refund ---------------------------------------------------------------------------------


async def test_refund_within_what_was_captured(payments: Payments):
    await payments.authorize(amount="100.00")
    await payments.capture("80.00")
    await payments.refund("30.00", return_id="r-1")
    await payments.refund("30.00", return_id="r-1")  # re-sent: same answer, refunded once
    await payments.refund("50.00", return_id="r-2")
    first, again, second = await payments.emitted("PaymentRefunded")
    assert first == again
    assert (first.amount, first.refunded_total, first.return_id) == (D("30"), D("30"), "r-1")
    assert (second.amount, second.refunded_total, second.return_id) == (D("50"), D("80"), "r-2")
    row = await payments.payment_row()
    assert (row["status"], row["refunded_total"]) == ("refunded", D("80.00"))
    assert payments.gateway.keys("refund") == ["o-1:refund:r-1", "o-1:refund:r-2"]


async def test_refund_over_the_limit_is_refused(payments: Payments):
    await payments.authorize(amount="100.00")
    await payments.capture("40.00")
    await payments.refund("40.01", return_id="r-1")
    await payments.refund("10.00", order_id="o-unknown", return_id="r-2")
    answers = await payments.emitted("PaymentRefundFailed")
    assert [(a.order_id, a.reason, a.return_id) for a in answers] == [
        ("o-1", "exceeds_refundable", "r-1"),
        ("o-unknown", "no_authorization", "r-2"),
    ]
    assert (await payments.payment_row())["refunded_total"] == D(0)
    assert payments.gateway.keys("refund") == []


async def test_refund_failing_at_the_gateway_is_answered_and_may_be_tried_again(
    payments: Payments,
):
    await payments.authorize(token="tok_refund_fails")
    await payments.capture("50.00")
    await payments.refund("20.00")
    [failed] = await payments.emitted("PaymentRefundFailed")
    assert (failed.reason, failed.return_id) == ("gateway_timeout", "r-1")
    assert payments.gateway.keys("refund") == ["o-1:refund:r-1"] * RETRY_ATTEMPTS
    assert (await payments.payment_row())["refunded_total"] == D(0)
    ops = await payments.harness.fetch(
        "SELECT outcome FROM payment_operations WHERE kind = 'refund'"
    )
    assert [r["outcome"] for r in ops] == ["timed_out"]
    # A timeout is not an answer: re-sent, the gateway is asked again under the same key.
    await payments.refund("20.00")
    assert len(await payments.emitted("PaymentRefundFailed")) == 2
    assert payments.gateway.keys("refund") == ["o-1:refund:r-1"] * (2 * RETRY_ATTEMPTS)
    assert await payments.ledger("refund") == []


async def test_a_key_reused_for_another_operation_is_refused(payments: Payments):
    await payments.authorize()
    await payments.capture("10.00", key="shared-key")
    await payments.refund("5.00", key="shared-key")
    [failed] = await payments.emitted("PaymentRefundFailed")
    assert failed.reason == "idempotency_key_conflict"
    assert payments.gateway.keys("refund") == []


# --- invariants in the database -------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        "captured_total = amount + 1",
        "refunded_total = captured_total + 1",
        "captured_total = -1",
        "status = 'voided', captured_total = 1",
    ],
)
async def test_the_database_refuses_totals_that_break_the_invariants(
    payments: Payments, change: str
):
    await payments.authorize(amount="100.00")
    with pytest.raises(asyncpg.CheckViolationError):
        await payments.harness.pool.execute(f"UPDATE payments SET {change}")


async def test_the_database_refuses_a_second_authorisation_for_an_order(payments: Payments):
    await payments.authorize()
    row = await payments.payment_row()
    with pytest.raises(asyncpg.UniqueViolationError):
        await payments.harness.pool.execute(
            "INSERT INTO payments (payment_id, order_id, idempotency_key, amount, currency,"
            " status, gateway_reference) VALUES (gen_random_uuid(), $1, 'k2', 1, 'EUR',"
            " 'authorized', 'ref')",
            row["order_id"],
        )


# --- HTTP -----------------------------------------------------------------------------------


async def test_get_payments_of_an_order(payments: Payments):
    await payments.authorize(amount="100.00")
    await payments.capture("60.00")
    await payments.refund("10.00")
    async with payments.harness.http() as client:
        response = await client.get("/v1/payments", params={"order_id": "o-1"})
    assert response.status_code == 200
    body = response.json()
    assert body["order_id"] == "o-1"
    [payment] = body["payments"]
    [authorized] = await payments.emitted("PaymentAuthorized")
    assert payment["payment_id"] == authorized.payment_id
    assert payment["status"] == "partially_refunded"
    assert (payment["amount"], payment["currency"]) == ("100.00", "EUR")
    assert (payment["captured_total"], payment["refunded_total"]) == ("60.00", "10.00")
    assert payment["gateway_reference"] == authorized.gateway_reference
    assert [
        (op["kind"], op["idempotency_key"], op["amount"], op["outcome"])
        for op in payment["operations"]
    ] == [
        ("authorize", "o-1:authorize", "100.00", "succeeded"),
        ("capture", "o-1:capture:f-1", "60.00", "succeeded"),
        ("refund", "o-1:refund:r-1", "10.00", "succeeded"),
    ]
    assert all(op["at"] for op in payment["operations"])


async def test_get_payments_of_an_order_without_any(payments: Payments):
    async with payments.harness.http() as client:
        response = await client.get("/v1/payments", params={"order_id": "o-none"})
    assert response.status_code == 200
    assert response.json() == {"order_id": "o-none", "payments": []}


async def test_get_payments_needs_an_order_id(payments: Payments):
    async with payments.harness.http() as client:
        response = await client.get("/v1/payments")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert "order_id" in error["message"]


async def test_an_order_whose_authorisation_was_voided_is_not_authorised_again(
    payments: Payments,
):
    await payments.authorize()
    await payments.void()
    await payments.authorize(key="o-1:authorize:again")
    [answer] = await payments.emitted("PaymentDeclined")
    assert answer.decline_code == "authorization_voided"
    assert payments.gateway.keys("authorize") == ["o-1:authorize"]


# --- rollback after the gateway acted -------------------------------------------------------


async def test_a_rolled_back_capture_is_redone_under_the_same_key_and_charged_once(
    payments: Payments,
):
    await payments.authorize(amount="100.00")
    capture = CapturePayment(
        order_id="o-1",
        amount=D("25.00"),
        currency="EUR",
        fulfilment_id="f-1",
        idempotency_key="o-1:capture:f-1",
    )
    poison = AuthorizePayment(
        order_id="o-2",
        amount=D("5.00"),
        currency="EUR",
        method="card",
        token="tok_gateway_down",
        idempotency_key="o-2:authorize",
    )
    # One batch, one transaction: the capture reaches the gateway, then its neighbour fails and
    # the transaction rolls back; each message is then applied on its own.
    await payments.harness.consumer.handle_records(
        [
            FakeRecord(
                CapturePayment.TOPIC,
                Envelope.wrap(capture, correlation_id="o-1").to_bytes(),
                offset=101,
            ),
            FakeRecord(
                AuthorizePayment.TOPIC,
                Envelope.wrap(poison, correlation_id="o-2").to_bytes(),
                offset=102,
            ),
        ]
    )
    assert payments.gateway.keys("capture") == ["o-1:capture:f-1", "o-1:capture:f-1"]
    assert len(await payments.ledger("capture")) == 1
    [captured] = await payments.emitted("PaymentCaptured")
    assert captured.captured_total == D("25.00")
    assert (await payments.payment_row())["captured_total"] == D("25.00")
    assert len(payments.harness.dead_letters) == 1


# --- the default wiring ---------------------------------------------------------------------


async def test_build_wires_the_test_gateway_and_closes_it_on_shutdown(infra: Infra):
    spec = build(PaymentSettings(gateway_retry_initial_s=0.001, gateway_retry_max_s=0.005))
    async for harness in start_harness(infra, spec):
        closer = asyncio.create_task(spec.background[0](None))  # type: ignore[arg-type]
        try:
            await harness.deliver(
                AuthorizePayment(
                    order_id="o-1",
                    amount=D("9.99"),
                    currency="usd",
                    method="card",
                    token="tok_gateway_timeout",
                    idempotency_key="k-1",
                ),
                correlation_id="o-1",
            )
            [authorized] = await harness.emitted_contracts("PaymentAuthorized")
            assert authorized.currency == "USD"
            ledger = await harness.fetch("SELECT idempotency_key FROM test_gateway_ledger")
            assert [r["idempotency_key"] for r in ledger] == ["k-1"]
        finally:
            closer.cancel()
            await asyncio.gather(closer, return_exceptions=True)
        assert closer.cancelled()
