"""Channel adapters: each sales channel's own order payload mapped to the canonical order.

Pure mapping code (no I/O); `channel_api` (HTTP webhooks) and `channel_handlers` (Kafka
`oms.channel.orders.v1`) feed both kinds of delivery through the same adapters.
"""

from __future__ import annotations

from services.order_intake.channels import amazon, ebay, shopify, woocommerce
from services.order_intake.channels.base import (
    CancelOrder,
    ChannelAdapter,
    ChannelPayloadError,
    ChannelResult,
    Ignored,
    NewOrder,
)

ADAPTERS: dict[str, ChannelAdapter] = {
    adapter.name: adapter
    for adapter in (shopify.ADAPTER, woocommerce.ADAPTER, amazon.ADAPTER, ebay.ADAPTER)
}


RESERVED_CHANNELS: frozenset[str] = frozenset(ADAPTERS) | {"bigcommerce", "magento", "otto"}
"""Channel names only their own adapter may create orders for (the native API refuses them, or
a forged order could take a real channel order's (channel, external id) first). Includes the
channels whose adapters are planned."""


def adapter_for(channel: str) -> ChannelAdapter | None:
    return ADAPTERS.get(channel)


__all__ = [
    "ADAPTERS",
    "RESERVED_CHANNELS",
    "CancelOrder",
    "ChannelAdapter",
    "ChannelPayloadError",
    "ChannelResult",
    "Ignored",
    "NewOrder",
    "adapter_for",
]
