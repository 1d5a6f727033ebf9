"""What a payment provider's webhook tells us, and recording it on the payment.

`stripe_actions` reads a verified Stripe event (a plain dict, no I/O) into actions:

- `refund.created` / `refund.updated` (a Refund object) and `charge.refunded` (a Charge, with
  its refunds where the event carries them): each refund that `succeeded` is a `RefundReported`;
- `charge.dispute.created` (a Dispute): a `DisputeOpened`;
- `payment_intent.amount_capturable_updated` (a PaymentIntent now `requires_capture`): the
  customer completed 3-D Secure, a `CustomerActionCompleted`;
- `payment_intent.payment_failed` / `payment_intent.canceled`: a `CustomerActionFailed` with our
  decline code (from `last_payment_error`, or `payment_intent_canceled`);
- anything else: nothing (acknowledged and ignored).

`record` applies them in the request's unit of work: the event id is remembered first (a
delivery repeated by the provider changes nothing), then per action: lock the order -> decide
-> save -> emit. A refund already on the payment (ours, made through RefundPayment, carries the
same provider refund id) is not counted twice; a refund or dispute of a payment that is not ours
is ignored. A 3-D Secure outcome applies only to a payment still waiting for the customer:
it becomes authorised (PaymentAuthorized) or declined (PaymentDeclined), once; the authorise
operation's stored answer becomes that outcome. On a payment no longer waiting (voided after the
order was cancelled, or already settled by an earlier event) it changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.payment import domain, store
from services.payment.domain import OperationKind, Outcome
from services.payment.gateways.amounts import from_minor_units
from services.payment.gateways.stripe_gateway import decline_for
from shared.contracts.payment import (
    PaymentAuthorized,
    PaymentDeclined,
    PaymentDisputed,
    PaymentRefundedExternally,
)
from shared.envelope import Event
from shared.platform.outbox import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefundReported:
    refund_id: str
    authorization_reference: str
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class DisputeOpened:
    dispute_id: str
    authorization_reference: str
    amount_minor: int
    currency: str
    reason: str
    status: str


@dataclass(frozen=True)
class CustomerActionCompleted:
    authorization_reference: str


@dataclass(frozen=True)
class CustomerActionFailed:
    authorization_reference: str
    decline_code: str
    reason: str


WebhookAction = RefundReported | DisputeOpened | CustomerActionCompleted | CustomerActionFailed


def _reference(value: Any) -> str | None:
    """A Stripe id, or the id of an expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _refund(refund: Mapping[str, Any], payment_intent: Any = None) -> RefundReported | None:
    reference = _reference(refund.get("payment_intent")) or _reference(payment_intent)
    if refund.get("status") != "succeeded" or reference is None or not refund.get("id"):
        return None
    return RefundReported(
        refund_id=str(refund["id"]),
        authorization_reference=reference,
        amount_minor=int(refund["amount"]),
        currency=str(refund["currency"]).upper(),
    )


def stripe_actions(event: Mapping[str, Any]) -> list[WebhookAction]:
    """The actions a verified Stripe event asks for (none: acknowledged and ignored)."""
    kind = event.get("type")
    obj = (event.get("data") or {}).get("object") or {}
    if kind in ("refund.created", "refund.updated"):
        found = _refund(obj)
        return [found] if found else []
    if kind == "charge.refunded":
        refunds = (obj.get("refunds") or {}).get("data") or []
        return [r for r in (_refund(x, obj.get("payment_intent")) for x in refunds) if r]
    if kind and str(kind).startswith("payment_intent."):
        return _intent_actions(str(kind), obj)
    if kind == "charge.dispute.created":
        reference = _reference(obj.get("payment_intent"))
        if reference is None or not obj.get("id"):
            return []
        return [
            DisputeOpened(
                dispute_id=str(obj["id"]),
                authorization_reference=reference,
                amount_minor=int(obj["amount"]),
                currency=str(obj["currency"]).upper(),
                reason=str(obj.get("reason") or "unknown"),
                status=str(obj.get("status") or "needs_response"),
            )
        ]
    return []


def _intent_actions(kind: str, intent: Mapping[str, Any]) -> list[WebhookAction]:
    reference = _reference(intent.get("id"))
    if reference is None:
        return []
    if kind == "payment_intent.amount_capturable_updated":
        if intent.get("status") != "requires_capture":
            return []
        return [CustomerActionCompleted(reference)]
    if kind == "payment_intent.payment_failed":
        error = intent.get("last_payment_error") or {}
        declined = decline_for(error.get("code"), error.get("decline_code"))
        return [
            CustomerActionFailed(
                reference,
                declined.decline_code or "card_declined",
                declined.reason or "declined",
            )
        ]
    if kind == "payment_intent.canceled":
        why = intent.get("cancellation_reason") or "canceled"
        return [
            CustomerActionFailed(
                reference, "payment_intent_canceled", f"Stripe cancelled the payment ({why})."
            )
        ]
    return []


@dataclass(frozen=True)
class Recorded:
    duplicate: bool
    applied: int


