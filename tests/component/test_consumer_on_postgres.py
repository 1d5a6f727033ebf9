"""The shared Consumer on a real Postgres: inbox, outbox, dead letters (no Kafka needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.platform.housekeeping import prune_inbox
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra
from tests.support.probe_service import PROBE_COMMANDS, ProbeCommand, build

pytestmark = pytest.mark.component


@pytest.fixture
async def probe(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


async def test_applies_once_and_emits_through_the_outbox(probe: ComponentHarness):
    envelope = await probe.deliver(ProbeCommand(n=1), correlation_id="o-1")
    await probe.deliver(ProbeCommand(n=1), correlation_id="o-1", envelope=envelope)
    rows = await probe.fetch("SELECT n, applied FROM probe_effects")
    assert [(r["n"], r["applied"]) for r in rows] == [(1, 1)]
    done = await probe.emitted("ProbeDone")
    assert len(done) == 1
    assert done[0].causation_id == str(envelope.message_id)
    assert done[0].correlation_id == "o-1"


async def test_poison_is_retried_then_dead_lettered_and_neighbours_still_apply(
    probe: ComponentHarness,
):
    await probe.pool.execute("INSERT INTO probe_poison VALUES (9)")
    await probe.deliver(ProbeCommand(n=9), correlation_id="o-9")
    await probe.deliver_raw(PROBE_COMMANDS, b"garbage")
    await probe.deliver(ProbeCommand(n=10), correlation_id="o-10")
    reasons = [headers["x-dlq-reason"] for _, headers in probe.dead_letters]
    assert reasons == ["handler_failed", "malformed"]
    assert probe.dead_letters[0][1]["x-dlq-attempts"] == "2"
    assert probe.dead_letters[1][0] == b"garbage"
    rows = await probe.fetch("SELECT n FROM probe_effects")
    assert [r["n"] for r in rows] == [10]


async def test_inbox_rows_past_the_retention_are_pruned(probe: ComponentHarness):
    """Regression (issue 12, defect 9): the inbox was never pruned."""
    await probe.deliver(ProbeCommand(n=1), correlation_id="o-1")
    await probe.deliver(ProbeCommand(n=2), correlation_id="o-2")
    await probe.pool.execute(
        "UPDATE inbox SET processed_at = now() - interval '40 days'"
        " WHERE message_id = (SELECT message_id FROM inbox ORDER BY processed_at LIMIT 1)"
    )
    async with probe.pool.acquire() as conn:
        pruned = await prune_inbox(conn, datetime.now(UTC) - timedelta(days=35))
        again = await prune_inbox(conn, datetime.now(UTC) - timedelta(days=35))
    assert (pruned, again) == (1, 0)
    assert len(await probe.fetch("SELECT message_id FROM inbox")) == 1
