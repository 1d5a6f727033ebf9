"""Payment commands: AuthorizePayment, CapturePayment, VoidPayment, RefundPayment.

Each runs inside the consumer's transaction: lock the order, answer an idempotency key the gateway
already answered with the very answer given then, else decide with the domain rules, call the
gateway (timeouts retried with the same key), record the payment and the operation, and emit the
answer through the outbox. Refusals by the rules are recomputed when a command is re-sent (the
state they depend on only moves one way), so a compensation that found nothing to undo can still
undo a late authorisation under the same key.

3-D Secure: a gateway may answer AuthorizePayment with "the customer must act"; the payment is
recorded as `requires_action` and PaymentRequiresAction (client secret, action type) answered.
The gateway's webhook ends it (services/payment/webhooks.py) and replaces the key's answer with
the outcome; until then the command re-sent (any key) repeats PaymentRequiresAction.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from decimal import Decimal

from services.payment import domain, store
from services.payment.domain import OperationKind, Outcome, Payment, PaymentStatus, Reason
from services.payment.gateways.base import GatewayResult, GatewayTimeout, PaymentGateway
from services.payment.gateways.registry import GatewayRegistry
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
    PaymentRequiresAction,
    PaymentRisk,
    PaymentVoided,
)
from shared.envelope import Envelope, Event
from shared.platform.db import DbConnection
from shared.platform.handlers import HandlerRegistry
from shared.platform.outbox import UnitOfWork

_ANSWERS: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        PaymentAuthorized,
        PaymentRequiresAction,
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
        risk=PaymentRisk(level=payment.risk_level, score=payment.risk_score)
        if payment.risk_level
        else None,
    )


def _outcome(result: GatewayResult) -> Outcome:
    if result.customer_action is not None:
        return Outcome.REQUIRES_ACTION
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
    shipment_id: str | None = None,
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
            shipment_id=shipment_id,
            # A timeout is not an answer: the key stays open for a retry.
            answer_type=None if outcome is Outcome.TIMED_OUT else answer.TYPE,
            answer=None if outcome is Outcome.TIMED_OUT else answer.model_dump(mode="json"),
        ),
    )


class PaymentHandlers:
    def __init__(self, gateways: GatewayRegistry) -> None:
        self._gateways = gateways

    def registry(self) -> HandlerRegistry:
        registry = HandlerRegistry()
        registry.register(self.authorize, AuthorizePayment)
        registry.register(self.capture, CapturePayment)
        registry.register(self.void, VoidPayment)
        registry.register(self.refund, RefundPayment)
        return registry

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
            elif held.awaits_customer:
                uow.emit(await _waiting_answer(conn, held), key=order_id)
            else:
                uow.emit(_authorized_event(held), key=order_id)
            return

        refused = domain.check_authorization(command.amount, command.currency)
        if refused is not None:
            uow.emit(_declined(order_id, refused.reason), key=order_id)
            return

        # The gateway is chosen by method, channel and currency, and kept on the payment: its
        # captures, voids and refunds go to the same one.
        gateway_name = self._gateways.route(
            method=command.method,
            channel=command.channel,
            currency=domain.normalise_currency(command.currency),
        )
        # A timeout after every retry propagates: the consumer retries the message (same key),
        # then dead-letters it; the saga's deadline re-sends the command with the same key.
        result = await self._gateways.gateway(gateway_name).authorize(
            command.idempotency_key,
            command.amount,
            domain.normalise_currency(command.currency),
            command.token,
        )
        payment_id = str(uuid.uuid4())
        answer: Event
        if result.customer_action is not None and result.reference is not None:
            payment = domain.requiring_action(
                payment_id, order_id, command.amount, command.currency, result.reference
            )
            payment = replace(payment, gateway=gateway_name)
            answer = PaymentRequiresAction(
                order_id=order_id,
                payment_id=payment_id,
                client_secret=result.customer_action.client_secret,
                next_action=result.customer_action.next_action,
                gateway_reference=result.reference,
            )
        elif result.approved and result.reference is not None:
            payment = domain.authorized(
                payment_id, order_id, command.amount, command.currency, result.reference
            )
            risk = result.risk
            payment = replace(
                payment,
                gateway=gateway_name,
                risk_level=risk.level if risk else None,
                risk_score=risk.score if risk else None,
            )
            answer = _authorized_event(payment)
        else:
            code = result.decline_code or "declined"
            reason = result.reason or "declined by the payment gateway"
            payment = domain.declined(
                payment_id, order_id, command.amount, command.currency, code, reason
            )
            payment = replace(payment, gateway=gateway_name)
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
        # One capture per shipment; a parcel's id is repeated in the answer.
        await self._move_money(
            uow, command, fulfilment_id=command.fulfilment_id, shipment_id=command.shipment_id
        )

    async def void(self, uow: UnitOfWork, envelope: Envelope, command: VoidPayment) -> None:
        def not_voided(reason: str) -> PaymentVoided:
            return PaymentVoided(order_id=command.order_id, voided=False, reason=str(reason))

        def voided(payment: Payment) -> tuple[Payment, Event]:
            return domain.with_void(payment), PaymentVoided(
                order_id=command.order_id, voided=True, reason=command.reason
            )

        # Nothing to void is still an answer: the saga's compensation must hear back. An
        # authorisation that cannot be voided now (gateway timeout) lapses at the card network
        # on its own; the same command re-sent tries the gateway again with the same key.
        await self._gateway_operation(
            uow,
            _GatewayOperation(
                kind=OperationKind.VOID,
                command=command,
                amount=None,
                check=domain.check_void,
                call=lambda gateway, reference: gateway.void(command.idempotency_key, reference),
                approved=voided,
                refused=not_voided,
            ),
        )

    async def refund(self, uow: UnitOfWork, envelope: Envelope, command: RefundPayment) -> None:
        # On a gateway timeout the returns saga decides what to do; re-sent with the same key,
        # the gateway is asked again and answers for the refund it may already have made.
        await self._move_money(uow, command, return_id=command.return_id)

    async def _move_money(
        self, uow: UnitOfWork, command: CapturePayment | RefundPayment, **ids: str | None
    ) -> None:
        """A capture or a refund of `command.amount`: the same rules' shape, the same gateway
        call, answers of the same shape; `ids`: what the money moves for (a fulfilment and
        its shipment, a return), recorded and repeated in the answer."""
        move = _CAPTURE if isinstance(command, CapturePayment) else _REFUND

        def approved(payment: Payment) -> tuple[Payment, Event]:
            updated = move.apply(payment, command.amount)
            return updated, move.succeeded(
                order_id=command.order_id,
                amount=command.amount,
                currency=updated.currency,
                **{move.total: getattr(updated, move.total)},
                **ids,
            )

        def refused(reason: str) -> Event:
            return move.failed(order_id=command.order_id, reason=str(reason), **ids)

        operation = _GatewayOperation(
            kind=move.kind,
            command=command,
            amount=command.amount,
            check=lambda held: move.check(held, command.amount, command.currency),
            call=lambda gateway, reference: move.call(gateway)(
                command.idempotency_key, reference, command.amount
            ),
            approved=approved,
            refused=refused,
        )
        await self._gateway_operation(uow, operation, **ids)

    async def _gateway_operation(
        self,
        uow: UnitOfWork,
        op: _GatewayOperation,
        *,
        fulfilment_id: str | None = None,
        return_id: str | None = None,
        shipment_id: str | None = None,
    ) -> None:
        """Capture, void and refund: answer a key already answered as then; else check the
        rules, call the gateway, record the operation (a timeout leaves the key open) and
        answer."""
        conn, order_id, key = uow.conn, op.command.order_id, op.command.idempotency_key
        await store.lock_order(conn, order_id)
        earlier = await _earlier_answer(conn, key, op.kind, order_id, op.amount)
        if earlier is not None:
            uow.emit(earlier if isinstance(earlier, Event) else op.refused(earlier), key=order_id)
            return

        decision = op.check(await store.order_payment(conn, order_id))
        if isinstance(decision, domain.Refused):
            uow.emit(op.refused(decision.reason), key=order_id)
            return
        payment = decision.payment
        result: GatewayResult | None
        gateway = self._gateways.gateway(payment.gateway)
        try:
            result = await op.call(gateway, decision.gateway_reference)
        except GatewayTimeout:
            result, outcome = None, Outcome.TIMED_OUT
            answer = op.refused(Reason.GATEWAY_TIMEOUT)
        else:
            outcome = _outcome(result)
            if result.approved and await _already_recorded(conn, payment, op.kind, result):
                # A refund the provider's webhook reported first (our call had timed out):
                # counted once. Answered with the payment as it is.
                answer = op.approved(payment)[1]
            elif result.approved:
                updated, answer = op.approved(payment)
                await store.save_payment_state(conn, updated)
            else:
                answer = op.refused(result.decline_code or "declined")
        await _record(
            conn,
            payment,
            op.kind,
            key,
            op.amount if op.amount is not None else payment.amount,
            outcome,
            answer,
            result=result,
            fulfilment_id=fulfilment_id,
            return_id=return_id,
            shipment_id=shipment_id,
        )
        uow.emit(answer, key=order_id)


@dataclass(frozen=True)
class _GatewayOperation:
    """One capture, void or refund command, as the shared path needs it."""

    kind: OperationKind
    command: CapturePayment | VoidPayment | RefundPayment
    # What the command asks for (None: the whole authorisation, a void).
    amount: Decimal | None
    check: Callable[[Payment | None], domain.Allowed | domain.Refused]
    # The gateway call, on the payment's gateway, with the reference of its authorisation.
    call: Callable[[PaymentGateway, str], Awaitable[GatewayResult]]
    # Approved by the gateway: the payment's new state and the answer.
    approved: Callable[[Payment], tuple[Payment, Event]]
    # The answer when the rules refuse, the gateway declines or times out.
    refused: Callable[[str], Event]


@dataclass(frozen=True)
class _MoneyMovement:
    """What differs between a capture and a refund."""

    kind: OperationKind
    check: Callable[[Payment | None, Decimal, str], domain.Allowed | domain.Refused]
    apply: Callable[[Payment, Decimal], Payment]
    succeeded: type[PaymentCaptured] | type[PaymentRefunded]
    failed: type[PaymentCaptureFailed] | type[PaymentRefundFailed]
    # The payment's total the movement changes, also a field of the answer.
    total: str

    def call(
        self, gateway: PaymentGateway
    ) -> Callable[[str, str, Decimal], Awaitable[GatewayResult]]:
        return gateway.capture if self.kind is OperationKind.CAPTURE else gateway.refund


_CAPTURE = _MoneyMovement(
    OperationKind.CAPTURE,
    domain.check_capture,
    domain.with_capture,
    PaymentCaptured,
    PaymentCaptureFailed,
    "captured_total",
)
_REFUND = _MoneyMovement(
    OperationKind.REFUND,
    domain.check_refund,
    domain.with_refund,
    PaymentRefunded,
    PaymentRefundFailed,
    "refunded_total",
)


async def _already_recorded(
    conn: DbConnection, payment: Payment, kind: OperationKind, result: GatewayResult
) -> bool:
    """A refund whose provider reference is already on the payment (reported by webhook)."""
    if kind is not OperationKind.REFUND or result.reference is None:
        return False
    return await store.refund_recorded(conn, payment.payment_id, result.reference)


async def _waiting_answer(conn: DbConnection, payment: Payment) -> Event:
    """PaymentRequiresAction again, as the payment's authorisation answered it."""
    stored = await store.authorization_answer(conn, payment.payment_id)
    assert stored is not None, f"payment {payment.payment_id} waits without its answer"
    return _ANSWERS[stored.answer_type].model_validate(stored.answer)


def _declined(order_id: str, reason: Reason) -> PaymentDeclined:
    return PaymentDeclined(
        order_id=order_id, reason=_DECLINE_TEXT.get(reason, reason.value), decline_code=reason.value
    )
