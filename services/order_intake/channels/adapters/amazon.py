"""Amazon: an SP-API Orders v0 order (`getOrder`) with its items (`getOrderItems`) under
`OrderItems`, as the seller's own poller sends it. Amazon does not push orders: the payload is
unsigned, and its trust comes from the poller (or the Kafka ACLs). The SP-API response wrapper
(`{"payload": {...}}`) is accepted too.

- `ItemPrice` is the LINE total (price x quantity), not the unit price: the unit price is
  `ItemPrice - PromotionDiscount` divided by `QuantityOrdered`, exact to the cent (see
  `split_line_total`). Items with `QuantityOrdered` 0 are left out.
- Shipping: sum of `ShippingPrice - ShippingDiscount`; tax: sum of `ItemTax + ShippingTax`
  less the discounts' tax. Every amount must be in the order currency (`OrderTotal`).
- Where prices include VAT (EU and UK marketplaces) `OrderTotal` equals items plus shipping and
  `ItemTax` / `ShippingTax` are the VAT inside them; where they do not (US) `OrderTotal` also
  adds the tax. The two are told apart exactly from `OrderTotal`, and VAT-inclusive amounts
  become tax-exclusive lines and shipping (canonical prices are tax-exclusive) with the VAT as
  the order's tax, so the OMS total equals Amazon's.
- Amazon collected the money: always paid externally (no gateway authorisation).
- `OrderStatus` `Canceled` cancels. `Pending` orders have no prices yet (Amazon returns them
  once payment is authorised) and Amazon-fulfilled (`FulfillmentChannel` `AFN`), shipped or
  unfulfillable orders are not the OMS's to ship: those are ignored, or answered with the
  existing order when the OMS already has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.order_intake.channels.adapters import base
from services.order_intake.domain.order import CanonicalLine

NAME = "amazon"
CREATABLE = frozenset({"Unshipped", "PartiallyShipped"})
EXPRESS = frozenset({"Expedited", "NextDay", "SecondDay", "Priority", "SameDay"})
ADDRESS = base.AddressKeys(
    "AddressLine1",
    ("AddressLine2", "AddressLine3"),
    "City",
    ("StateOrRegion",),
    "PostalCode",
    "CountryCode",
)


def parse(payload: Any, headers: base.Headers) -> base.ChannelResult:
    order = base.Reader.root(payload)
    if not order.has("AmazonOrderId") and order.has("payload"):
        order = order.obj("payload")
    external_id = order.identifier("AmazonOrderId")
    status = order.text("OrderStatus", max_length=40)
    if status == "Canceled":
        return base.CancelOrder(external_id, "cancelled on Amazon")
    if order.optional_text("FulfillmentChannel") == "AFN":
        return base.Ignored("fulfilled by Amazon (AFN), not by this OMS", external_id)
    if status not in CREATABLE:
        return base.Ignored(
            f"Amazon order is {status}: only Unshipped and PartiallyShipped orders are taken"
            " (Pending ones carry no prices yet)",
            external_id,
        )

    items = order.objects("OrderItems")
    total = order.optional_obj("OrderTotal")
    if total is not None:
        currency = base.currency_code(total.text("CurrencyCode"), total.field("CurrencyCode"))
    elif items and items[0].has("ItemPrice"):
        price = items[0].obj("ItemPrice")
        currency = base.currency_code(price.text("CurrencyCode"), price.field("CurrencyCode"))
    else:
        raise base.ChannelPayloadError(order.field("OrderTotal"), "is required")

    priced = [_priced(item, currency) for item in items]
    priced = [p for p in priced if p.quantity > 0]
    if not priced:
        raise base.ChannelPayloadError(order.field("OrderItems"), "no item has a quantity ordered")
    goods = sum((p.goods for p in priced), Decimal(0))
    shipping = sum((p.shipping for p in priced), Decimal(0))
    tax = sum((p.goods_tax + p.shipping_tax for p in priced), Decimal(0))
    order_total = (
        total.amount("Amount", currency) if total is not None and total.has("Amount") else None
    )
    tax_included = tax != 0 and order_total == goods + shipping
    lines: list[CanonicalLine] = []
    for p in priced:
        line_total = p.goods - p.goods_tax if tax_included else p.goods
        lines += base.split_line_total(p.sku, p.quantity, line_total, currency, p.field)
    if tax_included:
        shipping -= sum((p.shipping_tax for p in priced), Decimal(0))

    ship = order.obj("ShippingAddress")
    buyer = order.optional_obj("BuyerInfo")
    return base.new_order(
        NAME,
        external_id,
        customer=base.customer(
            email=buyer.optional_text("BuyerEmail", max_length=254) if buyer else None,
            name=(buyer.optional_text("BuyerName") if buyer else None)
            or ship.optional_text("Name"),
            phone=ship.optional_text("Phone", max_length=40),
            email_field=buyer.field("BuyerEmail") if buyer else "BuyerInfo.BuyerEmail",
        ),
        shipping_address=ADDRESS.read(ship),
        currency=currency,
        lines=lines,
        paid=True,
        shipping_method="express"
        if order.optional_text("ShipmentServiceLevelCategory") in EXPRESS
        else "standard",
        shipping=base.not_negative(shipping, order.field("OrderItems")),
        tax=max(tax, Decimal(0)),
    )


@dataclass(frozen=True)
class _Item:
    sku: str
    quantity: int
    goods: Decimal  # ItemPrice less the promotion: the line total as Amazon charged it
    shipping: Decimal
    goods_tax: Decimal
    shipping_tax: Decimal
    field: str


def _priced(item: base.Reader, currency: str) -> _Item:
    quantity = item.quantity("QuantityOrdered")
    if quantity == 0:
        return _Item("", 0, Decimal(0), Decimal(0), Decimal(0), Decimal(0), item.field(""))
    return _Item(
        sku=base.sku_of(item, "SellerSKU"),
        quantity=quantity,
        goods=_money(item, "ItemPrice", currency, required=True)
        - _money(item, "PromotionDiscount", currency),
        shipping=_money(item, "ShippingPrice", currency)
        - _money(item, "ShippingDiscount", currency),
        goods_tax=_money(item, "ItemTax", currency)
        - _money(item, "PromotionDiscountTax", currency),
        shipping_tax=_money(item, "ShippingTax", currency)
        - _money(item, "ShippingDiscountTax", currency),
        field=item.field("ItemPrice"),
    )


def _money(item: base.Reader, key: str, currency: str, *, required: bool = False) -> Decimal:
    money = item.obj(key) if required else item.optional_obj(key)
    if money is None:
        return Decimal(0)
    base.same_currency(money.optional_text("CurrencyCode"), currency, money.field("CurrencyCode"))
    return money.amount("Amount", currency)


ADAPTER = base.ChannelAdapter(name=NAME, parse=parse)
