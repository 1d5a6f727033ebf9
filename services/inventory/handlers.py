"""Every handler of inventory's command topic, registered in one place."""

from __future__ import annotations

from services.inventory.availability.channels import Availability
from services.inventory.routing.domain import RoutingPolicy
from services.inventory.routing.router import Router
from services.inventory.stock.commands import StockCommands
from services.inventory.stock.returned import ReturnedStockCommands
from services.inventory.stock.short_picks import ShortPickCommands
from shared.contracts.order_intake import (
    CommitStock,
    ReallocateStock,
    ReleaseStock,
    ReserveStock,
    WriteOffShortPick,
)
from shared.contracts.returns import RestockReturnedItems, WriteOffReturnedItems
from shared.platform.handlers import HandlerRegistry


def handlers(availability: Availability, routing: RoutingPolicy | None = None) -> HandlerRegistry:
    """Inventory's handlers: the order saga's stock commands (short picks too) and the returns
    saga's; `routing` decides where orders ship from (the default rule when None)."""
    stock = StockCommands(availability, Router(routing))
    short = ShortPickCommands(availability)
    returned = ReturnedStockCommands(availability)
    registry = HandlerRegistry()
    registry.register(stock.reserve, ReserveStock)
    registry.register(stock.release, ReleaseStock)
    registry.register(stock.commit, CommitStock)
    registry.register(short.reallocate, ReallocateStock)
    registry.register(short.write_off, WriteOffShortPick)
    registry.register(returned.restock, RestockReturnedItems)
    registry.register(returned.write_off, WriteOffReturnedItems)
    return registry
