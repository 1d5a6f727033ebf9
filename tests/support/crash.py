"""Crash points for component tests: the next batch a harness's consumer handles dies before or
after its database commit, and the consumer handles the message again, as Kafka redelivers it
after a restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.platform import consumer as consumer_module
from tests.support.component import ComponentHarness


class Crash(Exception):
    """Stands in for the process dying at a crash point (the real one is a SIGKILL)."""


class CrashOnce:
    """`crash_once(point)`: the next batch dies at `before_db_commit` (rolled back) or
    `after_db_commit` (committed, offset not): the consumer then handles the message again, as
    Kafka redelivers it after a restart. `crashed`: the points it died at."""

    def __init__(self, harness: ComponentHarness) -> None:
        self.harness = harness
        self.crashed: list[str] = []

    def __call__(self, point: str) -> None:
        self.harness.consumer._crash_point = point

    def crash_now(self, point: str) -> None:
        self.harness.consumer._crash_point = None
        self.crashed.append(point)
        raise Crash(point)


def crash_once_for(
    harness: ComponentHarness, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CrashOnce]:
    """The body of a `crash_once` fixture for one harness."""
    crash = CrashOnce(harness)
    monkeypatch.setattr(consumer_module, "crash_now", crash.crash_now)
    yield crash
    harness.consumer._crash_point = None
