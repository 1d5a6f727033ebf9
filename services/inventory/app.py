"""Wires the inventory service: broker, subscribers, HTTP routes, lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.inventory.availability.channels import Availability
from services.inventory.backorders.routes import router as backorders_router
from services.inventory.counts.routes import router as counts_router
from services.inventory.handlers import handlers
from services.inventory.incoming.routes import router as purchase_orders
from services.inventory.kits.routes import router as kits_router
from services.inventory.replenishment.routes import router as replenishment_router
from services.inventory.routing.routes import router as locations_router
from services.inventory.settings import InventorySettings
from services.inventory.stock.routes import router
from services.inventory.transfers.routes import router as transfers_router
from shared.platform.service import ServiceSpec, create_app
from shared.topics import INVENTORY_COMMANDS

MIGRATIONS = Path(__file__).with_name("migrations")


def build(settings: InventorySettings | None = None) -> ServiceSpec:
    settings = settings or InventorySettings()
    return ServiceSpec(
        settings=settings,
        title="Inventory",
        description="SKUs, stock per location, reservations and the stock ledger.",
        migrations=MIGRATIONS,
        topics=(INVENTORY_COMMANDS,),
        handlers=handlers(
            Availability.from_settings(settings),
            settings.routing.policy(),
        ),
        routers=[
            router,
            locations_router,
            purchase_orders,
            transfers_router,
            counts_router,
            replenishment_router,
            kits_router,
            backorders_router,
        ],
    )


def build_app(settings: InventorySettings | None = None) -> FastAPI:
    return create_app(build(settings))