async def record(
    uow: UnitOfWork,
    gateway: str,
    event_id: str,
    event_type: str,
    actions: Sequence[WebhookAction],
) -> Recorded:
    conn = uow.conn
    if not await store.record_webhook_event(conn, gateway, event_id, event_type):
        return Recorded(duplicate=True, applied=0)
    applied = 0
    for action in actions:
        order_id = await store.order_of_reference(conn, gateway, action.authorization_reference)
        if order_id is None:
            log.info(
                "%s %s %s: no payment of ours is %s",
                gateway,
                event_type,
                event_id,
                action.authorization_reference,
            )
            continue
        await store.lock_order(conn, order_id)
        payment = await store.order_payment(conn, order_id)
        if payment is None or payment.gateway_reference != action.authorization_reference:
            continue
        if isinstance(action, RefundReported):
            applied += await _refund_reported(uow, payment, gateway, action)
        elif isinstance(action, DisputeOpened):
            applied += await _dispute_opened(uow, payment, gateway, action)
        else:
            applied += await _customer_action_ended(uow, payment, action)
    return Recorded(duplicate=False, applied=applied)


async def _refund_reported(
    uow: UnitOfWork, payment: domain.Payment, gateway: str, refund: RefundReported
) -> int:
    if await store.refund_recorded(uow.conn, payment.payment_id, refund.refund_id):
        return 0  # one of ours (RefundPayment), or reported by an earlier event
    amount = from_minor_units(refund.amount_minor, refund.currency)
    decision = domain.check_refund(payment, amount, refund.currency)
    if isinstance(decision, domain.Refused):
        log.error(
            "%s refund %s of %s %s on order %s does not fit the payment (%s): not recorded",
            gateway,
            refund.refund_id,
            amount,
            refund.currency,
            payment.order_id,
            decision.reason,
        )
        return 0
    updated = domain.with_refund(payment, amount)
    await store.save_payment_state(uow.conn, updated)
    answer = PaymentRefundedExternally(
        order_id=payment.order_id,
        payment_id=payment.payment_id,
        amount=amount,
        currency=updated.currency,
        refunded_total=updated.refunded_total,
        gateway=gateway,
        gateway_refund_id=refund.refund_id,
    )
    await store.insert_operation(
        uow.conn,
        store.Operation(
            payment_id=payment.payment_id,
            order_id=payment.order_id,
            kind=OperationKind.REFUND,
            idempotency_key=f"{gateway}:refund:{refund.refund_id}",
            amount=amount,
            currency=updated.currency,
            outcome=Outcome.SUCCEEDED,
            gateway_reference=refund.refund_id,
            reason="refunded at the gateway",
            answer_type=answer.TYPE,
            answer=answer.model_dump(mode="json"),
        ),
    )
    uow.emit(answer, key=payment.order_id, correlation_id=payment.order_id)
    return 1


async def _dispute_opened(
    uow: UnitOfWork, payment: domain.Payment, gateway: str, dispute: DisputeOpened
) -> int:
    amount = from_minor_units(dispute.amount_minor, dispute.currency)
    recorded = await store.insert_dispute(
        uow.conn,
        store.Dispute(
            dispute_id=dispute.dispute_id,
            payment_id=payment.payment_id,
            order_id=payment.order_id,
            gateway=gateway,
            amount=amount,
            currency=dispute.currency,
            reason=dispute.reason,
            status=dispute.status,
        ),
    )
    if not recorded:
        return 0
    uow.emit(
        PaymentDisputed(
            order_id=payment.order_id,
            payment_id=payment.payment_id,
            dispute_id=dispute.dispute_id,
            amount=amount,
            currency=dispute.currency,
            reason=dispute.reason,
            gateway=gateway,
        ),
        key=payment.order_id,
        correlation_id=payment.order_id,
    )
    return 1


async def _customer_action_ended(
    uow: UnitOfWork,
    payment: domain.Payment,
    action: CustomerActionCompleted | CustomerActionFailed,
) -> int:
    """The customer's 3-D Secure ended: the waiting payment authorised or declined, once."""
    answer: Event
    if isinstance(action, CustomerActionCompleted):
        updated = domain.customer_completed(payment)
        outcome = Outcome.SUCCEEDED
    else:
        updated = domain.customer_failed(payment, action.decline_code, action.reason)
        outcome = Outcome.DECLINED
    if updated is None:
        log.info(
            "order %s: payment %s is %s, not waiting for the customer; event ignored",
            payment.order_id,
            payment.payment_id,
            payment.status,
        )
        return 0
    if isinstance(action, CustomerActionCompleted):
        assert updated.gateway_reference is not None
        answer = PaymentAuthorized(
            order_id=updated.order_id,
            payment_id=updated.payment_id,
            amount=updated.amount,
            currency=updated.currency,
            gateway_reference=updated.gateway_reference,
        )
    else:
        answer = PaymentDeclined(
            order_id=updated.order_id, reason=action.reason, decline_code=action.decline_code
        )
    await store.save_customer_outcome(uow.conn, updated)
    await store.settle_authorization_answer(
        uow.conn, updated.payment_id, outcome, answer.TYPE, answer.model_dump(mode="json")
    )
    uow.emit(answer, key=updated.order_id, correlation_id=updated.order_id)
    return 1
