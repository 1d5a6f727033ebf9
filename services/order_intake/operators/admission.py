"""Admission control: new orders are refused with 429 while the saga is too far behind.

Accepting orders faster than inventory, payment and fulfilment answer only queues them in
Kafka; past the saga's step deadlines (30 s by default) they are retried and then cancelled,
so an overloaded OMS that accepts everything turns a peak into cancelled orders. Instead,
order-intake counts the orders in machine-paced states (accepted, not yet FULFILLING or
failed) and, at `max_orders_in_flight`, answers `POST /v1/orders` and the channel webhooks with
429 `intake_overloaded` and `Retry-After`: channels retry webhooks that fail, and the web shop
can ask the customer to try again in a moment. Nothing is stored for a refused request (the
sender keeps it and retries; storing every refusal would add load exactly when there is none
to spare). Orders from the Kafka channel ingress are never refused: the consumer takes them at
the pace the saga allows.

The count comes from Postgres every `admission_refresh_s` (all replicas share it), plus the
orders this replica accepted since, so a burst between two counts cannot overshoot by much.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation

from services.order_intake.domain.saga import Status
from services.order_intake.orders import store
from shared.platform.errors import ApiError
from shared.platform.scheduling import repeat
from shared.platform.service import Runtime

log = logging.getLogger(__name__)

IN_FLIGHT = (
    Status.RECEIVED,
    Status.RESERVING_STOCK,
    Status.AUTHORIZING_PAYMENT,
    Status.CONFIRMED,
    Status.CANCELLING,
)
"""States the machine moves on (the saga waits for a service, not a person)."""

OVERLOADED_RESPONSE: dict[int | str, dict[str, Any]] = {
    429: {"description": "too many orders in flight: retry after Retry-After seconds"}
}
"""The OpenAPI answer of a route that asks admission control."""

ADMISSION_STATE_KEY = "admission"
"""Where the running service keeps its `Admission` (`Runtime.state`)."""


@dataclass
class Admission:
    limit: int  # 0: no limit
    retry_after_s: float = 1.0
    counted: int = 0
    accepted_since_count: int = 0

    @property
    def in_flight(self) -> int:
        return self.counted + self.accepted_since_count

    def check(self) -> None:
        """Raise 429 when the saga has `limit` orders in flight already."""
        if self.limit and self.in_flight >= self.limit:
            raise ApiError(
                429,
                "intake_overloaded",
                f"{self.in_flight} orders are being processed (limit {self.limit});"
                " retry after a moment",
                headers={"Retry-After": str(max(1, math.ceil(self.retry_after_s)))},
                in_flight=self.in_flight,
                limit=self.limit,
            )

    def accepted(self) -> None:
        self.accepted_since_count += 1

    def counted_now(self, in_flight: int) -> None:
        self.counted = in_flight
        self.accepted_since_count = 0


async def recount(runtime: Runtime, admission: Admission) -> None:
    """Count the orders in flight in Postgres (what every replica accepted)."""
    with suppress_instrumentation():  # a count every second is not worth a trace
        async with runtime.pool.acquire() as conn:
            counted = await store.count_in_status(conn, [s.value for s in IN_FLIGHT])
    admission.counted_now(counted)


def admission_counter(
    limit: int, refresh_s: float
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """The background task that installs admission control and keeps its count."""

    async def count_orders_in_flight(runtime: Runtime) -> None:
        admission = Admission(limit=limit, retry_after_s=refresh_s)
        runtime.state[ADMISSION_STATE_KEY] = admission

        async def one_pass() -> int:
            await recount(runtime, admission)
            return 0

        await repeat(one_pass, interval_s=refresh_s, name="admission count")

    return count_orders_in_flight
