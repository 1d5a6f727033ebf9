"""The payment gateway interface and retries with the same idempotency key (DESIGN.md §9).

Every gateway operation carries an idempotency key: the gateway answers a repeated key with the
answer it gave the first time, so a retried call never charges twice. A `GatewayTimeout` is
ambiguous: the operation may have happened on the gateway's side; only a retry with the same key
tells. Amounts are in major units (`Decimal("12.34")`); each gateway converts to what its
provider wants.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from services.payment.settings import PaymentSettings

log = logging.getLogger(__name__)


class GatewayTimeout(Exception):
    """The gateway did not answer in time; the operation may or may not have happened."""

    def __init__(self, operation: str, idempotency_key: str) -> None:
        super().__init__(
            f"payment gateway timed out on {operation} (idempotency key {idempotency_key})"
        )
        self.operation = operation
        self.idempotency_key = idempotency_key


@dataclass(frozen=True)
class CustomerAction:
    """What the customer must do before an authorisation holds money (3-D Secure): the shop
    front completes it with the provider's SDK and `client_secret`; `next_action`: the
    provider's action type (Stripe: `use_stripe_sdk`, `redirect_to_url`)."""

    client_secret: str
    next_action: str


@dataclass(frozen=True)
class GatewayRisk:
    """A gateway's fraud verdict: `level` normal, elevated or highest; `score` 0-100 if given."""

    level: str
    score: int | None = None


@dataclass(frozen=True)
class GatewayResult:
    """The gateway's answer: approved with its reference, declined with a code and reason, or
    (authorise only) waiting for the customer's action under its reference. `risk`: the
    gateway's own fraud verdict on an approved authorisation, when it gives one."""

    approved: bool
    reference: str | None = None
    decline_code: str | None = None
    reason: str | None = None
    customer_action: CustomerAction | None = None
    risk: GatewayRisk | None = None

    @classmethod
    def approve(cls, reference: str, risk: GatewayRisk | None = None) -> GatewayResult:
        return cls(True, reference=reference, risk=risk)

    @classmethod
    def requires_customer_action(
        cls, reference: str, client_secret: str, next_action: str
    ) -> GatewayResult:
        return cls(
            False,
            reference=reference,
            customer_action=CustomerAction(client_secret=client_secret, next_action=next_action),
        )

    @classmethod
    def decline(cls, code: str, reason: str) -> GatewayResult:
        return cls(False, decline_code=code, reason=reason)


class PaymentGateway(Protocol):
    async def authorize(
        self, idempotency_key: str, amount: Decimal, currency: str, token: str
    ) -> GatewayResult: ...

    async def capture(
        self, idempotency_key: str, reference: str, amount: Decimal
    ) -> GatewayResult: ...

    async def void(self, idempotency_key: str, reference: str) -> GatewayResult: ...

    async def refund(
        self, idempotency_key: str, reference: str, amount: Decimal
    ) -> GatewayResult: ...

    async def aclose(self) -> None: ...


# --- retries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int
    initial_s: float
    max_s: float


class RetryingGateway:
    """Retries timeouts a bounded number of times with backoff, always with the SAME key; raises
    GatewayTimeout when the last attempt times out too."""

    def __init__(self, inner: PaymentGateway, policy: RetryPolicy) -> None:
        self.inner = inner
        self._policy = policy

    async def _call(self, call: Callable[[], Awaitable[GatewayResult]]) -> GatewayResult:
        def note(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("%s; retrying (attempt %d)", exc, state.attempt_number + 1)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self._policy.attempts)),
            wait=wait_exponential_jitter(
                multiplier=self._policy.initial_s,
                max=self._policy.max_s,
                jitter=self._policy.initial_s,
            ),
            retry=retry_if_exception_type(GatewayTimeout),
            before_sleep=note,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await call()
        raise AssertionError("unreachable")

    async def authorize(
        self, idempotency_key: str, amount: Decimal, currency: str, token: str
    ) -> GatewayResult:
        return await self._call(
            lambda: self.inner.authorize(idempotency_key, amount, currency, token)
        )

    async def capture(self, idempotency_key: str, reference: str, amount: Decimal) -> GatewayResult:
        return await self._call(lambda: self.inner.capture(idempotency_key, reference, amount))

    async def void(self, idempotency_key: str, reference: str) -> GatewayResult:
        return await self._call(lambda: self.inner.void(idempotency_key, reference))

    async def refund(self, idempotency_key: str, reference: str, amount: Decimal) -> GatewayResult:
        return await self._call(lambda: self.inner.refund(idempotency_key, reference, amount))

    async def aclose(self) -> None:
        await self.inner.aclose()


def retry_policy(settings: PaymentSettings) -> RetryPolicy:
    return RetryPolicy(
        attempts=settings.gateway_retry_attempts,
        initial_s=settings.gateway_retry_initial_s,
        max_s=settings.gateway_retry_max_s,
    )
