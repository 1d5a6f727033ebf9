"""The order saga (DESIGN.md §4), as a pure state machine.

`OrderSaga` is the persisted state of one order's saga. Every input — the order being stored, an
event from another service, a passed deadline, a cancel request — goes through one function that
mutates the saga and returns a `Decision`: the commands and notices to send and the timeline
entries to record. The handler layer loads the saga under a row lock, calls the domain, and saves
the saga and the outbox rows in one transaction.

Semantic lock: while a machine-paced step is in flight (reserving stock, authorising payment,
creating the fulfilment) a cancel request is only remembered; it is applied when the step answers.

Parking: NEEDS_ATTENTION is an overlay, not a dead end. The saga keeps the status and step it was
parked from underneath; every fact that arrives while parked (a shipment, a capture, a delivery,
an answered step) is applied to that underlying saga and sends what it requires (CommitStock,
CapturePayment...), only the visible status stays NEEDS_ATTENTION. Every reason for parking is
kept. An operator retry resumes the underlying saga, re-sending what it waits for.

Cancelling compensates in reverse order of what was done: the fulfilment first, and only once it
is confirmed cancelled the payment and the stock. A shipment that wins the race is applied as a
shipment (stock committed, payment captured) and the customer is told the cancel came too late.

Cancelling the rest: once part of the order shipped (PARTIALLY_SHIPPED), a cancel takes what has
not left yet. It goes the same way (CANCELLING, CancelFulfilment first, its deadline), but it
never voids: what shipped stays shipped and captured. On fulfilment's answer the unshipped units
of the fulfilments it cancelled, whole or their rest, are cancelled from the order as short
picks' are (the capture target lowered by their share of the total, so the captures add up to
exactly the share of what shipped; the authorisation's uncaptured rest lapses), their stock is
released (inventory releases only what is still reserved: shipped parcels were committed), the
customer is told which units were cancelled and what is not charged (`rest_cancelled`), and the
order goes on to SHIPPED and completes when what shipped is delivered and captured. A parcel
that leaves before fulfilment sees the cancel is applied as a shipment and is not cancelled. A
cancel that came while nothing had shipped but lost the race to a parcel ends the same way.
Once everything shipped a cancel is refused (`already_shipped`); an operator's compensation of
a partly shipped order is the same cancel of the rest.

Parcels: a fulfilment may leave in several shipments, one FulfilmentShipped each (named by its
`shipment_id`; none: the fulfilment id, the whole fulfilment at once). Each new shipment commits
the stock of its lines and captures their value (under the key `capture_key(shipment id)`),
and the customer gets a shipped notice with its tracking; the same shipment again changes
nothing, one holding more than is left unshipped is not applied (parked for an operator). A
fulfilment has finished shipping when the warehouse says it is complete, all its lines left, or
the rest was cancelled; the order is SHIPPED when every fulfilment has finished, else
PARTIALLY_SHIPPED. Captures are each shipment's share of the total (of everything shipped so far,
rounded once, less what was asked for before); the last shipment of the whole order takes the
rest, so they add up to the total exactly.

Short picks: a bin found empty (ShortPick) takes the missing units off their fulfilment, which
ships what is left (one with nothing left ends without shipping). By `SagaPolicy.short_pick`
they are re-allocated: inventory writes them off where they were missing and reserves them at
other locations (ReallocateStock → StockReallocated), fulfilment gives them fulfilments of their
own (AddFulfilment → FulfilmentsAdded), and the order waits for those too. Each is a
machine-paced step taken one short at a time, the order's status unchanged (a cancel waits for
it, its deadline re-sends it; after the last try the order is parked, since units may be
reserved or fulfilments on their way). When no other location has them (StockReallocationFailed)
or the policy is `ship_available`, they are cancelled from the order: written off
(WriteOffShortPick), the customer told which units will not come, and the order's capture
target lowered by their share of the total (`capture_target`): the shipments capture only what
shipped and the authorisation's uncaptured rest lapses. An order none of whose units can ship is
cancelled.

Kits: inventory reserves a kit's line as its components (StockReserved names the kit and the
units of each component per kit, kept in `kits`), and fulfilment ships those components. The
order's units and their values count a kit's line as its components' units, the kits' value
split over them in proportion to their count (`ordered_units`, `_value_of`).

Backorders: inventory may answer ReserveStock with StockBackordered — part of the order waits
in a SKU's queue for stock. The order is BACKORDERED, a human-paced state with no step in
flight (a cancel applies at once: ReleaseStock takes it out of the queues and gives back what it
held), the customer is told what waits and when it is expected, and the order goes on as from
RESERVING_STOCK when inventory answers StockReserved with everything reserved. After
`SagaPolicy.backorder_max_wait` (for pre-orders counted from the release date) it is cancelled
with a notice.

Holds: an operator may hold an order (`place_hold`: an address check, the customer's request,
a fraud review...) until it goes to fulfilment. The hold is a mark on the saga, not a detour:
the saga goes on as before, facts applied as they come, up to and including the payment
authorisation, and where it would confirm the order (CreateFulfilment) it stops in ON_HOLD, a
human-paced state with no step in flight and its stock reserved and payment authorised.
Releasing (`release_hold`) sends CreateFulfilment from ON_HOLD, or, held earlier, only takes
the mark off so the saga confirms when it gets there. A cancel works as for any order before
fulfilment: from ON_HOLD at once (void, release), earlier when the step in flight answers. A
review's reject (`reject_held`) is such a cancel. An order at fulfilment with units still to
ship (CONFIRMED, FULFILLING, PARTIALLY_SHIPPED) is held at the warehouse: the saga records the
hold (its status unchanged) and sends HoldFulfilments, so the floor stops the fulfilments not
shipped yet; the release sends ReleaseFulfilments. Facts keep applying while held (a parcel that
had left already is shipped as usual). Once everything shipped there is nothing to hold. A hold older than `SagaPolicy.hold_sla` alerts an operator once; it
never ends by itself.

3-D Secure: payment may answer AuthorizePayment with PaymentRequiresAction (the customer must
authenticate the card: client secret and action type, kept in `customer_action` for the shop
front). The step is answered, so the order waits in AWAITING_CUSTOMER_ACTION, a human-paced state
with no step in flight and no machine retry (a cancel applies at once: void, which cancels the
provider's attempt, and release), until PaymentAuthorized (the order goes on as from
AUTHORIZING_PAYMENT: confirmed, or ON_HOLD when held) or PaymentDeclined (cancelled as a
decline), both from the provider's webhook. After `SagaPolicy.customer_action_timeout` it is
cancelled (void, release); a PaymentAuthorized arriving after that is voided like any late
authorisation after give-up.

Fraud rules: with `SagaPolicy.fraud_rules` set, an order the shop takes payment for is scored once
its stock is reserved (services/order_intake/risk/domain.py, on the velocity counts recorded
when it was stored): accepted, it is authorised; for review, it is authorised and held
(`fraud_review`); rejected, it is cancelled before anything is authorised (`fraud_rejected`).
The gateway's own risk verdict on the authorisation is scored on top and may still hold it, or
reject it (the authorisation voided).

Disputes and refunds made at the provider: both are facts, applied in any state (parked too).
A dispute (PaymentDisputed) flags the order (`disputes`, by dispute id: the same one again
changes nothing), alerts finance (`payment_disputed`) and holds what has not shipped: an order
not yet sent to fulfilment gets a hold (`payment_disputed`, the hold above: it stops in ON_HOLD
before CreateFulfilment; an order held already keeps its hold); an order at fulfilment with units
still to ship (CreateFulfilment in flight, an unshipped fulfilment, a short pick being decided)
gets the same hold at the warehouse (HoldFulfilments, reason `payment_disputed`); an operator
releases it or cancels the rest. Shipped, closed or cancelling orders are only flagged. A dispute never cancels.
A refund made at the provider (PaymentRefundedExternally, e.g. in Stripe's dashboard) is
recorded (`external_refunds` by the gateway's refund id, `refunded_externally` their total) and
never changes the status; it alerts an operator when the provider's refunds now exceed what was
captured or the order is not completed (refunded by hand while it still ships).

Channel edits: a sales channel that changes an order it sent (a new shipping address, changed
lines) is recorded in `channel_edits` by services/order_intake/domain/edits.py, the pure rules of
order edits: an address before picking is applied (at fulfilment, through UpdateShippingAddress
and fulfilment's answer); after picking, and any line change, it is refused with an operator
alert. An edit never changes the status.

Deadlines: every machine-paced waiting state has a deadline. When it passes, the same command is
re-sent (same idempotency key) up to `max_attempts` times; after the last try the saga
compensates, or parks the order in NEEDS_ATTENTION where undoing is not safe. Human-paced steps
(shipping, delivery) have service-level deadlines that only notify the customer and alert an
operator.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.order_intake.risk import domain as fraud
from shared.contracts.common import Address, Allocation, Customer, OrderLineRef, SkuQuantity
from shared.contracts.fulfilment import (
    FulfilmentCancelled,
    FulfilmentCreated,
    FulfilmentDelivered,
    FulfilmentFailed,
    FulfilmentsAdded,
    FulfilmentsHeld,
    FulfilmentShipped,
    FulfilmentsReleased,
    ShortPick,
)
from shared.contracts.inventory import (
    ShortPickWrittenOff,
    StockBackordered,
    StockCommitted,
    StockReallocated,
    StockReallocationFailed,
    StockReleased,
    StockReservationFailed,
    StockReserved,
)
from shared.contracts.order_intake import (
    AddFulfilment,
    AuthorizePayment,
    CancelFulfilment,
    CapturePayment,
    CommitStock,
    CreateFulfilment,
    CustomerNotification,
    HoldFulfilments,
    OperatorAlert,
    ReallocateStock,
    ReleaseFulfilments,
    ReleaseStock,
    ReserveStock,
    ShipTo,
    VoidPayment,
    WriteOffShortPick,
)
from shared.contracts.payment import (
    PaymentAuthorized,
    PaymentCaptured,
    PaymentCaptureFailed,
    PaymentDeclined,
    PaymentDisputed,
    PaymentRefundedExternally,
    PaymentRequiresAction,
    PaymentVoided,
)
from shared.envelope import Contract
from shared.money import round_money
from shared.platform.saga import decisions


class Status(StrEnum):
    RECEIVED = "RECEIVED"
    RESERVING_STOCK = "RESERVING_STOCK"
    BACKORDERED = "BACKORDERED"
    AUTHORIZING_PAYMENT = "AUTHORIZING_PAYMENT"
    # The customer must authenticate the payment (3-D Secure); human-paced, with a deadline.
    AWAITING_CUSTOMER_ACTION = "AWAITING_CUSTOMER_ACTION"
    CONFIRMED = "CONFIRMED"
    FULFILLING = "FULFILLING"
    PARTIALLY_SHIPPED = "PARTIALLY_SHIPPED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"
    ON_HOLD = "ON_HOLD"  # stock reserved, payment authorised; waits for a hold's release


TERMINAL = frozenset({Status.COMPLETED, Status.REJECTED, Status.CANCELLED})
SHIPPED_OR_LATER = frozenset(
    {Status.PARTIALLY_SHIPPED, Status.SHIPPED, Status.DELIVERED, Status.COMPLETED}
)


class Step(StrEnum):
    """The machine-paced step in flight (the semantic lock), if any."""

    RESERVE_STOCK = "reserve_stock"
    AUTHORIZE_PAYMENT = "authorize_payment"
    CREATE_FULFILMENT = "create_fulfilment"
    REALLOCATE_STOCK = "reallocate_stock"  # a short pick's units reserved elsewhere
    ADD_FULFILMENT = "add_fulfilment"  # ... and given fulfilments of their own
    COMPENSATE = "compensate"


class Compensation(StrEnum):
    STOCK = "stock"
    PAYMENT = "payment"
    FULFILMENT = "fulfilment"


class ShortPickPolicy(StrEnum):
    """What a short pick does to the order: `reallocate` its units from other locations (and
    cancel them when none has them), or `ship_available`: ship what is there, cancel the rest."""

    REALLOCATE = "reallocate"
    SHIP_AVAILABLE = "ship_available"


@dataclass(frozen=True)
class SagaPolicy:
    stock_timeout: timedelta = timedelta(seconds=30)
    payment_timeout: timedelta = timedelta(seconds=30)
    fulfilment_timeout: timedelta = timedelta(seconds=30)
    compensation_timeout: timedelta = timedelta(seconds=30)
    max_attempts: int = 3
    ship_sla: timedelta = timedelta(hours=48)
    delivery_sla: timedelta = timedelta(days=7)
    short_pick: ShortPickPolicy = ShortPickPolicy.REALLOCATE
    # How long a backordered order waits for its stock (a pre-order: from its release date)
    # before it is cancelled with a notice.
    backorder_max_wait: timedelta = timedelta(days=30)
    # A hold older than this alerts an operator (once; it never ends by itself).
    hold_sla: timedelta = timedelta(hours=24)
    # How long an order waits for the customer's 3-D Secure before it is cancelled.
    customer_action_timeout: timedelta = timedelta(minutes=30)
    # The fraud rule set orders are scored with before authorisation; None: not scored.
    fraud_rules: fraud.RuleSet | None = None

    def timeout(self, step: Step) -> timedelta:
        return {
            Step.RESERVE_STOCK: self.stock_timeout,
            Step.AUTHORIZE_PAYMENT: self.payment_timeout,
            Step.CREATE_FULFILMENT: self.fulfilment_timeout,
            Step.REALLOCATE_STOCK: self.stock_timeout,
            Step.ADD_FULFILMENT: self.fulfilment_timeout,
            Step.COMPENSATE: self.compensation_timeout,
        }[step]


class SagaLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_id: str
    sku: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


class SagaShipment(BaseModel):
    """One shipment (parcel) of a fulfilment that left: what is in it, how it travels, what is
    captured for it."""

    shipment_id: str
    lines: tuple[SkuQuantity, ...]
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    shipped_at: datetime | None = None
    # Its share of the order total; None when nothing is captured (the channel took payment).
    capture_amount: Decimal | None = None
    captured: bool = False
    capture_failed: bool = False
    delivered: bool = False

    @property
    def awaits_capture(self) -> bool:
        return self.capture_amount is not None and not self.captured


# What a saga stored before fulfilments left in parcels kept of its one shipment on the
# fulfilment itself.
_ONE_SHIPMENT_FIELDS = (
    "carrier",
    "tracking_number",
    "capture_amount",
    "captured",
    "capture_failed",
)


class SagaFulfilment(BaseModel):
    """One fulfilment of the order and the shipments it left in so far.

    `shipped`: it finished shipping — all of it left (or the warehouse said so with
    `fulfilment_complete`), or part of it left and the rest was cancelled (`rest_cancelled`).
    `cancelled`: cancelled before anything of it left. `delivered`: finished shipping and every
    shipment delivered."""

    fulfilment_id: str
    location: str
    lines: tuple[SkuQuantity, ...]
    shipped: bool = False
    delivered: bool = False
    cancelled: bool = False
    rest_cancelled: bool = False
    # Units found missing on the floor (short picks): no longer the fulfilment's to ship.
    short: tuple[SkuQuantity, ...] = ()
    # Every unit of it was short: it ended without shipping (and counts as `cancelled`).
    ended_short: bool = False
    # The short pick whose re-allocated units it ships (added after the order's first ones).
    reallocated_for_short: str | None = None
    shipments: dict[str, SagaShipment] = Field(default_factory=dict)
    # Parcels not applied because they held more than was left unshipped (an operator decides).
    refused_shipments: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _one_shipment_of_an_older_saga(cls, data: Any) -> Any:
        """A saga stored before parcels kept its fulfilment's one shipment on the fulfilment:
        it becomes the fulfilment's shipment named by the fulfilment id (the id its capture's
        idempotency key and inventory's commit already use)."""
        if not isinstance(data, dict) or "shipments" in data:
            return data
        kept = {k: v for k, v in data.items() if k not in _ONE_SHIPMENT_FIELDS}
        if data.get("shipped"):
            fulfilment_id = data["fulfilment_id"]
            shipment = {k: data[k] for k in _ONE_SHIPMENT_FIELDS if data.get(k) is not None}
            kept["shipments"] = {
                fulfilment_id: {
                    **shipment,
                    "shipment_id": fulfilment_id,
                    "lines": data.get("lines", ()),
                    "delivered": bool(data.get("delivered")),
                }
            }
        return kept

    def unshipped(self) -> dict[str, int]:
        """Units per SKU of the fulfilment not in any shipment yet (nor short)."""
        left: dict[str, int] = {}
        for line in self.lines:
            left[line.sku] = left.get(line.sku, 0) + line.quantity
        for line in self.short:
            left[line.sku] = left.get(line.sku, 0) - line.quantity
        for shipment in self.shipments.values():
            for line in shipment.lines:
                left[line.sku] = left.get(line.sku, 0) - line.quantity
        return {sku: quantity for sku, quantity in left.items() if quantity > 0}

    @property
    def captured(self) -> bool:
        """Every shipment so far captured (or nothing to capture)."""
        return not any(s.awaits_capture for s in self.shipments.values())

    @property
    def last_shipment(self) -> SagaShipment | None:
        return next(reversed(self.shipments.values()), None)


