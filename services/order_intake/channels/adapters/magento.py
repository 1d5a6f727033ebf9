"""Magento 2 (Adobe Commerce): a REST sales order (`GET /V1/orders/{id}`, or one item of the
`GET /V1/orders` search) as the channel connector's poller hands it on. Magento does not push
orders: the payload is unsigned, its trust comes from the poller (and the Kafka ACLs).

- The channel's order id is `entity_id` (what every write API takes: ship, cancel, refund);
  `increment_id` is the number the shopper sees.
- Lines: Magento stores a configurable product as a parent item (with the chosen simple's SKU,
  the price, discount and tax) and a child item (`parent_item_id` set, no money), and a bundle
  as a parent with one child per component. An item whose parent is in the order is a child. The
  line is the one that carries the money: the parent when its `row_total` is not 0
  (configurable products; fixed-price bundles, which arrive as one line of the bundle's SKU, a
  kit in the OMS), else the children (dynamic-price bundles, whose components are priced each).
- Money: `row_total` is the line total before discount and without tax in every store
  configuration (catalog prices including tax are in the `*_incl_tax` fields). The line's value
  is `row_total - discount_amount + discount_tax_compensation_amount` (the last is the tax that
  a discount applied to prices including tax took off, which Magento adds back into the grand
  total), divided exactly into unit prices (`split_line_total`). Shipping is
  `shipping_amount - shipping_discount_amount + shipping_discount_tax_compensation_amount`,
  tax the order's `tax_amount` (items and shipping). So the OMS total equals Magento's
  `grand_total` (store credit and gift cards, which Adobe Commerce takes off the grand total,
  are not taken off here). Every amount is in `order_currency_code`.
- Quantities are `qty_ordered`, which Magento sends as a decimal (`2.0000`); it must be whole.
- Ship-to: `extension_attributes.shipping_assignments[0].shipping.address` (`street` is a list:
  its first entry is line 1, the rest line 2); `billing_address` the same shape.
- Paid: Magento captures (or records an offline payment) when it invoices, so an order whose
  `total_invoiced` reaches its `grand_total` is paid externally. Any other order (an
  authorise-only method, a bank transfer not yet received) is authorised through the payment
  service with method `magento` and token `magento:<entity_id>`.
- `state` `canceled` cancels; `new` and `processing` orders are created; `complete`, `closed`,
  `holded`, `pending_payment` and `payment_review` are ignored (a later poll brings an order
  again when its state moves on), or answered with the existing order.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from services.order_intake.channels.adapters import base
from services.order_intake.domain.order import CanonicalLine
from shared.contracts.common import Address

NAME = "magento"
CREATABLE = frozenset({"new", "processing"})
NOT_YET = frozenset({"pending_payment", "payment_review", "holded"})
EXPRESS_WORDS = ("express", "overnight", "nextday", "next_day", "priority", "1da", "2da")


def parse(payload: Any, headers: base.Headers) -> base.ChannelResult:
    order = base.Reader.root(payload)
    external_id = order.identifier("entity_id")
    state = (order.optional_text("state", max_length=40) or "new").lower()
    if state == "canceled":
        return base.CancelOrder(external_id, "cancelled in Magento")
    if state not in CREATABLE:
        why = "not yet paid or on hold" if state in NOT_YET else "nothing to fulfil"
        return base.Ignored(f"Magento order is {state}: {why}", external_id)

    currency = base.currency_code(
        order.text("order_currency_code"), order.field("order_currency_code")
    )
    lines = _lines(order, currency)
    shipping = (
        _money(order, "shipping_amount", currency)
        - abs(_money(order, "shipping_discount_amount", currency))
        + _money(order, "shipping_discount_tax_compensation_amount", currency)
    )
    tax = _money(order, "tax_amount", currency)
    grand_total = order.optional_amount("grand_total", currency)
    invoiced = _money(order, "total_invoiced", currency)
    paid = grand_total is not None and invoiced >= grand_total

    ship_to = _shipping_address_reader(order)
    billing = order.optional_obj("billing_address")
    email = order.optional_text("customer_email", max_length=254) or (
        ship_to.optional_text("email", max_length=254)
    )
    name = base.full_name(
        ship_to.optional_text("firstname"), ship_to.optional_text("lastname")
    ) or (
        base.full_name(
            order.optional_text("customer_firstname"), order.optional_text("customer_lastname")
        )
    )
    phone = ship_to.optional_text("telephone", max_length=40) or (
        billing.optional_text("telephone", max_length=40) if billing else None
    )
    return base.new_order(
        NAME,
        external_id,
        customer=base.customer(
            email=email, name=name, phone=phone, email_field=order.field("customer_email")
        ),
        shipping_address=_address(ship_to),
        billing_address=_address(billing)
        if billing is not None and billing.has("street")
        else None,
        currency=currency,
        lines=lines,
        paid=paid,
        shipping_method=_shipping_method(order),
        shipping=base.not_negative(shipping, order.field("shipping_amount")),
        tax=base.not_negative(tax, order.field("tax_amount")),
    )


# --- lines -----------------------------------------------------------------------------------


def _lines(order: base.Reader, currency: str) -> list[CanonicalLine]:
    items = base.line_items(order, "items")
    lines: list[CanonicalLine] = []
    for item in shippable_items(items, lambda item: _money(item, "row_total", currency)):
        quantity = whole_quantity(item, "qty_ordered")
        if quantity == 0:
            continue
        total = (
            _money(item, "row_total", currency)
            - abs(_money(item, "discount_amount", currency))
            + _money(item, "discount_tax_compensation_amount", currency)
        )
        lines += base.split_line_total(
            base.sku_of(item, "sku"), quantity, total, currency, item.field("row_total")
        )
    if not lines:
        raise base.ChannelPayloadError(order.field("items"), "no item has a quantity ordered")
    return lines


def shippable_items(
    items: list[base.Reader], row_total: Callable[[base.Reader], Decimal]
) -> list[base.Reader]:
    """The items that are the order's lines (see the module's doc): items without a parent in
    the order, except a parent without money, whose children are the lines instead."""
    by_id = {item.identifier("item_id"): item for item in items if item.has("item_id")}
    children: dict[str, list[base.Reader]] = {}
    for item in items:
        parent = item.optional_text("parent_item_id", max_length=128)
        if parent is not None and parent in by_id:
            children.setdefault(parent, []).append(item)
    chosen: list[base.Reader] = []
    for item in items:
        parent = item.optional_text("parent_item_id", max_length=128)
        if parent is not None and parent in by_id:
            continue  # taken with (or instead of) its parent below
        own = children.get(item.identifier("item_id")) if item.has("item_id") else None
        if own and row_total(item) == 0:
            chosen += own
        else:
            chosen.append(item)
    return chosen


def whole_quantity(item: base.Reader, key: str) -> int:
    value = item.raw(key)
    if value is None:
        raise base.ChannelPayloadError(item.field(key), "is required")
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise base.ChannelPayloadError(item.field(key), "must be a number")
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError as exc:
        raise base.ChannelPayloadError(item.field(key), f"{value!r} is not a number") from exc
    if not number.is_finite() or number != number.to_integral_value():
        raise base.ChannelPayloadError(item.field(key), "must be a whole number")
    if number < 0:
        raise base.ChannelPayloadError(item.field(key), "must not be negative")
    if number > 100_000:
        raise base.ChannelPayloadError(item.field(key), "is too large")
    return int(number)


def _money(reader: base.Reader, key: str, currency: str) -> Decimal:
    return reader.optional_amount(key, currency) or Decimal(0)


# --- addresses -------------------------------------------------------------------------------


def _shipping_address_reader(order: base.Reader) -> base.Reader:
    extension = order.optional_obj("extension_attributes")
    assignments = extension.objects("shipping_assignments", required=False) if extension else []
    if not assignments:
        raise base.ChannelPayloadError(
            "extension_attributes.shipping_assignments",
            "is required: the order has no shipping address (a virtual order is not shipped)",
        )
    return assignments[0].obj("shipping").obj("address")


def _address(reader: base.Reader) -> Address:
    street = reader.raw("street")
    if isinstance(street, str):
        street = [street]
    if not isinstance(street, list) or not street:
        raise base.ChannelPayloadError(reader.field("street"), "is required")
    parts: dict[str, Any] = {f"street.{i}": part for i, part in enumerate(street)}
    flat = base.Reader({**reader.data, **parts}, reader.path)
    line2 = tuple(f"street.{i}" for i in range(1, len(street)))
    keys = base.AddressKeys(
        "street.0", line2, "city", ("region_code", "region"), "postcode", "country_id"
    )
    return keys.read(flat)


def _shipping_method(order: base.Reader) -> str:
    method = order.optional_text("shipping_method", max_length=200) or ""
    extension = order.optional_obj("extension_attributes")
    for assignment in (
        extension.objects("shipping_assignments", required=False) if extension else []
    ):
        shipping = assignment.optional_obj("shipping")
        if shipping is not None:
            method = shipping.optional_text("method", max_length=200) or method
    label = f"{method} {order.optional_text('shipping_description', max_length=500) or ''}".lower()
    if "pickup" in label:
        return "pickup"
    if any(word in label for word in EXPRESS_WORDS):
        return "express"
    return "standard"


ADAPTER = base.ChannelAdapter(name=NAME, parse=parse)
