"""The canonical order every channel's payload is mapped to, and the saga it starts."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from services.order_intake.domain.pricing import PricedLine, Totals, compute_totals, line_total
from services.order_intake.domain.saga import OrderSaga, SagaLine
from shared.contracts.common import Address, Customer


class CanonicalLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    sku: str
    quantity: int = Field(gt=0)
    unit_price: Decimal = Field(ge=0)


class CanonicalOrder(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: str
    external_id: str | None = None
    customer: Customer
    shipping_address: Address
    billing_address: Address | None = None
    currency: str
    lines: tuple[CanonicalLine, ...]
    payment_method: str = "card"
    payment_token: str | None = None
    paid_externally: bool = False
    shipping_method: str = "standard"
    promo_code: str | None = None
    # Channels that priced shipping and tax themselves (marketplaces) pass them through.
    shipping_override: Decimal | None = None
    tax_override: Decimal | None = None
    # When the channel last changed the order (the version received), if the channel says.
    channel_changed_at: datetime | None = None


def new_order_id() -> str:
    return f"ord_{uuid.uuid4().hex}"


def price(order: CanonicalOrder) -> Totals:
    return compute_totals(
        [PricedLine(li.sku, li.quantity, li.unit_price) for li in order.lines],
        currency=order.currency,
        country=order.shipping_address.country,
        shipping_method=order.shipping_method,
        promo_code=order.promo_code,
        shipping_override=order.shipping_override,
        tax_override=order.tax_override,
    )


def saga_lines(order: CanonicalOrder) -> tuple[SagaLine, ...]:
    return tuple(
        SagaLine(
            line_id=f"l{position}",
            sku=li.sku,
            quantity=li.quantity,
            unit_price=li.unit_price,
            line_total=line_total(li.quantity, li.unit_price, order.currency),
        )
        for position, li in enumerate(order.lines, start=1)
    )


def new_saga(order_id: str, order: CanonicalOrder, totals: Totals) -> OrderSaga:
    return OrderSaga(
        order_id=order_id,
        channel=order.channel,
        currency=order.currency,
        total=totals.total,
        lines=saga_lines(order),
        customer=order.customer,
        shipping_address=order.shipping_address,
        shipping_method=order.shipping_method,
        payment_method=order.payment_method,
        payment_token=order.payment_token,
        paid_externally=order.paid_externally,
        channel_changed_at=order.channel_changed_at,
    )