class ShortState(StrEnum):
    WAITING = "waiting"  # to be re-allocated once the step in flight has answered
    REALLOCATING = "reallocating"  # ReallocateStock sent
    ADDING = "adding"  # re-allocated; AddFulfilment sent
    REALLOCATED = "reallocated"  # its units have fulfilments of their own
    CANCELLED = "cancelled"  # its units are cancelled from the order (written off)


class SagaShort(BaseModel):
    """One short pick: `quantity` units of `sku` a bin at `location` did not hold for the
    fulfilment, and what became of them."""

    short_id: str
    fulfilment_id: str
    location: str
    sku: str
    quantity: int
    bin: str | None = None
    state: ShortState = ShortState.WAITING
    allocations: tuple[Allocation, ...] = ()  # where inventory reserved them again
    fulfilments: tuple[str, ...] = ()  # the fulfilments that ship them instead
    value: Decimal | None = None  # cancelled: what the order total is reduced by
    reason: str | None = None  # cancelled: why
    # Cancelled because the order (or its unshipped rest) was being cancelled, not for want of
    # stock: the customer hears of its units with the cancel.
    with_cancel: bool = False

    @property
    def pending(self) -> bool:
        """Its units will still ship from somewhere (or be cancelled): not decided yet."""
        return self.state in {ShortState.WAITING, ShortState.REALLOCATING, ShortState.ADDING}


FRAUD_REVIEW = "fraud_review"
FRAUD_REJECTED = "fraud_rejected"
FRAUD_RULES = "fraud rules"  # who placed a hold the rules asked for


class SagaHold(BaseModel):
    """An order held from fulfilment: why, by whom, since when, and whether the operators
    were alerted that it is held for long."""

    reason: str
    note: str | None = None
    by: str
    placed_at: datetime
    alert_at: datetime
    alerted: bool = False
    # The order was at fulfilment: HoldFulfilments was sent; the release sends ReleaseFulfilments.
    fulfilments_held: bool = False


class SagaCustomerAction(BaseModel):
    """A payment waiting for the customer (3-D Secure): what the shop front needs to complete
    it, and when the order gives up waiting."""

    payment_id: str
    client_secret: str
    next_action: str
    requested_at: datetime
    expires_at: datetime


PAYMENT_DISPUTED = "payment_disputed"
PAYMENT_PROVIDER = "payment provider"  # who placed a hold a dispute asked for


class SagaDispute(BaseModel):
    """A chargeback the customer opened with their bank, as the gateway reported it."""

    dispute_id: str
    amount: Decimal
    currency: str
    reason: str
    gateway: str
    opened_at: datetime


class SagaExternalRefund(BaseModel):
    """A refund made at the provider (not through RefundPayment)."""

    gateway_refund_id: str
    amount: Decimal
    gateway: str
    refunded_at: datetime


class ChannelEdit(BaseModel):
    """An order edit from the sales channel (see domain/edits.py): a new shipping address
    (`kind` address) or changed lines (`kind` lines), and what became of it (`state`
    requested: fulfilment was asked; applied; refused, with `code` and `message`)."""

    edit_id: str
    kind: str
    channel: str
    state: str
    requested_at: datetime
    address: Address | None = None
    previous_address: Address | None = None
    lines: tuple[SkuQuantity, ...] = ()
    code: str | None = None
    message: str | None = None


class OrderSaga(BaseModel):
    """Everything the saga needs to decide, persisted as one JSON document per order."""

    order_id: str
    channel: str
    currency: str
    total: Decimal
    lines: tuple[SagaLine, ...]
    customer: Customer
    shipping_address: Address
    shipping_method: str | None = None
    payment_method: str = "card"
    payment_token: str | None = None
    paid_externally: bool = False

    status: Status = Status.RECEIVED
    step: Step | None = None
    attempt: int = 0
    deadline_at: datetime | None = None
    sla_deadline_at: datetime | None = None
    sla_notified: bool = False
    step_started_at: datetime | None = None
    parked_from: Status | None = None
    parked_step: Step | None = None
    attention_reasons: tuple[str, ...] = ()
    # W3C trace context of the request that created the order: deadline-driven and operator
    # actions continue the order's trace instead of starting a new one.
    trace_context: dict[str, str] = Field(default_factory=dict)
    cancel_requested: str | None = None
    # The cancel came after part of the order had shipped: it takes only the unshipped rest.
    cancel_rest: bool = False
    reason: str | None = None

    allocations: tuple[Allocation, ...] = ()
    # The kits among the order's SKUs, as inventory reserved them: units of each component per
    # kit. Their components ship, so the order's units and values count those.
    kits: dict[str, dict[str, int]] = Field(default_factory=dict)
    stock_reserved: bool = False
    # Part of the order waits in inventory's backorder queues (until StockReserved comes).
    backordered: bool = False
    backorder_expected_on: date | None = None
    backorder_expires_at: datetime | None = None
    payment_authorized: bool = False
    payment_voided: bool = False
    # The payment waits for the customer's action (AWAITING_CUSTOMER_ACTION).
    customer_action: SagaCustomerAction | None = None
    fulfilments: dict[str, SagaFulfilment] = Field(default_factory=dict)
    shorts: dict[str, SagaShort] = Field(default_factory=dict)
    capture_requested: Decimal = Decimal(0)
    captured_total: Decimal = Decimal(0)
    pending_compensations: tuple[Compensation, ...] = ()
    hold: SagaHold | None = None
    # Fraud rules: what was counted when the order was stored, and the order's assessment.
    risk_signals: fraud.RiskSignals | None = None
    risk: fraud.Assessment | None = None
    # Chargebacks opened on the payment, by dispute id.
    disputes: dict[str, SagaDispute] = Field(default_factory=dict)
    # Refunds made at the provider, by the gateway's refund id, and their total.
    external_refunds: dict[str, SagaExternalRefund] = Field(default_factory=dict)
    refunded_externally: Decimal = Decimal(0)
    # Edits the sales channel made to the order, by edit id, oldest first, and when the channel
    # last changed the newest version of the order received (if it says).
    channel_edits: dict[str, ChannelEdit] = Field(default_factory=dict)
    channel_changed_at: datetime | None = None

    @property
    def next_deadline(self) -> datetime | None:
        candidates = [self.deadline_at]
        if self.hold is not None and not self.hold.alerted:
            candidates.append(self.hold.alert_at)
        if self.status == Status.BACKORDERED:
            candidates.append(self.backorder_expires_at)
        if self.status == Status.AWAITING_CUSTOMER_ACTION and self.customer_action is not None:
            candidates.append(self.customer_action.expires_at)
        if not self.sla_notified:
            candidates.append(self.sla_deadline_at)
        present = [c for c in candidates if c is not None]
        return min(present) if present else None

    @property
    def authorize_key(self) -> str:
        return f"{self.order_id}:authorize"

    @property
    def void_key(self) -> str:
        return f"{self.order_id}:void"

    def capture_key(self, shipment_id: str) -> str:
        """The idempotency key of one shipment's capture (a fulfilment shipped whole: its id)."""
        return f"{self.order_id}:capture:{shipment_id}"


@dataclass(frozen=True)
class TimelineEntry:
    event: str
    detail: dict[str, Any] = field(default_factory=dict)


class Decision(decisions.Decision[TimelineEntry]):
    """What to send and what to record after one saga input."""

    def note(self, event: str, **detail: Any) -> None:
        self.timeline.append(TimelineEntry(event, detail))


Refused = decisions.Refused


class CancelRefused(Refused):
    """A cancel request the saga refuses (the order shipped, or waits for an operator)."""


# --- entry points --------------------------------------------------------------------------


def start(saga: OrderSaga, now: datetime, policy: SagaPolicy) -> Decision:
    """The order was stored (RECEIVED): reserve its stock."""
    decision = Decision()
    decision.note("order_received", total=str(saga.total), currency=saga.currency)
    _begin_step(saga, Status.RESERVING_STOCK, Step.RESERVE_STOCK, now, policy, decision)
    return decision


def handle(saga: OrderSaga, event: Contract, now: datetime, policy: SagaPolicy) -> Decision:
    """Apply an event from inventory, payment or fulfilment."""
    decision = Decision()
    handler = _EVENT_HANDLERS.get(type(event))
    if handler is None:
        decision.note("ignored", message=event.TYPE, status=saga.status)
        return decision
    with _timing_steps(saga, now, decision), _underneath_parking(saga, decision):
        handler(saga, event, now, policy, decision)
    return decision


@contextlib.contextmanager
def _underneath_parking(saga: OrderSaga, decision: Decision) -> Iterator[None]:
    """While parked, apply a fact to the saga underneath, then park it again as it now is."""
    if saga.status != Status.NEEDS_ATTENTION or saga.parked_from is None:
        yield
        return
    saga.status, saga.step = saga.parked_from, saga.parked_step
    first_note = len(decision.timeline)
    yield
    for index in range(first_note, len(decision.timeline)):
        entry = decision.timeline[index]
        if entry.event == "status_changed":
            decision.timeline[index] = TimelineEntry("parked_status_changed", entry.detail)
    if saga.status != Status.NEEDS_ATTENTION:  # not parked again by the fact itself
        saga.parked_from, saga.parked_step = saga.status, saga.step
        saga.status, saga.step, saga.attempt, saga.deadline_at = (
            Status.NEEDS_ATTENTION,
            None,
            0,
            None,
        )
        saga.sla_deadline_at = None  # an operator is on it; resuming sets it again


