"""The platform's messaging guarantees on real Kafka and real Postgres (DESIGN.md §5)."""

from __future__ import annotations

import uuid

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from opentelemetry import trace

from shared.envelope import Envelope
from shared.ops.dlq import list_dead_letters, replay_dead_letters
from shared.platform.db import create_pool
from shared.platform.migrations import migrate
from shared.platform.outbox import OutboxRelay, unit_of_work
from shared.platform.telemetry import setup_tracing
from shared.topics import dead_letter_topic
from tests.support.env import TestEnv
from tests.support.kafka import produce, read_topic, send, wait_for_records
from tests.support.probe_service import (
    PROBE_COMMANDS,
    PROBE_EVENTS,
    ProbeCommand,
    ProbeDone,
    build,
)
from tests.support.services import ServiceProcess, eventually

pytestmark = pytest.mark.integration

PROBE_MIGRATIONS = build().migrations


async def _effects(env: TestEnv) -> dict[int, int]:
    conn = await asyncpg.connect(
        env.service_urls["probe"], server_settings={"search_path": "probe"}
    )
    try:
        exists = await conn.fetchval("SELECT to_regclass('probe_effects') IS NOT NULL")
        if not exists:
            return {}
        return {
            r["n"]: r["applied"] for r in await conn.fetch("SELECT n, applied FROM probe_effects")
        }
    finally:
        await conn.close()


