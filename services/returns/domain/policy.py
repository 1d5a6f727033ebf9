"""The return policy, as plain Python: may this be returned, and how much is refunded.

May it be returned (`evaluate`), checked in this order, the first failure refusing it:

- `order_not_found`: returns has never heard of the order;
- `not_delivered`: the order was not delivered (yet);
- `outside_return_window`: more than the channel's window (days) passed since delivery;
- `sku_not_in_order`: a SKU the order does not contain;
- `not_returnable`: a SKU on the non-returnable list (final sale, hygiene, ...);
- `quantity_exceeds_delivered`: more than delivered (the lines, less what never shipped because
  it was cancelled after other parts of the order had shipped) minus what earlier returns
  already claim;
- `exchange_price_unknown`: a replacement SKU the order does not contain and no price given;
- `exchange_price_mismatch`: a price given for a replacement SKU the order contains that is not
  the order's price.

Replacements are priced from the original order (the SKU's unit price there). A price in the
request is never trusted by itself: it is only a proposal for a SKU the order does not contain
(the OMS keeps no catalogue prices), and such an exchange waits for an operator to confirm it.

A return the policy allows is approved at once, unless its reason or its value asks for an
operator (`manual_review_reasons`, `manual_review_above`), a replacement is priced by the
request, or the replacements are worth more than the estimated refund (the difference would be
given away).

How much is refunded (`credit_for`): the order's total is what the customer paid, taxes and
discounts included. It is split into the shipping part and the goods part in proportion to their
net amounts, the goods part over the SKUs in proportion to their line totals, in whole cents that
add up exactly. A unit's refund is its share of its SKU's part, rounded cumulatively over every
return of the order, so returning every unit (in any number of returns) refunds exactly the
goods part. Damaged units are refunded `damaged_refund_percent` of that, unless the reason says
the seller was at fault (`full_refund_reasons`). The shipping part is refunded once: never, with
the first return (`always`), or with the return that completes a full return
(`full_return_only`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from shared.money import ZERO, round_money, split


class RefundShipping(StrEnum):
    NEVER = "never"
    FULL_RETURN_ONLY = "full_return_only"
    ALWAYS = "always"


class Condition(StrEnum):
    RESELLABLE = "resellable"
    DAMAGED = "damaged"


@dataclass(frozen=True)
class ReturnPolicy:
    window_days: int = 30
    window_days_by_channel: Mapping[str, int] = field(default_factory=dict)
    non_returnable_skus: frozenset[str] = frozenset()
    refund_shipping: RefundShipping = RefundShipping.FULL_RETURN_ONLY
    damaged_refund_percent: Decimal = Decimal(100)
    full_refund_reasons: frozenset[str] = frozenset(
        {"defective", "wrong_item", "damaged_in_transit"}
    )
    manual_review_reasons: frozenset[str] = frozenset({"other"})
    manual_review_above: Decimal | None = None

    def window(self, channel: str) -> timedelta:
        return timedelta(days=self.window_days_by_channel.get(channel, self.window_days))


@dataclass(frozen=True)
class OrderLine:
    sku: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


@dataclass(frozen=True)
class OrderFacts:
    """What returns knows of an order, from the order events."""

    order_id: str
    channel: str
    currency: str
    status: str
    total: Decimal
    lines: tuple[OrderLine, ...]
    delivered_at: datetime | None = None
    subtotal: Decimal | None = None
    discount: Decimal | None = None
    shipping: Decimal | None = None
    # The sales channel took the money: refunds are recorded for the channel to execute.
    paid_by_channel: bool = False
    # Units per SKU that left in shipments (None: not known, every line counts): less than the
    # lines when part of the order was cancelled after other parts had shipped.
    shipped: Mapping[str, int] | None = None

    def delivered_by_sku(self) -> dict[str, int]:
        """Units per SKU of the order the customer received (none before delivery): its lines,
        less what never shipped."""
        delivered: dict[str, int] = defaultdict(int)
        if self.delivered_at is not None:
            for line in self.lines:
                delivered[line.sku] += line.quantity
            if self.shipped is not None:
                for sku in delivered:
                    delivered[sku] = min(delivered[sku], self.shipped.get(sku, 0))
        return dict(delivered)


@dataclass(frozen=True)
class SkuUnits:
    """Some units of one SKU; the types below say what they are units of."""

    sku: str
    quantity: int


@dataclass(frozen=True)
class RequestedLine(SkuUnits):
    reason: str


@dataclass(frozen=True)
class ExchangeRequest(SkuUnits):
    unit_price: Decimal | None = None


@dataclass(frozen=True)
class PricedExchange(SkuUnits):
    unit_price: Decimal


@dataclass(frozen=True)
class ReceivedUnits(SkuUnits):
    condition: Condition


# --- decisions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def _refused(code: str, message: str, **details: Any) -> Refused:
    return Refused(code, message, details)


@dataclass(frozen=True)
class Accepted:
    """The return may go ahead; `review_reason` set when an operator must approve it first."""

    exchange: tuple[PricedExchange, ...]
    estimate: Decimal
    review_reason: str | None = None


def evaluate(
    order: OrderFacts | None,
    lines: Sequence[RequestedLine],
    exchange: Sequence[ExchangeRequest],
    claimed: Mapping[str, int],
    now: datetime,
    policy: ReturnPolicy,
) -> Accepted | Refused:
    """May these lines of the order be returned now? `claimed`: units per SKU that earlier
    returns of the order (not refused) already claim."""
    if order is None:
        return _refused("order_not_found", "no delivered order with this id is known to returns")
    if order.delivered_at is None:
        return _refused(
            "not_delivered",
            f"order {order.order_id} has not been delivered (it is {order.status})",
            order_status=order.status,
        )
    window = policy.window(order.channel)
    return_by = order.delivered_at + window
    if now > return_by:
        return _refused(
            "outside_return_window",
            f"the return window of {window.days} days after delivery ended {return_by.isoformat()}",
            delivered_at=order.delivered_at.isoformat(),
            window_days=window.days,
            return_by=return_by.isoformat(),
        )
    delivered = order.delivered_by_sku()
    requested = _units(lines)
    unknown = sorted(sku for sku in requested if sku not in delivered)
    if unknown:
        return _refused(
            "sku_not_in_order",
            f"order {order.order_id} does not contain {', '.join(unknown)}",
            skus=unknown,
        )
    barred = sorted(sku for sku in requested if sku in policy.non_returnable_skus)
    if barred:
        return _refused("not_returnable", f"{', '.join(barred)} cannot be returned", skus=barred)
    for sku, quantity in requested.items():
        returnable = delivered[sku] - claimed.get(sku, 0)
        if quantity > returnable:
            return _refused(
                "quantity_exceeds_delivered",
                f"{quantity} x {sku} asked, but only {max(returnable, 0)} of the"
                f" {delivered[sku]} delivered can still be returned",
                sku=sku,
                requested=quantity,
                delivered=delivered[sku],
                already_returned=claimed.get(sku, 0),
                returnable=max(returnable, 0),
            )
    priced = price_exchange(order, exchange)
    if isinstance(priced, Refused):
        return priced
    estimate = credit_for(
        order,
        [ReceivedUnits(line.sku, line.quantity, Condition.RESELLABLE) for line in lines],
        {line.sku: line.reason for line in lines},
        credited_before={},
        shipping_refunded_before=False,
        policy=policy,
    ).total
    review = _review_reason(lines, estimate, order, exchange, priced, policy)
    return Accepted(priced, estimate, review)


def _review_reason(
    lines: Sequence[RequestedLine],
    estimate: Decimal,
    order: OrderFacts,
    exchange: Sequence[ExchangeRequest],
    priced: Sequence[PricedExchange],
    policy: ReturnPolicy,
) -> str | None:
    reasons = sorted({line.reason for line in lines} & policy.manual_review_reasons)
    if reasons:
        return f"reason {', '.join(reasons)} is reviewed by an operator"
    proposed = sorted(item.sku for item in exchange if item.sku not in _order_prices(order))
    if proposed:
        return f"replacement {', '.join(proposed)} is priced by the request: an operator confirms"
    replacement_value = round_money(
        sum((item.unit_price * item.quantity for item in priced), ZERO), order.currency
    )
    if replacement_value > estimate:
        return (
            f"the replacement ({replacement_value} {order.currency}) is worth more than the"
            f" refund ({estimate} {order.currency})"
        )
    if policy.manual_review_above is not None and estimate > policy.manual_review_above:
        return f"a refund of {estimate} {order.currency} is above {policy.manual_review_above}"
    return None


def _order_prices(order: OrderFacts) -> dict[str, Decimal]:
    prices: dict[str, Decimal] = {}
    for line in order.lines:
        prices.setdefault(line.sku, line.unit_price)
    return prices


def price_exchange(
    order: OrderFacts, exchange: Sequence[ExchangeRequest]
) -> tuple[PricedExchange, ...] | Refused:
    """Replacement items at the order's unit price of the SKU; a SKU the order does not contain
    at the price proposed (which sends the return to review, see `_review_reason`)."""
    prices = _order_prices(order)
    priced = []
    for item in exchange:
        known = prices.get(item.sku)
        if known is not None and item.unit_price is not None and item.unit_price != known:
            return _refused(
                "exchange_price_mismatch",
                f"{item.sku} costs {known} {order.currency} in the order, not {item.unit_price}",
                sku=item.sku,
                order_unit_price=str(known),
            )
        price = known if known is not None else item.unit_price
        if price is None:
            return _refused(
                "exchange_price_unknown",
                f"{item.sku} is not in the order: propose the replacement's unit_price"
                " (an operator confirms it)",
                sku=item.sku,
            )
        priced.append(PricedExchange(item.sku, item.quantity, price))
    return tuple(priced)


def _units(lines: Iterable[RequestedLine | ReceivedUnits]) -> dict[str, int]:
    units: dict[str, int] = defaultdict(int)
    for line in lines:
        units[line.sku] += line.quantity
    return dict(units)


# --- refunds -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderValue:
    """The order's total split into what each SKU and the shipping account for."""

    goods_by_sku: dict[str, Decimal]
    units_by_sku: dict[str, int]
    shipping: Decimal