@contextlib.contextmanager
def _timing_steps(saga: OrderSaga, now: datetime, decision: Decision) -> Iterator[None]:
    """Notes how long a machine-paced step took when it ends (answered, timed out, cancelled)."""
    step, started = saga.step, saga.step_started_at
    yield
    if (
        step is not None
        and started is not None
        and (saga.step != step or saga.step_started_at != started)
    ):
        decision.note(
            "step_finished",
            step=str(step),
            outcome=str(saga.status),
            seconds=max(0.0, (now - started).total_seconds()),
        )


def on_deadline(saga: OrderSaga, now: datetime, policy: SagaPolicy) -> Decision:
    decision = Decision()
    hold = saga.hold
    if hold is not None and not hold.alerted and hold.alert_at <= now:
        hold.alerted = True
        hours = round((now - hold.placed_at).total_seconds() / 3600, 1)
        decision.note("hold_overdue", reason=hold.reason, by=hold.by, held_hours=hours)
        decision.send(
            OperatorAlert(
                order_id=saga.order_id,
                kind="hold_overdue",
                message=f"order {saga.order_id} has been on hold ({hold.reason}) for {hours} h;"
                " release or reject it",
            )
        )
    if (
        saga.status == Status.BACKORDERED
        and saga.backorder_expires_at is not None
        and saga.backorder_expires_at <= now
    ):
        days = policy.backorder_max_wait.days
        decision.note("backorder_expired", waited_days=days)
        _begin_cancel(
            saga, f"backorder_expired: no stock within {days} days", now, policy, decision
        )
        return decision
    action = saga.customer_action
    if (
        saga.status == Status.AWAITING_CUSTOMER_ACTION
        and action is not None
        and action.expires_at <= now
    ):
        minutes = round(policy.customer_action_timeout.total_seconds() / 60)
        decision.note("customer_action_expired", waited_minutes=minutes)
        _begin_cancel(
            saga,
            f"customer_action_expired: payment not authenticated within {minutes} minutes",
            now,
            policy,
            decision,
        )
        return decision
    if saga.deadline_at is not None and saga.deadline_at <= now and saga.step is not None:
        with _timing_steps(saga, now, decision):
            _step_deadline_passed(saga, now, policy, decision)
    if (
        saga.sla_deadline_at is not None
        and not saga.sla_notified
        and saga.sla_deadline_at <= now
        and saga.status in {Status.FULFILLING, Status.PARTIALLY_SHIPPED, Status.SHIPPED}
    ):
        stage = "shipping" if saga.status != Status.SHIPPED else "delivery"
        saga.sla_notified = True
        decision.note("sla_passed", stage=stage)
        decision.send(
            _notice(saga, "delayed", stage=stage),
            OperatorAlert(
                order_id=saga.order_id,
                kind="sla_passed",
                message=f"{stage} of order {saga.order_id} is overdue",
            ),
        )
    return decision


def request_cancel(saga: OrderSaga, reason: str, now: datetime, policy: SagaPolicy) -> Decision:
    """A cancel from the customer, an operator or the channel. Raises CancelRefused.

    Before anything shipped it cancels the order; once part of it shipped (PARTIALLY_SHIPPED)
    it cancels the unshipped rest (the timeline entry names those units and the amount not
    charged, as far as known now: a parcel that leaves first still ships); once everything
    shipped it is refused."""
    decision = Decision()
    if saga.status in SHIPPED_OR_LATER and saga.status != Status.PARTIALLY_SHIPPED:
        raise CancelRefused(
            "already_shipped", f"order {saga.order_id} has shipped and can no longer be cancelled"
        )
    if saga.status == Status.REJECTED:
        raise CancelRefused(
            "order_closed", f"order {saga.order_id} was rejected; nothing to cancel"
        )
    if saga.status == Status.NEEDS_ATTENTION:
        raise CancelRefused(
            "needs_attention",
            f"order {saga.order_id} is waiting for an operator; resolve it with `oms orders`",
        )
    if saga.status in {Status.CANCELLING, Status.CANCELLED} or saga.cancel_requested:
        decision.note("cancel_repeated", reason=reason)
        return decision
    scope: dict[str, Any] = {}
    if saga.status == Status.PARTIALLY_SHIPPED:
        units, value = rest_to_cancel(saga)
        scope = {
            "scope": "unshipped_rest",
            "unshipped": _units_detail(units),
            "not_charged": str(value),
            "currency": saga.currency,
        }
    if saga.step is not None:
        saga.cancel_requested = reason
        decision.note("cancel_requested", reason=reason, applied_when=str(saga.step), **scope)
        return decision
    decision.note("cancel_requested", reason=reason, **scope)
    _begin_cancel(saga, reason, now, policy, decision)
    return decision


def rest_to_cancel(saga: OrderSaga) -> tuple[dict[str, int], Decimal]:
    """What cancelling the rest of the order now would take: the units per SKU that have not
    shipped (nor been cancelled), and the amount the order would then not capture. Worked out
    on a copy, the way fulfilment's answer to the cancel is applied."""
    preview = saga.model_copy(deep=True)
    target, cancelled = capture_target(preview), cancelled_units(preview)
    for short in preview.shorts.values():
        if short.pending:
            short.state = ShortState.CANCELLED
    for fulfilment in preview.fulfilments.values():
        if not fulfilment.cancelled and not fulfilment.shipped:
            if fulfilment.shipments:
                fulfilment.rest_cancelled = True
            else:
                fulfilment.cancelled = True
    return _less(cancelled_units(preview), cancelled), target - capture_target(preview)


# --- events --------------------------------------------------------------------------------


