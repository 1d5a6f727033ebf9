"""Driving the channel connector in component tests: a harness with the connector's real
handlers and store on real Postgres, accounts given by the test, and its background work run
one pass at a time (`run_pushes`, `run_stock`, `run_poll`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.channel_connector import workers
from services.channel_connector.accounts import Account, Accounts
from services.channel_connector.app import build
from services.channel_connector.clients.base import (
    BaseClient,
    CancellationPush,
    Capability,
    RefundPush,
    ShipmentPush,
    StockPush,
)
from services.channel_connector.domain import PolledOrder
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings
from shared.platform.service import Runtime
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra
from tests.support.system import CONNECTOR, CORE_SERVICES, System, start_system


@dataclass
class RecordingClient(BaseClient):
    """A channel client that records what it was asked (for the connector's own machinery;
    each channel's client is tested against its API's double)."""

    channel: str = "shopify"
    capabilities: frozenset[Capability] = frozenset(Capability)
    stock_batch_size: int = 50
    stock: list[list[StockPush]] = field(default_factory=list)
    shipments: list[ShipmentPush] = field(default_factory=list)
    cancellations: list[CancellationPush] = field(default_factory=list)
    refunds: list[RefundPush] = field(default_factory=list)
    polls: list[datetime] = field(default_factory=list)
    orders: list[PolledOrder] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    def _fail(self) -> None:
        if self.failures:
            raise self.failures.pop(0)

    async def push_stock(self, levels: Sequence[StockPush]) -> None:
        self._fail()
        self.stock.append(list(levels))

    async def push_shipment(self, shipment: ShipmentPush) -> str | None:
        self._fail()
        self.shipments.append(shipment)
        return f"fulfilment-{len(self.shipments)}"

    async def cancel_order(self, cancellation: CancellationPush) -> str | None:
        self._fail()
        self.cancellations.append(cancellation)
        return None

    async def refund_order(self, refund: RefundPush) -> str | None:
        self._fail()
        self.refunds.append(refund)
        return f"refund-{len(self.refunds)}"

    async def poll_orders(self, since: datetime) -> list[PolledOrder]:
        self._fail()
        self.polls.append(since)
        return [order for order in self.orders if order.updated_at >= since]

    async def fetch_order(self, external_id: str) -> PolledOrder:
        self._fail()
        return next(order for order in reversed(self.orders) if order.external_id == external_id)


@dataclass
class ConnectorHarness:
    harness: ComponentHarness
    accounts: Accounts
    settings: ChannelConnectorSettings
    runtime: Runtime

    def account(self, name: str) -> Account:
        found = self.accounts.get(name)
        assert found is not None
        return found

    async def run_pushes(self) -> int:
        return await workers.send_due_pushes(
            self.runtime, self.accounts, workers.retry_policy(self.settings), limit=100
        )

    async def run_stock(self, name: str) -> int:
        return await workers.push_due_stock(self.runtime, self.account(name), self.settings)

    async def run_poll(self, name: str) -> int:
        return await workers.poll_account(
            self.runtime, self.account(name), workers.poll_overlap(self.settings)
        )

    async def pushes(self, **where: Any) -> list[dict[str, Any]]:
        rows = await self.harness.fetch("SELECT * FROM pushes ORDER BY push_id")
        return [dict(r) for r in rows if all(r[k] == v for k, v in where.items())]


@contextlib.asynccontextmanager
async def start_connector(
    infra: Infra,
    accounts: Sequence[tuple[AccountSettings, Any]],
    **settings: Any,
) -> AsyncIterator[ConnectorHarness]:
    """A connector serving these (account settings, client) pairs."""
    connector_settings = ChannelConnectorSettings(
        connector_accounts=[account for account, _ in accounts],
        **{"connector_retry_initial_s": 0.01, "connector_retry_max_s": 0.05, **settings},
    )
    served = Accounts([Account(account, client) for account, client in accounts])
    spec = build(connector_settings, served)
    async for harness in start_harness(infra, spec):
        async with harness.http():
            pass
        yield ConnectorHarness(
            harness, served, spec.settings_as(ChannelConnectorSettings), harness.runtime
        )


async def start_system_with_connector(
    infra: Infra,
    accounts: Sequence[dict[str, Any]],
    overrides: dict[str, dict[str, str]] | None = None,
) -> System:
    """Every service as a real process, the channel connector among them serving `accounts`
    (each as in OMS_CONNECTOR_ACCOUNTS, its `api_base` a local double), sending every 0.2 s."""
    merged = {name: dict(values) for name, values in (overrides or {}).items()}
    merged.setdefault(CONNECTOR, {}).update(
        {
            "OMS_CONNECTOR_ACCOUNTS": json.dumps(list(accounts)),
            "OMS_CONNECTOR_SEND_INTERVAL_S": "0.2",
            "OMS_CONNECTOR_RETRY_INITIAL_S": "0.2",
            "OMS_CONNECTOR_RETRY_MAX_S": "1",
            **merged.get(CONNECTOR, {}),
        }
    )
    return await start_system(infra, merged, *CORE_SERVICES, CONNECTOR)
