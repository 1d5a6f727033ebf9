"""Produced by sales channels (or the seller's bridge to them): the channel ingress message.

A channel order travels on `oms.channel.orders.v1` exactly as the channel delivered it: the
channel's name, the HTTP headers of the delivery (signature, topic, delivery id, lower-cased
names) and the raw body as text. The body stays text so order-intake parses its money exactly
(JSON numbers as decimals) and can verify a forwarded webhook signature over the same bytes.
"""

from __future__ import annotations

from pydantic import Field

from shared.envelope import Event, register
from shared.topics import CHANNEL_ORDERS


@register
class ChannelOrderReceived(Event):
    """One delivery of a channel's order payload (a new order, an update or a cancellation).

    Keyed by the channel's order id. `channel`: shopify, woocommerce, amazon or ebay.
    """

    TYPE = "ChannelOrderReceived"
    TOPIC = CHANNEL_ORDERS
    channel: str = Field(min_length=1, max_length=32)
    headers: dict[str, str] = Field(default_factory=dict)
    payload: str
