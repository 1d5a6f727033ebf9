"""The version of a channel order (when the channel last changed it), which keeps a late,
older webhook from being taken for an order edit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.order_intake.channels.adapters import shopify
from services.order_intake.channels.adapters.base import ChannelPayloadError, NewOrder
from tests.unit.channels import payloads


def test_shopify_updated_at_is_the_orders_version():
    payload = payloads.shopify_order()
    payload["updated_at"] = "2024-07-10T12:40:00+02:00"
    result = shopify.parse(payload, {"x-shopify-topic": "orders/updated"})
    assert isinstance(result, NewOrder)
    assert result.order.channel_changed_at == datetime(2024, 7, 10, 10, 40, tzinfo=UTC)


def test_without_updated_at_there_is_no_version():
    result = shopify.parse(payloads.shopify_order(), {})
    assert isinstance(result, NewOrder) and result.order.channel_changed_at is None


def test_a_bad_updated_at_is_refused_naming_the_field():
    payload = payloads.shopify_order()
    payload["updated_at"] = "yesterday"
    with pytest.raises(ChannelPayloadError) as refused:
        shopify.parse(payload, {})
    assert refused.value.field == "updated_at"
