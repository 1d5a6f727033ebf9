"""Wires the payment service: broker, subscribers, HTTP routes, lifespan."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI

from services.payment.api import router
from services.payment.gateways.base import PaymentGateway
from services.payment.gateways.registry import TEST_GATEWAY, GatewayRegistry, check_routes
from services.payment.handlers import PaymentHandlers
from services.payment.settings import PaymentSettings
from services.payment.webhook_routes import router as webhook_router
from shared.platform.service import BackgroundJob, Runtime, ServiceSpec, create_app
from shared.topics import PAYMENT_COMMANDS

MIGRATIONS = Path(__file__).with_name("migrations")


def build(
    settings: PaymentSettings | None = None, *, gateway: PaymentGateway | None = None
) -> ServiceSpec:
    settings = settings or PaymentSettings()
    refuse_unsafe_gateway(settings)
    check_routes(settings)
    spec = ServiceSpec(
        settings=settings,
        title="Payment",
        description="Authorises, captures, voids and refunds through a gateway.",
        migrations=MIGRATIONS,
        topics=(PAYMENT_COMMANDS,),
        routers=[router, webhook_router],
    )
    # Gateways read the settings when first used, from the spec: they may be replaced
    # (pointed at another database) between build() and start, as the component tests do.
    # `gateway` (tests) answers for every route.
    gateways = GatewayRegistry(lambda: spec.settings_as(PaymentSettings), override=gateway)
    spec.handlers = PaymentHandlers(gateways).registry()
    spec.background = [_closes_on_shutdown(gateways)]
    return spec


class UnsafeConfiguration(RuntimeError):
    pass


def refuse_unsafe_gateway(settings: PaymentSettings) -> None:
    """The test gateway approves any card token: never in production by accident, whichever
    route (default, method, channel, currency) names it."""
    if settings.env != "production" or settings.allow_test_gateway_in_production:
        return
    routes = settings.payment_gateways
    named = [
        *(["default"] if routes.default == TEST_GATEWAY else []),
        *(f"by_method.{k}" for k, v in sorted(routes.by_method.items()) if v == TEST_GATEWAY),
        *(f"by_channel.{k}" for k, v in sorted(routes.by_channel.items()) if v == TEST_GATEWAY),
        *(f"by_currency.{k}" for k, v in sorted(routes.by_currency.items()) if v == TEST_GATEWAY),
    ]
    if named:
        raise UnsafeConfiguration(
            f"OMS_ENV=production with the test payment gateway on {', '.join(named)} of"
            " OMS_PAYMENT_GATEWAYS (it approves any card): route those to a real gateway"
            ' (e.g. {"default": "stripe"}), or set OMS_ALLOW_TEST_GATEWAY_IN_PRODUCTION=true'
            " on purpose"
        )


def _closes_on_shutdown(gateways: GatewayRegistry) -> BackgroundJob:
    async def payment_gateway(_: Runtime) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await gateways.aclose()

    return payment_gateway


def build_app(settings: PaymentSettings | None = None) -> FastAPI:
    return create_app(build(settings))
