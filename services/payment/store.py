"""All SQL of the payment service: payments, payment operations, and the test gateway's ledger."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from services.payment.domain import (
    AnsweredOperation,
    OperationKind,
    Outcome,
    Payment,
    PaymentStatus,
)
from shared.platform.db import DbConnection

# --- payments -------------------------------------------------------------------------------


async def lock_order(conn: DbConnection, order_id: str) -> None:
    """Serialise one order's payment operations until the transaction ends (replicas too)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('payment:' || $1))", order_id)


_PAYMENT_COLUMNS = (
    "payment_id, order_id, amount, currency, status, gateway_reference, captured_total,"
    " refunded_total, decline_code, decline_reason, gateway, risk_level, risk_score"
)


def _payment(row: asyncpg.Record) -> Payment:
    return Payment(
        payment_id=str(row["payment_id"]),
        order_id=row["order_id"],
        amount=row["amount"],
        currency=row["currency"],
        status=PaymentStatus(row["status"]),
        gateway_reference=row["gateway_reference"],
        captured_total=row["captured_total"],
        refunded_total=row["refunded_total"],
        decline_code=row["decline_code"],
        decline_reason=row["decline_reason"],
        gateway=row["gateway"],
        risk_level=row["risk_level"],
        risk_score=row["risk_score"],
    )


async def order_payment(conn: DbConnection, order_id: str) -> Payment | None:
    """The order's payment: the one holding an authorisation, else the latest declined attempt."""
    row = await conn.fetchrow(
        f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE order_id = $1"
        " ORDER BY (status <> 'declined') DESC, created_at DESC LIMIT 1",
        order_id,
    )
    return _payment(row) if row is not None else None


async def insert_payment(
    conn: DbConnection, payment: Payment, idempotency_key: str, method: str | None
) -> None:
    await conn.execute(
        "INSERT INTO payments (payment_id, order_id, idempotency_key, amount, currency, method,"
        " status, gateway_reference, decline_code, decline_reason, captured_total, refunded_total,"
        " gateway, risk_level, risk_score)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        uuid.UUID(payment.payment_id),
        payment.order_id,
        idempotency_key,
        payment.amount,
        payment.currency,
        method,
        payment.status.value,
        payment.gateway_reference,
        payment.decline_code,
        payment.decline_reason,
        payment.captured_total,
        payment.refunded_total,
        payment.gateway,
        payment.risk_level,
        payment.risk_score,
    )


async def _update_payment(conn: DbConnection, payment: Payment, **columns: object) -> None:
    """Set these columns of the payment's row (and its updated_at)."""
    assignments = "".join(f"{column} = ${n}, " for n, column in enumerate(columns, start=2))
    await conn.execute(
        f"UPDATE payments SET {assignments}updated_at = clock_timestamp() WHERE payment_id = $1",
        uuid.UUID(payment.payment_id),
        *columns.values(),
    )


async def save_payment_state(conn: DbConnection, payment: Payment) -> None:
    await _update_payment(
        conn,
        payment,
        status=payment.status.value,
        captured_total=payment.captured_total,
        refunded_total=payment.refunded_total,
    )


async def save_customer_outcome(conn: DbConnection, payment: Payment) -> None:
    """A payment that waited for the customer, now authorised or declined."""
    await _update_payment(
        conn,
        payment,
        status=payment.status.value,
        decline_code=payment.decline_code,
        decline_reason=payment.decline_reason,
    )


# --- payment operations ---------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    payment_id: str
    order_id: str
    kind: OperationKind
    idempotency_key: str
    amount: Decimal
    currency: str
    outcome: Outcome
    gateway_reference: str | None = None
    decline_code: str | None = None
    reason: str | None = None
    fulfilment_id: str | None = None
    return_id: str | None = None
    shipment_id: str | None = None
    answer_type: str | None = None
    answer: dict[str, Any] | None = None


@dataclass(frozen=True)
class StoredAnswer:
    operation: AnsweredOperation
    answer_type: str
    answer: dict[str, Any]


async def insert_operation(conn: DbConnection, op: Operation) -> None:
    await conn.execute(
        "INSERT INTO payment_operations (payment_id, order_id, kind, idempotency_key, amount,"
        " currency, outcome, gateway_reference, decline_code, reason, fulfilment_id, return_id,"
        " answer_type, answer, shipment_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        uuid.UUID(op.payment_id),
        op.order_id,
        op.kind.value,
        op.idempotency_key,
        op.amount,
        op.currency,
        op.outcome.value,
        op.gateway_reference,
        op.decline_code,
        op.reason,
        op.fulfilment_id,
        op.return_id,
        op.answer_type,
        op.answer,
        op.shipment_id,
    )


