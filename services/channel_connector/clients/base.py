"""The interface every channel client implements, and the work it is handed.

A client speaks one channel's API for one account. It says what it can do (`capabilities`);
the connector only hands it that. Every push must be safe to repeat: the connector sends a
push again when it crashed between the channel's answer and its own commit, so a client treats
the channel's "already done" answers (order already cancelled, lines already fulfilled) as
success, and passes the push's idempotency key where the API takes one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from services.channel_connector.domain import PolledOrder, Quantity


class Capability(StrEnum):
    POLL_ORDERS = "poll_orders"  # orders fetched by last-updated time (Amazon, eBay, OTTO, Magento)
    WEBHOOK_ORDERS = "webhook_orders"  # id-only webhooks whose orders are fetched (BigCommerce)
    STOCK = "stock"
    SHIPMENTS = "shipments"
    CANCELLATIONS = "cancellations"
    REFUNDS = "refunds"


@dataclass(frozen=True)
class StockPush:
    sku: str
    quantity: int


@dataclass(frozen=True)
class ShipmentPush:
    """One parcel of a channel order left the warehouse. `key`: the parcel's id (the same on a
    re-send); `earlier`: what earlier parcels of the order already told the channel."""

    key: str
    order_id: str
    external_id: str
    carrier: str
    tracking_number: str
    tracking_url: str | None
    shipped_at: datetime
    lines: tuple[Quantity, ...]
    earlier: tuple[Quantity, ...] = ()


@dataclass(frozen=True)
class CancellationPush:
    """The OMS cancelled a channel order; `lines`: what had not shipped."""

    key: str
    order_id: str
    external_id: str
    reason: str
    lines: tuple[Quantity, ...]


@dataclass(frozen=True)
class RefundPush:
    """A refund of a marketplace order, for the channel to execute (it holds the money)."""

    key: str
    order_id: str
    external_id: str
    return_id: str
    amount: Decimal
    currency: str
    reason: str
    lines: tuple[Quantity, ...] = ()


class StockRefused(Exception):
    """The channel took a stock batch except these SKUs (SKU → the channel's reason): the rest
    count as pushed. `retryable`: a later push of them may succeed."""

    def __init__(self, refused: Mapping[str, str], *, retryable: bool = False) -> None:
        detail = "; ".join(f"{sku}: {reason}" for sku, reason in sorted(refused.items()))
        super().__init__(f"the channel refused {len(refused)} SKU(s): {detail}")
        self.refused = dict(refused)
        self.retryable = retryable


class WebhookRefused(Exception):
    """A webhook delivery that is not the channel's (its signature or secret does not match)."""


class NotSupported(Exception):
    """The channel's API has no such operation for this account."""


class ChannelClient(Protocol):
    channel: str
    capabilities: frozenset[Capability]
    stock_batch_size: int

    async def push_stock(self, levels: Sequence[StockPush]) -> None:
        """Set these levels on the channel; raises StockRefused when it took all but some."""

    async def push_shipment(self, shipment: ShipmentPush) -> str | None:
        """Tell the channel; returns the channel's reference (a fulfilment id) if it gives one."""

    async def cancel_order(self, cancellation: CancellationPush) -> str | None: ...

    async def refund_order(self, refund: RefundPush) -> str | None: ...

    async def poll_orders(self, since: datetime) -> list[PolledOrder]:
        """Every order changed on the channel since `since` (all pages), as order-intake's
        adapter for the channel reads it."""

    async def fetch_order(self, external_id: str) -> PolledOrder:
        """One order by its id (for webhooks that carry only the id)."""

    def webhook_order_ids(self, headers: Mapping[str, str], body: bytes) -> list[str]:
        """The order ids a verified webhook delivery names; raises WebhookRefused when it is
        not verified, ValueError when it is malformed."""

    async def aclose(self) -> None: ...


class BaseClient:
    """Defaults for what a channel cannot do."""

    channel = ""
    capabilities: frozenset[Capability] = frozenset()
    stock_batch_size = 50

    async def push_stock(self, levels: Sequence[StockPush]) -> None:
        raise NotSupported(f"{self.channel} does not take stock levels")

    async def push_shipment(self, shipment: ShipmentPush) -> str | None:
        raise NotSupported(f"{self.channel} does not take shipments")

    async def cancel_order(self, cancellation: CancellationPush) -> str | None:
        raise NotSupported(f"{self.channel} does not take cancellations")

    async def refund_order(self, refund: RefundPush) -> str | None:
        raise NotSupported(f"{self.channel} does not take refunds")

    async def poll_orders(self, since: datetime) -> list[PolledOrder]:
        raise NotSupported(f"{self.channel} is not polled")

    async def fetch_order(self, external_id: str) -> PolledOrder:
        raise NotSupported(f"{self.channel} orders are not fetched by id")

    def webhook_order_ids(self, headers: Mapping[str, str], body: bytes) -> list[str]:
        raise NotSupported(f"{self.channel} sends no order webhooks to the connector")

    async def aclose(self) -> None:
        return None
