"""Money in Stripe's minor units, the choice of gateway per method, channel and currency, and
the production check over every route."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.payment.app import UnsafeConfiguration, build, refuse_unsafe_gateway
from services.payment.gateways.amounts import (
    AmountNotRepresentable,
    from_minor_units,
    to_minor_units,
)
from services.payment.gateways.registry import FACTORIES, UnknownGateway
from services.payment.gateways.routing import choose_gateway
from services.payment.settings import GatewayRoutes, PaymentSettings

D = Decimal


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("12.34", "USD", 1234),
        ("12.3", "eur", 1230),
        ("0.01", "GBP", 1),
        ("1234", "JPY", 1234),
        ("1234.00", "JPY", 1234),
        ("5000", "KRW", 5000),
        ("12.340", "KWD", 12340),
        ("1500", "ISK", 150000),
    ],
)
def test_amounts_in_minor_units(amount: str, currency: str, minor: int) -> None:
    assert to_minor_units(D(amount), currency) == minor
    assert from_minor_units(minor, currency) == D(amount)


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("12.345", "USD"), ("10.5", "JPY"), ("12.345", "KWD"), ("1500.50", "ISK")],
)
def test_an_amount_finer_than_the_currency_is_refused_never_rounded(
    amount: str, currency: str
) -> None:
    with pytest.raises(AmountNotRepresentable):
        to_minor_units(D(amount), currency)


ROUTES = GatewayRoutes(
    default="test",
    by_currency={"usd": "stripe"},
    by_channel={"web": "stripe", "amazon": "test"},
    by_method={"paypal": "paypal"},
)


@pytest.mark.parametrize(
    ("method", "channel", "currency", "chosen"),
    [
        ("card", None, "EUR", "test"),  # nothing matches: the default
        ("card", None, "USD", "stripe"),  # by currency (keys are upper-cased)
        ("card", "web", "EUR", "stripe"),  # by channel
        ("card", "amazon", "USD", "test"),  # channel before currency
        ("paypal", "web", "USD", "paypal"),  # method before channel and currency
    ],
)
def test_the_gateway_is_chosen_by_method_then_channel_then_currency(
    method: str, channel: str | None, currency: str, chosen: str
) -> None:
    assert choose_gateway(ROUTES, method=method, channel=channel, currency=currency) == chosen


def test_routes_come_from_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "OMS_PAYMENT_GATEWAYS", '{"default": "stripe", "by_currency": {"jpy": "test"}}'
    )
    routes = PaymentSettings().payment_gateways
    assert (routes.default, routes.by_currency) == ("stripe", {"JPY": "test"})
    monkeypatch.setenv("OMS_PAYMENT_GATEWAYS", '{"defualt": "stripe"}')
    with pytest.raises(ValidationError):
        PaymentSettings()


def test_a_route_to_an_unknown_gateway_fails_the_start() -> None:
    assert {"test", "stripe"} <= set(FACTORIES)
    with pytest.raises(UnknownGateway, match="'stripey'"):
        build(PaymentSettings(payment_gateways=GatewayRoutes(by_channel={"web": "stripey"})))


@pytest.mark.parametrize(
    ("routes", "named"),
    [
        (GatewayRoutes(), "default"),
        (GatewayRoutes(default="stripe", by_currency={"JPY": "test"}), "by_currency.JPY"),
        (GatewayRoutes(default="stripe", by_channel={"web": "test"}), "by_channel.web"),
        (GatewayRoutes(default="stripe", by_method={"card": "test"}), "by_method.card"),
    ],
)
def test_production_refuses_the_test_gateway_on_any_route(
    routes: GatewayRoutes, named: str
) -> None:
    with pytest.raises(UnsafeConfiguration, match=f"test payment gateway on {named}"):
        refuse_unsafe_gateway(PaymentSettings(env="production", payment_gateways=routes))
    refuse_unsafe_gateway(
        PaymentSettings(
            env="production", payment_gateways=routes, allow_test_gateway_in_production=True
        )
    )
    refuse_unsafe_gateway(PaymentSettings(env="development", payment_gateways=routes))


def test_production_with_stripe_on_every_route_starts() -> None:
    settings = PaymentSettings(
        env="production",
        payment_gateways=GatewayRoutes(default="stripe", by_currency={"JPY": "stripe"}),
    )
    refuse_unsafe_gateway(settings)
    with pytest.raises(UnsafeConfiguration):
        build(settings.model_copy(update={"payment_gateways": GatewayRoutes()}))


def test_paypal_is_a_known_gateway_and_needs_its_credentials() -> None:
    from pydantic import SecretStr

    from services.payment.gateways.paypal_gateway import PayPalGateway
    from services.payment.gateways.registry import FACTORIES, check_routes
    from services.payment.settings import PaymentSettings

    settings = PaymentSettings.model_validate(
        {"payment_gateways": {"default": "test", "by_method": {"paypal": "paypal"}}}
    )
    check_routes(settings)  # paypal is known
    with pytest.raises(ValueError, match="OMS_PAYPAL_CLIENT_ID"):
        FACTORIES["paypal"](lambda: settings)
    configured = settings.model_copy(
        update={"paypal_client_id": "app", "paypal_client_secret": SecretStr("s3cret")}
    )
    assert isinstance(FACTORIES["paypal"](lambda: configured), PayPalGateway)
