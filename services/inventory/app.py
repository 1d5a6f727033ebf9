"""Wires the inventory service: broker, subscribers, HTTP routes, lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.inventory import channel_availability
from services.inventory.api import router
from services.inventory.handlers import commit_stock, release_stock, reserve_stock
from services.inventory.returns_handlers import restock_returned_items, write_off_returned_items
from services.inventory.settings import InventorySettings
from shared.contracts.order_intake import CommitStock, ReleaseStock, ReserveStock
from shared.contracts.returns import RestockReturnedItems, WriteOffReturnedItems
from shared.platform.service import ServiceSpec, create_app, run
from shared.topics import INVENTORY_COMMANDS

MIGRATIONS = Path(__file__).with_name("migrations")


def build(settings: InventorySettings | None = None) -> ServiceSpec:
    settings = settings or InventorySettings()
    channel_availability.configure(settings.channel_safety_stock)
    return ServiceSpec(
        settings=settings,
        title="Inventory",
        description="SKUs, stock per location, reservations and the stock ledger.",
        migrations=MIGRATIONS,
        topics=(INVENTORY_COMMANDS,),
        handlers={
            ReserveStock.TYPE: reserve_stock,
            ReleaseStock.TYPE: release_stock,
            CommitStock.TYPE: commit_stock,
            RestockReturnedItems.TYPE: restock_returned_items,
            WriteOffReturnedItems.TYPE: write_off_returned_items,
        },
        routers=[router],
    )


def build_app(settings: InventorySettings | None = None) -> FastAPI:
    return create_app(build(settings))


def main() -> None:
    run(build())
