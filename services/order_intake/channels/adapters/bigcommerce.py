"""BigCommerce: a V2 order as the channel connector composes it. BigCommerce's order webhooks
(`store/order/created`, `store/order/updated`, `store/order/statusUpdated`) carry only the
order id, so the connector fetches `GET /v2/orders/{id}` and embeds the order's
`GET /v2/orders/{id}/products` under `products` and `GET /v2/orders/{id}/shipping_addresses`
under `shipping_addresses` (in the order itself those keys are only `{url, resource}` links).
The document reaches order-intake on Kafka (`ChannelOrderReceived`), unsigned: the connector
verified the webhook.

- Money: BigCommerce sends amounts as strings with four decimal places (`"62.6793"`). Each
  line's value is its `total_ex_tax` less its `applied_discounts[].amount` (order-level
  discounts and coupons are spread over the products there), rounded half-up to the currency's
  minor unit and split into exact unit prices (`split_line_total`). Shipping is
  `shipping_cost_ex_tax` + `handling_cost_ex_tax` + `wrapping_cost_ex_tax` + the `fees[]`
  ex tax (the OMS has no other place for order-level charges). The tax is what is left of
  `total_inc_tax`, so the OMS total is exactly what the shopper paid; it must agree with
  BigCommerce's `total_tax` to within rounding (a cent per line and per charge), otherwise the
  order is refused naming `total_inc_tax` rather than being taken in with a wrong total.
- Currency: `default_currency_code` (the transactional currency the shopper pays in; the
  amounts are in it), else `currency_code`.
- Paid externally when `payment_status` is `captured`, `paid`, `authorized`,
  `capture pending` or `partially refunded`: BigCommerce's own gateway took or holds the money,
  so the OMS must not authorise it again. Any other payment status (`pending`, `""` for
  offline methods such as bank deposit) is authorised through the payment service with method
  `bigcommerce` and token `bigcommerce:<order id>`. A payment that is `declined`, `void`,
  `void pending`, `refunded` or `held for review` is nothing to fulfil (ignored; a later
  `statusUpdated` webhook brings the order once BigCommerce clears it).
- Status (`status_id`): Awaiting Payment (7), Awaiting Pickup (8), Awaiting Shipment (9) and
  Awaiting Fulfillment (11) are orders to fulfil. Cancelled (5) and Declined (6) cancel the
  order. Everything else is ignored: Incomplete (0) and Pending (1) are unfinished checkouts,
  Manual Verification Required (12) and Disputed (13) are on hold, Shipped (2), Partially
  Shipped (3) and Completed (10) were shipped already (the OMS's own shipments pushed to
  BigCommerce come back this way), Refunded (4) and Partially Refunded (14) are settled in
  BigCommerce.
- One shipping address: an order shipping to several addresses, or to none (pickup, digital),
  is refused naming `shipping_addresses`. Every product needs its SKU.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.order_intake.channels.adapters import base
from services.order_intake.domain.order import CanonicalLine
from shared.money import quantum, round_money

NAME = "bigcommerce"
AWAITING_PAYMENT = 7
TO_FULFIL = frozenset({AWAITING_PAYMENT, 8, 9, 11})
CANCELLED = 5
DECLINED = 6
CANCELS = frozenset({CANCELLED, DECLINED})
STATUS_NAMES = {
    0: "Incomplete",
    1: "Pending",
    2: "Shipped",
    3: "Partially Shipped",
    4: "Refunded",
    5: "Cancelled",
    6: "Declined",
    7: "Awaiting Payment",
    8: "Awaiting Pickup",
    9: "Awaiting Shipment",
    10: "Completed",
    11: "Awaiting Fulfillment",
    12: "Manual Verification Required",
    13: "Disputed",
    14: "Partially Refunded",
}
PAID = frozenset({"captured", "paid", "authorized", "capture pending", "partially refunded"})
NOT_PAYABLE = frozenset({"declined", "void", "void pending", "refunded", "held for review"})
BIGCOMMERCE_DECIMALS = 4
EXPRESS_WORDS = ("express", "overnight", "next day", "nextday", "priority")
ADDRESS = base.AddressKeys("street_1", ("street_2",), "city", ("state",), "zip", "country_iso2")


def parse(payload: Any, headers: base.Headers) -> base.ChannelResult:
    order = base.Reader.root(payload)
    external_id = order.identifier("id")
    status_id = _status_id(order)
    status = STATUS_NAMES.get(status_id, f"status {status_id}")
    if status_id in CANCELS:
        return base.CancelOrder(external_id, f"{status.lower()} in BigCommerce")
    if status_id not in TO_FULFIL:
        return base.Ignored(f"BigCommerce order is {status}: nothing to fulfil", external_id)
    payment_status = (order.optional_text("payment_status") or "").lower()
    if payment_status in NOT_PAYABLE:
        return base.Ignored(
            f"BigCommerce payment is {payment_status}: nothing to fulfil", external_id
        )

    currency = base.currency_code(
        order.optional_text("default_currency_code") or order.text("currency_code"),
        order.field(
            "default_currency_code" if order.has("default_currency_code") else "currency_code"
        ),
    )
    lines = _lines(order, currency)
    shipping = _charges(order, currency)
    tax = _tax(order, currency, lines, shipping)
    ship_to = _the_shipping_address(order)
    billing = order.optional_obj("billing_address")
    email = (billing.optional_text("email", max_length=254) if billing else None) or (
        ship_to.optional_text("email", max_length=254)
    )
    return base.new_order(
        NAME,
        external_id,
        customer=base.recipient_customer(
            ship_to,
            billing,
            email=email,
            email_field=billing.field("email") if billing else ship_to.field("email"),
        ),
        shipping_address=ADDRESS.read(ship_to),
        billing_address=ADDRESS.read_if_given(billing),
        currency=currency,
        lines=lines,
        paid=payment_status in PAID,
        shipping_method=_shipping_method(ship_to),
        shipping=shipping,
        tax=tax,
    )


def _status_id(order: base.Reader) -> int:
    value = order.raw("status_id")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise base.ChannelPayloadError(order.field("status_id"), "is required: a whole number")
    return value


def exact_amount(reader: base.Reader, key: str) -> Decimal | None:
    """An amount as BigCommerce writes it (a string with up to four decimals, or a number),
    exact; None when absent or empty."""
    amount = reader.optional_decimal(key)
    if amount is None:
        return None
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > BIGCOMMERCE_DECIMALS:
        raise base.ChannelPayloadError(
            reader.field(key), f"{amount} has more than {BIGCOMMERCE_DECIMALS} decimal places"
        )
    return amount


def _required(reader: base.Reader, key: str) -> Decimal:
    amount = exact_amount(reader, key)
    if amount is None:
        raise base.ChannelPayloadError(reader.field(key), "is required")
    return amount


def _optional(reader: base.Reader, key: str) -> Decimal:
    return exact_amount(reader, key) or Decimal(0)


def _lines(order: base.Reader, currency: str) -> list[CanonicalLine]:
    def line(item: base.Reader, quantity: int) -> list[CanonicalLine]:
        total = _required(item, "total_ex_tax")
        discounts = sum(
            (
                abs(_required(d, "amount"))
                for d in item.objects("applied_discounts", required=False)
            ),
            Decimal(0),
        )
        value = round_money(total - discounts, currency)
        if value < 0:
            raise base.ChannelPayloadError(
                item.field("applied_discounts"), "the discounts exceed the line's total_ex_tax"
            )
        return base.split_line_total(
            base.sku_of(item, "sku"), quantity, value, currency, item.field("total_ex_tax")
        )

    return base.order_lines(order, "products", line)


def _charges(order: base.Reader, currency: str) -> Decimal:
    """Shipping, handling, gift wrapping and order fees, tax exclusive."""
    total = sum(
        (
            _optional(order, key)
            for key in ("shipping_cost_ex_tax", "handling_cost_ex_tax", "wrapping_cost_ex_tax")
        ),
        Decimal(0),
    )
    for fee in order.objects("fees", required=False):
        key = "cost_ex_tax" if fee.has("cost_ex_tax") else "cost_exc_tax"
        total += _required(fee, key)
    if total < 0:
        raise base.ChannelPayloadError(order.field("shipping_cost_ex_tax"), "must not be negative")
    return round_money(total, currency)


def _tax(
    order: base.Reader, currency: str, lines: list[CanonicalLine], shipping: Decimal
) -> Decimal:
    """What is left of `total_inc_tax` after the lines and charges: the order's tax, checked
    against BigCommerce's own `total_tax`."""
    total = round_money(_required(order, "total_inc_tax"), currency)
    subtotal = sum((line.unit_price * line.quantity for line in lines), Decimal(0))
    tax = total - subtotal - shipping
    stated = round_money(_optional(order, "total_tax"), currency)
    products = len(order.objects("products"))
    charges = 3 + len(order.objects("fees", required=False))
    tolerance = quantum(currency) * (products + charges)
    if tax < 0 or abs(tax - stated) > tolerance:
        raise base.ChannelPayloadError(
            order.field("total_inc_tax"),
            f"the lines ({subtotal}) and shipping ({shipping}) leave {tax} of total_inc_tax"
            f" ({total}) for tax, but total_tax is {stated}: discounts or charges this adapter"
            " does not know of",
        )
    return tax


def _the_shipping_address(order: base.Reader) -> base.Reader:
    addresses = order.objects("shipping_addresses", required=False)
    if not addresses:
        raise base.ChannelPayloadError(
            order.field("shipping_addresses"),
            "is required: the order has no shipping address (pickup and digital orders are"
            " not fulfilled through the OMS)",
        )
    distinct = {
        tuple(
            (a.optional_text(k) or "").lower()
            for k in ("street_1", "street_2", "city", "zip", "country_iso2")
        )
        for a in addresses
    }
    if len(distinct) > 1:
        raise base.ChannelPayloadError(
            order.field("shipping_addresses"),
            f"the order ships to {len(distinct)} addresses; the OMS takes orders with one",
        )
    return addresses[0]


def _shipping_method(ship_to: base.Reader) -> str:
    method = (ship_to.optional_text("shipping_method") or "").lower()
    if "pickup" in method or "pick up" in method:
        return "pickup"
    if any(word in method for word in EXPRESS_WORDS):
        return "express"
    return "standard"


ADAPTER = base.ChannelAdapter(name=NAME, parse=parse)
