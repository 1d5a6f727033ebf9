"""Channel adapters: each sales channel's own order payload mapped to the canonical order.

Pure mapping code (no I/O): `base` holds what every adapter shares, one module per channel its
mapping. Both ingress paths (the webhook endpoint and the Kafka topic) feed deliveries through
the same adapters, looked up here by channel name.
"""

from __future__ import annotations

from services.order_intake.channels.adapters import (
    amazon,
    bigcommerce,
    ebay,
    magento,
    otto,
    shopify,
    woocommerce,
)
from services.order_intake.channels.adapters.base import ChannelAdapter

ADAPTERS: dict[str, ChannelAdapter] = {
    adapter.name: adapter
    for adapter in (
        shopify.ADAPTER,
        woocommerce.ADAPTER,
        amazon.ADAPTER,
        ebay.ADAPTER,
        otto.ADAPTER,
        bigcommerce.ADAPTER,
        magento.ADAPTER,
    )
}


RESERVED_CHANNELS: frozenset[str] = frozenset(ADAPTERS)
"""Channel names only their own adapter may create orders for (the native API refuses them, or
a forged order could take a real channel order's (channel, external id) first)."""


def adapter_for(channel: str) -> ChannelAdapter | None:
    return ADAPTERS.get(channel)
