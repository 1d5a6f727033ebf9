"""`make chaos`: the benchmark under failure. While the orders flow, a controller SIGKILLs a
random service process every few seconds and starts it again, crashes the Kafka broker once
(SIGKILL, at a third of the orders sent) and Postgres once (`pg_ctl -m immediate`, at two
thirds). Then the usual correctness check, widened for a run where orders may legitimately end
cancelled or parked (`check_chaos`): every order terminal or parked with a reason, nothing
charged twice, captured = the value of what shipped, refunded <= captured, stock conserved, no
reservation left for a terminal order, every dead letter explained.

Loopback only (the local Kafka and Postgres, the services on 127.0.0.1) and bounded: the
controller stops when every order settled (or the run gave up waiting).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from bench.checks import Check, OrderRow
from bench.system import ServiceProcess, Services
from devtools import localinfra
from shared.platform.settings import OpsSettings

TERMINAL = frozenset({"COMPLETED", "REJECTED", "CANCELLED"})
PARKED = "NEEDS_ATTENTION"


@dataclass(frozen=True)
class ChaosEvent:
    at_s: float  # since the controller started
    kind: str  # kill | kafka_crash | postgres_crash
    target: str
    down_s: float


@dataclass
class Chaos:
    """Kills and restarts until stopped; Kafka is crashed when `progress()` (the share of
    orders settled, 0..1) passes a third, Postgres when it passes two thirds."""

    services: Services
    progress: Callable[[], float]
    kill_every_s: float = 5.0
    seed: int = 1
    events: list[ChaosEvent] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        rng = random.Random(self.seed)
        started = time.monotonic()
        next_kill = started + self.kill_every_s
        kafka_done = postgres_done = False
        settings = OpsSettings()
        while not self._stop.is_set():
            now = time.monotonic()
            crash: tuple[str, Callable[[int], None], int] | None = None
            if not kafka_done and self.progress() >= 1 / 3:
                kafka_done = True
                crash = ("kafka", localinfra.crash_kafka, settings.kafka_port)
            elif not postgres_done and self.progress() >= 2 / 3:
                postgres_done = True
                crash = ("postgres", localinfra.crash_postgres, settings.pg_port)
            if crash is not None:
                name, action, port = crash
                try:
                    await self._timed(
                        started, f"{name}_crash", name, asyncio.to_thread(action, port)
                    )
                except Exception as exc:  # recorded, and the kills go on
                    self.failures.append(f"{name} crash/restart failed: {exc!r}")
            elif now >= next_kill:
                victim = rng.choice(self.services.processes)
                pause = rng.uniform(0.2, 2.0)
                await self._timed(started, "kill", victim.name, _kill(victim, pause))
                next_kill = time.monotonic() + self.kill_every_s * rng.uniform(0.5, 1.5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.2)

    async def _timed(
        self, started: float, kind: str, target: str, action: Coroutine[Any, Any, Any]
    ) -> None:
        began = time.monotonic()
        await action
        self.events.append(
            ChaosEvent(round(began - started, 1), kind, target, round(time.monotonic() - began, 2))
        )

    def summary(self) -> dict[str, Any]:
        kills: dict[str, int] = {}
        for event in self.events:
            if event.kind == "kill":
                service = event.target.split("#")[0]
                kills[service] = kills.get(service, 0) + 1
        return {
            "kills": sum(kills.values()),
            "kills_by_service": kills,
            "kafka_restarts": sum(e.kind == "kafka_crash" for e in self.events),
            "postgres_restarts": sum(e.kind == "postgres_crash" for e in self.events),
            "controller_failures": self.failures,
            "events": [asdict(e) for e in self.events],
        }


async def _kill(process: ServiceProcess, pause_s: float) -> None:
    if process.alive():
        assert process.process is not None
        process.process.kill()  # SIGKILL: no shutdown, no flush, no commit
        await asyncio.to_thread(process.process.wait)
    await asyncio.sleep(pause_s)
    process.start()


# --- the check after a chaos run ---------------------------------------------------------------


@dataclass(frozen=True)
class ChaosPayment:
    order_id: str
    captured_total: Decimal
    refunded_total: Decimal


@dataclass(frozen=True)
class DeadLetter:
    service: str
    reason: str | None
    error: str | None
    original: str


def check_chaos(
    submitted: Iterable[str],
    orders: Mapping[str, OrderRow],
    payments: Sequence[ChaosPayment],
    shipped_value: Mapping[str, Decimal],
    open_reservations: Mapping[str, int],
    dead_letters: Sequence[DeadLetter],
) -> Check:
    """`shipped_value`: per order, the part of its total its shipped fulfilments stand for (the
    captures the saga asked for); `open_reservations`: units each order still holds."""
    check = Check("chaos invariants")
    submitted = set(submitted)
    lost = sorted(submitted - set(orders))
    if lost:
        check.problem(f"{len(lost)} accepted orders lost", lost)
    by_external: dict[str, list[str]] = {}
    for order in orders.values():
        if order.external_id:
            by_external.setdefault(order.external_id, []).append(order.order_id)
    duplicated = sorted(ext for ext, ids in by_external.items() if len(ids) > 1)
    if duplicated:
        check.problem(f"{len(duplicated)} orders created twice", duplicated)
    unsettled = sorted(
        o.order_id for o in orders.values() if o.status not in TERMINAL and o.status != PARKED
    )
    if unsettled:
        check.problem(f"{len(unsettled)} orders neither terminal nor parked", unsettled)
    silent = sorted(o.order_id for o in orders.values() if o.status == PARKED and not o.reason)
    if silent:
        check.problem(f"{len(silent)} parked orders without a reason", silent)
    paid: dict[str, list[ChaosPayment]] = {}
    for payment in payments:
        paid.setdefault(payment.order_id, []).append(payment)
    twice = sorted(order_id for order_id, held in paid.items() if len(held) > 1)
    if twice:
        check.problem(f"{len(twice)} orders with more than one payment", twice)
    wrong_capture = []
    over_refunded = []
    for order_id, held in paid.items():
        captured = sum((p.captured_total for p in held), Decimal(0))
        refunded = sum((p.refunded_total for p in held), Decimal(0))
        known = orders.get(order_id)
        if known is not None and known.status != PARKED:
            expected = shipped_value.get(order_id, Decimal(0))
            if captured != expected:
                wrong_capture.append(f"{order_id}: captured {captured}, shipped {expected}")
        if refunded > captured:
            over_refunded.append(order_id)
    if wrong_capture:
        check.problem(
            f"{len(wrong_capture)} settled orders whose capture is not what shipped", wrong_capture
        )
    if over_refunded:
        check.problem(f"{len(over_refunded)} orders refunded more than captured", over_refunded)
    leaked = sorted(
        f"{order_id}: {units}"
        for order_id, units in open_reservations.items()
        if units and orders.get(order_id) and orders[order_id].status in TERMINAL
    )
    if leaked:
        check.problem(f"{len(leaked)} terminal orders still hold reservations", leaked)
    unexplained = [d for d in dead_letters if not d.reason or not d.error]
    if unexplained:
        check.problem(
            f"{len(unexplained)} dead letters without a reason or error",
            [f"{d.service}: {d.original}" for d in unexplained],
        )
    statuses: dict[str, int] = {}
    for order in orders.values():
        statuses[order.status] = statuses.get(order.status, 0) + 1
    check.facts.update(
        {
            "orders": len(orders),
            "lost": len(lost),
            "duplicated": len(duplicated),
            "parked": statuses.get(PARKED, 0),
            "cancelled": statuses.get("CANCELLED", 0),
            "completed": statuses.get("COMPLETED", 0),
            "dead_letters": len(dead_letters),
        }
    )
    return check
