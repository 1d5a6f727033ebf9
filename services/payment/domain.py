"""Payment rules, free of I/O: what may be authorised, captured, voided and refunded, and what a
payment looks like afterwards.

One payment is one authorisation attempt for an order. At most one attempt per order holds money
(is not declined); its totals only grow and always keep

    0 <= refunded_total <= captured_total <= amount (authorised)

Status follows from the totals:

    authorized --capture part--> partially_captured --capture rest--> captured
    authorized / partially_captured / captured --refund part--> partially_refunded
    ... --refund all that was captured--> refunded
    authorized (nothing captured) --void--> voided
    declined and voided are final.

3-D Secure: the gateway may answer an authorisation with "the customer must act first"
(`requires_action`). The payment then holds the provider's reference but no money yet; the
provider's webhook ends it as authorized (as if approved then) or declined. Until then it may be
voided (the provider's attempt cancelled) but not captured or refunded.

Refusals are stable reason codes (`Reason`), answered as failure events, never exceptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal(0)
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class PaymentStatus(StrEnum):
    REQUIRES_ACTION = "requires_action"
    AUTHORIZED = "authorized"
    DECLINED = "declined"
    VOIDED = "voided"
    PARTIALLY_CAPTURED = "partially_captured"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class OperationKind(StrEnum):
    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"


class Outcome(StrEnum):
    """How a gateway operation ended. A timeout is ambiguous: the gateway may have done it."""

    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    TIMED_OUT = "timed_out"
    REQUIRES_ACTION = "requires_action"  # the customer must act (3-D Secure); a webhook ends it


class Reason(StrEnum):
    INVALID_AMOUNT = "invalid_amount"
    INVALID_CURRENCY = "invalid_currency"
    CURRENCY_MISMATCH = "currency_mismatch"
    NO_AUTHORIZATION = "no_authorization"
    PAYMENT_DECLINED = "payment_declined"
    AUTHORIZATION_VOIDED = "authorization_voided"
    ALREADY_VOIDED = "already_voided"
    ALREADY_CAPTURED = "already_captured"
    EXCEEDS_AUTHORIZED = "exceeds_authorized"
    NOTHING_CAPTURED = "nothing_captured"
    EXCEEDS_REFUNDABLE = "exceeds_refundable"
    GATEWAY_TIMEOUT = "gateway_timeout"
    IDEMPOTENCY_KEY_CONFLICT = "idempotency_key_conflict"


class PaymentRuleViolated(Exception):
    """A change was applied that the rules refuse: a bug in the caller, never a business outcome."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(f"payment rule violated: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Payment:
    payment_id: str
    order_id: str
    amount: Decimal
    currency: str
    status: PaymentStatus
    gateway_reference: str | None = None
    captured_total: Decimal = ZERO
    refunded_total: Decimal = ZERO
    decline_code: str | None = None
    decline_reason: str | None = None
    # The gateway that authorised it (registry name): captures, voids, refunds go there too.
    gateway: str = "test"
    # The gateway's fraud verdict on the authorisation (Stripe Radar), if it gave one.
    risk_level: str | None = None
    risk_score: int | None = None

    @property
    def holds_authorization(self) -> bool:
        return self.status is not PaymentStatus.DECLINED

    @property
    def awaits_customer(self) -> bool:
        return self.status is PaymentStatus.REQUIRES_ACTION

    @property
    def capturable(self) -> Decimal:
        if self.status in (
            PaymentStatus.DECLINED,
            PaymentStatus.VOIDED,
            PaymentStatus.REQUIRES_ACTION,
        ):
            return ZERO
        return self.amount - self.captured_total

    @property
    def refundable(self) -> Decimal:
        return self.captured_total - self.refunded_total


@dataclass(frozen=True)
class Refused:
    reason: Reason


@dataclass(frozen=True)
class Allowed:
    """The payment may go to the gateway, against this authorisation reference."""

    payment: Payment
    gateway_reference: str


def normalise_currency(currency: str) -> str:
    return currency.strip().upper()


def same_currency(a: str, b: str) -> bool:
    return normalise_currency(a) == normalise_currency(b)


def status_for(amount: Decimal, captured_total: Decimal, refunded_total: Decimal) -> PaymentStatus:
    """The status of a payment holding an authorisation, from its totals."""
    if refunded_total > ZERO:
        if refunded_total == captured_total:
            return PaymentStatus.REFUNDED
        return PaymentStatus.PARTIALLY_REFUNDED
    if captured_total == ZERO:
        return PaymentStatus.AUTHORIZED
    if captured_total < amount:
        return PaymentStatus.PARTIALLY_CAPTURED
    return PaymentStatus.CAPTURED


# --- authorise ------------------------------------------------------------------------------


def check_authorization(amount: Decimal, currency: str) -> Refused | None:
    """Refuse what no gateway should be asked for."""
    if not amount.is_finite() or amount <= ZERO:
        return Refused(Reason.INVALID_AMOUNT)
    if not _CURRENCY.match(normalise_currency(currency)):
        return Refused(Reason.INVALID_CURRENCY)
    return None


def authorized(
    payment_id: str, order_id: str, amount: Decimal, currency: str, gateway_reference: str
) -> Payment:
    return replace(
        _attempt(payment_id, order_id, amount, currency, PaymentStatus.AUTHORIZED),
        gateway_reference=gateway_reference,
    )


def requiring_action(
    payment_id: str, order_id: str, amount: Decimal, currency: str, gateway_reference: str
) -> Payment:
    """An authorisation the customer must complete (3-D Secure) before it holds money."""
    return replace(
        _attempt(payment_id, order_id, amount, currency, PaymentStatus.REQUIRES_ACTION),
        gateway_reference=gateway_reference,
    )


