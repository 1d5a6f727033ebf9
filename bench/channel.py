"""Orders on the Kafka channel ingress (`oms.channel.orders.v1`): the bench's order as a Shopify
`orders/create` delivery (financial status `pending`, so the payment service authorises it like
a native order), wrapped in a `ChannelOrderReceived` envelope (shared/contracts/channels.py)."""

from __future__ import annotations

import importlib.util
import uuid
from typing import Any

import orjson


def available() -> bool:
    return importlib.util.find_spec("shared.contracts.channels") is not None


def shopify_payload(body: dict[str, Any]) -> dict[str, Any]:
    address = body["shipping_address"]
    first, _, last = str(body["customer"].get("name") or "Bench Customer").partition(" ")
    return {
        "id": body["external_id"],
        "email": body["customer"]["email"],
        "currency": body["currency"],
        "financial_status": "pending",
        "taxes_included": False,
        "total_tax": "0.00",
        "line_items": [
            {"sku": line["sku"], "quantity": line["quantity"], "price": line["unit_price"]}
            for line in body["lines"]
        ],
        "shipping_lines": [],
        "shipping_address": {
            "first_name": first,
            "last_name": last or "Customer",
            "address1": address["line1"],
            "city": address["city"],
            "zip": address["postal_code"],
            "country_code": address["country"],
        },
    }


def channel_message(body: dict[str, Any]) -> bytes:
    from shared.contracts.channels import ChannelOrderReceived
    from shared.envelope import Envelope

    message = ChannelOrderReceived(
        channel="shopify",
        headers={"x-shopify-topic": "orders/create", "x-shopify-webhook-id": str(uuid.uuid4())},
        payload=orjson.dumps(shopify_payload(body)).decode(),
    )
    envelope = Envelope.wrap(message, correlation_id=str(body["external_id"]), producer="bench")
    return envelope.to_bytes()