def order_value(order: OrderFacts) -> OrderValue:
    currency = order.currency
    line_sum = sum((line.line_total for line in order.lines), ZERO)
    net_goods = (order.subtotal if order.subtotal is not None else line_sum) - (
        order.discount or ZERO
    )
    net_shipping = order.shipping or ZERO
    goods, shipping = split(order.total, [max(net_goods, ZERO), net_shipping], currency)
    skus = sorted({line.sku for line in order.lines})
    weights = [sum((li.line_total for li in order.lines if li.sku == sku), ZERO) for sku in skus]
    shares = split(goods, weights, currency)
    units = {sku: sum(li.quantity for li in order.lines if li.sku == sku) for sku in skus}
    return OrderValue(dict(zip(skus, shares, strict=True)), units, shipping)


@dataclass(frozen=True)
class LineCredit:
    sku: str
    condition: Condition
    quantity: int
    amount: Decimal


@dataclass(frozen=True)
class Credit:
    lines: tuple[LineCredit, ...]
    items: Decimal
    shipping: Decimal

    @property
    def total(self) -> Decimal:
        return self.items + self.shipping


def credit_for(
    order: OrderFacts,
    received: Sequence[ReceivedUnits],
    reasons: Mapping[str, str],
    *,
    credited_before: Mapping[str, int],
    shipping_refunded_before: bool,
    policy: ReturnPolicy,
) -> Credit:
    """What the units received back are worth to the customer under the policy.

    `credited_before`: units per SKU earlier returns of the order were credited for;
    `reasons`: the return reason per SKU (damaged units are refunded in full when it says the
    seller was at fault)."""
    currency = order.currency
    value = order_value(order)
    units = _units(received)
    lines: list[LineCredit] = []
    for sku in sorted(units):
        quantity = value.units_by_sku.get(sku, 0)
        if quantity == 0:
            continue
        gross = value.goods_by_sku[sku]
        before = min(credited_before.get(sku, 0), quantity)
        count = min(units[sku], quantity - before)
        base = round_money(gross * (before + count) / quantity, currency) - round_money(
            gross * before / quantity, currency
        )
        damaged = min(
            sum(r.quantity for r in received if r.sku == sku and r.condition == Condition.DAMAGED),
            count,
        )
        damaged_base = round_money(base * damaged / count, currency) if count else ZERO
        percent = (
            Decimal(100)
            if reasons.get(sku) in policy.full_refund_reasons
            else policy.damaged_refund_percent
        )
        if count - damaged > 0:
            lines.append(
                LineCredit(sku, Condition.RESELLABLE, count - damaged, base - damaged_base)
            )
        if damaged > 0:
            lines.append(
                LineCredit(
                    sku,
                    Condition.DAMAGED,
                    damaged,
                    round_money(damaged_base * percent / 100, currency),
                )
            )
    items = sum((line.amount for line in lines), ZERO)
    shipping = ZERO
    complete = all(
        credited_before.get(sku, 0) + units.get(sku, 0) >= quantity
        for sku, quantity in value.units_by_sku.items()
    )
    refund_shipping = {
        RefundShipping.NEVER: False,
        RefundShipping.ALWAYS: items > 0,
        RefundShipping.FULL_RETURN_ONLY: complete,
    }[policy.refund_shipping]
    if refund_shipping and not shipping_refunded_before:
        shipping = value.shipping
    return Credit(tuple(lines), items, shipping)
