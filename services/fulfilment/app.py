"""Wires the fulfilment service: broker, subscribers, HTTP routes, lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.fulfilment.api import router
from services.fulfilment.carriers.registry import start_carriers
from services.fulfilment.handlers import handlers
from services.fulfilment.packing.routes import router as packing_router
from services.fulfilment.partners import deadlines, dispatch
from services.fulfilment.partners.routes import router as partners_router
from services.fulfilment.picking.routes import router as picking_router
from services.fulfilment.settings import FulfilmentSettings
from services.fulfilment.warehouse.routes import router as warehouse_router
from shared.platform.service import ServiceSpec, create_app
from shared.topics import FULFILMENT_COMMANDS

MIGRATIONS = Path(__file__).with_name("migrations")


def build(settings: FulfilmentSettings | None = None) -> ServiceSpec:
    settings = settings or FulfilmentSettings()
    return ServiceSpec(
        settings=settings,
        title="Fulfilment",
        description="Fulfilment orders per location; the warehouse floor (locations, bins, pick lists,"
        " packing, labels); shipping and delivery tracking.",
        migrations=MIGRATIONS,
        topics=(FULFILMENT_COMMANDS,),
        handlers=handlers(),
        routers=[router, warehouse_router, picking_router, packing_router, partners_router],
        on_start=[start_carriers],
        background=[dispatch.dispatch_sender(settings), deadlines.deadline_sweeper(settings)],
    )


def build_app(settings: FulfilmentSettings | None = None) -> FastAPI:
    return create_app(build(settings))
