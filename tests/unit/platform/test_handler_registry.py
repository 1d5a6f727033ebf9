"""One way to register a service's message handlers, with batch hooks."""

from __future__ import annotations

from typing import Any

import pytest

from shared.contracts.inventory import AvailabilityChanged, ChannelAvailabilityChanged
from shared.platform.handlers import HandlerRegistry
from shared.platform.outbox import UnitOfWork


def _recording(calls: list[str], name: str) -> Any:
    async def handle(uow: UnitOfWork, envelope: Any, message: Any) -> None:
        calls.append(name)

    return handle


def _flushing(calls: list[str]) -> Any:
    async def flush(uow: UnitOfWork) -> None:
        calls.append("flush")

    return flush


async def test_handlers_by_message_type_with_a_hook_run_first():
    calls: list[str] = []
    registry = HandlerRegistry()
    registry.register(_recording(calls, "totals"), AvailabilityChanged)
    registry.register(
        _recording(calls, "channel"), ChannelAvailabilityChanged, after=_flushing(calls)
    )
    assert set(registry) == {AvailabilityChanged.TYPE, ChannelAvailabilityChanged.TYPE}
    assert len(registry) == 2

    uow = UnitOfWork(conn=None, service="test")
    await registry[AvailabilityChanged.TYPE](uow, None, None)
    await registry[ChannelAvailabilityChanged.TYPE](uow, None, None)
    assert calls == ["totals", "flush", "channel"]


async def test_include_takes_another_registry_or_a_mapping():
    calls: list[str] = []
    inner = HandlerRegistry()
    inner.register(_recording(calls, "totals"), AvailabilityChanged)
    registry = HandlerRegistry()
    registry.include(inner, after=_flushing(calls))
    registry.include({ChannelAvailabilityChanged.TYPE: _recording(calls, "channel")})
    uow = UnitOfWork(conn=None, service="test")
    for message_type in registry:
        await registry[message_type](uow, None, None)
    assert calls == ["flush", "totals", "channel"]


def test_two_handlers_for_one_type_are_refused():
    registry = HandlerRegistry()
    registry.register(_recording([], "a"), AvailabilityChanged)
    with pytest.raises(ValueError, match="two handlers"):
        registry.register(_recording([], "b"), AvailabilityChanged)
