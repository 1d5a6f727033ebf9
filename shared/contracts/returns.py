"""Produced by returns: the returns saga's commands to inventory and order-intake, and the
returns lifecycle events.

The refund itself goes through payment's `RefundPayment` (shared/contracts/order_intake.py) with
`return_id` set and the idempotency key `<return_id>:refund`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import Field

from shared.contracts.common import ReturnedLines, SkuQuantity, Value
from shared.envelope import Command, Event, register
from shared.topics import INVENTORY_COMMANDS, ORDERS_COMMANDS, RETURNS_EVENTS

# --- to inventory -------------------------------------------------------------------------


@register
class RestockReturnedItems(Command, ReturnedLines):
    """Put resellable returned items back on hand at a location (ledger reason `return`).

    Idempotent per (return_id, sku): a re-sent command changes nothing and gets the same answer
    (`ReturnedItemsRestocked`, or `ReturnedStockFailed`)."""

    TYPE = "RestockReturnedItems"
    TOPIC = INVENTORY_COMMANDS
    lines: tuple[SkuQuantity, ...] = Field(min_length=1)


@register
class WriteOffReturnedItems(Command, ReturnedLines):
    """Record damaged returned items in the ledger without adding sellable stock: they come back
    (`return_damaged`) and are written off at once (`damage`). Idempotent per (return_id, sku)."""

    TYPE = "WriteOffReturnedItems"
    TOPIC = INVENTORY_COMMANDS
    lines: tuple[SkuQuantity, ...] = Field(min_length=1)
    reason: str = "damaged on return"


# --- to order-intake ----------------------------------------------------------------------


class ReplacementLine(Value):
    sku: str
    quantity: int = Field(gt=0)
    unit_price: Decimal = Field(ge=0)


@register
class CreateReplacementOrder(Command):
    """Create the replacement order of an exchange, linked to the return and the original order.

    Order-intake creates it like any order (it reserves stock and goes through the order saga),
    shipped to the original order's customer and address, free shipping, paid by the return's
    credit (no payment authorisation). One replacement order per return id: a re-sent command
    gets the same `ReplacementOrderCreated`."""

    TYPE = "CreateReplacementOrder"
    TOPIC = ORDERS_COMMANDS
    return_id: str
    original_order_id: str
    lines: tuple[ReplacementLine, ...] = Field(min_length=1)


# --- returns events -----------------------------------------------------------------------


class ReturnLineSummary(Value):
    sku: str
    quantity: int
    reason: str


class ReceivedLineSummary(Value):
    sku: str
    quantity: int
    condition: str


@register
class ReturnStatusChanged(Event):
    """Every status change of a return, for read models (the order view) and operators.

    `revision` grows with every change of one return: a consumer keeps the highest it saw.
    `refund_status`: pending, refunding, refunded, to_be_executed_by_channel, not_needed,
    failed, none."""

    TYPE = "ReturnStatusChanged"
    TOPIC = RETURNS_EVENTS
    return_id: str
    order_id: str
    status: str
    previous_status: str | None = None
    revision: int
    reason: str | None = None
    currency: str
    lines: tuple[ReturnLineSummary, ...] = ()
    received: tuple[ReceivedLineSummary, ...] = ()
    refund_amount: Decimal | None = None
    refund_status: str
    refunded_amount: Decimal = Decimal(0)
    amount_due: Decimal = Decimal(0)
    replacement_order_id: str | None = None
    at: datetime


@register
class ChannelRefundRequested(Event):
    """A refund for an order the sales channel took payment for (a marketplace): the channel
    executes it; the OMS only records it (`to_be_executed_by_channel`)."""

    TYPE = "ChannelRefundRequested"
    TOPIC = RETURNS_EVENTS
    return_id: str
    order_id: str
    channel: str
    amount: Decimal
    currency: str
    reason: str
    idempotency_key: str
