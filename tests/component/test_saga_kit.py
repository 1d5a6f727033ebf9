"""The saga kit (shared/platform/saga) on Postgres, on the tables of the returns service (the
kit's tables are created by each service's own migrations)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

from services.returns.app import build
from services.returns.store import SAGAS
from shared.platform.errors import ApiError
from shared.platform.outbox import UnitOfWork
from shared.platform.saga import store
from shared.platform.saga.deadlines import Deadlines
from shared.platform.saga.idempotency import IdempotencyKeys
from shared.platform.saga.store import TimelineRow
from shared.platform.service import Runtime
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class Probe(BaseModel):
    return_id: str


@pytest.fixture
async def returns(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


async def _saga_row(harness: ComponentHarness, return_id: str, deadline: datetime | None) -> None:
    await harness.pool.execute(
        "INSERT INTO returns (return_id, order_id, status, saga, next_deadline_at)"
        " VALUES ($1, 'o-1', 'APPROVED', $2, $3)",
        return_id,
        {"return_id": return_id},
        deadline,
    )


async def test_an_idempotency_key_answers_with_its_saga_and_refuses_another_request(
    returns: ComponentHarness,
):
    keys = IdempotencyKeys(SAGAS, noun="return", names_existing=True)
    await _saga_row(returns, "r-1", None)
    async with returns.pool.acquire() as conn, conn.transaction():
        assert await keys.earlier_saga(conn, "key-1", "hash-1") is None
        await keys.remember(conn, "key-1", "hash-1", "r-1")
    async with returns.pool.acquire() as conn, conn.transaction():
        assert await keys.earlier_saga(conn, "key-1", "hash-1") == "r-1"
        with pytest.raises(ApiError) as refused:
            await keys.earlier_saga(conn, "key-1", "hash-2")
    assert refused.value.status == 409 and refused.value.code == "idempotency_key_reused"
    assert refused.value.message == "this Idempotency-Key was used for a different return"
    assert refused.value.details == {"return_id": "r-1"}
    quiet = IdempotencyKeys(SAGAS, noun="return")
    async with returns.pool.acquire() as conn, conn.transaction():
        with pytest.raises(ApiError) as refused:
            await quiet.earlier_saga(conn, "key-1", "hash-2")
    assert refused.value.details == {}


async def test_the_timeline_is_read_back_in_the_order_it_was_written(returns: ComponentHarness):
    await _saga_row(returns, "r-1", None)
    async with returns.pool.acquire() as conn:
        await store.append_timeline(
            conn,
            SAGAS,
            [
                TimelineRow("r-1", "REQUESTED", "opened", {"by": "api"}),
                TimelineRow("r-1", "APPROVED", "approved", {}),
            ],
        )
        await store.append_timeline(conn, SAGAS, [])
        rows = await store.read_timeline(conn, SAGAS, "r-1")
    assert [(r["status"], r["event"], r["detail"]) for r in rows] == [
        ("REQUESTED", "opened", {"by": "api"}),
        ("APPROVED", "approved", {}),
    ]


async def test_a_pass_hands_over_each_saga_whose_deadline_passed_once(returns: ComponentHarness):
    await _saga_row(returns, "r-due", NOW - timedelta(seconds=1))
    await _saga_row(returns, "r-later", NOW + timedelta(minutes=1))
    await _saga_row(returns, "r-none", None)
    handed: list[str] = []

    async def on_deadline(uow: UnitOfWork, saga: Probe) -> None:
        handed.append(saga.return_id)
        await uow.conn.execute(
            "UPDATE returns SET next_deadline_at = NULL WHERE return_id = $1", saga.return_id
        )

    deadlines = Deadlines(SAGAS, Probe, on_deadline, clock=lambda: NOW)
    runtime = Runtime(
        returns.spec.settings, returns.pool, None, None, None, returns.spec.migrations
    )
    assert await deadlines.process_due(runtime) == 1
    assert handed == ["r-due"]
    assert await deadlines.process_due(runtime) == 0, "nothing due any more"
    assert handed == ["r-due"]
