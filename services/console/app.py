"""Wires the console: its pages, sign-in, the reporting projection and its read model."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.console.auth import oidc
from services.console.auth import routes as auth_routes
from services.console.reporting import routes as kpi_routes
from services.console.reporting.projection import TOPICS as REPORTING_TOPICS
from services.console.reporting.projection import reporting_handlers
from services.console.settings import ConsoleSettings
from services.console.web import dead_letters, orders, pages, returns, stock, warehouse
from shared.platform.service import ServiceSpec, create_app

MIGRATIONS = Path(__file__).with_name("migrations")


def build(settings: ConsoleSettings | None = None) -> ServiceSpec:
    settings = settings or ConsoleSettings()
    return ServiceSpec(
        settings=settings,
        title="Operator console",
        description="Web pages for operators and the KPI read model fed by the services' events.",
        migrations=MIGRATIONS,
        topics=REPORTING_TOPICS,
        handlers=reporting_handlers(),
        routers=[
            auth_routes.router,
            oidc.router,
            pages.router,
            orders.router,
            dead_letters.router,
            stock.router,
            warehouse.router,
            returns.router,
            kpi_routes.router,
            kpi_routes.api_router,
        ],
        configure_app=[oidc.configure(settings), pages.configure(settings)],
    )


def build_app(settings: ConsoleSettings | None = None) -> FastAPI:
    return create_app(build(settings))
