"""Wires the payment service: broker, subscribers, HTTP routes, lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.payment.settings import PaymentSettings
from shared.platform.service import ServiceSpec, create_app, run
from shared.topics import PAYMENT_COMMANDS

MIGRATIONS = Path(__file__).with_name("migrations")


def build(settings: PaymentSettings | None = None) -> ServiceSpec:
    settings = settings or PaymentSettings()
    return ServiceSpec(
        settings=settings,
        title="Payment",
        description="Authorises, captures, voids and refunds through a gateway.",
        migrations=MIGRATIONS,
        topics=(PAYMENT_COMMANDS,),
        handlers={},
    )


def build_app(settings: PaymentSettings | None = None) -> FastAPI:
    return create_app(build(settings))


def main() -> None:
    run(build())
