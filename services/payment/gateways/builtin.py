"""The built-in test gateway: approves any card token except

- `tok_declined`: declined, code `card_declined`;
- `tok_insufficient_funds`: declined, code `insufficient_funds`;
- `tok_gateway_timeout`: the first authorisation call under a key is recorded, then times out
  (the ambiguous timeout); a retry with the same key returns the recorded approval;
- `tok_gateway_down`: every authorisation call times out and nothing is recorded;
- `tok_refund_fails`: authorises and captures normally, but every refund of it times out.

It keeps its own ledger (`test_gateway_ledger`), written on its own connections in their own
transactions, like a remote provider's books: they survive the handler's rollback or a crash.
It must never serve production by accident (services/payment/app.py `refuse_unsafe_gateway`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import asyncpg

from services.payment import store
from services.payment.gateways.base import GatewayResult, GatewayTimeout
from services.payment.settings import PaymentSettings
from shared.platform.db import DbConnection, create_pool

TOKEN_DECLINED = "tok_declined"
TOKEN_INSUFFICIENT_FUNDS = "tok_insufficient_funds"
TOKEN_GATEWAY_TIMEOUT = "tok_gateway_timeout"
TOKEN_GATEWAY_DOWN = "tok_gateway_down"
TOKEN_REFUND_FAILS = "tok_refund_fails"


_DECLINING_TOKENS = {
    TOKEN_DECLINED: ("card_declined", "The card was declined."),
    TOKEN_INSUFFICIENT_FUNDS: ("insufficient_funds", "The card has insufficient funds."),
}


def _new_reference(prefix: str) -> str:
    return f"tg_{prefix}_{uuid.uuid4().hex}"


def _result_of(entry: store.LedgerEntry, operation: str) -> GatewayResult:
    if entry.operation != operation:
        return GatewayResult.decline(
            "idempotency_key_reused",
            f"the idempotency key was already used for a {entry.operation}",
        )
    if entry.approved and entry.reference is not None:
        return GatewayResult.approve(entry.reference)
    return GatewayResult.decline(entry.decline_code or "declined", entry.reason or "declined")


class TestGateway:
    """A gateway simulated on Postgres, deterministic by card token (see the module docstring)."""

    __test__ = False  # not a pytest test class

    def __init__(self, settings: Callable[[], PaymentSettings]) -> None:
        # Settings are read at first use: tests point the service at their database after build().
        self._settings = settings
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[DbConnection]:
        async with self._pool_lock:
            if self._pool is None:
                settings = self._settings()
                self._pool = await create_pool(
                    settings.database_dsn, settings.db_schema, min_size=1, max_size=2
                )
        async with self._pool.acquire() as conn, conn.transaction():
            yield conn

    async def aclose(self) -> None:
        async with self._pool_lock:
            if self._pool is not None:
                await self._pool.close()
                self._pool = None

    async def authorize(
        self, idempotency_key: str, amount: Decimal, currency: str, token: str
    ) -> GatewayResult:
        first_call = False
        async with self._transaction() as conn:
            entry = await store.ledger_entry(conn, idempotency_key)
            if entry is None:
                if token == TOKEN_GATEWAY_DOWN:
                    raise GatewayTimeout("authorize", idempotency_key)
                declined = _DECLINING_TOKENS.get(token)
                reference = None if declined else _new_reference("auth")
                entry = await store.ledger_record(
                    conn,
                    store.LedgerEntry(
                        idempotency_key=idempotency_key,
                        operation="authorize",
                        approved=declined is None,
                        authorization_reference=reference,
                        amount=amount,
                        currency=currency,
                        token=token,
                        reference=reference,
                        decline_code=declined[0] if declined else None,
                        reason=declined[1] if declined else None,
                    ),
                )
                first_call = True
        if first_call and token == TOKEN_GATEWAY_TIMEOUT:
            # Recorded and committed on our side; the caller just never hears back.
            raise GatewayTimeout("authorize", idempotency_key)
        return _result_of(entry, "authorize")

    async def capture(self, idempotency_key: str, reference: str, amount: Decimal) -> GatewayResult:
        async with self._transaction() as conn:
            entry = await store.ledger_entry(conn, idempotency_key)
            if entry is None:
                result = await self._decide_capture(conn, reference, amount)
                entry = await self._record(
                    conn, idempotency_key, "capture", reference, amount, result
                )
        return _result_of(entry, "capture")

    async def void(self, idempotency_key: str, reference: str) -> GatewayResult:
        async with self._transaction() as conn:
            entry = await store.ledger_entry(conn, idempotency_key)
            if entry is None:
                result = await self._decide_void(conn, reference)
                entry = await self._record(conn, idempotency_key, "void", reference, None, result)
        return _result_of(entry, "void")

    async def refund(self, idempotency_key: str, reference: str, amount: Decimal) -> GatewayResult:
        async with self._transaction() as conn:
            entry = await store.ledger_entry(conn, idempotency_key)
            if entry is None:
                authorization = await store.ledger_authorization(conn, reference)
                if authorization is not None and authorization.token == TOKEN_REFUND_FAILS:
                    raise GatewayTimeout("refund", idempotency_key)
                result = await self._decide_refund(conn, reference, amount)
                entry = await self._record(
                    conn, idempotency_key, "refund", reference, amount, result
                )
        return _result_of(entry, "refund")

    async def _decide_capture(
        self, conn: DbConnection, reference: str, amount: Decimal
    ) -> GatewayResult:
        authorization = await store.ledger_authorization(conn, reference)
        if authorization is None or authorization.amount is None:
            return GatewayResult.decline("unknown_reference", "no such authorisation")
        totals = await store.ledger_totals(conn, reference)
        if totals.voided:
            return GatewayResult.decline("authorization_voided", "the authorisation was voided")
        if totals.captured + amount > authorization.amount:
            return GatewayResult.decline(
                "amount_exceeds_authorization", "more than the authorisation holds"
            )
        return GatewayResult.approve(_new_reference("cap"))

    async def _decide_void(self, conn: DbConnection, reference: str) -> GatewayResult:
        authorization = await store.ledger_authorization(conn, reference)
        if authorization is None:
            return GatewayResult.decline("unknown_reference", "no such authorisation")
        totals = await store.ledger_totals(conn, reference)
        if totals.voided:
            return GatewayResult.decline("already_voided", "the authorisation was voided")
        if totals.captured > 0:
            return GatewayResult.decline("already_captured", "money was captured; refund it")
        return GatewayResult.approve(_new_reference("void"))

    async def _decide_refund(
        self, conn: DbConnection, reference: str, amount: Decimal
    ) -> GatewayResult:
        authorization = await store.ledger_authorization(conn, reference)
        if authorization is None:
            return GatewayResult.decline("unknown_reference", "no such authorisation")
        totals = await store.ledger_totals(conn, reference)
        if totals.refunded + amount > totals.captured:
            return GatewayResult.decline("amount_exceeds_captured", "more than was captured")
        return GatewayResult.approve(_new_reference("ref"))

    async def _record(
        self,
        conn: DbConnection,
        idempotency_key: str,
        operation: str,
        authorization_reference: str,
        amount: Decimal | None,
        result: GatewayResult,
    ) -> store.LedgerEntry:
        return await store.ledger_record(
            conn,
            store.LedgerEntry(
                idempotency_key=idempotency_key,
                operation=operation,
                approved=result.approved,
                authorization_reference=authorization_reference,
                amount=amount,
                reference=result.reference,
                decline_code=result.decline_code,
                reason=result.reason,
            ),
        )
