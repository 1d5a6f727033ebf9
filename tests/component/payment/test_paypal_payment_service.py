"""The payment service's real handlers on a real Postgres with the PayPal gateway pointed at the
local PayPal double: the lifecycle an order goes through (authorise, a capture per shipment, a
refund on a return), a declined PayPal account, and a capture whose answer was lost."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest
from pydantic import SecretStr

from services.payment.app import build
from services.payment.gateways.paypal_gateway import PayPalGateway, PayPalSettings
from services.payment.settings import PaymentSettings
from shared.contracts.order_intake import AuthorizePayment, CapturePayment, RefundPayment
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra
from tests.support.paypal_double import CLIENT_ID, CLIENT_SECRET, PayPalDouble

pytestmark = pytest.mark.component

D = Decimal


@pytest.fixture(scope="module")
def running_double() -> Iterator[PayPalDouble]:
    with PayPalDouble().serving() as running:
        yield running


@pytest.fixture
async def service(
    infra: Infra, running_double: PayPalDouble
) -> AsyncIterator[tuple[ComponentHarness, PayPalDouble]]:
    running_double.reset()
    gateway = PayPalGateway(
        PayPalSettings(
            client_id=CLIENT_ID,
            client_secret=SecretStr(CLIENT_SECRET),
            api_base=running_double.base_url,
            timeout_s=5,
        )
    )
    spec = build(
        PaymentSettings(
            gateway_retry_attempts=3, gateway_retry_initial_s=0.001, gateway_retry_max_s=0.005
        ),
        gateway=gateway,
    )
    try:
        async for harness in start_harness(infra, spec):
            yield harness, running_double
    finally:
        await gateway.aclose()


async def _authorize(h: ComponentHarness, paypal_order_id: str, amount: str = "100.00") -> None:
    await h.deliver(
        AuthorizePayment(
            order_id="o-1",
            amount=D(amount),
            currency="EUR",
            method="paypal",
            token=paypal_order_id,
            idempotency_key="o-1:authorize",
        ),
        correlation_id="o-1",
    )


async def _capture(h: ComponentHarness, amount: str, shipment_id: str) -> None:
    await h.deliver(
        CapturePayment(
            order_id="o-1",
            amount=D(amount),
            currency="EUR",
            fulfilment_id="f-1",
            shipment_id=shipment_id,
            idempotency_key=f"o-1:capture:{shipment_id}",
        ),
        correlation_id="o-1",
    )


async def test_authorise_capture_two_shipments_and_refund_a_return(
    service: tuple[ComponentHarness, PayPalDouble],
):
    h, double = service
    paypal_order = double.approved_order("100.00", "EUR")
    await _authorize(h, paypal_order)
    [authorized] = await h.emitted_contracts("PaymentAuthorized")
    authorization = double.authorizations[authorized.gateway_reference]
    assert authorization.order_id == paypal_order

    await _capture(h, "60.00", "p-1")
    await _capture(h, "40.00", "p-2")
    await _capture(h, "40.00", "p-2")  # re-sent by the saga: answered as before
    first, second, again = await h.emitted_contracts("PaymentCaptured")
    assert (first.shipment_id, first.captured_total) == ("p-1", D("60.00"))
    assert (second.shipment_id, second.captured_total) == ("p-2", D("100.00"))
    assert again == second
    assert [c.amount for c in double.captures_of(authorization.id)] == [D("60.00"), D("40.00")]

    await h.deliver(
        RefundPayment(
            order_id="o-1",
            amount=D("70.00"),
            currency="EUR",
            reason="returned",
            idempotency_key="o-1:refund:r-1",
            return_id="r-1",
        ),
        correlation_id="o-1",
    )
    [refunded] = await h.emitted_contracts("PaymentRefunded")
    assert (refunded.amount, refunded.refunded_total) == (D("70.00"), D("70.00"))
    assert [r.amount for r in double.refunds_of(authorization.id)] == [D("60.00"), D("10.00")]
    [row] = await h.fetch("SELECT status, captured_total, refunded_total FROM payments")
    assert tuple(row) == ("partially_refunded", D("100.00"), D("70.00"))


async def test_a_declined_paypal_account_declines_the_payment(
    service: tuple[ComponentHarness, PayPalDouble],
):
    h, double = service
    paypal_order = double.approved_order("100.00", "EUR")
    double.decline(paypal_order)
    await _authorize(h, paypal_order)
    [declined] = await h.emitted_contracts("PaymentDeclined")
    assert declined.decline_code == "instrument_declined"
    assert await h.emitted_contracts("PaymentAuthorized") == []


async def test_a_capture_answered_500_is_retried_and_captured_once(
    service: tuple[ComponentHarness, PayPalDouble],
):
    h, double = service
    await _authorize(h, double.approved_order("100.00", "EUR"))
    [authorized] = await h.emitted_contracts("PaymentAuthorized")
    double.fail_next("/capture", 500, after_processing=True)
    await _capture(h, "30.00", "p-1")
    [captured] = await h.emitted_contracts("PaymentCaptured")
    assert captured.captured_total == D("30.00")
    assert [c.amount for c in double.captures_of(authorized.gateway_reference)] == [D("30.00")]
    assert [rid for _, _, rid in double.posts("/capture")] == ["o-1:capture:p-1"] * 2
