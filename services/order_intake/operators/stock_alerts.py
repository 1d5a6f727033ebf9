"""Operator alerts about stock: inventory's LowStock (a SKU at a location fell to its reorder
point, once per crossing) relayed as an `OperatorStockAlert` on the notifications topic, which
order-intake writes for every service. A redelivered LowStock is dropped by the inbox."""

from __future__ import annotations

from shared.contracts.inventory import LowStock
from shared.contracts.order_intake import OperatorStockAlert
from shared.envelope import Envelope
from shared.platform.consumer import Handler
from shared.platform.outbox import UnitOfWork


def low_stock_message(event: LowStock) -> str:
    cover = (
        "nothing shipped from there lately"
        if event.days_of_cover is None
        else f"{event.days_of_cover:g} days of cover at {event.velocity_per_day:g} a day"
    )
    return (
        f"{event.sku} is low at {event.location}: {event.available} available, reorder point"
        f" {event.reorder_point} ({event.reorder_point_source}), {cover}"
    )


async def on_low_stock(uow: UnitOfWork, envelope: Envelope, event: LowStock) -> None:
    uow.emit(
        OperatorStockAlert(
            kind="low_stock",
            sku=event.sku,
            location=event.location,
            message=low_stock_message(event),
        ),
        key=event.sku,
    )


def stock_alert_handlers() -> dict[str, Handler]:
    return {LowStock.TYPE: on_low_stock}
