"""The PayPal gateway (httpx) over real HTTP, against the local PayPal double
(tests/support/paypal_double.py): the order's lifecycle, declines, an expired token, rate
limiting, an ambiguous 500 retried with the same request id, refunds over several captures."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from pydantic import SecretStr

from services.payment.gateway import GatewayTimeout, RetryingGateway, RetryPolicy
from services.payment.gateways.paypal_gateway import (
    PayPalGateway,
    PayPalSettings,
    PayPalUnavailable,
)
from tests.support.paypal_double import CLIENT_ID, CLIENT_SECRET, PayPalDouble

D = Decimal


@pytest.fixture(scope="module")
def running_double() -> Iterator[PayPalDouble]:
    with PayPalDouble().serving() as running:
        yield running


@pytest.fixture
def double(running_double: PayPalDouble) -> PayPalDouble:
    running_double.reset()
    return running_double


class Sleeps:
    def __init__(self) -> None:
        self.waited: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waited.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def settings_for(double: PayPalDouble, secret: str = CLIENT_SECRET) -> PayPalSettings:
    return PayPalSettings(
        client_id=CLIENT_ID,
        client_secret=SecretStr(secret),
        api_base=double.base_url,
        timeout_s=5,
        rate_limit_retries=2,
        max_retry_after_s=3,
    )


@pytest.fixture
async def paypal(double: PayPalDouble, sleeps: Sleeps):
    gateway = PayPalGateway(settings_for(double), sleep=sleeps)
    yield gateway
    await gateway.aclose()


async def authorized(paypal: PayPalGateway, double: PayPalDouble, value: str = "100.00") -> str:
    order_id = double.approved_order(value, "EUR")
    result = await paypal.authorize("o-1:authorize", D(value), "EUR", order_id)
    assert result.approved and result.reference
    return result.reference


async def test_authorise_two_partial_captures_then_a_partial_refund(
    paypal: PayPalGateway, double: PayPalDouble
):
    order_id = double.approved_order("100.00", "EUR")
    result = await paypal.authorize("o-1:authorize", D("100.00"), "EUR", order_id)
    assert result.approved
    authorization = double.authorizations[result.reference or ""]
    assert (authorization.order_id, authorization.amount) == (order_id, D("100.00"))
    assert double.orders[order_id].status == "COMPLETED"

    first = await paypal.capture("o-1:capture:p-1", authorization.id, D("60.00"))
    second = await paypal.capture("o-1:capture:p-2", authorization.id, D("40.00"))
    assert first.approved and second.approved
    captures = double.captures_of(authorization.id)
    assert [(c.id, c.amount, c.final_capture) for c in captures] == [
        (first.reference, D("60.00"), False),
        (second.reference, D("40.00"), False),
    ]
    assert authorization.status == "CAPTURED"

    refund = await paypal.refund("o-1:refund:r-1", authorization.id, D("25.50"))
    assert refund.approved
    [made] = double.refunds_of(authorization.id)
    assert (made.id, made.capture_id, made.amount, made.custom_id) == (
        refund.reference,
        first.reference,
        D("25.50"),
        "o-1:refund:r-1",
    )
    # Every POST carried our idempotency key as PayPal-Request-Id.
    assert [rid for _, _, rid in double.posts("/v2/")] == [
        "o-1:authorize",
        "o-1:capture:p-1",
        "o-1:capture:p-2",
        f"o-1:refund:r-1:{first.reference}",
    ]
    assert double.tokens_issued == 1  # the token is cached


async def test_a_refund_larger_than_one_capture_spreads_over_several(
    paypal: PayPalGateway, double: PayPalDouble
):
    reference = await authorized(paypal, double)
    first = await paypal.capture("o-1:capture:p-1", reference, D("30.00"))
    second = await paypal.capture("o-1:capture:p-2", reference, D("70.00"))
    assert (await paypal.refund("o-1:refund:r-1", reference, D("10.00"))).approved

    result = await paypal.refund("o-1:refund:r-2", reference, D("50.00"))
    assert result.approved
    pieces = [
        (r.capture_id, r.amount)
        for r in double.refunds_of(reference)
        if r.custom_id == "o-1:refund:r-2"
    ]
    assert pieces == [(first.reference, D("20.00")), (second.reference, D("30.00"))]
    assert len((result.reference or "").split(",")) == 2
    # Repeated under the same key: the same refunds, nothing refunded again.
    again = await paypal.refund("o-1:refund:r-2", reference, D("50.00"))
    assert again == result
    assert sum(r.amount for r in double.refunds_of(reference)) == D("60.00")


async def test_a_refund_beyond_what_was_captured_is_refused(
    paypal: PayPalGateway, double: PayPalDouble
):
    reference = await authorized(paypal, double)
    await paypal.capture("o-1:capture:p-1", reference, D("40.00"))
    await paypal.refund("o-1:refund:r-1", reference, D("30.00"))

    result = await paypal.refund("o-1:refund:r-2", reference, D("10.01"))
    assert (result.approved, result.decline_code) == (False, "amount_exceeds_captured")
    assert not [rid for _, _, rid in double.posts("/refund") if "r-2" in (rid or "")]
    assert sum(r.amount for r in double.refunds_of(reference)) == D("30.00")


async def test_the_double_itself_never_refunds_beyond_a_capture(
    paypal: PayPalGateway, double: PayPalDouble
):
    reference = await authorized(paypal, double)
    capture = await paypal.capture("o-1:capture:p-1", reference, D("40.00"))
    async with _client_of(double) as client:
        response = await client.post(
            f"/v2/payments/captures/{capture.reference}/refund",
            json={"amount": {"currency_code": "EUR", "value": "40.01"}},
        )
    assert response.status_code == 422
    assert response.json()["details"][0]["issue"] == "REFUND_AMOUNT_EXCEEDED"
    assert double.refunds == {}


async def test_a_declined_instrument_is_a_decline_with_its_code(
    paypal: PayPalGateway, double: PayPalDouble
):
    order_id = double.approved_order("50.00")
    double.decline(order_id)
    result = await paypal.authorize("o-1:authorize", D("50.00"), "EUR", order_id)
    assert (result.approved, result.decline_code) == (False, "instrument_declined")
    assert result.reason and "declined" in result.reason
    assert double.authorizations == {}


@pytest.mark.parametrize(
    ("prepare", "code"),
    [
        ("not_approved", "order_not_approved"),
        ("other_amount", "order_mismatch"),
        ("capture_intent", "order_intent_not_authorize"),
        ("unknown", "unknown_reference"),
    ],
)
async def test_orders_that_cannot_be_authorised_are_declined(
    paypal: PayPalGateway, double: PayPalDouble, prepare: str, code: str
):
    if prepare == "not_approved":
        order_id = double.create_order("50.00")
    elif prepare == "other_amount":
        order_id = double.approved_order("49.99")
    elif prepare == "capture_intent":
        order_id = double.create_order("50.00", intent="CAPTURE")
        double.approve(order_id)
    else:
        order_id = "5O190127TN364715T"
    result = await paypal.authorize("o-1:authorize", D("50.00"), "EUR", order_id)
    assert (result.approved, result.decline_code) == (False, code)
    assert double.authorizations == {}


async def test_an_expired_token_is_refreshed_once_and_the_call_goes_through(
    paypal: PayPalGateway, double: PayPalDouble
):
    reference = await authorized(paypal, double)
    double.expire_tokens()
    result = await paypal.capture("o-1:capture:p-1", reference, D("10.00"))
    assert result.approved
    assert double.tokens_issued == 2
    assert len(double.captures_of(reference)) == 1


async def test_wrong_credentials_are_unavailable_not_a_decline(double: PayPalDouble):
    gateway = PayPalGateway(settings_for(double, secret="wrong"))
    order_id = double.approved_order("10.00")
    with pytest.raises(PayPalUnavailable):
        await gateway.authorize("o-1:authorize", D("10.00"), "EUR", order_id)
    await gateway.aclose()
    assert double.authorizations == {}


async def test_a_429_is_retried_after_its_retry_after(
    paypal: PayPalGateway, double: PayPalDouble, sleeps: Sleeps
):
    reference = await authorized(paypal, double)
    double.fail_next("/capture", 429, retry_after=2)
    result = await paypal.capture("o-1:capture:p-1", reference, D("10.00"))
    assert result.approved
    assert sleeps.waited == [2.0]
    assert len(double.posts("/capture")) == 2
    assert len(double.captures_of(reference)) == 1


async def test_rate_limited_beyond_the_bound_is_unavailable_and_waits_are_capped(
    paypal: PayPalGateway, double: PayPalDouble, sleeps: Sleeps
):
    reference = await authorized(paypal, double)
    for _ in range(3):
        double.fail_next("/capture", 429, retry_after=60)
    with pytest.raises(PayPalUnavailable):
        await paypal.capture("o-1:capture:p-1", reference, D("10.00"))
    assert sleeps.waited == [3.0, 3.0]  # capped at max_retry_after_s, two retries
    assert double.captures_of(reference) == []


async def test_a_500_after_capturing_then_a_retry_with_the_same_key_captures_once(
    paypal: PayPalGateway, double: PayPalDouble
):
    reference = await authorized(paypal, double)
    double.fail_next("/capture", 500, after_processing=True)
    with pytest.raises(GatewayTimeout):
        await paypal.capture("o-1:capture:p-1", reference, D("60.00"))
    assert len(double.captures_of(reference)) == 1  # PayPal did capture

    retry = await paypal.capture("o-1:capture:p-1", reference, D("60.00"))
    assert retry.approved
    [capture] = double.captures_of(reference)
    assert retry.reference == capture.id
    assert [rid for _, _, rid in double.posts("/capture")] == ["o-1:capture:p-1"] * 2


async def test_the_retrying_gateway_turns_a_500_into_one_capture(
    paypal: PayPalGateway, double: PayPalDouble
):
    reference = await authorized(paypal, double)
    retrying = RetryingGateway(paypal, RetryPolicy(attempts=3, initial_s=0.001, max_s=0.005))
    double.fail_next("/capture", 500, after_processing=True)
    double.fail_next("/capture", 503)
    result = await retrying.capture("o-1:capture:p-1", reference, D("25.00"))
    assert result.approved
    assert len(double.posts("/capture")) == 3
    assert [c.amount for c in double.captures_of(reference)] == [D("25.00")]


@pytest.mark.parametrize("second_piece_made", [False, True])
async def test_a_refund_interrupted_between_its_pieces_completes_on_retry_without_more(
    paypal: PayPalGateway, double: PayPalDouble, second_piece_made: bool
):
    reference = await authorized(paypal, double)
    await paypal.capture("o-1:capture:p-1", reference, D("30.00"))
    second = await paypal.capture("o-1:capture:p-2", reference, D("70.00"))
    # The first piece goes through; the second answers 500, made or not.
    double.fail_next(f"{second.reference}/refund", 500, after_processing=second_piece_made)
    with pytest.raises(GatewayTimeout):
        await paypal.refund("o-1:refund:r-1", reference, D("50.00"))
    made = sum(r.amount for r in double.refunds_of(reference))
    assert made == (D("50.00") if second_piece_made else D("30.00"))

    result = await paypal.refund("o-1:refund:r-1", reference, D("50.00"))
    assert result.approved
    assert [r.amount for r in double.refunds_of(reference)] == [D("30.00"), D("20.00")]
    assert len((result.reference or "").split(",")) == 2


async def test_void_an_authorisation_and_a_capture_after_it_is_declined(
    paypal: PayPalGateway, double: PayPalDouble
):
    reference = await authorized(paypal, double)
    voided = await paypal.void("o-1:void", reference)
    assert voided == voided.approve(reference)
    assert double.authorizations[reference].status == "VOIDED"
    again = await paypal.void("o-1:void", reference)  # same request id: the same answer
    assert again.approved
    other_key = await paypal.void("o-1:void:again", reference)
    assert (other_key.approved, other_key.decline_code) == (False, "already_voided")
    capture = await paypal.capture("o-1:capture:p-1", reference, D("10.00"))
    assert (capture.approved, capture.decline_code) == (False, "authorization_voided")


async def test_capturing_more_than_authorised_is_declined(
    paypal: PayPalGateway, double: PayPalDouble
):
    reference = await authorized(paypal, double)
    await paypal.capture("o-1:capture:p-1", reference, D("60.00"))
    result = await paypal.capture("o-1:capture:p-2", reference, D("40.01"))
    assert (result.approved, result.decline_code) == (False, "amount_exceeds_authorization")
    assert len(double.captures_of(reference)) == 1


async def test_a_connection_refused_is_a_timeout(double: PayPalDouble):
    settings = settings_for(double).model_copy(update={"api_base": "http://127.0.0.1:9"})
    gateway = PayPalGateway(settings)
    with pytest.raises(GatewayTimeout):
        await gateway.capture("o-1:capture:p-1", "0VF52814937998046", D("1.00"))
    await gateway.aclose()


def _client_of(double: PayPalDouble):
    import base64

    import httpx

    class _Authed:
        async def __aenter__(self) -> httpx.AsyncClient:
            self.client = httpx.AsyncClient(base_url=double.base_url)
            basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            token = await self.client.post(
                "/v1/oauth2/token",
                content="grant_type=client_credentials",
                headers={
                    "Authorization": f"Basic {basic}",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            self.client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            return self.client

        async def __aexit__(self, *exc: object) -> None:
            await self.client.aclose()

    return _Authed()
