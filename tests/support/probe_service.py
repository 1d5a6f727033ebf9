"""A test-only service built on the shared platform, used to prove its guarantees.

It consumes `ProbeCommand`s and applies each one as a counted effect, emitting `ProbeDone`; it
also consumes `ProbeDone` and counts how often each one was applied. A command whose `n` is in
the `probe_poison` table fails (a poison message until the row is deleted).

Run as a real process: `python -m tests.support.probe_service` (settings from OMS_* variables).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from shared.envelope import Command, Envelope, Event, register
from shared.platform.handlers import HandlerRegistry
from shared.platform.outbox import UnitOfWork
from shared.platform.service import ServiceSpec, run
from shared.platform.settings import ServiceSettings

PROBE_COMMANDS = "oms.probe.commands.v1"
PROBE_EVENTS = "oms.probe.events.v1"
PROBE_TOPICS = (PROBE_COMMANDS, PROBE_EVENTS)


@register
class ProbeCommand(Command):
    TYPE: ClassVar[str] = "ProbeCommand"
    TOPIC: ClassVar[str] = PROBE_COMMANDS
    n: int


@register
class ProbeDone(Event):
    TYPE: ClassVar[str] = "ProbeDone"
    TOPIC: ClassVar[str] = PROBE_EVENTS
    n: int


class ProbeSettings(ServiceSettings):
    service_name: str = "probe"
    db_schema: str = "probe"
    http_port: int = 8099


async def on_command(uow: UnitOfWork, envelope: Envelope, command: ProbeCommand) -> None:
    poisoned = await uow.conn.fetchval("SELECT true FROM probe_poison WHERE n = $1", command.n)
    if poisoned:
        raise RuntimeError(f"probe command {command.n} is poisoned")
    await uow.conn.execute(
        "INSERT INTO probe_effects (n, applied) VALUES ($1, 1)"
        " ON CONFLICT (n) DO UPDATE SET applied = probe_effects.applied + 1",
        command.n,
    )
    uow.emit(ProbeDone(n=command.n), key=envelope.correlation_id)


async def on_done(uow: UnitOfWork, envelope: Envelope, event: ProbeDone) -> None:
    await uow.conn.execute(
        "INSERT INTO probe_done_seen (message_id, n, applied) VALUES ($1, $2, 1)"
        " ON CONFLICT (message_id) DO UPDATE SET applied = probe_done_seen.applied + 1",
        envelope.message_id,
        event.n,
    )


def build(settings: ProbeSettings | None = None) -> ServiceSpec:
    handlers = HandlerRegistry()
    handlers.register(on_command, ProbeCommand)
    handlers.register(on_done, ProbeDone)
    return ServiceSpec(
        settings=settings or ProbeSettings(),
        title="Probe",
        description="test-only service for the platform guarantees",
        migrations=Path(__file__).with_name("probe_migrations"),
        topics=PROBE_TOPICS,
        handlers=handlers,
    )


if __name__ == "__main__":
    run(build())