def customer_completed(payment: Payment) -> Payment | None:
    """The customer completed the action: the payment is authorised (None: it was not waiting,
    e.g. voided meanwhile or completed by an earlier event)."""
    if not payment.awaits_customer:
        return None
    return replace(payment, status=PaymentStatus.AUTHORIZED)


def customer_failed(payment: Payment, decline_code: str, decline_reason: str) -> Payment | None:
    """The action failed or the attempt was cancelled: the payment is declined (None: it was
    not waiting)."""
    if not payment.awaits_customer:
        return None
    return replace(
        payment,
        status=PaymentStatus.DECLINED,
        decline_code=decline_code,
        decline_reason=decline_reason,
    )


def declined(
    payment_id: str,
    order_id: str,
    amount: Decimal,
    currency: str,
    decline_code: str,
    decline_reason: str,
) -> Payment:
    return replace(
        _attempt(payment_id, order_id, amount, currency, PaymentStatus.DECLINED),
        decline_code=decline_code,
        decline_reason=decline_reason,
    )


def _attempt(
    payment_id: str, order_id: str, amount: Decimal, currency: str, status: PaymentStatus
) -> Payment:
    """A new authorisation attempt, before the gateway's answer is added."""
    return Payment(
        payment_id=payment_id,
        order_id=order_id,
        amount=amount,
        currency=normalise_currency(currency),
        status=status,
    )


# --- capture --------------------------------------------------------------------------------


def _authorization_of(payment: Payment | None, *, if_voided: Reason | None) -> Allowed | Refused:
    """The payment's authorisation, refused with `if_voided` when it was voided."""
    if payment is None:
        return Refused(Reason.NO_AUTHORIZATION)
    if payment.status is PaymentStatus.DECLINED:
        return Refused(Reason.PAYMENT_DECLINED)
    if payment.gateway_reference is None:
        return Refused(Reason.NO_AUTHORIZATION)
    if if_voided is not None and payment.status is PaymentStatus.VOIDED:
        return Refused(if_voided)
    return Allowed(payment, payment.gateway_reference)


def _amount_against(
    payment: Payment | None, amount: Decimal, currency: str, *, if_voided: Reason | None
) -> Allowed | Refused:
    """An amount in the authorisation's currency, positive, against its authorisation."""
    found = _authorization_of(payment, if_voided=if_voided)
    if isinstance(found, Refused):
        return found
    if found.payment.awaits_customer:
        return Refused(Reason.NO_AUTHORIZATION)  # nothing authorised until the customer acts
    if not same_currency(currency, found.payment.currency):
        return Refused(Reason.CURRENCY_MISMATCH)
    if not amount.is_finite() or amount <= ZERO:
        return Refused(Reason.INVALID_AMOUNT)
    return found


def _allowed(decision: Allowed | Refused) -> Payment:
    if isinstance(decision, Refused):
        raise PaymentRuleViolated(decision.reason)
    return decision.payment


def _with_totals(payment: Payment, captured_total: Decimal, refunded_total: Decimal) -> Payment:
    return replace(
        payment,
        captured_total=captured_total,
        refunded_total=refunded_total,
        status=status_for(payment.amount, captured_total, refunded_total),
    )


def check_capture(payment: Payment | None, amount: Decimal, currency: str) -> Allowed | Refused:
    """Capture only against a live authorisation, and never beyond what it authorised."""
    found = _amount_against(payment, amount, currency, if_voided=Reason.AUTHORIZATION_VOIDED)
    if isinstance(found, Allowed) and amount > found.payment.capturable:
        return Refused(Reason.EXCEEDS_AUTHORIZED)
    return found


def with_capture(payment: Payment, amount: Decimal) -> Payment:
    held = _allowed(check_capture(payment, amount, payment.currency))
    return _with_totals(held, held.captured_total + amount, held.refunded_total)


# --- void -----------------------------------------------------------------------------------


def check_void(payment: Payment | None) -> Allowed | Refused:
    """Void only an authorisation nothing was captured from; a refund undoes a capture."""
    found = _authorization_of(payment, if_voided=Reason.ALREADY_VOIDED)
    if isinstance(found, Allowed) and found.payment.captured_total > ZERO:
        return Refused(Reason.ALREADY_CAPTURED)
    return found


def with_void(payment: Payment) -> Payment:
    return replace(_allowed(check_void(payment)), status=PaymentStatus.VOIDED)


# --- refund ---------------------------------------------------------------------------------


def check_refund(payment: Payment | None, amount: Decimal, currency: str) -> Allowed | Refused:
    """Refund only money that was captured and not refunded yet."""
    found = _amount_against(payment, amount, currency, if_voided=None)
    if isinstance(found, Refused):
        return found
    if found.payment.captured_total == ZERO:
        return Refused(Reason.NOTHING_CAPTURED)
    if amount > found.payment.refundable:
        return Refused(Reason.EXCEEDS_REFUNDABLE)
    return found


def with_refund(payment: Payment, amount: Decimal) -> Payment:
    held = _allowed(check_refund(payment, amount, payment.currency))
    return _with_totals(held, held.captured_total, held.refunded_total + amount)


# --- idempotency ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AnsweredOperation:
    """What an idempotency key was already used for."""

    kind: OperationKind
    order_id: str
    amount: Decimal


def is_same_request(
    answered: AnsweredOperation, kind: OperationKind, order_id: str, amount: Decimal | None
) -> bool:
    """A key re-sent for the same operation gets the same answer; reused for another, a conflict."""
    if answered.kind is not kind or answered.order_id != order_id:
        return False
    return amount is None or answered.amount == amount
