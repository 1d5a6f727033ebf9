"""Replacement orders of exchanges, created on returns' `CreateReplacementOrder`.

The returns saga asks for a replacement once the returned goods were received. The replacement
is an order like any other (the same path as the native API: canonical order, pricing, saga,
stored, saga started: it reserves stock and goes through the order saga), shipped to the
original order's customer and address, with free shipping and no promotion. It is paid by the
return's credit, so it takes no payment of its own (`paid_externally`, method `return_credit`):
returns refunds the credit minus the replacement's total, or records what the customer still
owes when the replacement costs more.

Idempotent per return id: `replacement_orders.return_id` is unique, and a re-sent command is
answered with the same order (and its current status).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.order_intake import store
from services.order_intake.domain import saga as saga_domain
from services.order_intake.domain.order import (
    CanonicalLine,
    CanonicalOrder,
    new_order_id,
    new_saga,
    price,
)
from services.order_intake.domain.pricing import PricingError
from services.order_intake.domain.saga import SagaPolicy, Status
from services.order_intake.handlers import now, persist
from shared.contracts.common import Address, Customer
from shared.contracts.order_intake import ReplacementOrderCreated, ReplacementOrderRefused
from shared.contracts.returns import CreateReplacementOrder
from shared.envelope import Envelope
from shared.platform.consumer import Handler
from shared.platform.outbox import UnitOfWork

PAYMENT_METHOD = "return_credit"


def replacement_order(original: dict[str, Any], command: CreateReplacementOrder) -> CanonicalOrder:
    return CanonicalOrder(
        channel=original["channel"],
        customer=Customer.model_validate(original["customer"]),
        shipping_address=Address.model_validate(original["shipping_address"]),
        billing_address=Address.model_validate(original["billing_address"])
        if original["billing_address"]
        else None,
        currency=original["currency"],
        lines=tuple(
            CanonicalLine(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)
            for line in command.lines
        ),
        payment_method=PAYMENT_METHOD,
        paid_externally=True,
        shipping_method=original["shipping_method"] or "standard",
        shipping_override=Decimal(0),
    )


def replacement_handlers(policy: SagaPolicy) -> dict[str, Handler]:
    async def create_replacement_order(
        uow: UnitOfWork, envelope: Envelope, command: CreateReplacementOrder
    ) -> None:
        conn = uow.conn
        await store.lock_replacement(conn, command.return_id)
        existing = await store.replacement_for_return(conn, command.return_id)
        if existing is not None:
            saga = await store.load_saga(conn, existing, lock=False)
            assert saga is not None
            _answer(uow, command, saga)
            return
        original = await store.get_order(conn, command.original_order_id)
        if original is None:
            _refuse(uow, command, "order_not_found")
            return
        order = replacement_order(original, command)
        try:
            totals = price(order)
        except PricingError as exc:
            _refuse(uow, command, exc.code)
            return
        order_id = new_order_id()
        saga = new_saga(order_id, order, totals)
        decision = saga_domain.start(saga, now(), policy)
        decision.note(
            "replacement_of",
            return_id=command.return_id,
            original_order_id=command.original_order_id,
        )
        await store.insert_order(
            conn, order_id, order, totals, saga, command.model_dump(mode="json")
        )
        await store.insert_replacement(conn, order_id, command.return_id, command.original_order_id)
        # Before the order's own status events, on the same key: returns learns of it first.
        _answer(uow, command, saga)
        await persist(uow, saga, Status.RECEIVED, decision)

    return {CreateReplacementOrder.TYPE: create_replacement_order}


def _answer(uow: UnitOfWork, command: CreateReplacementOrder, saga: saga_domain.OrderSaga) -> None:
    uow.emit(
        ReplacementOrderCreated(
            return_id=command.return_id,
            order_id=saga.order_id,
            original_order_id=command.original_order_id,
            status=saga.status.value,
            currency=saga.currency,
            total=saga.total,
        ),
        key=saga.order_id,
        correlation_id=command.return_id,
    )


def _refuse(uow: UnitOfWork, command: CreateReplacementOrder, reason: str) -> None:
    uow.emit(
        ReplacementOrderRefused(
            return_id=command.return_id,
            original_order_id=command.original_order_id,
            reason=reason,
        ),
        key=command.original_order_id,
        correlation_id=command.return_id,
    )
