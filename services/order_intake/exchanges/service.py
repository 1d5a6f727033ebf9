"""Exchanges' service: replacement orders, created on returns' `CreateReplacementOrder`, and the
returns of an order kept from `ReturnStatusChanged`.

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

from services.order_intake.domain.order import CanonicalLine, CanonicalOrder, price
from services.order_intake.domain.pricing import PricingError
from services.order_intake.domain.saga import OrderSaga, SagaPolicy, Status
from services.order_intake.exchanges import store
from services.order_intake.orders import service as order_service
from services.order_intake.orders import store as order_store
from services.order_intake.orders.saga_runner import persist
from shared.contracts.common import Address, Customer
from shared.contracts.order_intake import ReplacementOrderCreated, ReplacementOrderRefused
from shared.contracts.returns import CreateReplacementOrder, ReturnStatusChanged
from shared.envelope import Contract
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


async def create_replacement_order(
    uow: UnitOfWork, command: CreateReplacementOrder, policy: SagaPolicy
) -> None:
    """The return's replacement order, stored with its saga started (or the one already
    created for this return), answered with `ReplacementOrderCreated`; or
    `ReplacementOrderRefused` naming why."""
    conn = uow.conn
    await store.lock_replacement(conn, command.return_id)
    existing = await store.replacement_for_return(conn, command.return_id)
    if existing is not None:
        saga = await order_store.load_saga(conn, existing, lock=False)
        assert saga is not None
        _reply(uow, command, _created(command, saga), key=saga.order_id)
        return
    original = await order_store.get_order(conn, command.original_order_id)
    if original is None:
        _refuse(uow, command, "order_not_found")
        return
    order = replacement_order(original, command)
    try:
        totals = price(order)
    except PricingError as exc:
        _refuse(uow, command, exc.code)
        return
    saga, decision = order_service.new_order_saga(order, totals, policy)
    decision.note(
        "replacement_of",
        return_id=command.return_id,
        original_order_id=command.original_order_id,
    )
    await order_store.insert_order(
        conn, saga.order_id, order, totals, saga, command.model_dump(mode="json")
    )
    await store.insert_replacement(
        conn, saga.order_id, command.return_id, command.original_order_id
    )
    # Before the order's own status events, on the same key: returns learns of it first.
    _reply(uow, command, _created(command, saga), key=saga.order_id)
    await persist(uow, saga, Status.RECEIVED, decision)


def _created(command: CreateReplacementOrder, saga: OrderSaga) -> ReplacementOrderCreated:
    return ReplacementOrderCreated(
        return_id=command.return_id,
        order_id=saga.order_id,
        original_order_id=command.original_order_id,
        status=saga.status.value,
        currency=saga.currency,
        total=saga.total,
    )


def _refuse(uow: UnitOfWork, command: CreateReplacementOrder, reason: str) -> None:
    refused = ReplacementOrderRefused(
        return_id=command.return_id, original_order_id=command.original_order_id, reason=reason
    )
    _reply(uow, command, refused, key=command.original_order_id)


def _reply(uow: UnitOfWork, command: CreateReplacementOrder, answer: Contract, key: str) -> None:
    uow.emit(answer, key=key, correlation_id=command.return_id)


async def record_return_status(uow: UnitOfWork, event: ReturnStatusChanged) -> None:
    """Keep the latest revision of one of the order's returns (for the order view)."""
    await store.upsert_order_return(
        uow.conn,
        {
            "return_id": event.return_id,
            "order_id": event.order_id,
            "revision": event.revision,
            "status": event.status,
            "currency": event.currency,
            "lines": [line.model_dump(mode="json") for line in event.lines],
            "received": [line.model_dump(mode="json") for line in event.received],
            "refund_amount": event.refund_amount,
            "refund_status": event.refund_status,
            "refunded_amount": event.refunded_amount,
            "amount_due": event.amount_due,
            "replacement_order_id": event.replacement_order_id,
            "changed_at": event.at,
        },
    )
