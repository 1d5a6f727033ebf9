"""Wires the payment service: broker, subscribers, HTTP routes, lifespan."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI

from services.payment.api import router
from services.payment.gateway import PaymentGateway, RetryingGateway, make_gateway, retry_policy
from services.payment.handlers import PaymentHandlers
from services.payment.settings import PaymentSettings
from shared.platform.service import BackgroundJob, Runtime, ServiceSpec, create_app
from shared.topics import PAYMENT_COMMANDS

MIGRATIONS = Path(__file__).with_name("migrations")


def build(
    settings: PaymentSettings | None = None, *, gateway: PaymentGateway | None = None
) -> ServiceSpec:
    settings = settings or PaymentSettings()
    refuse_unsafe_gateway(settings)
    spec = ServiceSpec(
        settings=settings,
        title="Payment",
        description="Authorises, captures, voids and refunds through a gateway.",
        migrations=MIGRATIONS,
        topics=(PAYMENT_COMMANDS,),
        routers=[router],
    )
    # The gateway reads the settings when first used, from the spec: they may be replaced
    # (pointed at another database) between build() and start, as the component tests do.
    chosen = gateway or make_gateway(lambda: spec.settings_as(PaymentSettings))
    spec.handlers = PaymentHandlers(RetryingGateway(chosen, retry_policy(settings))).registry()
    spec.background = [_closes_on_shutdown(chosen)]
    return spec


class UnsafeConfiguration(RuntimeError):
    pass


def refuse_unsafe_gateway(settings: PaymentSettings) -> None:
    """The test gateway approves any card token: never in production by accident."""
    if (
        settings.env == "production"
        and settings.gateway == "test"
        and not settings.allow_test_gateway_in_production
    ):
        raise UnsafeConfiguration(
            "OMS_ENV=production with the test payment gateway (it approves any card): configure"
            " a real gateway, or set OMS_ALLOW_TEST_GATEWAY_IN_PRODUCTION=true on purpose"
        )


def _closes_on_shutdown(gateway: PaymentGateway) -> BackgroundJob:
    async def payment_gateway(_: Runtime) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await gateway.aclose()

    return payment_gateway


def build_app(settings: PaymentSettings | None = None) -> FastAPI:
    return create_app(build(settings))
