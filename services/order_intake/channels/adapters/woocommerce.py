"""WooCommerce: the order webhook (`order.created`, `order.updated`, `order.deleted`), whose
body is the REST API v3 order.

- Signature: `X-WC-Webhook-Signature` = base64(HMAC-SHA256(webhook secret, raw body)).
- Delivery id: `X-WC-Webhook-Delivery-ID`. Topic: `X-WC-Webhook-Topic`.
- When a webhook is saved WooCommerce pings the delivery URL with the form body
  `webhook_id=<id>` (unsigned); it is answered 200 and creates nothing.
- `line_items[].total` (a string) is the line total after discounts, tax exclusive; the unit
  price is that total divided by the quantity (`price` is the same division as a float, so it
  is not used). `shipping_total` and `total_tax` are passed through.
- Paid (`date_paid` set, `set_paid` true, or status `processing`): WooCommerce's own gateway took
  the money, so the order is paid externally. `pending` / `on-hold` orders are authorised through
  the payment service with method `woocommerce` and token `woocommerce:<id>`.
- Status `cancelled` (or topic `order.deleted`) cancels; `completed`, `refunded`, `failed`,
  `trash` and `checkout-draft` are not orders to fulfil and are ignored.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from services.order_intake.channels.adapters import base
from services.order_intake.domain.order import CanonicalLine

NAME = "woocommerce"
TOPIC_HEADER = "x-wc-webhook-topic"
CREATE_TOPICS = frozenset({"order.created", "order.updated", "order.restored"})
DELETE_TOPIC = "order.deleted"
TOPICS = base.WebhookTopics(
    TOPIC_HEADER, CREATE_TOPICS | {DELETE_TOPIC}, "use order.created / order.updated"
)
CREATABLE = frozenset({"pending", "on-hold", "processing"})
_PING = re.compile(rb"^webhook_id=\d+$")
ADDRESS = base.AddressKeys("address_1", ("address_2",), "city", ("state",), "postcode", "country")


def is_ping(raw: bytes, headers: base.Headers) -> bool:
    return bool(_PING.match(raw.strip()))


def parse(payload: Any, headers: base.Headers) -> base.ChannelResult:
    order = base.Reader.root(payload)
    external_id = order.identifier("id")
    topic = TOPICS.of(headers)
    if topic == DELETE_TOPIC:
        return base.CancelOrder(external_id, "deleted in WooCommerce")
    status = (order.optional_text("status") or "pending").lower()
    if status == "cancelled":
        return base.CancelOrder(external_id, "cancelled in WooCommerce")
    if status not in CREATABLE:
        return base.Ignored(f"WooCommerce order is {status}: nothing to fulfil", external_id)

    currency = base.currency_code(order.text("currency"), order.field("currency"))
    lines = _lines(order, currency)
    shipping = order.optional_amount("shipping_total", currency) or Decimal(0)
    tax = order.optional_amount("total_tax", currency) or Decimal(0)
    billing = order.optional_obj("billing")
    ship = order.obj("shipping")
    paid = order.has("date_paid") or order.boolean("set_paid") or status == "processing"
    email = billing.optional_text("email", max_length=254) if billing else None
    return base.new_order(
        NAME,
        external_id,
        customer=base.recipient_customer(
            ship,
            billing,
            email=email,
            email_field=billing.field("email") if billing else "billing.email",
        ),
        shipping_address=ADDRESS.read(ship),
        billing_address=ADDRESS.read_if_given(billing),
        currency=currency,
        lines=lines,
        paid=paid,
        shipping_method=_shipping_method(order),
        shipping=base.not_negative(shipping, order.field("shipping_total")),
        tax=base.not_negative(tax, order.field("total_tax")),
    )


def _lines(order: base.Reader, currency: str) -> list[CanonicalLine]:
    def line(item: base.Reader, quantity: int) -> list[CanonicalLine]:
        total = item.amount("total", currency)
        return base.split_line_total(
            base.sku_of(item, "sku"), quantity, total, currency, item.field("total")
        )

    return base.order_lines(order, "line_items", line)


def _shipping_method(order: base.Reader) -> str:
    for line in order.objects("shipping_lines", required=False):
        method = (line.optional_text("method_id") or "").lower()
        if method == "local_pickup":
            return "pickup"
        title = (line.optional_text("method_title") or "").lower()
        if "express" in title:
            return "express"
    return "standard"


ADAPTER = base.ChannelAdapter(
    name=NAME,
    parse=parse,
    signature_header="x-wc-webhook-signature",
    delivery_id_header="x-wc-webhook-delivery-id",
    is_ping=is_ping,
)
