"""Availability sync back to the sales channels (`oms.channel.availability.v1`, keyed by SKU).

Inventory emits `AvailabilityChanged` (on `oms.inventory.events.v1`) with a SKU's new totals
whenever its available stock changes: reservations, releases, commits, stock adjustments,
restocks. For each of those, one `ChannelAvailabilityChanged` per channel goes out in the same
transaction (outbox): the SKU's available stock minus that channel's safety stock, never
below 0, so a channel stops selling before the last units are gone everywhere.

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

from services.inventory.kits.availability import kit_totals
from services.inventory.kits.domain import Kit
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
    sku: str, available: int, safety_stock: Mapping[str, int]
) -> list[ChannelAvailabilityChanged]:
    return [
        ChannelAvailabilityChanged(
            channel=channel,
            sku=sku,
            available=channel_available(available, held_back),
            safety_stock=held_back,
            warehouse_available=available,
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


async def _publish(uow: UnitOfWork, safety_stock: Mapping[str, int]) -> None:
    pending = uow.batch.pop(_PENDING) or {}
    for sku, (message, correlation, headers) in pending.items():
        uow.emit(message, key=sku, correlation_id=correlation, trace_headers=headers)
        for per_channel in channel_messages(sku, message.available, safety_stock):
            uow.emit(per_channel, key=sku, correlation_id=correlation, trace_headers=headers)


class Availability:
    """Announces stock changes to the channels, with each channel's safety stock."""

    def __init__(self, safety_stock: Mapping[str, int]) -> None:
        self._safety_stock = dict(safety_stock)

    async def announce(
        self,
        uow: UnitOfWork,
        store: InventoryStore,
        changes: Iterable[StockChange],
        *,
        correlation_id: str | None = None,
        levels: Sequence[StockLevel] | None = None,
        kits: Mapping[str, Kit] | None = None,
    ) -> None:
        """Publish the new totals of every SKU whose stock changed, and of every kit containing
        one, once per SKU per transaction. `levels`: every stock row of those SKUs as it is
        now, when the caller has them (else read); `kits`: every kit containing them, when the
        caller has them (else read)."""
        skus = {change.sku for change in changes}
        if not skus:
            return
        current = levels if levels is not None else await store.stock_levels(skus)
        changed = totals(level for level in current if level.sku in skus)
        changed.update(await kit_totals(uow.conn, skus, current, kits))  # kits of these SKUs
        for sku, total in changed.items():
            queue_availability(
                uow,
                AvailabilityChanged(
                    sku=sku,
                    on_hand=total.on_hand,
                    reserved=total.reserved,
                    available=total.available,
                ),
                self._safety_stock,
                correlation_id=correlation_id,
            )
