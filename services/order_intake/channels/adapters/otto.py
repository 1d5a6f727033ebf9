"""OTTO Market: an Orders v4 order (`GET /v4/orders`, `GET /v4/orders/{salesOrderId}`), as the
channel connector's poller hands it on. OTTO does not push orders: the payload is unsigned, its
trust comes from the poller (or the Kafka ACLs).

- The order's id is `salesOrderId` (unique per partner; shipments and cancellations name it);
  `orderNumber` is the short number the customer sees.
- Each of `positionItems[]` is ONE unit. The items of a SKU become one line whose quantity is
  the number of items.
- Only `PROCESSABLE` items are the OMS's to fulfil. An order with an `ANNOUNCED` item is not
  processable yet (prepayment not received; OTTO hides the address until then): ignored, it
  comes again once processable. An order whose items are all `CANCELLED_BY_PARTNER` /
  `CANCELLED_BY_MARKETPLACE` cancels. An order with no processable item left (sent, returned,
  partly cancelled) is ignored; one the OMS already has is answered with it (dedupe).
- Prices are gross (VAT included). A unit's price is `itemValueReducedGrossPrice` (after the
  item's discount) when sent, else `itemValueGrossPrice` less `itemValueDiscount`, else
  `itemValueGrossPrice`; `initialDiscounts[]` describe those same discounts and are not taken
  off again. `product.vatRate` is a percentage (19 for 19 %). Canonical prices are net: the
  items of a SKU (at one VAT rate) are summed gross, the net is that sum / (1 + rate) rounded
  half-up to the cent, and the net is split into unit prices as `split_line_total` does (a
  cent apart when it does not divide). The VAT (gross - net) is the order's tax.
- Shipping: `initialDeliveryFees[]` that apply to a processable item (or name no item), each
  gross at its own `vatRate`, split into net shipping and VAT the same way. So items + shipping
  + tax in the OMS equals what OTTO charged, to the cent.
- Addresses: `street` + `houseNumber` (+ `addition`), `zipCode`, `city`, `countryCode` in
  ISO 3166-1 alpha-3 (`DEU`), mapped to alpha-2. The delivery address's e-mail is the buyer's;
  the invoice address's is a pseudonym (used only when the delivery address has none).
- OTTO collected the money: always paid externally.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from services.order_intake.channels.adapters import base
from services.order_intake.domain.order import CanonicalLine
from shared.contracts.common import Address
from shared.money import quantum

NAME = "otto"
ANNOUNCED = "ANNOUNCED"
PROCESSABLE = "PROCESSABLE"
SENT = "SENT"
RETURNED = "RETURNED"
CANCELLED = frozenset({"CANCELLED_BY_PARTNER", "CANCELLED_BY_MARKETPLACE"})
STATUSES = frozenset({ANNOUNCED, PROCESSABLE, SENT, RETURNED}) | CANCELLED

# ISO 3166-1 alpha-3 → alpha-2 for where OTTO Market delivers and its neighbours.
ALPHA2 = {
    "DEU": "DE", "AUT": "AT", "CHE": "CH", "LIE": "LI", "NLD": "NL", "BEL": "BE", "LUX": "LU",
    "FRA": "FR", "DNK": "DK", "POL": "PL", "CZE": "CZ", "ITA": "IT", "ESP": "ES", "PRT": "PT",
    "SWE": "SE", "FIN": "FI", "NOR": "NO", "GBR": "GB", "IRL": "IE", "HUN": "HU", "SVK": "SK",
    "SVN": "SI", "HRV": "HR", "GRC": "GR", "ROU": "RO", "BGR": "BG", "EST": "EE", "LVA": "LV",
    "LTU": "LT", "MLT": "MT", "CYP": "CY", "USA": "US",
}  # fmt: skip


def parse(payload: Any, headers: base.Headers) -> base.ChannelResult:
    order = base.Reader.root(payload)
    external_id = order.identifier("salesOrderId")
    items = base.line_items(order, "positionItems")
    states = [_status(item) for item in items]

    if all(state in CANCELLED for state in states):
        return base.CancelOrder(external_id, "cancelled on OTTO Market")
    if ANNOUNCED in states:
        return base.Ignored(
            "OTTO order has ANNOUNCED position items: not processable yet (it is taken once"
            " OTTO marks it PROCESSABLE)",
            external_id,
        )
    processable = [item for item, state in zip(items, states, strict=True) if state == PROCESSABLE]
    if not processable:
        seen = ", ".join(sorted(set(states)))
        return base.Ignored(f"OTTO order has no PROCESSABLE position item ({seen})", external_id)

    units = [_unit(item) for item in processable]
    currency = units[0].currency
    for unit in units[1:]:
        base.same_currency(unit.currency, currency, unit.currency_field)

    lines: list[CanonicalLine] = []
    tax = Decimal(0)
    for group in _groups(units):
        net = net_of(group.gross, group.rate, currency)
        tax += group.gross - net
        lines += base.split_line_total(group.sku, group.quantity, net, currency, group.field)

    processable_ids = {unit.position_item_id for unit in units}
    shipping = Decimal(0)
    for fee in order.objects("initialDeliveryFees", required=False):
        applies_to = fee.raw("positionItemIds")
        if (
            isinstance(applies_to, list)
            and applies_to
            and not processable_ids.intersection(str(i) for i in applies_to)
        ):
            continue  # the fee of items the OMS does not fulfil
        money = fee.obj("deliveryFeeAmount")
        base.same_currency(money.optional_text("currency"), currency, money.field("currency"))
        gross = base.not_negative(money.amount("amount", currency), money.field("amount"))
        net = net_of(gross, vat_rate(fee, "vatRate"), currency)
        shipping += net
        tax += gross - net

    delivery = order.obj("deliveryAddress")
    invoice = order.optional_obj("invoiceAddress")
    email = delivery.optional_text("email", max_length=254)
    email_field = delivery.field("email")
    if email is None and invoice is not None:
        email = invoice.optional_text("email", max_length=254)
        email_field = invoice.field("email")
    return base.new_order(
        NAME,
        external_id,
        customer=base.customer(
            email=email,
            name=base.full_name(
                delivery.optional_text("firstName"), delivery.optional_text("lastName")
            ),
            phone=delivery.optional_text("phoneNumber", max_length=40),
            email_field=email_field,
        ),
        shipping_address=otto_address(delivery),
        billing_address=otto_address(invoice) if invoice is not None else None,
        currency=currency,
        lines=lines,
        paid=True,
        shipping_method="standard",
        shipping=shipping,
        tax=tax,
    )


# --- money -----------------------------------------------------------------------------------


def net_of(gross: Decimal, rate: Decimal, currency: str) -> Decimal:
    """The net inside a gross amount at `rate` percent, rounded half-up to the minor unit."""
    return (gross * 100 / (100 + rate)).quantize(quantum(currency), rounding=ROUND_HALF_UP)


def vat_rate(reader: base.Reader, key: str) -> Decimal:
    """A VAT rate in percent (19 for 19 %), exact."""
    value = reader.raw(key)
    field = reader.field(key)
    if value is None:
        raise base.ChannelPayloadError(field, "is required")
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise base.ChannelPayloadError(field, "must be a number")
    try:
        rate = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation as exc:
        raise base.ChannelPayloadError(field, f"{value!r} is not a number") from exc
    if not rate.is_finite() or rate < 0 or rate >= 100:
        raise base.ChannelPayloadError(field, "must be a percentage from 0 to under 100")
    if 0 < rate < 1:
        raise base.ChannelPayloadError(
            field, f"{rate} looks like a fraction; OTTO sends percentages (19 for 19 %)"
        )
    return rate


@dataclass(frozen=True)
class _Unit:
    position_item_id: str
    sku: str
    gross: Decimal
    rate: Decimal
    currency: str
    currency_field: str
    field: str


@dataclass
class _Group:
    sku: str
    rate: Decimal
    quantity: int
    gross: Decimal
    field: str


def _status(item: base.Reader) -> str:
    status = item.text("fulfillmentStatus", max_length=40)
    if status not in STATUSES:
        raise base.ChannelPayloadError(
            item.field("fulfillmentStatus"),
            f"{status!r} is not an OTTO fulfilment status ({', '.join(sorted(STATUSES))})",
        )
    return status


def _unit(item: base.Reader) -> _Unit:
    product = item.obj("product")
    price = item.obj("itemValueGrossPrice")
    currency = base.currency_code(price.text("currency"), price.field("currency"))
    reduced = item.optional_obj("itemValueReducedGrossPrice")
    discount = item.optional_obj("itemValueDiscount")
    if reduced is not None:
        base.same_currency(reduced.optional_text("currency"), currency, reduced.field("currency"))
        gross = reduced.amount("amount", currency)
        field = reduced.field("amount")
    else:
        gross = price.amount("amount", currency)
        field = price.field("amount")
        if discount is not None:
            base.same_currency(
                discount.optional_text("currency"), currency, discount.field("currency")
            )
            gross -= abs(discount.amount("amount", currency))
    return _Unit(
        position_item_id=item.identifier("positionItemId"),
        sku=base.sku_of(product, "sku"),
        gross=base.not_negative(gross, field),
        rate=vat_rate(product, "vatRate"),
        currency=currency,
        currency_field=price.field("currency"),
        field=field,
    )


def _groups(units: Iterable[_Unit]) -> list[_Group]:
    """The units by (SKU, VAT rate), in the order the SKUs first appear."""
    groups: dict[tuple[str, Decimal], _Group] = {}
    for unit in units:
        group = groups.get((unit.sku, unit.rate))
        if group is None:
            groups[(unit.sku, unit.rate)] = _Group(unit.sku, unit.rate, 1, unit.gross, unit.field)
        else:
            group.quantity += 1
            group.gross += unit.gross
    return list(groups.values())


# --- addresses -------------------------------------------------------------------------------


def country_alpha2(reader: base.Reader, key: str) -> str:
    value = reader.text(key, max_length=3).upper()
    if len(value) == 2 and value.isalpha():
        return value
    code = ALPHA2.get(value)
    if code is None:
        raise base.ChannelPayloadError(
            reader.field(key), f"{value!r} is not an ISO 3166-1 alpha-3 country code known here"
        )
    return code


def otto_address(reader: base.Reader) -> Address:
    street = reader.text("street")
    number = reader.optional_text("houseNumber", max_length=20)
    return Address(
        line1=f"{street} {number}" if number else street,
        line2=reader.optional_text("addition"),
        city=reader.text("city", max_length=100),
        postal_code=reader.text("zipCode", max_length=20),
        country=country_alpha2(reader, "countryCode"),
    )


ADAPTER = base.ChannelAdapter(name=NAME, parse=parse)
