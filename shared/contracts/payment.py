"""Produced by payment."""

from __future__ import annotations

from decimal import Decimal

from shared.contracts.common import OrderAmount, Value
from shared.envelope import Event, register
from shared.topics import PAYMENT_EVENTS


class PaymentRisk(Value):
    """The gateway's own fraud verdict on a payment (e.g. Stripe Radar's risk level and score).
    `level`: `normal`, `elevated` or `highest` (a gateway maps its own levels onto these)."""

    level: str
    score: int | None = None


@register
class PaymentAuthorized(Event):
    TYPE = "PaymentAuthorized"
    TOPIC = PAYMENT_EVENTS
    order_id: str
    payment_id: str
    amount: Decimal
    currency: str
    gateway_reference: str
    # The gateway's risk verdict, when it gives one (order-intake's fraud rule `provider_risk`).
    risk: PaymentRisk | None = None


@register
class PaymentRequiresAction(Event):
    """The authorisation waits for the customer (3-D Secure): the shop front completes it with
    the gateway's SDK and `client_secret`; the outcome follows as PaymentAuthorized or
    PaymentDeclined (from the gateway's webhook). `next_action`: the gateway's action type."""

    TYPE = "PaymentRequiresAction"
    TOPIC = PAYMENT_EVENTS
    order_id: str
    payment_id: str
    client_secret: str
    next_action: str
    gateway_reference: str | None = None


@register
class PaymentDeclined(Event):
    TYPE = "PaymentDeclined"
    TOPIC = PAYMENT_EVENTS
    order_id: str
    reason: str
    decline_code: str


@register
class PaymentCaptured(Event):
    TYPE = "PaymentCaptured"
    TOPIC = PAYMENT_EVENTS
    order_id: str
    fulfilment_id: str
    amount: Decimal
    currency: str
    captured_total: Decimal
    # The CapturePayment's shipment (absent: the whole fulfilment).
    shipment_id: str | None = None


@register
class PaymentCaptureFailed(Event):
    TYPE = "PaymentCaptureFailed"
    TOPIC = PAYMENT_EVENTS
    order_id: str
    fulfilment_id: str
    reason: str
    shipment_id: str | None = None


@register
class PaymentVoided(Event):
    TYPE = "PaymentVoided"
    TOPIC = PAYMENT_EVENTS
    order_id: str
    voided: bool
    reason: str


@register
class PaymentRefunded(Event, OrderAmount):
    TYPE = "PaymentRefunded"
    TOPIC = PAYMENT_EVENTS
    refunded_total: Decimal
    return_id: str | None = None


@register
class PaymentRefundFailed(Event):
    TYPE = "PaymentRefundFailed"
    TOPIC = PAYMENT_EVENTS
    order_id: str
    reason: str
    return_id: str | None = None


@register
class PaymentRefundedExternally(Event):
    """Money refunded at the gateway without a RefundPayment (e.g. in Stripe's dashboard): now
    recorded on the payment."""

    TYPE = "PaymentRefundedExternally"
    TOPIC = PAYMENT_EVENTS
    order_id: str
    payment_id: str
    amount: Decimal
    currency: str
    refunded_total: Decimal
    gateway: str
    gateway_refund_id: str


@register
class PaymentDisputed(Event):
    """The customer disputed the payment with their bank (a chargeback was opened)."""

    TYPE = "PaymentDisputed"
    TOPIC = PAYMENT_EVENTS
    order_id: str
    payment_id: str
    dispute_id: str
    amount: Decimal
    currency: str
    reason: str
    gateway: str