async def _stored_answer(conn: DbConnection, where: str, value: object) -> StoredAnswer | None:
    """The answer of the operation `where` picks, if the gateway answered it (not a timeout)."""
    row = await conn.fetchrow(
        "SELECT kind, order_id, amount, answer_type, answer FROM payment_operations"
        f" WHERE {where} AND outcome <> 'timed_out'",
        value,
    )
    if row is None:
        return None
    return StoredAnswer(
        AnsweredOperation(OperationKind(row["kind"]), row["order_id"], row["amount"]),
        row["answer_type"],
        row["answer"],
    )


async def answered_operation(conn: DbConnection, idempotency_key: str) -> StoredAnswer | None:
    """The answer already given under this key, if the gateway answered it (not a timeout)."""
    return await _stored_answer(conn, "idempotency_key = $1", idempotency_key)


async def authorization_answer(conn: DbConnection, payment_id: str) -> StoredAnswer | None:
    """The answer the payment's authorisation gave (or, once the customer acted, its outcome)."""
    return await _stored_answer(
        conn, "payment_id = $1 AND kind = 'authorize'", uuid.UUID(payment_id)
    )


async def settle_authorization_answer(
    conn: DbConnection, payment_id: str, outcome: Outcome, answer_type: str, answer: dict[str, Any]
) -> None:
    """The authorisation that waited for the customer ended: its key now answers the outcome."""
    await conn.execute(
        "UPDATE payment_operations SET outcome = $2, answer_type = $3, answer = $4"
        " WHERE payment_id = $1 AND kind = 'authorize' AND outcome = 'requires_action'",
        uuid.UUID(payment_id),
        outcome.value,
        answer_type,
        answer,
    )


async def refund_recorded(conn: DbConnection, payment_id: str, gateway_reference: str) -> bool:
    """Whether a refund with this provider reference is already counted on the payment."""
    found = await conn.fetchval(
        "SELECT 1 FROM payment_operations WHERE payment_id = $1 AND kind = 'refund'"
        " AND outcome = 'succeeded' AND gateway_reference = $2",
        uuid.UUID(payment_id),
        gateway_reference,
    )
    return found is not None


# --- provider webhooks ----------------------------------------------------------------------


async def record_webhook_event(
    conn: DbConnection, gateway: str, event_id: str, event_type: str
) -> bool:
    """Remember a provider's event; False when it was delivered before (nothing to do)."""
    inserted = await conn.fetchval(
        "INSERT INTO gateway_webhook_events (gateway, event_id, event_type) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true",
        gateway,
        event_id,
        event_type,
    )
    return inserted is not None


async def order_of_reference(conn: DbConnection, gateway: str, reference: str) -> str | None:
    """The order whose payment the gateway knows by this authorisation reference."""
    order_id: str | None = await conn.fetchval(
        "SELECT order_id FROM payments WHERE gateway = $1 AND gateway_reference = $2",
        gateway,
        reference,
    )
    return order_id


@dataclass(frozen=True)
class Dispute:
    dispute_id: str
    payment_id: str
    order_id: str
    gateway: str
    amount: Decimal
    currency: str
    reason: str
    status: str


async def insert_dispute(conn: DbConnection, dispute: Dispute) -> bool:
    """Record a dispute; False when it was recorded before."""
    inserted = await conn.fetchval(
        "INSERT INTO payment_disputes (dispute_id, payment_id, order_id, gateway, amount,"
        " currency, reason, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (dispute_id) DO NOTHING RETURNING true",
        dispute.dispute_id,
        uuid.UUID(dispute.payment_id),
        dispute.order_id,
        dispute.gateway,
        dispute.amount,
        dispute.currency,
        dispute.reason,
        dispute.status,
    )
    return inserted is not None


# --- reads for the HTTP API -----------------------------------------------------------------


@dataclass(frozen=True)
class OperationView:
    payment_id: str
    kind: str
    idempotency_key: str
    amount: Decimal
    currency: str
    outcome: str
    gateway_reference: str | None
    decline_code: str | None
    reason: str | None
    fulfilment_id: str | None
    return_id: str | None
    shipment_id: str | None
    at: datetime


@dataclass(frozen=True)
class PaymentView:
    payment: Payment
    method: str | None
    created_at: datetime
    operations: list[OperationView]


