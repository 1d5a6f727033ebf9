"""Wires the returns service: broker, subscribers, HTTP routes, lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.returns import api
from services.returns.handlers import deadline_scheduler, handlers, timings_from
from services.returns.settings import ReturnsSettings
from shared.platform.service import ServiceSpec, create_app
from shared.topics import INVENTORY_EVENTS, ORDERS_EVENTS, PAYMENT_EVENTS

MIGRATIONS = Path(__file__).with_name("migrations")


def build(settings: ReturnsSettings | None = None) -> ServiceSpec:
    settings = settings or ReturnsSettings()
    return ServiceSpec(
        settings=settings,
        title="Returns",
        description="Return authorisations, inspection, restock, refunds and exchanges.",
        migrations=MIGRATIONS,
        topics=(ORDERS_EVENTS, INVENTORY_EVENTS, PAYMENT_EVENTS),
        handlers=handlers(timings_from(settings)),
        routers=[api.router],
        background=[deadline_scheduler(settings)],
    )


def build_app(settings: ReturnsSettings | None = None) -> FastAPI:
    return create_app(build(settings))
