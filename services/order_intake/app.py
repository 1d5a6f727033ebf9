"""Wires the order_intake service: broker, subscribers, HTTP routes, lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.order_intake import api
from services.order_intake.handlers import deadline_scheduler, handlers, policy_from
from services.order_intake.settings import OrderIntakeSettings
from shared.platform.service import ServiceSpec, create_app, run
from shared.topics import FULFILMENT_EVENTS, INVENTORY_EVENTS, PAYMENT_EVENTS

MIGRATIONS = Path(__file__).with_name("migrations")


def build(settings: OrderIntakeSettings | None = None) -> ServiceSpec:
    settings = settings or OrderIntakeSettings()
    policy = policy_from(settings)
    return ServiceSpec(
        settings=settings,
        title="Order intake",
        description="Receives orders from every channel and orchestrates the order saga.",
        migrations=MIGRATIONS,
        topics=(INVENTORY_EVENTS, PAYMENT_EVENTS, FULFILMENT_EVENTS),
        handlers=handlers(policy),
        routers=[api.router],
        background=[deadline_scheduler(settings)],
    )


def build_app(settings: OrderIntakeSettings | None = None) -> FastAPI:
    return create_app(build(settings))


def main() -> None:
    run(build())
