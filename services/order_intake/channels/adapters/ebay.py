"""eBay: a Sell Fulfillment API order (`getOrder`), as the seller's own poller sends it. Like
Amazon's, the payload is unsigned (eBay is polled, not pushed).

- `lineItems[].lineItemCost` is the LINE total before discounts (unit price x quantity). The
  line's value is `discountedLineItemCost` when eBay sends it, else `lineItemCost` less the
  line's `appliedPromotions[].discountAmount`; the unit price is that divided by `quantity`,
  exact to the cent (see `split_line_total`).
- Shipping: `pricingSummary.deliveryCost` less `pricingSummary.deliveryDiscount`; tax:
  `pricingSummary.tax` (taxes eBay collects and remits itself are not the seller's).
- Ship-to: `fulfillmentStartInstructions[0].shippingStep.shipTo`.
- eBay collected the money: paid externally. An order whose `cancelStatus.cancelState` is
  `CANCELED` cancels; unpaid, refunded or already fulfilled orders are ignored (or answered with
  the existing order).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.order_intake.channels.adapters import base
from services.order_intake.domain.order import CanonicalLine

NAME = "ebay"
PAID = frozenset({"PAID", "PARTIALLY_REFUNDED"})
EXPRESS_WORDS = ("express", "expedited", "overnight", "oneday", "nextday")
ADDRESS = base.AddressKeys(
    "addressLine1", ("addressLine2",), "city", ("stateOrProvince",), "postalCode", "countryCode"
)


def parse(payload: Any, headers: base.Headers) -> base.ChannelResult:
    order = base.Reader.root(payload)
    external_id = order.identifier("orderId")
    cancel = order.optional_obj("cancelStatus")
    if cancel is not None and cancel.optional_text("cancelState") == "CANCELED":
        return base.CancelOrder(external_id, "cancelled on eBay")
    payment_status = order.optional_text("orderPaymentStatus") or "PENDING"
    if payment_status not in PAID:
        return base.Ignored(
            f"eBay order payment is {payment_status}: nothing to fulfil", external_id
        )
    if order.optional_text("orderFulfillmentStatus") == "FULFILLED":
        return base.Ignored("eBay order is already fulfilled", external_id)

    first_cost = base.line_items(order, "lineItems")[0].obj("lineItemCost")
    currency = base.currency_code(first_cost.text("currency"), first_cost.field("currency"))

    def line(item: base.Reader, quantity: int) -> list[CanonicalLine]:
        discounted = item.optional_obj("discountedLineItemCost")
        if discounted is not None:
            line_total = _amount(discounted, currency)
        else:
            line_total = _amount(item.obj("lineItemCost"), currency) - sum(
                (
                    abs(_amount(promotion.obj("discountAmount"), currency))
                    for promotion in item.objects("appliedPromotions", required=False)
                ),
                Decimal(0),
            )
        return base.split_line_total(
            base.sku_of(item, "sku"), quantity, line_total, currency, item.field("lineItemCost")
        )

    lines = base.order_lines(order, "lineItems", line)

    summary = order.optional_obj("pricingSummary")
    shipping = Decimal(0)
    tax = Decimal(0)
    if summary is not None:
        shipping = _optional(summary, "deliveryCost", currency) - abs(
            _optional(summary, "deliveryDiscount", currency)
        )
        tax = _optional(summary, "tax", currency)

    instructions = order.objects("fulfillmentStartInstructions")
    if not instructions:
        raise base.ChannelPayloadError(order.field("fulfillmentStartInstructions"), "is required")
    step = instructions[0].obj("shippingStep")
    ship_to = step.obj("shipTo")
    contact = ship_to.obj("contactAddress")
    phone = ship_to.optional_obj("primaryPhone")
    buyer = order.optional_obj("buyer")
    registration = buyer.optional_obj("buyerRegistrationAddress") if buyer else None
    email = ship_to.optional_text("email", max_length=254) or (
        registration.optional_text("email", max_length=254) if registration else None
    )
    service = (step.optional_text("shippingServiceCode") or "").lower()
    return base.new_order(
        NAME,
        external_id,
        customer=base.customer(
            email=email,
            name=ship_to.optional_text("fullName")
            or (registration.optional_text("fullName") if registration else None),
            phone=phone.optional_text("phoneNumber", max_length=40) if phone else None,
            email_field=ship_to.field("email"),
        ),
        shipping_address=ADDRESS.read(contact),
        currency=currency,
        lines=lines,
        paid=True,
        shipping_method="express" if any(word in service for word in EXPRESS_WORDS) else "standard",
        shipping=base.not_negative(shipping, order.field("pricingSummary.deliveryCost")),
        tax=base.not_negative(tax, order.field("pricingSummary.tax")),
    )


def _amount(money: base.Reader, currency: str) -> Decimal:
    base.same_currency(money.optional_text("currency"), currency, money.field("currency"))
    return money.amount("value", currency)


def _optional(summary: base.Reader, key: str, currency: str) -> Decimal:
    money = summary.optional_obj(key)
    return _amount(money, currency) if money is not None else Decimal(0)


ADAPTER = base.ChannelAdapter(name=NAME, parse=parse)
