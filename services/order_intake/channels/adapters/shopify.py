"""Shopify: the order webhook (`orders/create`, `orders/paid`, `orders/updated`,
`orders/cancelled`), the REST Admin order resource as Shopify posts it.

- Signature: `X-Shopify-Hmac-SHA256` = base64(HMAC-SHA256(app secret, raw body)).
- Delivery id: `X-Shopify-Webhook-Id` (the same on Shopify's retries of one delivery).
- `line_items[].price` is the unit price (a string). Discounts Shopify allocated to a line
  (`discount_allocations[].amount`, order-level discounts included) come off that line; when
  `taxes_included` is true the line's `tax_lines[].price` come off too, since canonical prices
  are tax-exclusive and `total_tax` is passed through as the order's tax.
- Shipping: `shipping_lines[]` (`discounted_price`, else `price`), less their included tax.
- `updated_at`: this version of the order; an older one arriving after a newer one (webhooks
  are not ordered) is not taken for an order edit.
- `financial_status` `paid` (or `partially_refunded`): Shopify already took the money, so the
  order is paid externally and skips the gateway. Any other status is authorised through the
  payment service with method `shopify` and token `shopify:<order id>` (a gateway plug-in for
  Shopify Payments decides what that means); `voided` and `refunded` orders are ignored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.order_intake.channels.adapters import base
from services.order_intake.domain.order import CanonicalLine

NAME = "shopify"
TOPIC_HEADER = "x-shopify-topic"
CREATE_TOPICS = frozenset({"orders/create", "orders/paid", "orders/updated"})
CANCEL_TOPIC = "orders/cancelled"
TOPICS = base.WebhookTopics(
    TOPIC_HEADER, CREATE_TOPICS | {CANCEL_TOPIC}, "subscribe orders/create and orders/cancelled"
)
PAID = frozenset({"paid", "partially_refunded"})
NOT_PAYABLE = frozenset({"voided", "refunded"})
ADDRESS = base.AddressKeys(
    "address1", ("address2",), "city", ("province_code", "province"), "zip", "country_code"
)


def parse(payload: Any, headers: base.Headers) -> base.ChannelResult:
    order = base.Reader.root(payload)
    external_id = order.identifier("id")
    topic = TOPICS.of(headers)
    if topic == CANCEL_TOPIC or (topic is None and order.has("cancelled_at")):
        reason = order.optional_text("cancel_reason") or "no reason given"
        return base.CancelOrder(external_id, f"cancelled on Shopify ({reason})")
    financial_status = (order.optional_text("financial_status") or "pending").lower()
    if financial_status in NOT_PAYABLE:
        return base.Ignored(f"Shopify order is {financial_status}: nothing to fulfil", external_id)

    currency = base.currency_code(order.text("currency"), order.field("currency"))
    taxes_included = order.boolean("taxes_included")
    lines = _lines(order, currency, taxes_included)
    shipping = _shipping(order, currency, taxes_included)
    tax = order.optional_amount("total_tax", currency) or Decimal(0)
    ship_to = ADDRESS.read(order.obj("shipping_address"))
    buyer = order.optional_obj("customer")
    shipping_reader = order.obj("shipping_address")
    email = (
        order.optional_text("email", max_length=254)
        or order.optional_text("contact_email", max_length=254)
        or (buyer.optional_text("email", max_length=254) if buyer else None)
    )
    name = base.full_name(
        shipping_reader.optional_text("first_name"), shipping_reader.optional_text("last_name")
    ) or (
        base.full_name(buyer.optional_text("first_name"), buyer.optional_text("last_name"))
        if buyer
        else None
    )
    phone = (
        shipping_reader.optional_text("phone", max_length=40)
        or order.optional_text("phone", max_length=40)
        or (buyer.optional_text("phone", max_length=40) if buyer else None)
    )
    return base.new_order(
        NAME,
        external_id,
        customer=base.customer(
            email=email, name=name, phone=phone, email_field=order.field("email")
        ),
        shipping_address=ship_to,
        billing_address=ADDRESS.read_if_given(order.optional_obj("billing_address")),
        currency=currency,
        lines=lines,
        paid=financial_status in PAID,
        shipping_method=_shipping_method(order),
        shipping=shipping,
        tax=base.not_negative(tax, order.field("total_tax")),
        changed_at=order.optional_timestamp("updated_at"),
    )


def _lines(order: base.Reader, currency: str, taxes_included: bool) -> list[CanonicalLine]:
    def line(item: base.Reader, quantity: int) -> list[CanonicalLine]:
        price = item.amount("price", currency)
        off = sum(
            (
                d.amount("amount", currency)
                for d in item.objects("discount_allocations", required=False)
            ),
            Decimal(0),
        )
        if taxes_included:
            off += sum(
                (t.amount("price", currency) for t in item.objects("tax_lines", required=False)),
                Decimal(0),
            )
        return base.line_from_unit_price(
            base.sku_of(item, "sku"), quantity, price, off, currency, item.field("price")
        )

    return base.order_lines(order, "line_items", line)


def _shipping(order: base.Reader, currency: str, taxes_included: bool) -> Decimal:
    total = Decimal(0)
    for line in order.objects("shipping_lines", required=False):
        price = line.optional_amount("discounted_price", currency)
        if price is None:
            price = line.amount("price", currency)
        if taxes_included:
            price -= sum(
                (t.amount("price", currency) for t in line.objects("tax_lines", required=False)),
                Decimal(0),
            )
        total += base.not_negative(price, line.field("price"))
    return total


def _shipping_method(order: base.Reader) -> str:
    for line in order.objects("shipping_lines", required=False):
        label = f"{line.optional_text('code') or ''} {line.optional_text('title') or ''}".lower()
        if "express" in label or "overnight" in label:
            return "express"
    return "standard"


ADAPTER = base.ChannelAdapter(
    name=NAME,
    parse=parse,
    signature_header="x-shopify-hmac-sha256",
    delivery_id_header="x-shopify-webhook-id",
)