def _on_stock_reserved(
    saga: OrderSaga, event: StockReserved, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    if saga.status in {Status.REJECTED, Status.CANCELLED, Status.CANCELLING}:
        # A success after giving up must itself be undone, or stock leaks.
        decision.note("late_stock_reserved_released")
        decision.send(ReleaseStock(order_id=saga.order_id, reason="late reservation after give-up"))
        return
    if saga.status not in {Status.RESERVING_STOCK, Status.BACKORDERED}:
        decision.note("ignored", message=event.TYPE, status=saga.status)
        return
    if saga.status == Status.BACKORDERED:
        decision.note("backorder_allocated")
        _clear_step(saga)
        saga.backorder_expires_at = None
    saga.stock_reserved = True
    saga.allocations = event.allocations
    saga.kits = kit_compositions(event.allocations)
    decision.note("stock_reserved", allocations=len(event.allocations), **_routed(event))
    if saga.cancel_requested:
        _begin_cancel(saga, saga.cancel_requested, now, policy, decision)
    elif saga.paid_externally:
        _confirm(saga, now, policy, decision)
    else:
        _score_then_authorize(saga, now, policy, decision)


def _score_then_authorize(
    saga: OrderSaga, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    """Where the order would be authorised, the fraud rules score it first (once): accepted, it
    is authorised; for review, authorised and then held; rejected, cancelled (its stock
    released, nothing authorised)."""
    rules = policy.fraud_rules
    if rules is not None and saga.risk is None:
        saga.risk = fraud.assess(
            rules,
            total=saga.total,
            currency=saga.currency,
            shipping_country=saga.shipping_address.country,
            signals=saga.risk_signals or fraud.RiskSignals(),
        )
        decision.note("risk_assessed", **saga.risk.detail())
        if saga.risk.outcome == fraud.Outcome.REJECT:
            _begin_cancel(saga, FRAUD_REJECTED, now, policy, decision)
            return
        if saga.risk.outcome == fraud.Outcome.REVIEW:
            _hold_for_review(saga, now, policy, decision)
    _begin_step(saga, Status.AUTHORIZING_PAYMENT, Step.AUTHORIZE_PAYMENT, now, policy, decision)


def _hold_for_review(
    saga: OrderSaga, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    if saga.hold is not None:
        return  # held already (by an operator): the review happens on that hold
    assert saga.risk is not None
    reasons = "; ".join(hit.reason for hit in saga.risk.hits)
    _place(saga, FRAUD_REVIEW, f"score {saga.risk.score}: {reasons}", FRAUD_RULES, now, policy)
    decision.note("hold_placed", reason=FRAUD_REVIEW, by=FRAUD_RULES, score=saga.risk.score)


def _place(
    saga: OrderSaga, reason: str, note: str | None, by: str, now: datetime, policy: SagaPolicy
) -> None:
    saga.hold = SagaHold(
        reason=reason, note=note, by=by, placed_at=now, alert_at=now + policy.hold_sla
    )


def _on_stock_backordered(
    saga: OrderSaga, event: StockBackordered, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    """Part of the order waits for stock: BACKORDERED, human-paced (no step in flight, so a
    cancel applies at once), until inventory answers StockReserved or the wait runs out."""
    if saga.status in {Status.REJECTED, Status.CANCELLED, Status.CANCELLING}:
        # Given up meanwhile: whatever inventory reserved or queued must be released.
        decision.note("late_backorder_released")
        decision.send(ReleaseStock(order_id=saga.order_id, reason="late backorder after give-up"))
        return
    if saga.status != Status.RESERVING_STOCK:
        decision.note("ignored", message=event.TYPE, status=saga.status)
        return
    _clear_step(saga)
    saga.backordered = True
    saga.allocations = event.allocations
    saga.backorder_expected_on = event.expected_on
    waiting = [
        {
            "line_id": line.line_id,
            "sku": line.sku,
            "quantity": line.quantity,
            "location": line.location,
            "kind": line.kind,
            "expected_on": line.expected_on.isoformat() if line.expected_on else None,
        }
        for line in event.backordered
    ]
    expected = event.expected_on.isoformat() if event.expected_on else None
    decision.note("backordered", lines=waiting, expected_on=expected)
    if saga.cancel_requested:
        _begin_cancel(saga, saga.cancel_requested, now, policy, decision)
        return
    _set_status(saga, Status.BACKORDERED, decision)
    saga.backorder_expires_at = _backorder_expiry(event, now, policy)
    decision.send(_notice(saga, "backordered", lines=waiting, expected_on=expected))


def _backorder_expiry(event: StockBackordered, now: datetime, policy: SagaPolicy) -> datetime:
    """The wait runs from now, or for pre-orders from the latest release date."""
    releases = [
        line.expected_on
        for line in event.backordered
        if line.kind == "preorder" and line.expected_on
    ]
    start = now
    if releases:
        start = max(now, datetime.combine(max(releases), time(0), tzinfo=now.tzinfo))
    return start + policy.backorder_max_wait


def _routed(event: StockReserved) -> dict[str, Any]:
    """Where inventory routed the order and why (absent from older answers)."""
    if event.routing is None:
        return {}
    routing = event.routing
    return {
        "strategy": routing.strategy,
        "locations": list(routing.locations),
        "reason": routing.reason,
    }


def _on_stock_reservation_failed(
    saga: OrderSaga,
    event: StockReservationFailed,
    now: datetime,
    policy: SagaPolicy,
    decision: Decision,
) -> None:
    if saga.status != Status.RESERVING_STOCK:
        decision.note("ignored", message=event.TYPE, status=saga.status)
        return
    short = [
        {"sku": s.sku, "line_id": s.line_id, "requested": s.requested, "available": s.available}
        | ({"component": s.component} if s.component else {})
        for s in event.short_lines
    ]
    _clear_step(saga)
    if saga.cancel_requested:
        _finish(saga, Status.CANCELLED, saga.cancel_requested, decision)
        return
    skus = ", ".join(s.sku for s in event.short_lines)
    reason = f"{event.reason}: {skus}" if skus else event.reason
    decision.note("stock_reservation_failed", reason=event.reason, short_lines=short)
    _finish(saga, Status.REJECTED, reason, decision, short_lines=short)


def _on_payment_authorized(
    saga: OrderSaga, event: PaymentAuthorized, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    if saga.status in {Status.REJECTED, Status.CANCELLED, Status.CANCELLING}:
        decision.note("late_payment_authorized_voided")
        decision.send(_void(saga, "late authorisation after give-up"))
        return
    if saga.status not in {Status.AUTHORIZING_PAYMENT, Status.AWAITING_CUSTOMER_ACTION}:
        decision.note("ignored", message=event.TYPE, status=saga.status)
        return
    if saga.customer_action is not None:
        decision.note("customer_action_completed", payment_id=saga.customer_action.payment_id)
        saga.customer_action = None
    saga.payment_authorized = True
    decision.note("payment_authorized", amount=str(event.amount), payment_id=event.payment_id)
    if saga.cancel_requested:
        _begin_cancel(saga, saga.cancel_requested, now, policy, decision)
        return
    if event.risk is not None and policy.fraud_rules is not None and saga.risk is not None:
        verdict = fraud.ProviderRisk(level=event.risk.level, score=event.risk.score)
        saga.risk = fraud.with_provider_risk(policy.fraud_rules, saga.risk, verdict)
        decision.note("risk_assessed", provider_risk=event.risk.level, **saga.risk.detail())
        if saga.risk.outcome == fraud.Outcome.REJECT:
            _begin_cancel(saga, FRAUD_REJECTED, now, policy, decision)
            return
        if saga.risk.outcome == fraud.Outcome.REVIEW:
            _hold_for_review(saga, now, policy, decision)
    _confirm(saga, now, policy, decision)


def _on_payment_declined(
    saga: OrderSaga, event: PaymentDeclined, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    if saga.status not in {Status.AUTHORIZING_PAYMENT, Status.AWAITING_CUSTOMER_ACTION}:
        decision.note("ignored", message=event.TYPE, status=saga.status)
        return
    decision.note("payment_declined", code=event.decline_code, reason=event.reason)
    _clear_step(saga)  # the step answered: nothing was authorised, so nothing to void
    saga.customer_action = None
    _begin_cancel(saga, f"payment declined: {event.decline_code}", now, policy, decision)


def _on_payment_requires_action(
    saga: OrderSaga,
    event: PaymentRequiresAction,
    now: datetime,
    policy: SagaPolicy,
    decision: Decision,
) -> None:
    """The customer must authenticate the payment: wait for them (human-paced, no retry)."""
    if saga.status in {Status.REJECTED, Status.CANCELLED, Status.CANCELLING}:
        # Given up meanwhile: the waiting attempt is cancelled, so it can never be authorised.
        decision.note("late_payment_requires_action_voided")
        decision.send(_void(saga, "payment waiting for the customer after give-up"))
        return
    if saga.status != Status.AUTHORIZING_PAYMENT:
        decision.note("ignored", message=event.TYPE, status=saga.status)
        return
    _clear_step(saga)
    saga.customer_action = SagaCustomerAction(
        payment_id=event.payment_id,
        client_secret=event.client_secret,
        next_action=event.next_action,
        requested_at=now,
        expires_at=now + policy.customer_action_timeout,
    )
    decision.note(
        "payment_requires_action", payment_id=event.payment_id, next_action=event.next_action
    )
    if saga.cancel_requested:
        _begin_cancel(saga, saga.cancel_requested, now, policy, decision)
        return
    _set_status(saga, Status.AWAITING_CUSTOMER_ACTION, decision)


def _on_fulfilment_created(
    saga: OrderSaga, event: FulfilmentCreated, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    if saga.status == Status.CANCELLING and Compensation.FULFILMENT in saga.pending_compensations:
        # The CancelFulfilment already sent follows the create on the same partition: it
        # cancels these too; record them, a shipment may still win the race.
        _record_fulfilments(saga, event)
        decision.note("fulfilment_created_while_cancelling")
        return
    if saga.status in {Status.CANCELLING, Status.CANCELLED}:
        decision.note("late_fulfilment_cancelled")
        decision.send(
            CancelFulfilment(order_id=saga.order_id, reason="late fulfilment after cancel")
        )
        return
    if saga.status != Status.CONFIRMED:
        decision.note("ignored", message=event.TYPE, status=saga.status)
        return
    _record_fulfilments(saga, event)
    decision.note("fulfilment_created", fulfilments=[f.fulfilment_id for f in event.fulfilments])
    if saga.cancel_requested:
        _begin_cancel(saga, saga.cancel_requested, now, policy, decision)
        return
    _clear_step(saga)
    _set_status(saga, Status.FULFILLING, decision)
    saga.sla_deadline_at = now + policy.ship_sla
    saga.sla_notified = False


def _record_fulfilments(saga: OrderSaga, event: FulfilmentCreated) -> None:
    for ref in event.fulfilments:
        saga.fulfilments.setdefault(
            ref.fulfilment_id,
            SagaFulfilment(fulfilment_id=ref.fulfilment_id, location=ref.location, lines=ref.lines),
        )


def _on_fulfilment_shipped(
    saga: OrderSaga, event: FulfilmentShipped, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    """One shipment (parcel) of a fulfilment left: commit its stock, capture its value, tell the
    customer. The same parcel again changes nothing; a parcel holding more than is left
    unshipped of its fulfilment is not applied and parks the order for an operator."""
    fulfilment = saga.fulfilments.get(event.fulfilment_id)
    shipment_id = event.shipment_key
    applying = {Status.FULFILLING, Status.PARTIALLY_SHIPPED, Status.CANCELLING}
    finished = {Status.SHIPPED, Status.DELIVERED}
    if fulfilment is None or fulfilment.cancelled or saga.status not in applying | finished:
        decision.note("ignored", message=event.TYPE, status=saga.status)
        return
    if shipment_id in fulfilment.shipments or shipment_id in fulfilment.refused_shipments:
        decision.note(
            "ignored", message=event.TYPE, reason="already shipped", shipment_id=shipment_id
        )
        return
    excess = _excess(fulfilment, event.lines)
    if excess:
        _refuse_shipment(saga, fulfilment, event, excess, decision)
        return
    too_late = saga.status == Status.CANCELLING
    shipment = SagaShipment(
        shipment_id=shipment_id,
        lines=event.lines,
        carrier=event.carrier,
        tracking_number=event.tracking_number,
        tracking_url=event.tracking_url,
        shipped_at=event.shipped_at,
    )
    fulfilment.shipments[shipment_id] = shipment
    if event.fulfilment_complete or fulfilment.rest_cancelled or not fulfilment.unshipped():
        _finish_shipping(fulfilment)
    decision.note(
        "fulfilment_shipped",
        **_shipment_detail(event, shipment_id),
        fulfilment_complete=fulfilment.shipped,
    )
    decision.send(
        CommitStock(
            order_id=saga.order_id,
            fulfilment_id=event.fulfilment_id,
            location=event.location,
            lines=event.lines,
            shipment_id=event.shipment_id,
        )
    )
    all_shipped = _all_shipped(saga)
    if not saga.paid_externally:
        amount = _capture_amount(saga, whole_order=all_shipped and not _anything_left_out(saga))
        shipment.capture_amount = amount
        saga.capture_requested += amount
        if amount > 0:
            decision.send(_capture(saga, fulfilment, shipment))
        else:
            # A parcel worth nothing (free items, or the rounding left nothing): no capture,
            # which the gateway would refuse.
            shipment.captured = True
            decision.note(
                "capture_skipped",
                fulfilment_id=event.fulfilment_id,
                shipment_id=shipment_id,
                reason="nothing to capture",
            )
    notice: dict[str, Any] = {}
    if too_late:
        notice["cancel_too_late"] = True
        decision.note("cancel_too_late", fulfilment_id=event.fulfilment_id)
    elif not all_shipped:
        notice["more_to_follow"] = True
    decision.send(_notice(saga, "shipped", **_shipment_detail(event, shipment_id), **notice))
    if too_late:
        return  # the fulfilment's answer to the cancel decides what happens to the rest
    if all_shipped:
        _everything_shipped(saga, now, policy, decision)
    else:
        _set_status(saga, Status.PARTIALLY_SHIPPED, decision)


def _shipment_detail(event: FulfilmentShipped, shipment_id: str) -> dict[str, Any]:
    """What the timeline and the customer are told of a parcel that left."""
    return {
        "fulfilment_id": event.fulfilment_id,
        "shipment_id": shipment_id,
        "carrier": event.carrier,
        "tracking_number": event.tracking_number,
        "tracking_url": event.tracking_url,
        "lines": _lines_detail(event.lines),
    }


def _excess(fulfilment: SagaFulfilment, lines: Sequence[SkuQuantity]) -> dict[str, int]:
    """Units per SKU of a shipment beyond what is left unshipped of its fulfilment (nothing is
    left once it finished shipping)."""
    left = {} if fulfilment.shipped else fulfilment.unshipped()
    asked: dict[str, int] = {}
    for line in lines:
        asked[line.sku] = asked.get(line.sku, 0) + line.quantity
    return {sku: n - left.get(sku, 0) for sku, n in sorted(asked.items()) if n > left.get(sku, 0)}


def _refuse_shipment(
    saga: OrderSaga,
    fulfilment: SagaFulfilment,
    event: FulfilmentShipped,
    excess: dict[str, int],
    decision: Decision,
) -> None:
    """Goods left that the fulfilment does not account for: neither stock nor money is moved
    for them by guesswork; the order waits for an operator (the parcel is remembered, so the
    same one again changes nothing)."""
    shipment_id = event.shipment_key
    fulfilment.refused_shipments = (*fulfilment.refused_shipments, shipment_id)
    decision.note(
        "shipment_refused",
        fulfilment_id=event.fulfilment_id,
        shipment_id=shipment_id,
        lines=_lines_detail(event.lines),
        excess=excess,
    )
    beyond = ", ".join(f"{n} x {sku}" for sku, n in excess.items())
    _needs_attention(
        saga,
        f"shipment {shipment_id} of fulfilment {event.fulfilment_id} holds more than is left"
        f" unshipped ({beyond} too many): not applied",
        decision,
    )


def _finish_shipping(fulfilment: SagaFulfilment) -> None:
    fulfilment.shipped = True
    fulfilment.delivered = bool(fulfilment.shipments) and all(
        s.delivered for s in fulfilment.shipments.values()
    )


def _anything_left_out(saga: OrderSaga) -> bool:
    """A fulfilment (or part of one) cancelled, or finished with units never shipped. Units
    short on the floor are not: they ship from elsewhere, or the capture target is reduced."""
    return any(
        (f.cancelled and not f.ended_short) or f.unshipped() for f in saga.fulfilments.values()
    )


def _all_shipped(saga: OrderSaga) -> bool:
    """Every fulfilment not cancelled finished shipping, and no short pick's units may still
    get a fulfilment of their own."""
    return all(f.shipped for f in saga.fulfilments.values() if not f.cancelled) and not any(
        short.pending for short in saga.shorts.values()
    )


def _everything_shipped(
    saga: OrderSaga, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    """What the order still holds has all left: SHIPPED, the delivery SLA starts, a reservation
    a short-shipped fulfilment left goes back, and the order is delivered if all arrived."""
    _set_status(saga, Status.SHIPPED, decision)
    saga.sla_deadline_at = now + policy.delivery_sla
    saga.sla_notified = False
    _release_what_was_not_shipped(saga, decision)
    _deliver_if_all_delivered(saga, decision)


def _release_what_was_not_shipped(saga: OrderSaga, decision: Decision) -> None:
    """Every fulfilment finished shipping, but one of them short (the warehouse said it was
    complete with units never shipped): their reservation goes back to stock. Nothing else of
    the order is still reserved, and the commits of what shipped go first on the same key."""
    short = {
        f.fulfilment_id: f.unshipped()
        for f in saga.fulfilments.values()
        if not f.cancelled and not f.rest_cancelled and f.unshipped()
    }
    if short:
        decision.note("shipped_short", unshipped=short)
        decision.send(ReleaseStock(order_id=saga.order_id, reason="shipped short"))


def _lines_detail(lines: Sequence[SkuQuantity]) -> list[dict[str, Any]]:
    return [{"sku": line.sku, "quantity": line.quantity} for line in lines]


def _capture(saga: OrderSaga, fulfilment: SagaFulfilment, shipment: SagaShipment) -> CapturePayment:
    """The capture of one shipment (the same command, key included, every time it is sent)."""
    assert shipment.capture_amount is not None
    whole = shipment.shipment_id == fulfilment.fulfilment_id
    return CapturePayment(
        order_id=saga.order_id,
        amount=shipment.capture_amount,
        currency=saga.currency,
        fulfilment_id=fulfilment.fulfilment_id,
        idempotency_key=saga.capture_key(shipment.shipment_id),
        shipment_id=None if whole else shipment.shipment_id,
    )


def _shipment_of(
    saga: OrderSaga, fulfilment_id: str, shipment_id: str | None
) -> tuple[SagaFulfilment, SagaShipment] | None:
    """The shipment a payment answer is about (`shipment_id or fulfilment_id`), if known."""
    fulfilment = saga.fulfilments.get(fulfilment_id)
    if fulfilment is None:
        return None
    shipment = fulfilment.shipments.get(shipment_id or fulfilment_id)
    return (fulfilment, shipment) if shipment is not None else None


def _on_fulfilment_delivered(
    saga: OrderSaga,
    event: FulfilmentDelivered,
    now: datetime,
    policy: SagaPolicy,
    decision: Decision,
) -> None:
    """One shipment delivered (`shipment_id`), or every shipment of the fulfilment so far (no
    `shipment_id`). The fulfilment counts as delivered once it finished shipping and all its
    shipments are delivered."""
    fulfilment = saga.fulfilments.get(event.fulfilment_id)
    if fulfilment is None or not fulfilment.shipments:
        decision.note("ignored", message=event.TYPE, status=saga.status)
        return
    if event.shipment_id is not None:
        known = fulfilment.shipments.get(event.shipment_id)
        targets = [known] if known is not None else []
    else:
        targets = list(fulfilment.shipments.values())
    fresh = [s for s in targets if not s.delivered]
    if not fresh:
        decision.note("ignored", message=event.TYPE, status=saga.status)
        return
    for shipment in fresh:
        shipment.delivered = True
    fulfilment.delivered = fulfilment.shipped and all(
        s.delivered for s in fulfilment.shipments.values()
    )
    decision.note(
        "fulfilment_delivered",
        fulfilment_id=event.fulfilment_id,
        shipment_ids=[s.shipment_id for s in fresh],
        fulfilment_complete=fulfilment.delivered,
    )
    notice: dict[str, Any] = {}
    if event.shipment_id is not None:
        notice["shipment_id"] = event.shipment_id
    decision.send(
        _notice(saga, "delivered", fulfilment_id=event.fulfilment_id, follow_up=True, **notice)
    )
    _deliver_if_all_delivered(saga, decision)


def _uncaptured_shipment(
    saga: OrderSaga, event: PaymentCaptured | PaymentCaptureFailed, decision: Decision
) -> SagaShipment | None:
    """The shipment a capture answer is about, while it is not captured; otherwise the answer
    is only noted as ignored."""
    found = _shipment_of(saga, event.fulfilment_id, event.shipment_id)
    if found is None or found[1].captured:
        decision.note("ignored", message=event.TYPE, status=saga.status)
        return None
    return found[1]


def _on_payment_captured(
    saga: OrderSaga, event: PaymentCaptured, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    shipment = _uncaptured_shipment(saga, event, decision)
    if shipment is None:
        return
    shipment.captured = True
    shipment.capture_failed = False
    saga.captured_total = max(saga.captured_total, event.captured_total)
    decision.note(
        "payment_captured",
        amount=str(event.amount),
        captured_total=str(event.captured_total),
        fulfilment_id=event.fulfilment_id,
        shipment_id=shipment.shipment_id,
    )
    _complete_if_done(saga, decision)


def _on_payment_capture_failed(
    saga: OrderSaga,
    event: PaymentCaptureFailed,
    now: datetime,
    policy: SagaPolicy,
    decision: Decision,
) -> None:
    shipment = _uncaptured_shipment(saga, event, decision)
    if shipment is None:
        return
    shipment.capture_failed = True
    decision.note(
        "payment_capture_failed",
        fulfilment_id=event.fulfilment_id,
        shipment_id=shipment.shipment_id,
        reason=event.reason,
    )
    _needs_attention(
        saga, f"capture failed after shipment ({shipment.shipment_id}): {event.reason}", decision
    )


def _on_fulfilment_failed(
    saga: OrderSaga, event: FulfilmentFailed, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    decision.note("fulfilment_failed", fulfilment_id=event.fulfilment_id, reason=event.reason)
    fulfilment = saga.fulfilments.get(event.fulfilment_id)
    left_in_part = fulfilment is not None and bool(fulfilment.shipments)
    if saga.status == Status.FULFILLING:
        _begin_cancel(saga, f"fulfilment failed: {event.reason}", now, policy, decision)
    elif saga.status in {Status.PARTIALLY_SHIPPED, Status.SHIPPED, Status.DELIVERED} or (
        saga.status == Status.CANCELLING and left_in_part
    ):
        # Goods left the warehouse and money was captured: a refund or a re-shipment is a
        # decision for a person (also while the unshipped rest is being cancelled; the cancel's
        # answer is applied underneath).
        _needs_attention(saga, f"shipment failed after shipping: {event.reason}", decision)


def _on_compensated(
    saga: OrderSaga, event: Contract, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    kind = {
        StockReleased: Compensation.STOCK,
        PaymentVoided: Compensation.PAYMENT,
        FulfilmentCancelled: Compensation.FULFILMENT,
    }[type(event)]
    stage = _compensation_stage(saga.pending_compensations)
    if saga.status != Status.CANCELLING or kind not in stage:
        decision.note("ignored", message=event.TYPE, status=saga.status)
        return
    if isinstance(event, FulfilmentCancelled):
        _on_fulfilment_cancelled(saga, event, now, policy, decision)
        return
    if isinstance(event, PaymentVoided):
        saga.payment_voided = event.voided
    if isinstance(event, StockReleased):
        saga.stock_reserved = False
    saga.pending_compensations = tuple(c for c in saga.pending_compensations if c != kind)
    decision.note(f"{kind}_compensated", message=event.TYPE)
    if not saga.pending_compensations:
        _cancelled(saga, saga.reason or "cancelled", decision)


def _on_fulfilment_cancelled(
    saga: OrderSaga,
    event: FulfilmentCancelled,
    now: datetime,
    policy: SagaPolicy,
    decision: Decision,
) -> None:
    """The first compensation answered. Nothing shipped: void and release, the next stage.
    Something shipped (part of the order had, or a parcel won the race): those shipments stand
    (their stock committed and payment captured when they arrived); what was cancelled —
    whole fulfilments, and the unshipped rest of fulfilments that left in part
    (`partly_shipped`, or cancelled ones the saga knows parcels of) — is cancelled from the
    order (`_cancel_rest`)."""
    target = capture_target(saga)
    rest_cancelled: list[str] = []
    whole: list[str] = []
    units: dict[str, int] = {}
    for fulfilment_id in dict.fromkeys((*event.cancelled, *event.partly_shipped)):
        fulfilment = saga.fulfilments.get(fulfilment_id)
        if fulfilment is None:
            continue
        if fulfilment.shipments or fulfilment_id in event.partly_shipped:
            if fulfilment.shipped:
                continue  # it finished shipping before the cancel: nothing of it to cancel
            units = _plus(units, fulfilment.unshipped())
            fulfilment.rest_cancelled = True
            if fulfilment.shipments:
                _finish_shipping(fulfilment)
            rest_cancelled.append(fulfilment_id)
        elif not fulfilment.cancelled:
            units = _plus(units, fulfilment.unshipped())
            fulfilment.cancelled = True
            whole.append(fulfilment_id)
    for fulfilment_id in event.already_shipped:
        # All of it left (every parcel was reported before this answer, on the same key): it
        # finished shipping even if no parcel said it was the last.
        fulfilment = saga.fulfilments.get(fulfilment_id)
        if fulfilment is not None and fulfilment.shipments and not fulfilment.shipped:
            _finish_shipping(fulfilment)
    saga.pending_compensations = tuple(
        c for c in saga.pending_compensations if c != Compensation.FULFILMENT
    )
    decision.note(
        "fulfilment_compensated",
        message=event.TYPE,
        cancelled=list(event.cancelled),
        partly_shipped=rest_cancelled,
    )
    shipped = (
        set(event.already_shipped)
        | set(rest_cancelled)
        | {f.fulfilment_id for f in saga.fulfilments.values() if f.shipments}
    )
    if not shipped:
        if not saga.pending_compensations:
            _cancelled(saga, saga.reason or "cancelled", decision)
            return
        _send_compensations(saga, now, policy, decision)
        return
    cancel_reason = saga.reason or "cancelled"
    saga.pending_compensations = ()
    _clear_step(saga)
    if saga.cancel_rest:
        saga.reason = f"unshipped rest cancelled: {cancel_reason}"
    else:
        saga.reason = f"cancel came too late: {', '.join(sorted(shipped))} shipped"
        decision.note(
            "cancel_too_late",
            shipped=sorted(shipped),
            cancelled=whole,
            rest_cancelled=rest_cancelled,
        )
    shorts = [
        short
        for short in saga.shorts.values()
        if short.with_cancel and short.state == ShortState.CANCELLED
    ]
    if whole or rest_cancelled or shorts:
        for short in shorts:
            units = _plus(units, {short.sku: short.quantity})
        shorts_value = sum((short.value or Decimal(0) for short in shorts), Decimal(0))
        value = target - capture_target(saga) + shorts_value
        _cancel_rest(saga, cancel_reason, units, value, whole, rest_cancelled, decision)
    active = [f for f in saga.fulfilments.values() if not f.cancelled]
    if active and all(f.shipped for f in active):
        _set_status(saga, Status.SHIPPED, decision)
        saga.sla_deadline_at = now + policy.delivery_sla
        if not (whole or rest_cancelled or shorts):
            _release_what_was_not_shipped(saga, decision)
    else:
        _set_status(saga, Status.PARTIALLY_SHIPPED, decision)
        saga.sla_deadline_at = now + policy.ship_sla
    saga.sla_notified = False
    _deliver_if_all_delivered(saga, decision)


def _cancel_rest(
    saga: OrderSaga,
    reason: str,
    units: dict[str, int],
    value: Decimal,
    whole: list[str],
    rest_cancelled: list[str],
    decision: Decision,
) -> None:
    """The unshipped rest of a partly shipped order is cancelled (its units are already out of
    the capture target): its reservation goes back to stock (every parcel's commit was sent
    before, on the same key, and inventory releases only what is still reserved), and the
    customer is told which units were cancelled and what is not charged. The authorisation's
    uncaptured rest is not voided (a void after a capture is refused): it lapses at the card
    network, as after short picks."""
    decision.note(
        "rest_cancelled",
        reason=reason,
        lines=_units_detail(units),
        value=str(value),
        capture_target=str(capture_target(saga)),
        cancelled=whole,
        rest_cancelled=rest_cancelled,
    )
    decision.send(ReleaseStock(order_id=saga.order_id, reason=reason))
    decision.send(
        _notice(
            saga,
            "rest_cancelled",
            reason=reason,
            lines=_units_detail(units),
            amount=str(value),
            currency=saga.currency,
            cancelled_fulfilments=whole,
            partly_cancelled_fulfilments=rest_cancelled,
            too_late=not saga.cancel_rest,
            paid_externally=saga.paid_externally,
        )
    )


def _on_stock_committed(
    saga: OrderSaga, event: StockCommitted, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    decision.note(
        "stock_committed",
        fulfilment_id=event.fulfilment_id,
        shipment_id=event.shipment_id or event.fulfilment_id,
        location=event.location,
    )


# --- short picks -------------------------------------------------------------------------------


def _on_short_pick(
    saga: OrderSaga, event: ShortPick, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    """A bin on the floor did not hold `missing` units of a fulfilment: they leave it (it ships
    what is left; with nothing left it ends without shipping) and, by policy, are re-allocated
    from other locations or cancelled from the order. Once the order is being cancelled they
    are only written off. A short already recorded, or one of a fulfilment that finished, is
    only on the timeline."""
    short_id = event.short_key
    if short_id in saga.shorts:
        decision.note("ignored", message=event.TYPE, reason="already recorded", short_id=short_id)
        return
    decision.note(
        "short_pick",
        sku=event.sku,
        missing=event.missing,
        bin=event.bin,
        location=event.location,
        fulfilment_id=event.fulfilment_id,
        short_id=short_id,
    )
    fulfilment = saga.fulfilments.get(event.fulfilment_id)
    applying = {Status.FULFILLING, Status.PARTIALLY_SHIPPED, Status.CANCELLING}
    if (
        fulfilment is None
        or fulfilment.shipped
        or fulfilment.cancelled
        or saga.status not in applying
        or event.missing <= 0
    ):
        decision.note("ignored", message=event.TYPE, status=saga.status)
        return
    left = fulfilment.unshipped().get(event.sku, 0)
    if event.missing > left:
        _needs_attention(
            saga,
            f"short pick {short_id} of fulfilment {event.fulfilment_id} misses {event.missing}"
            f" x {event.sku}, but only {left} is left unshipped: not applied",
            decision,
        )
        return
    short = SagaShort(
        short_id=short_id,
        fulfilment_id=event.fulfilment_id,
        location=event.location,
        sku=event.sku,
        quantity=event.missing,
        bin=event.bin,
    )
    saga.shorts[short_id] = short
    fulfilment.short = (*fulfilment.short, SkuQuantity(sku=event.sku, quantity=event.missing))
    if not fulfilment.unshipped():
        if fulfilment.shipments:
            _finish_shipping(fulfilment)
        else:
            fulfilment.cancelled = fulfilment.ended_short = True
            decision.note("fulfilment_ended_short", fulfilment_id=fulfilment.fulfilment_id)
    if saga.status == Status.CANCELLING:
        _cancel_short(saga, short, _WITH_CANCEL, decision, notify=False)
        short.with_cancel = True
        decision.send(_about_short(WriteOffShortPick, saga, short))
        return
    if policy.short_pick == ShortPickPolicy.SHIP_AVAILABLE:
        _cancel_short(saga, short, "not in stock where it was picked", decision)
        decision.send(_about_short(WriteOffShortPick, saga, short))
        _after_short(saga, now, policy, decision)
        return
    if saga.step is not None:
        decision.note("short_waits", short_id=short_id, behind=str(saga.step))
    _after_short(saga, now, policy, decision)


def _on_stock_reallocated(
    saga: OrderSaga,
    event: StockReallocated,
    now: datetime,
    policy: SagaPolicy,
    decision: Decision,
) -> None:
    """The short's units are reserved at other locations: ask fulfilment for their
    fulfilments (or, with a cancel waiting, cancel the order). A late answer after the order was
    given up gives the reservation back."""
    short = saga.shorts.get(event.short_id)
    if short is None or short.state != ShortState.REALLOCATING:
        if saga.status in {Status.CANCELLING, Status.CANCELLED}:
            _release_late_reallocation(saga, decision)
        else:
            decision.note("ignored", message=event.TYPE, status=saga.status)
        return
    short.allocations = event.allocations
    decision.note(
        "stock_reallocated",
        short_id=short.short_id,
        sku=short.sku,
        written_off=event.written_off,
        location=short.location,
        allocations=[a.model_dump() for a in event.allocations],
    )
    if saga.cancel_requested:
        # The cancel waited for this answer: the release it ends with takes the reservation.
        _clear_step(saga)
        _begin_cancel(saga, saga.cancel_requested, now, policy, decision)
        return
    short.state = ShortState.ADDING
    _begin_short_step(saga, Step.ADD_FULFILMENT, now, policy, decision)


def _on_stock_reallocation_failed(
    saga: OrderSaga,
    event: StockReallocationFailed,
    now: datetime,
    policy: SagaPolicy,
    decision: Decision,
) -> None:
    """No other location has the short's units: they are cancelled from the order (inventory
    wrote them off already)."""
    short = saga.shorts.get(event.short_id)
    if short is None or short.state != ShortState.REALLOCATING:
        decision.note("ignored", message=event.TYPE, status=saga.status)
        return
    _clear_step(saga)
    decision.note(
        "stock_reallocation_failed",
        short_id=short.short_id,
        sku=short.sku,
        reason=event.reason,
        requested=event.requested,
        available=event.available,
        written_off=event.written_off,
    )
    _cancel_short(saga, short, f"no other location has them ({event.reason})", decision)
    _cancel_or_after_short(saga, now, policy, decision)


def _on_fulfilments_added(
    saga: OrderSaga,
    event: FulfilmentsAdded,
    now: datetime,
    policy: SagaPolicy,
    decision: Decision,
) -> None:
    """The re-allocated units have fulfilments of their own: the order waits for them too."""
    short = saga.shorts.get(event.short_id)
    if short is None or short.state != ShortState.ADDING:
        if saga.status in {Status.CANCELLING, Status.CANCELLED}:
            _record_added(saga, event)
            if Compensation.FULFILMENT not in saga.pending_compensations:
                decision.note("late_fulfilment_cancelled")
                decision.send(
                    CancelFulfilment(order_id=saga.order_id, reason="late fulfilment after cancel")
                )
        else:
            decision.note("ignored", message=event.TYPE, status=saga.status)
        return
    _clear_step(saga)
    _record_added(saga, event)
    short.state = ShortState.REALLOCATED
    short.fulfilments = tuple(f.fulfilment_id for f in event.fulfilments)
    decision.note(
        "fulfilment_added",
        short_id=short.short_id,
        fulfilments=[
            {"fulfilment_id": f.fulfilment_id, "location": f.location} for f in event.fulfilments
        ],
    )
    _cancel_or_after_short(saga, now, policy, decision)


def _on_short_pick_written_off(
    saga: OrderSaga,
    event: ShortPickWrittenOff,
    now: datetime,
    policy: SagaPolicy,
    decision: Decision,
) -> None:
    decision.note(
        "stock_written_off",
        short_id=event.short_id,
        sku=event.sku,
        location=event.location,
        written_off=event.written_off,
    )


def _record_added(saga: OrderSaga, event: FulfilmentsAdded) -> None:
    for ref in event.fulfilments:
        saga.fulfilments.setdefault(
            ref.fulfilment_id,
            SagaFulfilment(
                fulfilment_id=ref.fulfilment_id,
                location=ref.location,
                lines=ref.lines,
                reallocated_for_short=event.short_id,
            ),
        )


def _release_late_reallocation(saga: OrderSaga, decision: Decision) -> None:
    """Stock reserved again after the order was given up: the release already sent (or about
    to be) takes it; once it was confirmed, one more is sent."""
    if Compensation.STOCK in saga.pending_compensations:
        decision.note("late_stock_reallocated", released_by="the pending release")
        return
    decision.note("late_stock_reallocated_released")
    decision.send(ReleaseStock(order_id=saga.order_id, reason="late re-allocation after cancel"))


def _cancel_short(
    saga: OrderSaga, short: SagaShort, reason: str, decision: Decision, *, notify: bool = True
) -> None:
    """The short's units are cancelled from the order: what it captures in all drops by their
    value (the authorisation's uncaptured rest lapses, as after a partial cancel), and the
    customer is told which units will not come."""
    before = capture_target(saga)
    short.state = ShortState.CANCELLED
    short.reason = reason
    short.value = before - capture_target(saga)
    decision.note(
        "short_pick_cancelled",
        short_id=short.short_id,
        sku=short.sku,
        quantity=short.quantity,
        value=str(short.value),
        reason=reason,
    )
    if notify:
        decision.send(
            _notice(
                saga,
                "items_unavailable",
                lines=[{"sku": short.sku, "quantity": short.quantity}],
                amount=str(short.value),
                currency=saga.currency,
                reason=reason,
            )
        )


_ShortCommand = TypeVar("_ShortCommand", ReallocateStock, WriteOffShortPick)


def _about_short(command: type[_ShortCommand], saga: OrderSaga, short: SagaShort) -> _ShortCommand:
    """A command to inventory about the short's units (`ShortUnits`)."""
    return command(
        order_id=saga.order_id,
        short_id=short.short_id,
        fulfilment_id=short.fulfilment_id,
        location=short.location,
        sku=short.sku,
        quantity=short.quantity,
        bin=short.bin,
    )


def _current_short(saga: OrderSaga) -> SagaShort | None:
    """The short whose re-allocation step is in flight (one at a time)."""
    return next(
        (
            s
            for s in saga.shorts.values()
            if s.state in {ShortState.REALLOCATING, ShortState.ADDING}
        ),
        None,
    )


def _begin_short_step(
    saga: OrderSaga, step: Step, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    """A short's machine-paced step (the order keeps its status): the semantic lock holds a
    cancel until it answers, and its deadline re-sends it."""
    saga.step = step
    saga.step_started_at = now
    saga.attempt = 1
    saga.deadline_at = now + policy.timeout(step)
    decision.send(*_step_commands(saga, step))


def _after_short(saga: OrderSaga, now: datetime, policy: SagaPolicy, decision: Decision) -> None:
    """A short was recorded or settled: re-allocate the next waiting one (one at a time, and
    only while no other step is in flight); once none is pending, the order may have nothing
    left to ship (cancelled) or have shipped everything that remains (SHIPPED)."""
    if saga.step is not None:
        return
    waiting = next((s for s in saga.shorts.values() if s.state == ShortState.WAITING), None)
    if waiting is not None:
        waiting.state = ShortState.REALLOCATING
        decision.note("reallocating", short_id=waiting.short_id, sku=waiting.sku)
        _begin_short_step(saga, Step.REALLOCATE_STOCK, now, policy, decision)
        return
    if saga.status not in {Status.FULFILLING, Status.PARTIALLY_SHIPPED}:
        return
    active = [f for f in saga.fulfilments.values() if not f.cancelled]
    if not active:
        _begin_cancel(saga, "no unit of the order could be found", now, policy, decision)
    elif _all_shipped(saga):
        # The last thing the order waited for was a short: what remains has all left.
        _everything_shipped(saga, now, policy, decision)


def _cancel_or_after_short(
    saga: OrderSaga, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    """A short's step has answered: a cancel that waited for it goes ahead now, otherwise the
    order moves on as after any short."""
    if saga.cancel_requested:
        _begin_cancel(saga, saga.cancel_requested, now, policy, decision)
        return
    _after_short(saga, now, policy, decision)


_WITH_CANCEL = "the order is being cancelled"


def _cancel_waiting_shorts(saga: OrderSaga, decision: Decision) -> None:
    """The order is being cancelled: shorts not re-allocated yet are cancelled, and the units of
    those not sent to inventory yet written off (a ReallocateStock in flight writes them off)."""
    for short in saga.shorts.values():
        if short.pending:
            waiting = short.state == ShortState.WAITING
            _cancel_short(saga, short, _WITH_CANCEL, decision, notify=False)
            short.with_cancel = True
            if waiting:
                decision.send(_about_short(WriteOffShortPick, saga, short))


# --- disputes and refunds made at the provider --------------------------------------------


def _on_payment_disputed(
    saga: OrderSaga, event: PaymentDisputed, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    """Flag the order, alert finance, hold what has not shipped. Never cancels."""
    if event.dispute_id in saga.disputes:
        return
    saga.disputes[event.dispute_id] = SagaDispute(
        dispute_id=event.dispute_id,
        amount=event.amount,
        currency=event.currency,
        reason=event.reason,
        gateway=event.gateway,
        opened_at=now,
    )
    amount = f"{round_money(event.amount, event.currency)} {event.currency}"
    decision.note(
        PAYMENT_DISPUTED,
        dispute_id=event.dispute_id,
        amount=str(event.amount),
        currency=event.currency,
        reason=event.reason,
        gateway=event.gateway,
        status=str(saga.status),
    )
    held = _hold_unshipped_for_dispute(saga, event, amount, now, policy, decision)
    decision.send(
        OperatorAlert(
            order_id=saga.order_id,
            kind=PAYMENT_DISPUTED,
            message=f"payment of order {saga.order_id} disputed at {event.gateway}:"
            f" {amount}, reason {event.reason} (dispute {event.dispute_id}); {held}",
        )
    )


def _hold_unshipped_for_dispute(
    saga: OrderSaga,
    event: PaymentDisputed,
    amount: str,
    now: datetime,
    policy: SagaPolicy,
    decision: Decision,
) -> str:
    """Hold what has not shipped; says what was done (for the finance alert)."""
    status = saga.status  # underneath, while parked
    if status in TERMINAL or status == Status.CANCELLING or saga.cancel_requested:
        return f"the order is {status}{' (being cancelled)' if saga.cancel_requested else ''}"
    if status not in _FULFILLING and not saga.fulfilments:
        if saga.hold is not None:
            decision.note("dispute_on_held_order", hold_reason=saga.hold.reason)
            return (
                f"it is on hold already ({saga.hold.reason}, by {saga.hold.by}):"
                " do not release it before the dispute is settled"
            )
        _place(saga, PAYMENT_DISPUTED, f"dispute {event.dispute_id}", PAYMENT_PROVIDER, now, policy)
        decision.note("hold_placed", reason=PAYMENT_DISPUTED, by=PAYMENT_PROVIDER)
        return "it is held before fulfilment"
    unshipped = [
        f.fulfilment_id for f in saga.fulfilments.values() if not f.shipped and not f.cancelled
    ]
    waiting = saga.step in {Step.CREATE_FULFILMENT, Step.REALLOCATE_STOCK, Step.ADD_FULFILMENT}
    if not unshipped and not waiting and not any(s.pending for s in saga.shorts.values()):
        return "everything shipped already"
    what = f"fulfilments {', '.join(unshipped)}" if unshipped else "fulfilments being created"
    if saga.hold is not None and saga.hold.fulfilments_held:
        decision.note("dispute_on_held_order", hold_reason=saga.hold.reason)
        return (
            f"its {what} are on hold already ({saga.hold.reason}, by {saga.hold.by}):"
            " do not release it before the dispute is settled"
        )
    if saga.hold is None:
        _place(saga, PAYMENT_DISPUTED, f"dispute {event.dispute_id}", PAYMENT_PROVIDER, now, policy)
        decision.note("hold_placed", reason=PAYMENT_DISPUTED, by=PAYMENT_PROVIDER)
    _hold_fulfilments(saga, PAYMENT_DISPUTED, decision)
    return f"its unshipped {what} are held at the warehouse"


def _on_fulfilments_held(
    saga: OrderSaga, event: FulfilmentsHeld, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    """Fulfilment's answer to HoldFulfilments: noted (a partner that had the request already
    is not recalled: an operator is told)."""
    decision.note("fulfilments_held", held=list(event.held), reason=event.reason)
    if event.not_recalled:
        decision.send(
            OperatorAlert(
                order_id=saga.order_id,
                kind="hold_not_recalled",
                message=f"order {saga.order_id} is on hold ({event.reason}) but the partner"
                f" requests of fulfilments {', '.join(event.not_recalled)} went out already:"
                " ask the partner to stop them",
            )
        )


def _on_fulfilments_released(
    saga: OrderSaga,
    event: FulfilmentsReleased,
    now: datetime,
    policy: SagaPolicy,
    decision: Decision,
) -> None:
    decision.note("fulfilments_released", released=list(event.released))


def _on_payment_refunded_externally(
    saga: OrderSaga,
    event: PaymentRefundedExternally,
    now: datetime,
    policy: SagaPolicy,
    decision: Decision,
) -> None:
    """Record a refund made at the provider; the status stays as it is."""
    if event.gateway_refund_id in saga.external_refunds:
        return
    saga.external_refunds[event.gateway_refund_id] = SagaExternalRefund(
        gateway_refund_id=event.gateway_refund_id,
        amount=event.amount,
        gateway=event.gateway,
        refunded_at=now,
    )
    saga.refunded_externally += event.amount
    decision.note(
        "refunded_externally",
        gateway_refund_id=event.gateway_refund_id,
        amount=str(event.amount),
        currency=event.currency,
        refunded_total=str(event.refunded_total),
        refunded_externally=str(saga.refunded_externally),
        gateway=event.gateway,
    )
    refunded = max(event.refunded_total, saga.refunded_externally)
    problems = []
    if refunded > saga.captured_total:
        problems.append(
            f"refunds ({refunded} {event.currency}) exceed what was captured"
            f" ({saga.captured_total} {saga.currency})"
        )
    if saga.status != Status.COMPLETED:
        problems.append(f"the order is {saga.status}, not completed")
    if problems:
        decision.send(
            OperatorAlert(
                order_id=saga.order_id,
                kind="refunded_externally",
                message=f"{event.amount} {event.currency} of order {saga.order_id} refunded at"
                f" {event.gateway} (refund {event.gateway_refund_id}): {'; '.join(problems)}",
            )
        )


_EVENT_HANDLERS: dict[type[Contract], Any] = {
    StockReserved: _on_stock_reserved,
    StockReservationFailed: _on_stock_reservation_failed,
    StockBackordered: _on_stock_backordered,
    StockReleased: _on_compensated,
    StockCommitted: _on_stock_committed,
    PaymentAuthorized: _on_payment_authorized,
    PaymentDeclined: _on_payment_declined,
    PaymentRequiresAction: _on_payment_requires_action,
    PaymentCaptured: _on_payment_captured,
    PaymentCaptureFailed: _on_payment_capture_failed,
    PaymentVoided: _on_compensated,
    FulfilmentCreated: _on_fulfilment_created,
    FulfilmentShipped: _on_fulfilment_shipped,
    FulfilmentDelivered: _on_fulfilment_delivered,
    FulfilmentCancelled: _on_compensated,
    FulfilmentFailed: _on_fulfilment_failed,
    ShortPick: _on_short_pick,
    StockReallocated: _on_stock_reallocated,
    StockReallocationFailed: _on_stock_reallocation_failed,
    FulfilmentsAdded: _on_fulfilments_added,
    ShortPickWrittenOff: _on_short_pick_written_off,
    PaymentDisputed: _on_payment_disputed,
    PaymentRefundedExternally: _on_payment_refunded_externally,
    FulfilmentsHeld: _on_fulfilments_held,
    FulfilmentsReleased: _on_fulfilments_released,
}

HANDLED_EVENTS: tuple[type[Contract], ...] = tuple(_EVENT_HANDLERS)


# --- deadlines -----------------------------------------------------------------------------


def _step_deadline_passed(
    saga: OrderSaga, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    step = saga.step
    assert step is not None
    if saga.attempt < policy.max_attempts:
        saga.attempt += 1
        saga.deadline_at = now + policy.timeout(step)
        decision.note("deadline_passed_retry", step=str(step), attempt=saga.attempt)
        decision.send(*_step_commands(saga, step))
        return
    decision.note("deadline_passed_give_up", step=str(step), attempts=saga.attempt)
    if step == Step.RESERVE_STOCK:
        _begin_cancel(saga, "inventory did not answer in time", now, policy, decision)
    elif step == Step.AUTHORIZE_PAYMENT:
        _begin_cancel(saga, "payment did not answer in time", now, policy, decision)
    elif step == Step.CREATE_FULFILMENT:
        # The customer has been told the order is confirmed: a person decides what happens.
        _needs_attention(saga, "fulfilment did not answer in time", decision)
    elif step in {Step.REALLOCATE_STOCK, Step.ADD_FULFILMENT}:
        # Units may be reserved elsewhere, or fulfilments on their way: not undone by guesswork.
        short = _current_short(saga)
        what = f"{short.quantity} x {short.sku} short at {short.location}" if short else "a short"
        service = "inventory" if step == Step.REALLOCATE_STOCK else "fulfilment"
        _needs_attention(
            saga, f"{service} did not answer the re-allocation of {what} in time", decision
        )
    else:
        pending = ", ".join(saga.pending_compensations)
        _needs_attention(saga, f"compensation not confirmed in time: {pending}", decision)


def _step_commands(saga: OrderSaga, step: Step) -> list[Contract]:
    if step == Step.RESERVE_STOCK:
        return [
            ReserveStock(
                order_id=saga.order_id,
                channel=saga.channel,
                lines=tuple(
                    OrderLineRef(line_id=li.line_id, sku=li.sku, quantity=li.quantity)
                    for li in saga.lines
                ),
                ship_to=ShipTo(
                    country=saga.shipping_address.country,
                    postal_code=saga.shipping_address.postal_code,
                ),
            )
        ]
    if step == Step.AUTHORIZE_PAYMENT:
        return [
            AuthorizePayment(
                order_id=saga.order_id,
                amount=saga.total,
                currency=saga.currency,
                method=saga.payment_method,
                token=saga.payment_token or "",
                idempotency_key=saga.authorize_key,
                channel=saga.channel,
            )
        ]
    if step == Step.CREATE_FULFILMENT:
        return [
            CreateFulfilment(
                order_id=saga.order_id,
                allocations=saga.allocations,
                shipping_address=saga.shipping_address,
                shipping_method=saga.shipping_method,
                recipient_name=saga.customer.name,
            )
        ]
    if step in {Step.REALLOCATE_STOCK, Step.ADD_FULFILMENT}:
        short = _current_short(saga)
        if short is None:
            return []
        if step == Step.REALLOCATE_STOCK:
            return [_about_short(ReallocateStock, saga, short)]
        return [
            AddFulfilment(
                order_id=saga.order_id,
                short_id=short.short_id,
                allocations=short.allocations,
                shipping_address=saga.shipping_address,
                shipping_method=saga.shipping_method,
                recipient_name=saga.customer.name,
            )
        ]
    return _compensation_commands(saga, saga.pending_compensations)


# --- helpers -------------------------------------------------------------------------------


def _set_status(saga: OrderSaga, status: Status, decision: Decision) -> None:
    if saga.status != status:
        decision.note("status_changed", status=str(status), previous=str(saga.status))
        saga.status = status


def _begin_step(
    saga: OrderSaga,
    status: Status,
    step: Step,
    now: datetime,
    policy: SagaPolicy,
    decision: Decision,
) -> None:
    _set_status(saga, status, decision)
    saga.step = step
    saga.step_started_at = now
    saga.attempt = 1
    saga.deadline_at = now + policy.timeout(step)
    decision.send(*_step_commands(saga, step))


def _clear_step(saga: OrderSaga) -> None:
    saga.step = None
    saga.attempt = 0
    saga.deadline_at = None


def _confirm(saga: OrderSaga, now: datetime, policy: SagaPolicy, decision: Decision) -> None:
    """Send the order to fulfilment, or, while it is held, wait in ON_HOLD."""
    if saga.hold is not None:
        _clear_step(saga)
        _set_status(saga, Status.ON_HOLD, decision)
        decision.note("held", reason=saga.hold.reason, by=saga.hold.by)
        return
    _begin_step(saga, Status.CONFIRMED, Step.CREATE_FULFILMENT, now, policy, decision)
    decision.send(_notice(saga, "confirmed", total=str(saga.total), currency=saga.currency))


def _begin_cancel(
    saga: OrderSaga, reason: str, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    """Compensate in reverse order, as far as done (or possibly done: an unanswered step).
    Once part of the order shipped, only its unshipped rest is cancelled: the fulfilment first,
    the stock with its answer, and the payment is never voided (what shipped is captured)."""
    in_flight = saga.step
    saga.cancel_rest = shipped_anything(saga)
    pending: list[Compensation] = []
    if saga.fulfilments or in_flight == Step.CREATE_FULFILMENT:
        pending.append(Compensation.FULFILMENT)
    if (
        not saga.paid_externally
        and not saga.cancel_rest
        and (
            saga.payment_authorized
            or in_flight == Step.AUTHORIZE_PAYMENT
            # waiting for the customer: the provider's attempt is cancelled
            or saga.customer_action is not None
        )
    ):
        pending.append(Compensation.PAYMENT)
    if saga.stock_reserved or saga.backordered or in_flight == Step.RESERVE_STOCK:
        pending.append(Compensation.STOCK)
    saga.reason = reason
    saga.sla_deadline_at = None
    saga.backorder_expires_at = None
    saga.hold = None  # what it held back is cancelled now
    saga.customer_action = None
    _cancel_waiting_shorts(saga, decision)
    if not pending:
        _cancelled(saga, reason, decision)
        return
    _set_status(saga, Status.CANCELLING, decision)
    saga.pending_compensations = tuple(pending)
    saga.step = Step.COMPENSATE
    scope = {"scope": "unshipped_rest"} if saga.cancel_rest else {}
    decision.note("compensating", reason=reason, undo=[str(p) for p in pending], **scope)
    _send_compensations(saga, now, policy, decision)


def _send_compensations(
    saga: OrderSaga, now: datetime, policy: SagaPolicy, decision: Decision
) -> None:
    """(Re)start the compensation step's clock and send its current stage."""
    saga.step_started_at = now
    saga.attempt = 1
    saga.deadline_at = now + policy.compensation_timeout
    decision.send(*_compensation_commands(saga, saga.pending_compensations))


def _cancelled(saga: OrderSaga, reason: str, decision: Decision) -> None:
    _clear_step(saga)
    _finish(saga, Status.CANCELLED, reason, decision)


def _compensation_stage(pending: Sequence[Compensation]) -> tuple[Compensation, ...]:
    """The compensations to send now: the fulfilment alone first (the goods may be leaving);
    payment and stock once it is confirmed cancelled."""
    if Compensation.FULFILMENT in pending:
        return (Compensation.FULFILMENT,)
    return tuple(pending)


def _compensation_commands(saga: OrderSaga, pending: Sequence[Compensation]) -> list[Contract]:
    reason = saga.reason or "cancelled"
    commands: list[Contract] = []
    pending = _compensation_stage(pending)
    if Compensation.FULFILMENT in pending:
        commands.append(CancelFulfilment(order_id=saga.order_id, reason=reason))
    if Compensation.PAYMENT in pending:
        commands.append(_void(saga, reason))
    if Compensation.STOCK in pending:
        commands.append(ReleaseStock(order_id=saga.order_id, reason=reason))
    return commands


def _void(saga: OrderSaga, reason: str) -> VoidPayment:
    return VoidPayment(order_id=saga.order_id, reason=reason, idempotency_key=saga.void_key)


def _finish(
    saga: OrderSaga, status: Status, reason: str, decision: Decision, **detail: Any
) -> None:
    saga.reason = reason
    saga.pending_compensations = ()
    saga.sla_deadline_at = None
    saga.hold = None
    _set_status(saga, status, decision)
    kind = "rejected" if status == Status.REJECTED else "cancelled"
    decision.send(_notice(saga, kind, reason=reason, **detail))


def _needs_attention(saga: OrderSaga, reason: str, decision: Decision) -> None:
    saga.parked_from = saga.status
    saga.parked_step = saga.step
    _clear_step(saga)
    saga.attention_reasons = (*saga.attention_reasons, reason)
    saga.reason = "; ".join(saga.attention_reasons)
    saga.sla_deadline_at = None
    _set_status(saga, Status.NEEDS_ATTENTION, decision)
    decision.send(OperatorAlert(order_id=saga.order_id, kind="needs_attention", message=reason))


def _all_delivered(saga: OrderSaga) -> bool:
    active = [f for f in saga.fulfilments.values() if not f.cancelled]
    return bool(active) and all(f.delivered for f in active)


def _deliver_if_all_delivered(saga: OrderSaga, decision: Decision) -> None:
    """Every active fulfilment delivered: a shipped order is DELIVERED, completed once paid."""
    if saga.status in {Status.SHIPPED, Status.DELIVERED} and _all_delivered(saga):
        if saga.status == Status.SHIPPED:
            _set_status(saga, Status.DELIVERED, decision)
        saga.sla_deadline_at = None
        _complete_if_done(saga, decision)


def _complete_if_done(saga: OrderSaga, decision: Decision) -> None:
    if saga.status != Status.DELIVERED:
        return
    active = [f for f in saga.fulfilments.values() if not f.cancelled]
    if saga.paid_externally or all(f.captured for f in active):  # every shipment of each
        _set_status(saga, Status.COMPLETED, decision)


def shipped_units(saga: OrderSaga) -> dict[str, int]:
    """Units per SKU that left in the order's shipments so far."""
    units: dict[str, int] = {}
    for fulfilment in saga.fulfilments.values():
        for shipment in fulfilment.shipments.values():
            for line in shipment.lines:
                units[line.sku] = units.get(line.sku, 0) + line.quantity
    return units


def _capture_amount(saga: OrderSaga, *, whole_order: bool) -> Decimal:
    """What to capture for the shipment just recorded. Its share of the order total: the value
    of everything shipped so far (the order's shipping, discounts and tax spread over the lines
    in proportion to their value), rounded once, less what was asked for before; so the
    captures always add up to the rounded share of all that shipped. The last shipment of the
    whole order takes the rest of the capture target (the total, less the value of units
    cancelled after short picks). No capture ever goes beyond the target."""
    target = capture_target(saga)
    if whole_order:
        return max(target - saga.capture_requested, Decimal(0))
    subtotal = _subtotal(saga)
    if subtotal == 0:
        return Decimal(0)
    shipped_value = _value_of(saga, shipped_units(saga))
    share = round_money(saga.total * shipped_value / subtotal, saga.currency)
    return max(min(share, target) - saga.capture_requested, Decimal(0))


def capture_target(saga: OrderSaga) -> Decimal:
    """What the order captures in all once everything it still ships has left: the total, less
    the value of the units cancelled from it (after short picks, or by a cancel of the
    unshipped rest) — the share of the total of the units kept, computed as a shipment's is
    (the units' price with their part of the shipping, discounts and tax), so that the captures
    of what ships add up to exactly this. With nothing but free items the total (shipping) is
    captured by the order's last shipment: while anything still ships, and nothing once a
    cancel took the rest."""
    cancelled = cancelled_units(saga)
    if not cancelled:
        return saga.total
    ordered = ordered_units(saga)
    subtotal = _subtotal(saga)
    if subtotal == 0:
        keeps = sum(cancelled.values()) < sum(ordered.values())
        cancel_took_some = any(_cancelled_by_cancel(f) for f in saga.fulfilments.values())
        return saga.total if keeps and not cancel_took_some else Decimal(0)
    kept = _value_of(saga, _less(ordered, cancelled))
    return round_money(saga.total * kept / subtotal, saga.currency)


def cancelled_units(saga: OrderSaga) -> dict[str, int]:
    """Units per SKU cancelled from the order: short picks' units cancelled, and the units a
    cancel took of fulfilments (whole ones, and the unshipped rest of partly shipped ones)."""
    units: dict[str, int] = {}
    for short in saga.shorts.values():
        if short.state == ShortState.CANCELLED:
            units = _plus(units, {short.sku: short.quantity})
    for fulfilment in saga.fulfilments.values():
        if _cancelled_by_cancel(fulfilment):
            units = _plus(units, fulfilment.unshipped())
    return units


def _cancelled_by_cancel(fulfilment: SagaFulfilment) -> bool:
    """A cancel took the fulfilment, whole or its unshipped rest (one that ended because every
    unit was short is not: its units are the short picks')."""
    return fulfilment.rest_cancelled or (fulfilment.cancelled and not fulfilment.ended_short)


def ordered_units(saga: OrderSaga) -> dict[str, int]:
    """Units per SKU of the order's lines (a kit's: its components')."""
    units: dict[str, int] = {}
    for sku, quantity, _ in _shipping_lines(saga):
        units = _plus(units, {sku: quantity})
    return units


def kit_compositions(allocations: Sequence[Allocation]) -> dict[str, dict[str, int]]:
    """The kits inventory reserved the components of: units of each component per kit."""
    kits: dict[str, dict[str, int]] = {}
    for allocation in allocations:
        if allocation.kit_sku is not None and allocation.per_kit is not None:
            kits.setdefault(allocation.kit_sku, {})[allocation.sku] = allocation.per_kit
    return kits


def _shipping_lines(saga: OrderSaga) -> Iterator[tuple[str, int, Decimal]]:
    """The order's lines as the SKUs that ship: (SKU, units, value). A kit's line is its
    components' units, the kits' value split over them in proportion to their count."""
    for li in saga.lines:
        composition = saga.kits.get(li.sku)
        if not composition:
            yield li.sku, li.quantity, li.line_total
            continue
        units_per_kit = sum(composition.values())
        for component, per_kit in sorted(composition.items()):
            yield component, li.quantity * per_kit, li.line_total * per_kit / units_per_kit


def shipped_anything(saga: OrderSaga) -> bool:
    """Some shipment of the order has left."""
    return any(f.shipments for f in saga.fulfilments.values())


def _plus(units: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    added = dict(units)
    for sku, quantity in more.items():
        added[sku] = added.get(sku, 0) + quantity
    return added


def _less(units: dict[str, int], fewer: dict[str, int]) -> dict[str, int]:
    """Units per SKU of `units` beyond `fewer` (SKUs with none left dropped)."""
    left = {sku: quantity - fewer.get(sku, 0) for sku, quantity in units.items()}
    return {sku: quantity for sku, quantity in left.items() if quantity > 0}


def _units_detail(units: dict[str, int]) -> list[dict[str, Any]]:
    return [{"sku": sku, "quantity": n} for sku, n in sorted(units.items()) if n > 0]


def _subtotal(saga: OrderSaga) -> Decimal:
    return sum((li.line_total for li in saga.lines), Decimal(0))


def _value_of(saga: OrderSaga, units: dict[str, int]) -> Decimal:
    """The unrounded value of units per SKU, at each SKU's average price in the order (a kit's
    components' at their share of the kit's; summed in SKU order, so the same units always come
    to the same value to the last digit)."""
    value_by_sku: dict[str, tuple[Decimal, int]] = {}
    for sku, units_of_line, line_value in _shipping_lines(saga):
        value, quantity = value_by_sku.get(sku, (Decimal(0), 0))
        value_by_sku[sku] = (value + line_value, quantity + units_of_line)
    return sum(
        (
            value_by_sku[sku][0] * quantity / value_by_sku[sku][1]
            for sku, quantity in sorted(units.items())
            if quantity and sku in value_by_sku and value_by_sku[sku][1]
        ),
        Decimal(0),
    )


def _notice(saga: OrderSaga, kind: str, **data: Any) -> CustomerNotification:
    return CustomerNotification(
        order_id=saga.order_id, kind=kind, customer=saga.customer, data=data
    )


# --- operator actions ------------------------------------------------------------------------


class OperatorActionRefused(Refused):
    """An operator retry or compensation the saga refuses."""


def is_stuck(saga: OrderSaga, now: datetime, grace: timedelta = timedelta(0)) -> bool:
    """Parked for an operator, or waiting on a machine-paced step past its deadline."""
    if saga.status == Status.NEEDS_ATTENTION:
        return True
    return saga.deadline_at is not None and saga.deadline_at + grace < now


def operator_retry(saga: OrderSaga, now: datetime, policy: SagaPolicy) -> Decision:
    """Resume a parked order, or re-send what the order is waiting for (same idempotency keys,
    fresh attempts). A resumed order gets its step re-sent and every uncaptured shipment's
    capture again."""
    decision = Decision()
    if saga.status == Status.NEEDS_ATTENTION and saga.parked_from is not None:
        _resume(saga, now, policy, decision)
        return decision
    if saga.step is not None:
        saga.attempt = 1
        saga.deadline_at = now + policy.timeout(saga.step)
        decision.note("operator_retry", step=str(saga.step))
        decision.send(*_step_commands(saga, saga.step))
        return decision
    raise OperatorActionRefused(
        "nothing_to_retry", f"order {saga.order_id} is {saga.status} and waits on nothing"
    )


def _resume(saga: OrderSaga, now: datetime, policy: SagaPolicy, decision: Decision) -> None:
    assert saga.parked_from is not None
    status, step, reasons = saga.parked_from, saga.parked_step, saga.attention_reasons
    _unpark(saga)
    _set_status(saga, status, decision)
    uncaptured = [
        shipment
        for f in saga.fulfilments.values()
        for shipment in f.shipments.values()
        if shipment.awaits_capture
    ]
    decision.note(
        "operator_retry",
        resumed=str(status),
        step=str(step) if step else None,
        captures=[shipment.shipment_id for shipment in uncaptured],
        reasons=list(reasons),
    )
    if step is not None:
        saga.step = step
        saga.step_started_at = now
        saga.attempt = 1
        saga.deadline_at = now + policy.timeout(step)
        decision.send(*_step_commands(saga, step))
    if status in {Status.FULFILLING, Status.PARTIALLY_SHIPPED}:
        saga.sla_deadline_at, saga.sla_notified = now + policy.ship_sla, False
    elif status == Status.SHIPPED:
        saga.sla_deadline_at, saga.sla_notified = now + policy.delivery_sla, False
    _resend_captures(saga, decision)
    _complete_if_done(saga, decision)


def operator_compensate(saga: OrderSaga, now: datetime, policy: SagaPolicy) -> Decision:
    """Undo what was done so far and cancel. Once part of the order shipped, the same cancel
    of the unshipped rest as a customer's (what shipped stays shipped and captured; a parked
    order's unconfirmed captures are sent again, since nothing else would). Refused once
    everything shipped."""
    if saga.status in TERMINAL or saga.status == Status.CANCELLING:
        raise OperatorActionRefused(
            "order_closed", f"order {saga.order_id} is {saga.status}; nothing to compensate"
        )
    underneath = saga.parked_from if saga.status == Status.NEEDS_ATTENTION else saga.status
    if underneath in SHIPPED_OR_LATER - {Status.PARTIALLY_SHIPPED} or (
        shipped_anything(saga) and underneath not in {Status.PARTIALLY_SHIPPED, Status.CANCELLING}
    ):
        raise OperatorActionRefused(
            "already_shipped",
            f"order {saga.order_id} has shipped goods; refund them through a return",
        )
    decision = Decision()
    decision.note("operator_compensate", status=str(saga.status))
    if saga.status == Status.NEEDS_ATTENTION and saga.parked_from in TERMINAL:
        # The facts that arrived while parked already ended the saga underneath.
        _resume(saga, now, policy, decision)
        return decision
    if saga.parked_step == Step.COMPENSATE and saga.pending_compensations:
        # Parked because compensations were not confirmed: send the same ones again.
        _set_status(saga, Status.CANCELLING, decision)
        saga.step = Step.COMPENSATE
        _unpark(saga)
        _send_compensations(saga, now, policy, decision)
        _resend_captures(saga, decision)
        return decision
    if saga.step is None and saga.parked_step is not None:
        saga.step = saga.parked_step  # undo what that unanswered step may have done
    _unpark(saga)
    _resend_captures(saga, decision)
    _begin_cancel(saga, "cancelled by an operator", now, policy, decision)
    return decision


def _resend_captures(saga: OrderSaga, decision: Decision) -> None:
    """Every shipment's capture not confirmed yet, again (same command, same key)."""
    if saga.paid_externally:
        return
    for fulfilment in saga.fulfilments.values():
        for shipment in fulfilment.shipments.values():
            if shipment.awaits_capture:
                shipment.capture_failed = False
                decision.send(_capture(saga, fulfilment, shipment))


def _unpark(saga: OrderSaga) -> None:
    saga.parked_from = saga.parked_step = None
    saga.attention_reasons = ()


# --- holds -------------------------------------------------------------------------------------

_FULFILLING = frozenset(
    {
        Status.CONFIRMED,
        Status.FULFILLING,
        Status.PARTIALLY_SHIPPED,
        Status.SHIPPED,
        Status.DELIVERED,
    }
)


def place_hold(
    saga: OrderSaga, reason: str, note: str | None, by: str, now: datetime, policy: SagaPolicy
) -> Decision:
    """Hold the order from fulfilment. Before the order is confirmed the saga goes on and stops
    in ON_HOLD where it would send CreateFulfilment. At fulfilment with units still to ship
    (CONFIRMED, FULFILLING, PARTIALLY_SHIPPED) it sends HoldFulfilments: the floor stops what
    has not shipped. Refused once everything shipped (`already_fulfilling`), when it is closed
    or being cancelled (`order_closed`) or held already (`already_on_hold`)."""
    underneath = saga.parked_from if saga.status == Status.NEEDS_ATTENTION else saga.status
    if underneath in TERMINAL or underneath == Status.CANCELLING or saga.cancel_requested:
        raise OperatorActionRefused(
            "order_closed", f"order {saga.order_id} is {saga.status} (or being cancelled)"
        )
    at_fulfilment = underneath in _FULFILLING or bool(saga.fulfilments)
    if at_fulfilment and underneath not in _UNSHIPPED_AT_FULFILMENT:
        raise OperatorActionRefused(
            "already_fulfilling",
            f"order {saga.order_id} went to fulfilment and has nothing left to ship"
            f" ({saga.status}): there is nothing to hold",
        )
    if saga.hold is not None:
        raise OperatorActionRefused(
            "already_on_hold",
            f"order {saga.order_id} is on hold already ({saga.hold.reason}, by {saga.hold.by})",
        )
    decision = Decision()
    _place(saga, reason, note, by, now, policy)
    decision.note("hold_placed", reason=reason, note=note, by=by, status=str(saga.status))
    if at_fulfilment:
        _hold_fulfilments(saga, reason, decision)
    return decision


_UNSHIPPED_AT_FULFILMENT = frozenset(
    {Status.CONFIRMED, Status.FULFILLING, Status.PARTIALLY_SHIPPED}
)


def _hold_fulfilments(saga: OrderSaga, reason: str, decision: Decision) -> None:
    """The order is at fulfilment: the floor stops its unshipped fulfilments (facts keep
    applying: a parcel that had left already is shipped as usual)."""
    assert saga.hold is not None
    saga.hold.fulfilments_held = True
    decision.send(HoldFulfilments(order_id=saga.order_id, reason=reason))


def release_hold(
    saga: OrderSaga, by: str, note: str | None, now: datetime, policy: SagaPolicy
) -> Decision:
    """Take the hold off (a review's approval): from ON_HOLD the order goes to fulfilment;
    held earlier, the saga confirms it when it gets there. 409 `not_on_hold`."""
    hold = _held(saga)
    decision = Decision()
    _note_release(saga, hold, "released", by, note, now, decision)
    saga.hold = None
    if hold.fulfilments_held:
        decision.send(ReleaseFulfilments(order_id=saga.order_id))
    if saga.status == Status.ON_HOLD:
        _confirm(saga, now, policy, decision)
    return decision


def reject_held(
    saga: OrderSaga, by: str, note: str | None, now: datetime, policy: SagaPolicy
) -> Decision:
    """A review's reject: the held order is cancelled, compensating as any cancel does (the
    authorisation voided, the stock released; from an earlier state when its step answers).
    The reason is `fraud_rejected` after a fraud review. 409 `not_on_hold`."""
    hold = _held(saga)
    decision = Decision()
    _note_release(saga, hold, "rejected", by, note, now, decision)
    reason = FRAUD_REJECTED if hold.reason == FRAUD_REVIEW else f"rejected on review: {hold.reason}"
    saga.hold = None
    if saga.step is not None:
        saga.cancel_requested = reason
        decision.note("cancel_requested", reason=reason, applied_when=str(saga.step))
        return decision
    _begin_cancel(saga, reason, now, policy, decision)
    return decision


def _held(saga: OrderSaga) -> SagaHold:
    if saga.hold is None:
        raise OperatorActionRefused("not_on_hold", f"order {saga.order_id} is not on hold")
    return saga.hold


def _note_release(
    saga: OrderSaga,
    hold: SagaHold,
    decided: str,
    by: str,
    note: str | None,
    now: datetime,
    decision: Decision,
) -> None:
    """The hold's end on the timeline; a fraud review's decision is noted as such (audit)."""
    held_s = round((now - hold.placed_at).total_seconds(), 3)
    decision.note(f"hold_{decided}", reason=hold.reason, by=by, note=note, held_s=held_s)
    if hold.reason == FRAUD_REVIEW:
        score = saga.risk.score if saga.risk is not None else None
        decision.note(
            "review_decision",
            decision="approve" if decided == "released" else "reject",
            by=by,
            at=now.isoformat(),
            score=score,
        )