async def payments_of_order(conn: DbConnection, order_id: str) -> list[PaymentView]:
    payments = await conn.fetch(
        f"SELECT {_PAYMENT_COLUMNS}, method, created_at FROM payments WHERE order_id = $1"
        " ORDER BY created_at, payment_id",
        order_id,
    )
    operations = await conn.fetch(
        "SELECT payment_id, kind, idempotency_key, amount, currency, outcome, gateway_reference,"
        " decline_code, reason, fulfilment_id, return_id, shipment_id, at"
        " FROM payment_operations WHERE order_id = $1 ORDER BY operation_id",
        order_id,
    )
    by_payment: dict[str, list[OperationView]] = {}
    for row in operations:
        view = OperationView(**{**dict(row), "payment_id": str(row["payment_id"])})
        by_payment.setdefault(view.payment_id, []).append(view)
    return [
        PaymentView(
            _payment(row),
            row["method"],
            row["created_at"],
            by_payment.get(str(row["payment_id"]), []),
        )
        for row in payments
    ]


# --- the test gateway's ledger (the simulated provider's own books) --------------------------


@dataclass(frozen=True)
class LedgerEntry:
    idempotency_key: str
    operation: str
    approved: bool
    authorization_reference: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    token: str | None = None
    reference: str | None = None
    decline_code: str | None = None
    reason: str | None = None


_LEDGER_COLUMNS = (
    "idempotency_key, operation, approved, authorization_reference, amount, currency, token,"
    " reference, decline_code, reason"
)


def _ledger_entry(row: asyncpg.Record) -> LedgerEntry:
    return LedgerEntry(**dict(row))


async def ledger_entry(conn: DbConnection, idempotency_key: str) -> LedgerEntry | None:
    row = await conn.fetchrow(
        f"SELECT {_LEDGER_COLUMNS} FROM test_gateway_ledger WHERE idempotency_key = $1",
        idempotency_key,
    )
    return _ledger_entry(row) if row is not None else None


async def ledger_record(conn: DbConnection, entry: LedgerEntry) -> LedgerEntry:
    """Record the entry, or return the one a concurrent call recorded first under its key."""
    row = await conn.fetchrow(
        f"INSERT INTO test_gateway_ledger ({_LEDGER_COLUMNS})"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        f" ON CONFLICT (idempotency_key) DO NOTHING RETURNING {_LEDGER_COLUMNS}",
        entry.idempotency_key,
        entry.operation,
        entry.approved,
        entry.authorization_reference,
        entry.amount,
        entry.currency,
        entry.token,
        entry.reference,
        entry.decline_code,
        entry.reason,
    )
    if row is not None:
        return _ledger_entry(row)
    existing = await ledger_entry(conn, entry.idempotency_key)
    assert existing is not None
    return existing


async def ledger_authorization(conn: DbConnection, reference: str) -> LedgerEntry | None:
    """The approved authorisation with this reference, locked for the rest of the transaction."""
    # An authorisation is its own authorization_reference: matching on it uses that column's
    # index (on `reference` alone every capture, void and refund scanned the whole ledger).
    row = await conn.fetchrow(
        f"SELECT {_LEDGER_COLUMNS} FROM test_gateway_ledger"
        " WHERE authorization_reference = $1 AND operation = 'authorize' AND approved"
        " AND reference = $1 FOR UPDATE",
        reference,
    )
    return _ledger_entry(row) if row is not None else None


@dataclass(frozen=True)
class LedgerTotals:
    captured: Decimal
    refunded: Decimal
    voided: bool


async def ledger_totals(conn: DbConnection, authorization_reference: str) -> LedgerTotals:
    row = await conn.fetchrow(
        "SELECT coalesce(sum(amount) FILTER (WHERE operation = 'capture'), 0) AS captured,"
        " coalesce(sum(amount) FILTER (WHERE operation = 'refund'), 0) AS refunded,"
        " coalesce(bool_or(operation = 'void'), false) AS voided"
        " FROM test_gateway_ledger WHERE authorization_reference = $1 AND approved"
        " AND operation <> 'authorize'",
        authorization_reference,
    )
    assert row is not None
    return LedgerTotals(row["captured"], row["refunded"], row["voided"])


async def ledger_entries(conn: DbConnection) -> list[LedgerEntry]:
    rows = await conn.fetch(
        f"SELECT {_LEDGER_COLUMNS} FROM test_gateway_ledger ORDER BY recorded_at, idempotency_key"
    )
    return [_ledger_entry(row) for row in rows]
