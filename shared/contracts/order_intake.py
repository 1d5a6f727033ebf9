"""Produced by order-intake: the saga's commands to the other services, order events, and
customer notifications."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import Field

from shared.contracts.common import (
    Address,
    Allocation,
    Customer,
    FulfilmentLines,
    OrderAmount,
    OrderLineRef,
    ShortUnits,
    SkuQuantity,
    Value,
)
from shared.envelope import Command, Event, register
from shared.topics import (
    FULFILMENT_COMMANDS,
    INVENTORY_COMMANDS,
    NOTIFICATIONS,
    ORDERS_EVENTS,
    PAYMENT_COMMANDS,
)

# --- to inventory -------------------------------------------------------------------------


class ShipTo(Value):
    """Where an order goes, as far as choosing the location it ships from needs to know."""

    country: str = Field(min_length=2, max_length=2)
    postal_code: str | None = None


@register
class ReserveStock(Command):
    """Reserve the order's lines; `ship_to` (absent from older sagas) lets inventory route the
    order to a location near the customer that ships to their country."""

    TYPE = "ReserveStock"
    TOPIC = INVENTORY_COMMANDS
    order_id: str
    channel: str
    lines: tuple[OrderLineRef, ...]
    ship_to: ShipTo | None = None


@register
class ReleaseStock(Command):
    """Release whatever is still reserved for the order. A no-op that still answers when nothing is."""

    TYPE = "ReleaseStock"
    TOPIC = INVENTORY_COMMANDS
    order_id: str
    reason: str


@register
class CommitStock(Command, FulfilmentLines):
    """Turn the reservation of what shipped from one location into a deduction of stock on hand.

    One per shipment: `shipment_id` names the parcel (absent: the whole fulfilment shipped at
    once); inventory applies it once per `shipment_id or fulfilment_id`."""

    TYPE = "CommitStock"
    TOPIC = INVENTORY_COMMANDS
    shipment_id: str | None = None


@register
class ReallocateStock(Command, ShortUnits):
    """A short pick: the units are not at `location`. Write them off there (they leave the
    order's reservation and stock on hand) and reserve as many at other locations by the
    allocation rule → StockReallocated, or StockReallocationFailed (written off all the same).
    Applied once per `short_id`; a re-sent one repeats the stored answer."""

    TYPE = "ReallocateStock"
    TOPIC = INVENTORY_COMMANDS


@register
class WriteOffShortPick(Command, ShortUnits):
    """A short pick whose units are cancelled from the order: write them off at `location`
    (out of the order's reservation and stock on hand) → ShortPickWrittenOff. Applied once per
    `short_id`; a re-sent one repeats the stored answer."""

    TYPE = "WriteOffShortPick"
    TOPIC = INVENTORY_COMMANDS


# --- to payment ---------------------------------------------------------------------------


@register
class AuthorizePayment(Command, OrderAmount):
    TYPE = "AuthorizePayment"
    TOPIC = PAYMENT_COMMANDS
    method: str
    token: str
    idempotency_key: str
    # The order's sales channel: payment chooses its gateway by it (OMS_PAYMENT_GATEWAYS).
    channel: str | None = None


@register
class CapturePayment(Command, OrderAmount):
    """Capture the value of one shipment: `shipment_id` names the parcel (absent: the whole
    fulfilment shipped at once); payment repeats it in its answer."""

    TYPE = "CapturePayment"
    TOPIC = PAYMENT_COMMANDS
    fulfilment_id: str
    idempotency_key: str
    shipment_id: str | None = None


@register
class VoidPayment(Command):
    TYPE = "VoidPayment"
    TOPIC = PAYMENT_COMMANDS
    order_id: str
    reason: str
    idempotency_key: str


@register
class RefundPayment(Command, OrderAmount):
    TYPE = "RefundPayment"
    TOPIC = PAYMENT_COMMANDS
    reason: str
    idempotency_key: str
    return_id: str | None = None


# --- to fulfilment ------------------------------------------------------------------------


@register
class CreateFulfilment(Command):
    TYPE = "CreateFulfilment"
    TOPIC = FULFILMENT_COMMANDS
    order_id: str
    allocations: tuple[Allocation, ...]
    shipping_address: Address
    shipping_method: str | None = None
    # Who the parcels are for: printed on labels and slips, sent to 3PLs and suppliers.
    recipient_name: str | None = None


@register
class AddFulfilment(Command):
    """Fulfil units re-allocated after a short pick (`short_id`): one new fulfilment per
    location of `allocations`, with ids derived from the order, the location and the short →
    FulfilmentsAdded (the same answer when re-sent). Once the order was cancelled it adds
    nothing and answers FulfilmentCancelled, as CreateFulfilment does."""

    TYPE = "AddFulfilment"
    TOPIC = FULFILMENT_COMMANDS
    order_id: str
    short_id: str
    allocations: tuple[Allocation, ...]
    shipping_address: Address
    shipping_method: str | None = None
    recipient_name: str | None = None


@register
class CancelFulfilment(Command):
    TYPE = "CancelFulfilment"
    TOPIC = FULFILMENT_COMMANDS
    order_id: str
    reason: str


@register
class HoldFulfilments(Command):
    """Stop the order's unshipped fulfilments on the floor (an operator's hold, a payment
    dispute): nothing of them is picked, packed, labelled or shipped until ReleaseFulfilments.
    Fulfilments created for the order while it is held are created held. Parcels that already
    left are not affected. Idempotent; answered by FulfilmentsHeld."""

    TYPE = "HoldFulfilments"
    TOPIC = FULFILMENT_COMMANDS
    order_id: str
    reason: str


@register
class ReleaseFulfilments(Command):
    """Take the order's hold off: its held fulfilments go on. Idempotent; answered by
    FulfilmentsReleased."""

    TYPE = "ReleaseFulfilments"
    TOPIC = FULFILMENT_COMMANDS
    order_id: str


@register
class UpdateShippingAddress(Command):
    """The channel changed the order's shipping address (an order edit): fulfilment gives it to
    the order's fulfilments whose picking has not started, so labels printed later use it.
    All or nothing: once any fulfilment of the order is on a released pick list (or later), or
    its request went to a partner, the change is refused. `change_id` names the change; a re-send
    answers what the first answered. Answered by ShippingAddressUpdated or
    ShippingAddressChangeRefused."""

    TYPE = "UpdateShippingAddress"
    TOPIC = FULFILMENT_COMMANDS
    order_id: str
    change_id: str
    shipping_address: Address
    recipient_name: str | None = None


# --- order events -------------------------------------------------------------------------


class OrderLineSummary(Value):
    line_id: str
    sku: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


@register
class OrderStatusChanged(Event):
    """Every saga state change of an order, for read models, returns and operators."""

    TYPE = "OrderStatusChanged"
    TOPIC = ORDERS_EVENTS
    order_id: str
    channel: str
    status: str
    previous_status: str | None = None
    reason: str | None = None
    currency: str
    total: Decimal
    lines: tuple[OrderLineSummary, ...] = ()
    at: datetime
    # The total's parts (returns prorates refunds over them); absent from older producers.
    subtotal: Decimal | None = None
    discount: Decimal | None = None
    shipping: Decimal | None = None
    tax: Decimal | None = None
    # The sales channel took the payment (a marketplace): refunds are the channel's to execute.
    paid_externally: bool | None = None
    # Set on a replacement order of an exchange.
    linked_return_id: str | None = None
    original_order_id: str | None = None
    # Units per SKU that left in shipments so far: less than the lines when part of the order
    # was cancelled after other parts shipped. Absent from older producers (every line counts).
    shipped: tuple[SkuQuantity, ...] | None = None
    # The sales channel's own id of the order (channel orders only; absent from older producers).
    external_id: str | None = None


@register
class ReplacementOrderCreated(Event):
    """Answer to CreateReplacementOrder (shared/contracts/returns.py): the linked order exists.

    Repeated as is (with the order's current status) when the command is re-sent."""

    TYPE = "ReplacementOrderCreated"
    TOPIC = ORDERS_EVENTS
    return_id: str
    order_id: str
    original_order_id: str
    status: str
    currency: str
    total: Decimal


@register
class ReplacementOrderRefused(Event):
    """CreateReplacementOrder that cannot be carried out (e.g. the original order is unknown)."""

    TYPE = "ReplacementOrderRefused"
    TOPIC = ORDERS_EVENTS
    return_id: str
    original_order_id: str
    reason: str


@register
class OrderNeedsAttention(Event):
    TYPE = "OrderNeedsAttention"
    TOPIC = ORDERS_EVENTS
    order_id: str
    reason: str
    step: str


@register
class CustomerNotification(Event):
    """A message for the customer (confirmed, rejected, delayed, shipped, delivered)."""

    TYPE = "CustomerNotification"
    TOPIC = NOTIFICATIONS
    order_id: str
    kind: str
    customer: Customer
    data: dict[str, Any] = Field(default_factory=dict)


@register
class OperatorAlert(Event):
    TYPE = "OperatorAlert"
    TOPIC = NOTIFICATIONS
    order_id: str
    kind: str
    message: str


@register
class OperatorStockAlert(Event):
    """An operator alert about a SKU at a location rather than an order (keyed by SKU):
    `kind` `low_stock`, relayed from inventory's LowStock (oms.notifications.v1 is order-intake's
    to write)."""

    TYPE = "OperatorStockAlert"
    TOPIC = NOTIFICATIONS
    kind: str
    sku: str
    location: str
    message: str
