"""Payment commands: AuthorizePayment, CapturePayment, VoidPayment, RefundPayment.

Each runs inside the consumer's transaction: lock the order, answer an idempotency key the gateway
already answered with the very answer given then, else decide with the domain rules, call the
gateway (timeouts retried with the same key), record the payment and the operation, and emit the
answer through the outbox. Refusals by the rules are recomputed when a command is re-sent (the
state they depend on only moves one way), so a compensation that found nothing to undo can still
undo a late authorisation under the same key.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from services.payment import domain, store
from services.payment.domain import OperationKind, Outcome, Payment, PaymentStatus, Reason
from services.payment.gateway import GatewayResult, GatewayTimeout, PaymentGateway
from shared.contracts.order_intake import (
    AuthorizePayment,
    CapturePayment,
    RefundPayment,
    VoidPayment,
)
from shared.contracts.payment import (
    PaymentAuthorized,
    PaymentCaptured,
    PaymentCaptureFailed,
    PaymentDeclined,
    PaymentRefunded,
    PaymentRefundFailed,
    PaymentVoided,
)
from shared.envelope import Envelope, Event
from shared.platform.consumer import Handler
from shared.platform.db import DbConnection
from shared.platform.outbox import UnitOfWork

_ANSWERS: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        PaymentAuthorized,
        PaymentDeclined,
        PaymentCaptured,
        PaymentCaptureFailed,
        PaymentVoided,
        PaymentRefunded,
        PaymentRefundFailed,
    )
}

_DECLINE_TEXT = {
    Reason.INVALID_AMOUNT: "the amount to authorise must be positive",
    Reason.INVALID_CURRENCY: "the currency must be an ISO 4217 code",
    Reason.AUTHORIZATION_VOIDED: "the order's authorisation was voided",
    Reason.IDEMPOTENCY_KEY_CONFLICT: "the idempotency key was already used for another operation",
}


async def _earlier_answer(
    conn: DbConnection,
    idempotency_key: str,
    kind: OperationKind,
    order_id: str,
    amount: Decimal | None,
) -> Event | Reason | None:
    """The answer already given under this key, a conflict when the key served another request,
    or None when the gateway never answered it."""
    stored = await store.answered_operation(conn, idempotency_key)
    if stored is None:
        return None
    if not domain.is_same_request(stored.operation, kind, order_id, amount):
        return Reason.IDEMPOTENCY_KEY_CONFLICT
    return _ANSWERS[stored.answer_type].model_validate(stored.answer)


def _authorized_event(payment: Payment) -> PaymentAuthorized:
    assert payment.gateway_reference is not None
    return PaymentAuthorized(
        order_id=payment.order_id,
        payment_id=payment.payment_id,
        amount=payment.amount,
        currency=payment.currency,
        gateway_reference=payment.gateway_reference,
    )


def _outcome(result: GatewayResult) -> Outcome:
    return Outcome.SUCCEEDED if result.approved else Outcome.DECLINED


async def _record(
    conn: DbConnection,
    payment: Payment,
    kind: OperationKind,
    idempotency_key: str,
    amount: Decimal,
    outcome: Outcome,
    answer: Event,
    *,
    result: GatewayResult | None = None,
    fulfilment_id: str | None = None,
    return_id: str | None = None,
) -> None:
    await store.insert_operation(
        conn,
        store.Operation(
            payment_id=payment.payment_id,
            order_id=payment.order_id,
            kind=kind,
            idempotency_key=idempotency_key,
            amount=amount,
            currency=payment.currency,
            outcome=outcome,
            gateway_reference=result.reference if result else None,
            decline_code=result.decline_code if result else None,
            reason=(result.reason if result else None)
            or (Reason.GATEWAY_TIMEOUT.value if outcome is Outcome.TIMED_OUT else None),
            fulfilment_id=fulfilment_id,
            return_id=return_id,
            # A timeout is not an answer: the key stays open for a retry.
            answer_type=None if outcome is Outcome.TIMED_OUT else answer.TYPE,
            answer=None if outcome is Outcome.TIMED_OUT else answer.model_dump(mode="json"),
        ),
    )


class PaymentHandlers:
    def __init__(self, gateway: PaymentGateway) -> None:
        self._gateway = gateway

    def by_type(self) -> dict[str, Handler]:
        return {
            AuthorizePayment.TYPE: self.authorize,
            CapturePayment.TYPE: self.capture,
            VoidPayment.TYPE: self.void,
            RefundPayment.TYPE: self.refund,
        }

    async def authorize(
        self, uow: UnitOfWork, envelope: Envelope, command: AuthorizePayment
    ) -> None:
        conn, order_id = uow.conn, command.order_id
        await store.lock_order(conn, order_id)
        earlier = await _earlier_answer(
            conn, command.idempotency_key, OperationKind.AUTHORIZE, order_id, command.amount
        )
        if isinstance(earlier, Event):
            uow.emit(earlier, key=order_id)
            return
        if earlier is not None:
            uow.emit(_declined(order_id, earlier), key=order_id)
            return

        held = await store.order_payment(conn, order_id)
        if held is not None and held.holds_authorization:
            # Never two authorisations for one order: a new key gets the one already held.
            if held.status is PaymentStatus.VOIDED:
                uow.emit(_declined(order_id, Reason.AUTHORIZATION_VOIDED), key=order_id)
            else:
                uow.emit(_authorized_event(held), key=order_id)
            return

        refused = domain.check_authorization(command.amount, command.currency)
        if refused is not None:
            uow.emit(_declined(order_id, refused.reason), key=order_id)
            return

        # A timeout after every retry propagates: the consumer retries the message (same key),
        # then dead-letters it; the saga's deadline re-sends the command with the same key.
        result = await self._gateway.authorize(
            command.idempotency_key,
            command.amount,
            domain.normalise_currency(command.currency),
            command.token,
        )
        payment_id = str(uuid.uuid4())
        answer: Event
        if result.approved and result.reference is not None:
            payment = domain.authorized(
                payment_id, order_id, command.amount, command.currency, result.reference
            )
            answer = _authorized_event(payment)
        else:
            code = result.decline_code or "declined"
            reason = result.reason or "declined by the payment gateway"
            payment = domain.declined(
                payment_id, order_id, command.amount, command.currency, code, reason
            )
            answer = PaymentDeclined(order_id=order_id, reason=reason, decline_code=code)
        await store.insert_payment(conn, payment, command.idempotency_key, command.method)
        await _record(
            conn,
            payment,
            OperationKind.AUTHORIZE,
            command.idempotency_key,
            command.amount,
            _outcome(result),
            answer,
            result=result,
        )
        uow.emit(answer, key=order_id)

    async def capture(self, uow: UnitOfWork, envelope: Envelope, command: CapturePayment) -> None:
        conn, order_id = uow.conn, command.order_id
        await store.lock_order(conn, order_id)

        def failed(reason: str) -> PaymentCaptureFailed:
            return PaymentCaptureFailed(
                order_id=order_id, fulfilment_id=command.fulfilment_id, reason=str(reason)
            )

        earlier = await _earlier_answer(
            conn, command.idempotency_key, OperationKind.CAPTURE, order_id, command.amount
        )
        if earlier is not None:
            uow.emit(earlier if isinstance(earlier, Event) else failed(earlier), key=order_id)
            return

        decision = domain.check_capture(
            await store.order_payment(conn, order_id), command.amount, command.currency
        )
        if isinstance(decision, domain.Refused):
            uow.emit(failed(decision.reason), key=order_id)
            return
        payment = decision.payment
        try:
            result = await self._gateway.capture(
                command.idempotency_key, decision.gateway_reference, command.amount
            )
        except GatewayTimeout:
            answer: Event = failed(Reason.GATEWAY_TIMEOUT)
            await _record(
                conn,
                payment,
                OperationKind.CAPTURE,
                command.idempotency_key,
                command.amount,
                Outcome.TIMED_OUT,
                answer,
                fulfilment_id=command.fulfilment_id,
            )
            uow.emit(answer, key=order_id)
            return
        if result.approved:
            updated = domain.with_capture(payment, command.amount)
            await store.save_payment_state(conn, updated)
            answer = PaymentCaptured(
                order_id=order_id,
                fulfilment_id=command.fulfilment_id,
                amount=command.amount,
                currency=payment.currency,
                captured_total=updated.captured_total,
            )
        else:
            answer = failed(result.decline_code or "declined")
        await _record(
            conn,
            payment,
            OperationKind.CAPTURE,
            command.idempotency_key,
            command.amount,
            _outcome(result),
            answer,
            result=result,
            fulfilment_id=command.fulfilment_id,
        )
        uow.emit(answer, key=order_id)

    async def void(self, uow: UnitOfWork, envelope: Envelope, command: VoidPayment) -> None:
        conn, order_id = uow.conn, command.order_id
        await store.lock_order(conn, order_id)

        def not_voided(reason: str) -> PaymentVoided:
            return PaymentVoided(order_id=order_id, voided=False, reason=str(reason))

        earlier = await _earlier_answer(
            conn, command.idempotency_key, OperationKind.VOID, order_id, None
        )
        if earlier is not None:
            uow.emit(earlier if isinstance(earlier, Event) else not_voided(earlier), key=order_id)
            return

        decision = domain.check_void(await store.order_payment(conn, order_id))
        if isinstance(decision, domain.Refused):
            # Nothing to void is still an answer: the saga's compensation must hear back.
            uow.emit(not_voided(decision.reason), key=order_id)
            return
        payment = decision.payment
        try:
            result = await self._gateway.void(command.idempotency_key, decision.gateway_reference)
        except GatewayTimeout:
            # An authorisation that cannot be voided now lapses at the card network on its own;
            # the same command re-sent tries the gateway again with the same key.
            answer: Event = not_voided(Reason.GATEWAY_TIMEOUT)
            await _record(
                conn,
                payment,
                OperationKind.VOID,
                command.idempotency_key,
                payment.amount,
                Outcome.TIMED_OUT,
                answer,
            )
            uow.emit(answer, key=order_id)
            return
        if result.approved:
            await store.save_payment_state(conn, domain.with_void(payment))
            answer = PaymentVoided(order_id=order_id, voided=True, reason=command.reason)
        else:
            answer = not_voided(result.decline_code or "declined")
        await _record(
            conn,
            payment,
            OperationKind.VOID,
            command.idempotency_key,
            payment.amount,
            _outcome(result),
            answer,
            result=result,
        )
        uow.emit(answer, key=order_id)

    async def refund(self, uow: UnitOfWork, envelope: Envelope, command: RefundPayment) -> None:
        conn, order_id = uow.conn, command.order_id
        await store.lock_order(conn, order_id)

        def failed(reason: str) -> PaymentRefundFailed:
            return PaymentRefundFailed(
                order_id=order_id, reason=str(reason), return_id=command.return_id
            )

        earlier = await _earlier_answer(
            conn, command.idempotency_key, OperationKind.REFUND, order_id, command.amount
        )
        if earlier is not None:
            uow.emit(earlier if isinstance(earlier, Event) else failed(earlier), key=order_id)
            return

        decision = domain.check_refund(
            await store.order_payment(conn, order_id), command.amount, command.currency
        )
        if isinstance(decision, domain.Refused):
            uow.emit(failed(decision.reason), key=order_id)
            return
        payment = decision.payment
        try:
            result = await self._gateway.refund(
                command.idempotency_key, decision.gateway_reference, command.amount
            )
        except GatewayTimeout:
            # The returns saga decides what to do; re-sent with the same key, the gateway is asked
            # again and answers for the refund it may already have made.
            answer: Event = failed(Reason.GATEWAY_TIMEOUT)
            await _record(
                conn,
                payment,
                OperationKind.REFUND,
                command.idempotency_key,
                command.amount,
                Outcome.TIMED_OUT,
                answer,
                return_id=command.return_id,
            )
            uow.emit(answer, key=order_id)
            return
        if result.approved:
            updated = domain.with_refund(payment, command.amount)
            await store.save_payment_state(conn, updated)
            answer = PaymentRefunded(
                order_id=order_id,
                amount=command.amount,
                currency=payment.currency,
                refunded_total=updated.refunded_total,
                return_id=command.return_id,
            )
        else:
            answer = failed(result.decline_code or "declined")
        await _record(
            conn,
            payment,
            OperationKind.REFUND,
            command.idempotency_key,
            command.amount,
            _outcome(result),
            answer,
            result=result,
            return_id=command.return_id,
        )
        uow.emit(answer, key=order_id)


def _declined(order_id: str, reason: Reason) -> PaymentDeclined:
    return PaymentDeclined(
        order_id=order_id, reason=_DECLINE_TEXT.get(reason, reason.value), decline_code=reason.value
    )