async def _probe_sql(env: TestEnv, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(
        env.service_urls["probe"], server_settings={"search_path": "probe"}
    )
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def _command(env: TestEnv, n: int, key: str = "order-1") -> Envelope:
    return await send(env.kafka, env.topic(PROBE_COMMANDS), ProbeCommand(n=n), correlation_id=key)


# --- outbox ------------------------------------------------------------------------------


async def test_state_change_and_outgoing_message_commit_or_roll_back_together(probe_env: TestEnv):
    setup_tracing("test")
    pool = await create_pool(probe_env.service_urls["probe"], "probe")
    try:
        async with pool.acquire() as conn:
            await migrate(conn, "probe", PROBE_MIGRATIONS)

        with pytest.raises(RuntimeError):
            async with unit_of_work(pool, "probe", topic_prefix=probe_env.prefix) as uow:
                await uow.conn.execute("INSERT INTO probe_effects VALUES (1, 1)")
                uow.emit(ProbeDone(n=1), key="k", correlation_id="c-1")
                raise RuntimeError("handler failed after emitting")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM probe_effects") == 0
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 0

        with trace.get_tracer("test").start_as_current_span("request") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            async with unit_of_work(pool, "probe", topic_prefix=probe_env.prefix) as uow:
                await uow.conn.execute("INSERT INTO probe_effects VALUES (2, 1)")
                emitted = uow.emit(ProbeDone(n=2), key="k", correlation_id="c-2")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM probe_effects") == 1
            row = await conn.fetchrow("SELECT topic, message_id, headers FROM outbox")
            assert row["message_id"] == emitted.message_id
            assert row["topic"] == probe_env.topic(PROBE_EVENTS)
            assert trace_id in row["headers"]["traceparent"]

        producer = AIOKafkaProducer(
            bootstrap_servers=probe_env.kafka, acks="all", enable_idempotence=True
        )
        await producer.start()

        async def publish(value, topic, key, headers):  # type: ignore[no-untyped-def]
            return await producer.send(
                topic,
                value,
                key=key.encode() if key else None,
                headers=[(k, v.encode()) for k, v in headers.items()],
            )

        relay = OutboxRelay(
            dsn=probe_env.service_urls["probe"], schema="probe", service="probe", publish=publish
        )
        try:
            async with pool.acquire() as conn:
                assert await relay.publish_pending(conn) == 1
                assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
        finally:
            await producer.stop()
        records = await read_topic(probe_env.kafka, probe_env.topic(PROBE_EVENTS))
        assert len(records) == 1
        published = Envelope.model_validate(orjson.loads(records[0].value))
        assert published.message_id == emitted.message_id
        assert records[0].key == b"k"
        # The trace continues across the relay: the record carries the request's trace id.
        assert trace_id in records[0].headers["traceparent"]
    finally:
        await pool.close()


async def test_relay_killed_between_publish_and_mark_sent_duplicates_only_and_inbox_absorbs(
    probe_env: TestEnv, probe: ServiceProcess
):
    probe.start(OMS_FAULT_CRASH_POINT="relay_after_publish")
    await probe.wait_ready()
    await _command(probe_env, 7)
    assert await probe.wait_exit() == -9

    events = await read_topic(probe_env.kafka, probe_env.topic(PROBE_EVENTS))
    assert len(events) == 1, "the relay published before it was killed"
    pending = await _probe_sql(probe_env, "SELECT message_id FROM outbox")
    assert len(pending) == 1, "the row was not marked sent"

    probe.start()
    await probe.wait_ready()
    events = await wait_for_records(
        probe_env.kafka, probe_env.topic(PROBE_EVENTS), lambda seen: len(seen) >= 2
    )
    ids = {Envelope.model_validate(orjson.loads(e.value)).message_id for e in events}
    assert len(events) == 2 and len(ids) == 1, "at most a duplicate of the same message"

    async def done_applied_once():
        rows = await _probe_sql(probe_env, "SELECT applied FROM probe_done_seen")
        return rows if rows else None

    rows = await eventually(done_applied_once)
    await eventually(
        lambda: _inbox_count(probe_env, "ProbeDone"), message="consumer caught up with duplicates"
    )
    rows = await _probe_sql(probe_env, "SELECT applied FROM probe_done_seen")
    assert [r["applied"] for r in rows] == [1]
    assert (await _effects(probe_env)) == {7: 1}


async def _inbox_count(env: TestEnv, msg_type: str) -> int:
    rows = await _probe_sql(env, "SELECT count(*) AS n FROM inbox WHERE msg_type = $1", msg_type)
    return int(rows[0]["n"])


# --- inbox -------------------------------------------------------------------------------


async def test_same_message_delivered_twice_has_one_effect(
    probe_env: TestEnv, probe: ServiceProcess
):
    probe.start()
    await probe.wait_ready()
    envelope = await _command(probe_env, 1)
    await send(
        probe_env.kafka,
        probe_env.topic(PROBE_COMMANDS),
        ProbeCommand(n=1),
        correlation_id="order-1",
        envelope=envelope,
    )
    await _command(probe_env, 2)  # a later message proves the duplicate was consumed, not pending
    await eventually(lambda: _effects(probe_env), message="effects applied")
    await eventually(lambda: _has(_effects(probe_env), 2), message="the later message was applied")
    assert await _effects(probe_env) == {1: 1, 2: 1}
    events = await wait_for_records(
        probe_env.kafka, probe_env.topic(PROBE_EVENTS), lambda seen: len(seen) >= 2
    )
    assert len(events) == 2, "one ProbeDone per distinct command"


async def _has(effects_coro, n: int) -> bool:  # type: ignore[no-untyped-def]
    return n in await effects_coro


# --- crash around the commit -------------------------------------------------------------


async def test_killed_after_db_commit_before_offset_commit_applies_once(
    probe_env: TestEnv, probe: ServiceProcess
):
    probe.start(OMS_FAULT_CRASH_POINT="after_db_commit")
    await probe.wait_ready()
    await _command(probe_env, 3)
    assert await probe.wait_exit() == -9
    assert await _effects(probe_env) == {3: 1}, "the effect committed before the crash"

    probe.start()
    await probe.wait_ready()
    await _command(probe_env, 4)
    await eventually(lambda: _has(_effects(probe_env), 4), message="caught up after restart")
    assert await _effects(probe_env) == {3: 1, 4: 1}, "redelivered message was not applied twice"


async def test_killed_before_db_commit_processes_the_message_after_restart(
    probe_env: TestEnv, probe: ServiceProcess
):
    probe.start(OMS_FAULT_CRASH_POINT="before_db_commit")
    await probe.wait_ready()
    await _command(probe_env, 5)
    assert await probe.wait_exit() == -9
    assert await _effects(probe_env) == {}, "nothing committed"

    probe.start()
    await probe.wait_ready()
    await eventually(lambda: _has(_effects(probe_env), 5), message="processed after restart")
    assert await _effects(probe_env) == {5: 1}


# --- poison and malformed messages -------------------------------------------------------


async def test_poison_message_is_retried_then_dead_lettered_and_can_be_replayed(
    probe_env: TestEnv, probe: ServiceProcess
):
    probe.start()
    await probe.wait_ready()
    await _probe_sql(probe_env, "INSERT INTO probe_poison VALUES (13)")
    poison = await _command(probe_env, 13, key="same-key")
    await _command(probe_env, 14, key="same-key")  # same key, same partition, after the poison

    await eventually(lambda: _has(_effects(probe_env), 14), message="partition kept flowing")
    dlq = probe_env.topic(dead_letter_topic("probe"))
    letters = await wait_for_records(probe_env.kafka, dlq, lambda seen: len(seen) >= 1)
    assert len(letters) == 1
    letter = letters[0]
    assert letter.headers["x-dlq-reason"] == "handler_failed"
    assert "poisoned" in letter.headers["x-dlq-error"]
    assert letter.headers["x-dlq-attempts"] == "3"  # OMS_CONSUMER_MAX_ATTEMPTS in tests
    assert letter.headers["x-dlq-original-topic"] == probe_env.topic(PROBE_COMMANDS)
    assert letter.key == b"same-key"
    assert Envelope.model_validate(orjson.loads(letter.value)).message_id == poison.message_id
    assert 13 not in await _effects(probe_env)

    listed = await list_dead_letters(probe_env.kafka, "probe", prefix=probe_env.prefix)
    assert [d.reason for d in listed] == ["handler_failed"]
    assert listed[0].message_type == "ProbeCommand"

    await _probe_sql(probe_env, "DELETE FROM probe_poison")
    replayed = await replay_dead_letters(probe_env.kafka, "probe", prefix=probe_env.prefix)
    assert [d.offset for d in replayed] == [letter.offset]
    await eventually(lambda: _has(_effects(probe_env), 13), message="replayed message applied")
    assert await _effects(probe_env) == {13: 1, 14: 1}
    again = await replay_dead_letters(probe_env.kafka, "probe", prefix=probe_env.prefix)
    assert again == [], "a dead letter is replayed once"


async def test_malformed_messages_are_dead_lettered_with_a_reason_and_never_stall(
    probe_env: TestEnv, probe: ServiceProcess
):
    probe.start()
    await probe.wait_ready()
    topic = probe_env.topic(PROBE_COMMANDS)
    key = b"k"
    await produce(
        probe_env.kafka, topic, b"this is not json {", key=key, headers={"origin": "test"}
    )
    await produce(probe_env.kafka, topic, b'{"hello": "world"}', key=key)
    unknown = {
        "message_id": str(uuid.uuid4()),
        "type": "NoSuchThing",
        "version": 1,
        "occurred_at": "2026-01-01T00:00:00Z",
        "correlation_id": "x",
        "payload": {},
    }
    await produce(probe_env.kafka, topic, orjson.dumps(unknown), key=key)
    wrong_schema = {
        **unknown,
        "message_id": str(uuid.uuid4()),
        "type": "ProbeCommand",
        "payload": {"n": "not a number"},
    }
    await produce(probe_env.kafka, topic, orjson.dumps(wrong_schema), key=key)
    await _command(probe_env, 21, key="k")

    await eventually(lambda: _has(_effects(probe_env), 21), message="good message after the bad")
    dlq = probe_env.topic(dead_letter_topic("probe"))
    letters = await wait_for_records(probe_env.kafka, dlq, lambda seen: len(seen) >= 4)
    reasons = [d.headers["x-dlq-reason"] for d in letters]
    assert reasons == ["malformed", "malformed", "unknown_type", "invalid_payload"]
    assert letters[0].value == b"this is not json {", "the raw input is kept"
    assert letters[0].headers["origin"] == "test", "original headers are kept"
    assert "not JSON" in letters[0].headers["x-dlq-error"]
    assert "NoSuchThing" in letters[2].headers["x-dlq-error"]
    assert (
        "payload.n" in letters[3].headers["x-dlq-error"]
        or "n:" in letters[3].headers["x-dlq-error"]
    )
    assert probe.process is not None and probe.process.poll() is None, "consumer still running"


async def test_replay_pages_through_more_than_a_thousand_dead_letters_once(probe_env: TestEnv):
    """Regression (issue 12, defect 7): replay read from offset 0 with a limit of 1,000 that
    counted already-replayed letters, so letters past the first thousand were never replayed."""
    dlq = probe_env.topic(dead_letter_topic("probe"))
    origin = probe_env.topic(PROBE_EVENTS)  # nothing consumes it in this test
    producer = AIOKafkaProducer(bootstrap_servers=probe_env.kafka, linger_ms=20)
    await producer.start()
    try:
        for n in range(1_200):
            await producer.send(
                dlq,
                f"letter-{n}".encode(),
                key=b"k",
                headers=[("x-dlq-original-topic", origin.encode()), ("x-dlq-reason", b"test")],
            )
        await producer.flush()
    finally:
        await producer.stop()
    first = await replay_dead_letters(probe_env.kafka, "probe", prefix=probe_env.prefix)
    assert len(first) == 1_200
    assert {d.value for d in first} == {f"letter-{n}".encode() for n in range(1_200)}
    again = await replay_dead_letters(probe_env.kafka, "probe", prefix=probe_env.prefix)
    assert again == []
    republished = await wait_for_records(probe_env.kafka, origin, lambda seen: len(seen) >= 1_200)
    assert len(republished) == 1_200
    listed = await list_dead_letters(probe_env.kafka, "probe", prefix=probe_env.prefix, limit=5000)
    assert len(listed) == 1_200 and all(d.replayed for d in listed)


async def test_a_record_too_large_to_dead_letter_is_kept_and_the_partition_moves_on(
    probe_env: TestEnv, probe: ServiceProcess
):
    """Regression (issue 12, defect 5): a ~1 MiB non-JSON record whose dead letter, with the
    x-dlq-* headers, exceeds the producer's max_request_size was retried without limit and
    stalled the partition. Now: the whole record in Postgres, a truncated copy on the DLQ."""
    probe.start()
    await probe.wait_ready()
    topic = probe_env.topic(PROBE_COMMANDS)
    headers = [("origin", b"test")]
    # As large as the broker takes (message.max.bytes 1,048,588 per batch), so that the same
    # record with the x-dlq-* headers is over the producer's 1,048,576 bytes.
    value = b"not json " + b"x" * 1_048_391
    size = DefaultRecordBatchBuilder.estimate_size_in_bytes(b"big", value, headers)
    assert 1_048_576 - 300 < size <= 1_048_588
    producer = AIOKafkaProducer(
        bootstrap_servers=probe_env.kafka, max_request_size=2 * 1024 * 1024, acks="all"
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"big", headers=headers)
    finally:
        await producer.stop()
    await _command(probe_env, 31, key="big")  # same key, same partition, after the big one

    await eventually(lambda: _has(_effects(probe_env), 31), message="partition moved on")
    dlq = probe_env.topic(dead_letter_topic("probe"))
    letters = await wait_for_records(probe_env.kafka, dlq, lambda seen: len(seen) >= 1)
    (letter,) = letters
    assert letter.headers["x-dlq-truncated"] == "true"
    assert letter.headers["x-dlq-reason"] == "malformed"
    assert letter.headers["x-dlq-original-topic"] == topic
    assert int(letter.headers["x-dlq-original-size"]) == len(value)
    assert "MessageSizeTooLarge" in letter.headers["x-dlq-publish-error"]
    assert len(letter.value) < len(value) and value.startswith(letter.value)
    rows = await _probe_sql(
        probe_env,
        "SELECT id, value, headers, reason FROM dead_letter_overflow WHERE topic = $1",
        topic,
    )
    assert [r["id"] for r in rows] == [int(letter.headers["x-dlq-stored-id"])]
    assert rows[0]["value"] == value, "the whole record is kept"
    assert rows[0]["reason"] == "malformed"
    listed = await list_dead_letters(probe_env.kafka, "probe", prefix=probe_env.prefix)
    assert [d.truncated for d in listed] == [True]
    assert await replay_dead_letters(probe_env.kafka, "probe", prefix=probe_env.prefix) == []
