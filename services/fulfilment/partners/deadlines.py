"""Partner deadlines (DESIGN.md §4: human-paced steps alert, they never cancel).

A background sweep finds requests past their deadline whose fulfilment is still waiting for the
partner (nothing confirmed, nothing shipped, not cancelled), marks each overdue and emits
`PartnerFulfilmentOverdue` in the same transaction, in the order's trace: once per fulfilment,
whatever the number of replicas (`FOR UPDATE SKIP LOCKED`) or passes. Order-intake puts it on
the order's timeline and alerts an operator.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.fulfilment import store as fulfilments
from services.fulfilment.actions import emit_in_order_trace
from services.fulfilment.partners import store
from services.fulfilment.settings import FulfilmentSettings
from shared.contracts.fulfilment import PartnerFulfilmentOverdue
from shared.platform.outbox import unit_of_work
from shared.platform.scheduling import repeat
from shared.platform.service import Runtime

log = logging.getLogger(__name__)

BATCH = 200


async def sweep_overdue(
    pool: asyncpg.Pool,
    settings: FulfilmentSettings,
    now: datetime | None = None,
    *,
    limit: int = BATCH,
) -> int:
    """Report the requests overdue at `now` (default: now), up to `limit`; how many."""
    now = now or datetime.now(UTC)
    async with unit_of_work(pool, settings.service_name, topic_prefix=settings.topic_prefix) as uow:
        overdue = await store.claim_overdue(uow.conn, now, limit)
        if not overdue:
            return 0
        await store.save_overdue(uow.conn, [d.dispatch_id for d in overdue], now)
        for dispatch in overdue:
            fulfilment = await fulfilments.get_fulfilment(uow.conn, dispatch.fulfilment_id)
            assert fulfilment is not None
            log.warning(
                "partner %s has not confirmed fulfilment %s (order %s) due %s",
                dispatch.location,
                dispatch.fulfilment_id,
                dispatch.order_id,
                dispatch.deadline_at.isoformat(),
            )
            emit_in_order_trace(
                uow,
                fulfilment,
                PartnerFulfilmentOverdue(
                    order_id=dispatch.order_id,
                    fulfilment_id=dispatch.fulfilment_id,
                    location=dispatch.location,
                    request_kind=dispatch.request_kind.value,
                    requested_at=dispatch.created_at,
                    deadline_at=dispatch.deadline_at,
                ),
            )
    return len(overdue)


def deadline_sweeper(
    settings: FulfilmentSettings,
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    async def partner_deadline_sweep(runtime: Runtime) -> None:
        async def one_pass() -> int:
            return await sweep_overdue(runtime.pool, settings)

        await repeat(
            one_pass,
            interval_s=settings.partner_deadline_poll_interval_s,
            name="partner deadline sweep",
            full_batch=BATCH,
        )

    return partner_deadline_sweep
