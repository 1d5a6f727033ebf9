"""What replenishment does on every stock change (called from `Availability.announce`, which
every path that changes stock calls), just before the transaction commits, once per SKU and
location per transaction (a consumer batch shares one):

- the channels' safety stock of each announced SKU: its overrides, else the channel defaults;
- the low-stock check of each changed (sku, location) that has reorder settings: `LowStock`
  when its available stock reaches the reorder point, `StockRecovered` when it is back above
  the point plus the recovery margin. The state is kept in `reorder_settings.low_since` and
  changed by a conditional UPDATE, so a crossing is announced once, also under concurrent
  transactions or a redelivered command.

Both read the SKUs' overrides and reorder settings with one query per transaction (no row for
most SKUs); only watched locations cost a second one (their units shipped, for the velocity).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from services.inventory.replenishment.domain import (
    NO_SALES,
    Crossing,
    ReorderRule,
    crossing,
    days_of_cover,
    effective_safety_stock,
    point_source,
    reorder_point,
)
from services.inventory.replenishment.store import (
    Pair,
    ReorderSettings,
    ReplenishmentStore,
    SkuReplenishment,
    Transition,
)
from services.inventory.settings import InventorySettings
from services.inventory.stock.domain import StockLevel
from shared.contracts.inventory import LowStock, StockRecovered
from shared.platform.batch import BatchKey
from shared.platform.outbox import UnitOfWork
from shared.platform.telemetry import current_trace_headers

_NOTHING = SkuReplenishment()

# Per SKU, what the transaction read of its overrides and reorder settings.
_LOADED = BatchKey[dict[str, SkuReplenishment]]("inventory.replenishment.loaded")
# Per changed (sku, location): its latest stock level, the correlation id and the trace.
_CHANGED = BatchKey[dict[Pair, tuple[StockLevel, str | None, dict[str, str]]]](
    "inventory.replenishment.changed"
)


async def replenishment_of(uow: UnitOfWork, skus: Iterable[str]) -> dict[str, SkuReplenishment]:
    """The SKUs' overrides and reorder settings, read once per transaction."""
    wanted = set(skus)
    loaded = uow.batch.setdefault(_LOADED, {})
    missing = wanted - loaded.keys()
    if missing:
        found = await ReplenishmentStore(uow.conn).for_skus(missing)
        loaded.update({sku: found.get(sku, _NOTHING) for sku in missing})
    return {sku: loaded[sku] for sku in wanted}


async def channel_safety_stock(
    uow: UnitOfWork, skus: Iterable[str], defaults: Mapping[str, int]
) -> dict[str, dict[str, int]]:
    """Per SKU, each channel's safety stock: the SKU's override, else the channel default."""
    found = await replenishment_of(uow, skus)
    return {
        sku: effective_safety_stock(defaults, entry.safety_stock) for sku, entry in found.items()
    }


@dataclass(frozen=True)
class LowStockWatcher:
    """Checks changed stock against reorder points; the defaults fill in settings left out."""

    lead_time_days: int = 7
    cover_days: int = 14
    recovery_margin_percent: int = 10

    @classmethod
    def from_settings(cls, settings: InventorySettings) -> LowStockWatcher:
        return cls(
            settings.replenishment_lead_time_days,
            settings.replenishment_cover_days,
            settings.low_stock_recovery_margin_percent,
        )

    def rule(self, settings: ReorderSettings | None) -> ReorderRule:
        """The reorder rule of a (sku, location): its settings, the defaults where left out
        (no settings at all: the reorder point comes from the velocity)."""
        if settings is None:
            return ReorderRule(self.lead_time_days, self.cover_days)
        return ReorderRule(
            lead_time_days=_or(settings.lead_time_days, self.lead_time_days),
            cover_days=_or(settings.cover_days, self.cover_days),
            safety_units=settings.safety_units,
            reorder_point=settings.reorder_point,
        )

    def observe(
        self,
        uow: UnitOfWork,
        changed: Iterable[Pair],
        levels: Iterable[StockLevel],
        *,
        correlation_id: str | None = None,
    ) -> None:
        """Check the changed (sku, location)s at their latest `levels` before the commit."""
        changed = set(changed)
        correlation = correlation_id or (uow.cause.correlation_id if uow.cause else None)
        pending = uow.batch.setdefault(_CHANGED, {})
        headers = current_trace_headers()
        for level in levels:
            if (level.sku, level.location) in changed:
                pending[(level.sku, level.location)] = (level, correlation, headers)
        uow.before_commit(_CHANGED, lambda: self._check(uow))

    async def _check(self, uow: UnitOfWork) -> None:
        pending = uow.batch.pop(_CHANGED) or {}
        found = await replenishment_of(uow, {sku for sku, _ in pending})
        watched = {
            (sku, location): found[sku].reorder[location]
            for sku, location in pending
            if location in found[sku].reorder
        }
        if not watched:
            return
        store = ReplenishmentStore(uow.conn)
        shipped = await store.shipped(watched)
        messages: dict[Pair, LowStock | StockRecovered] = {}
        for pair, settings in sorted(watched.items()):
            level = pending[pair][0]
            rule = self.rule(settings)
            velocity = shipped.get(pair, NO_SALES)
            point = reorder_point(rule, velocity)
            change = crossing(
                is_low=settings.low_since is not None,
                available=level.available,
                point=point,
                margin_percent=self.recovery_margin_percent,
            )
            if change is Crossing.LOW:
                messages[pair] = LowStock(
                    sku=level.sku,
                    location=level.location,
                    on_hand=level.on_hand,
                    reserved=level.reserved,
                    available=level.available,
                    reorder_point=point,
                    reorder_point_source=point_source(rule),
                    velocity_per_day=round(float(velocity.per_day), 2),
                    days_of_cover=days_of_cover(level.available, velocity),
                )
            elif change is Crossing.RECOVERED:
                messages[pair] = StockRecovered(
                    sku=level.sku,
                    location=level.location,
                    available=level.available,
                    reorder_point=point,
                )
        recorded = await store.record_transitions(
            [
                Transition(sku, location, isinstance(message, LowStock), message.reorder_point)
                for (sku, location), message in messages.items()
            ]
        )
        loaded = uow.batch.get(_LOADED) or {}
        for pair, message in messages.items():
            if pair not in recorded:
                continue  # another transaction announced this crossing first
            loaded.pop(pair[0], None)  # its state changed: read again if the transaction goes on
            _, correlation, headers = pending[pair]
            uow.emit(
                message,
                key=pair[0],
                correlation_id=correlation or pair[0],
                trace_headers=headers,
            )


def _or(value: int | None, default: int) -> int:
    return default if value is None else value
