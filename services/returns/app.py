"""Wires the returns service: broker, subscribers, HTTP routes, lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.returns.settings import ReturnsSettings
from shared.platform.service import ServiceSpec, create_app, run
from shared.topics import ORDERS_EVENTS

MIGRATIONS = Path(__file__).with_name("migrations")


def build(settings: ReturnsSettings | None = None) -> ServiceSpec:
    settings = settings or ReturnsSettings()
    return ServiceSpec(
        settings=settings,
        title="Returns",
        description="Return authorisations, inspection, restock, refunds and exchanges.",
        migrations=MIGRATIONS,
        topics=(ORDERS_EVENTS,),
        handlers={},
    )


def build_app(settings: ReturnsSettings | None = None) -> FastAPI:
    return create_app(build(settings))


def main() -> None:
    run(build())
