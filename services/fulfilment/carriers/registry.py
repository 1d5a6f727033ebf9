"""The carriers a running fulfilment service offers, built from its settings at start."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends

from services.fulfilment.carriers.base import Carrier, ParcelSpec, Rate
from services.fulfilment.carriers.easypost import EasyPostCarrier
from services.fulfilment.carriers.table_rate import TableRateCarrier, load_table_rate_config
from services.fulfilment.packing import store as parcels
from services.fulfilment.settings import FulfilmentSettings
from shared.platform.service import Runtime, RuntimeDep


class PostgresTrackingNumberAllocator:
    """`TrackingNumberAllocator` on fulfilment's `issued_tracking_numbers` table; each call is
    its own short transaction (a label is bought outside the action's transaction)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def next_index(self, range_key: str, parcel_reference: str) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            return await parcels.tracking_index(conn, range_key, parcel_reference)


class UnknownCarrier(Exception):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(f"no carrier {name!r}; configured: {', '.join(known) or 'none'}")
        self.name = name


@dataclass(frozen=True)
class Quote:
    plugin: Carrier
    rate: Rate


class Carriers:
    def __init__(self, carriers: Sequence[Carrier]) -> None:
        self._by_name = {c.name: c for c in carriers}

    @property
    def names(self) -> list[str]:
        return sorted(self._by_name)

    def get(self, name: str) -> Carrier:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownCarrier(name, self.names) from None

    def plugin_for(self, carrier: str) -> Carrier:
        """The plug-in that bought a label of `carrier` (an aggregator's labels name the
        carrier behind it): the plug-in of that name, else the one aggregator configured."""
        if carrier in self._by_name:
            return self._by_name[carrier]
        aggregators = [c for name, c in self._by_name.items() if name == "easypost"]
        if not aggregators:
            raise UnknownCarrier(carrier, self.names)
        return aggregators[0]

    def chosen(self, name: str | None) -> list[Carrier]:
        """One named carrier, or all of them (rate shopping across carriers)."""
        return [self.get(name)] if name else list(self._by_name.values())

    async def quotes(self, name: str | None, parcel: ParcelSpec) -> list[Quote]:
        """Rates of one carrier plug-in or all, each with the plug-in that buys it (an
        aggregator's rates name the carrier behind it, not the plug-in)."""
        found: list[Quote] = []
        for carrier in self.chosen(name):
            found.extend(Quote(carrier, rate) for rate in await carrier.rates(parcel))
        return found


def build_carriers(settings: FulfilmentSettings, pool: asyncpg.Pool) -> Carriers:
    secret = settings.table_rate_webhook_secret
    carriers: list[Carrier] = [
        TableRateCarrier(
            load_table_rate_config(settings.table_rate_config_file),
            PostgresTrackingNumberAllocator(pool),
            webhook_secret=secret.get_secret_value() if secret else None,
        )
    ]
    if settings.easypost_api_key is not None:
        webhook = settings.easypost_webhook_secret
        if webhook is None:
            raise ValueError("OMS_EASYPOST_WEBHOOK_SECRET: EasyPost needs its webhook secret too")
        carriers.append(
            EasyPostCarrier(
                settings.easypost_api_key.get_secret_value(),
                webhook.get_secret_value(),
                api_base=settings.easypost_api_base,
            )
        )
    return Carriers(carriers)


def carriers_of(runtime: Runtime) -> Carriers:
    """The running service's carriers, built on first use."""
    carriers = runtime.state.get("carriers")
    if carriers is None:
        assert isinstance(runtime.settings, FulfilmentSettings)
        carriers = runtime.state["carriers"] = build_carriers(runtime.settings, runtime.pool)
    assert isinstance(carriers, Carriers)
    return carriers


async def start_carriers(runtime: Runtime) -> None:
    """Build them at start, so a misconfigured carrier stops the service there."""
    carriers_of(runtime)


async def get_carriers(runtime: RuntimeDep) -> Carriers:
    return carriers_of(runtime)


CarriersDep = Annotated[Carriers, Depends(get_carriers)]
