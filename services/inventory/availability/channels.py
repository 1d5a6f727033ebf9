"""Availability sync back to the sales channels (`oms.channel.availability.v1`, keyed by SKU).

Inventory emits `AvailabilityChanged` (on `oms.inventory.events.v1`) with a SKU's new totals
whenever its available stock changes: reservations, releases, commits, stock adjustments,
restocks, backorders queued or filled. For each of those, one `ChannelAvailabilityChanged` per
channel goes out in the same transaction (outbox): the SKU's available to promise (on hand less
reserved less the demand queued in backorders, plus what is incoming for SKUs that may be
backordered) minus that channel's safety stock, never below 0, so a channel stops selling before
the last units are gone everywhere.

Stock that becomes available of a SKU with backorders waiting goes to them first: `announce`
fills the queues (services/inventory/backorders) before it reads the totals. The same call runs
replenishment's low-stock check, and each channel's safety stock is the SKU's own for the
channel when set (see replenishment).

A kit's availability is derived from its components' (services/inventory/kits): it is announced
the same way whenever one of its components' stock changes.

Every path that changes stock (handlers, HTTP API, returns) calls `Availability.announce` (one
per service, with the configured safety stock, passed to whoever needs it), which queues the
SKU's new totals (`queue_availability`); the messages are written once, just before the
transaction commits. A consumer batch shares one
transaction: when a later message of the batch changes the same SKU again, only the latest
totals go out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from services.inventory.backorders import service as backorders
from services.inventory.backorders.domain import SkuDemand, available_to_promise
from services.inventory.kits.availability import kit_totals
from services.inventory.kits.domain import Kit
from services.inventory.replenishment.watcher import LowStockWatcher, channel_safety_stock
from services.inventory.settings import InventorySettings
from services.inventory.stock.domain import Availability as Totals
from services.inventory.stock.domain import StockChange, StockLevel, totals
from services.inventory.stock.store import InventoryStore
from shared.contracts.inventory import AvailabilityChanged, ChannelAvailabilityChanged
from shared.platform.batch import BatchKey
from shared.platform.outbox import UnitOfWork
from shared.platform.telemetry import current_trace_headers


def channel_available(available: int, safety_stock: int) -> int:
    """What a channel may sell: the available stock less its safety stock, never below 0."""
    return max(0, available - max(0, safety_stock))


def channel_messages(
    sku: str,
    available: int,
    safety_stock: Mapping[str, int],
    *,
    warehouse_available: int | None = None,
) -> list[ChannelAvailabilityChanged]:
    """One message per channel: `available` (what may be promised) less its safety stock."""
    return [
        ChannelAvailabilityChanged(
            channel=channel,
            sku=sku,
            available=channel_available(available, held_back),
            safety_stock=held_back,
            warehouse_available=available if warehouse_available is None else warehouse_available,
        )
        for channel, held_back in sorted(safety_stock.items())
    ]


# Per SKU: its latest totals, the correlation id and the trace of the change.
_PENDING = BatchKey[dict[str, tuple[AvailabilityChanged, str | None, dict[str, str]]]](
    "inventory.availability"
)


def queue_availability(
    uow: UnitOfWork,
    message: AvailabilityChanged,
    safety_stock: Mapping[str, int],
    *,
    correlation_id: str | None = None,
) -> None:
    """Announce a SKU's new totals when the transaction commits: once per SKU per transaction
    (a later change of the SKU in the same consumer batch replaces an earlier one), with one
    `ChannelAvailabilityChanged` per channel, in the trace of the change."""
    correlation = correlation_id or (uow.cause.correlation_id if uow.cause else None)
    pending = uow.batch.setdefault(_PENDING, {})
    pending[message.sku] = (message, correlation, current_trace_headers())
    uow.before_commit(_PENDING, lambda: _publish(uow, safety_stock))


def queue_stock_totals(uow: UnitOfWork, total: Totals, safety_stock: Mapping[str, int]) -> None:
    """Announce a SKU's stock totals alone, without its backorder demand, correlated by the
    SKU: for a change of what the channels may sell of it that moved no stock (a kit defined, a
    safety stock set)."""
    queue_availability(
        uow,
        AvailabilityChanged(
            sku=total.sku, on_hand=total.on_hand, reserved=total.reserved, available=total.available
        ),
        safety_stock,
        correlation_id=total.sku,
    )


async def _publish(uow: UnitOfWork, safety_stock: Mapping[str, int]) -> None:
    pending = uow.batch.pop(_PENDING) or {}
    per_sku = await channel_safety_stock(uow, pending, safety_stock) if pending else {}
    for sku, (message, correlation, headers) in pending.items():
        uow.emit(message, key=sku, correlation_id=correlation, trace_headers=headers)
        promise = message.available_to_promise
        sellable = message.available if promise is None else promise
        for per_channel in channel_messages(
            sku, sellable, per_sku[sku], warehouse_available=message.available
        ):
            uow.emit(per_channel, key=sku, correlation_id=correlation, trace_headers=headers)


class Availability:
    """Announces stock changes to the channels, with each channel's safety stock, and has
    them checked for low stock."""

    def __init__(
        self, safety_stock: Mapping[str, int], low_stock: LowStockWatcher | None = None
    ) -> None:
        self._safety_stock = dict(safety_stock)
        self._low_stock = low_stock or LowStockWatcher()

    @classmethod
    def from_settings(cls, settings: InventorySettings) -> Availability:
        """The configured safety stock per channel and low-stock watcher."""
        return cls(settings.channel_safety_stock, LowStockWatcher.from_settings(settings))

    async def announce(
        self,
        uow: UnitOfWork,
        store: InventoryStore,
        changes: Iterable[StockChange],
        *,
        correlation_id: str | None = None,
        levels: Sequence[StockLevel] | None = None,
        skus: Iterable[str] = (),
        demand: Mapping[str, SkuDemand] | None = None,
        kits: Mapping[str, Kit] | None = None,
    ) -> None:
        """Serve the backorder queues of SKUs the changes made stock available of, then
        publish the new totals of every SKU whose stock changed (and of `skus`, whose queued
        demand did), once per SKU per transaction. `levels`: every stock row of those SKUs as
        it is now, when the caller has them (else read); `demand`: the SKUs' backorder demand,
        when the caller read it and the change did not alter it; `kits`: every kit containing
        them, when the caller has them (else read) — a kit's totals are derived from its
        components' and announced with them."""
        changes = list(changes)
        announced = {change.sku for change in changes} | set(skus)
        if not announced:
            return
        if demand is None:
            demand = await backorders.demand(uow, announced)
        freed = {c.sku for c in changes if c.on_hand_delta - c.reserved_delta > 0}
        to_fill = [sku for sku in sorted(freed) if sku in demand and demand[sku].queued > 0]
        filled = await backorders.fill_queues(uow, store, to_fill, demand) if to_fill else []
        if filled:
            levels = None
            demand = await backorders.demand(uow, announced)
        current = levels if levels is not None else await store.stock_levels(announced)
        changes.extend(filled)
        stocked = totals(level for level in current if level.sku in announced)
        stocked.update(await kit_totals(uow.conn, announced, current, kits))
        for sku in sorted(announced | set(stocked)):
            total = stocked.get(sku, Totals(sku, 0, 0))
            sku_demand = demand.get(sku, SkuDemand(sku))
            queue_availability(
                uow,
                AvailabilityChanged(
                    sku=sku,
                    on_hand=total.on_hand,
                    reserved=total.reserved,
                    available=total.available,
                    backordered=sku_demand.queued,
                    incoming=sku_demand.incoming,
                    available_to_promise=available_to_promise(
                        total.on_hand, total.reserved, sku_demand
                    ),
                ),
                self._safety_stock,
                correlation_id=correlation_id,
            )
        self._low_stock.observe(
            uow, ((c.sku, c.location) for c in changes), current, correlation_id=correlation_id
        )
