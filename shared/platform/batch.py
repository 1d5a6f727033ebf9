"""What the handlers of one consumer batch share: they all run in one transaction.

A `Batch` holds the batch's messages in offset order, the position of the one being handled
(so a handler may load what the rest of the batch needs in one statement), typed slots a
service keeps per batch (`BatchKey[T]`, e.g. rows collected to be written together), and the
writes deferred to just before the commit (`before_commit`). A unit of work outside a consumer
(an HTTP request, a scheduler pass) has a batch of its own without messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from shared.envelope import Contract

T = TypeVar("T")

DeferredWrite = Callable[[], Awaitable[None]]


class BatchKey(Generic[T]):
    """A typed slot of a batch. The key object itself identifies the slot, so two modules
    never share one by accident; `name` is for reading logs and reprs."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"BatchKey({self.name!r})"


class Batch:
    def __init__(self, messages: Sequence[Contract] = ()) -> None:
        self.messages: Sequence[Contract] = messages
        self.position = 0
        self._slots: dict[BatchKey[Any], Any] = {}
        self._before_commit: dict[Hashable, DeferredWrite] = {}

    @property
    def upcoming(self) -> Sequence[Contract]:
        """The message being handled and those after it."""
        return self.messages[self.position :]

    def get(self, key: BatchKey[T]) -> T | None:
        found: T | None = self._slots.get(key)
        return found

    def setdefault(self, key: BatchKey[T], default: T) -> T:
        found: T = self._slots.setdefault(key, default)
        return found

    def set(self, key: BatchKey[T], value: T) -> None:
        self._slots[key] = value

    def pop(self, key: BatchKey[T]) -> T | None:
        found: T | None = self._slots.pop(key, None)
        return found

    def before_commit(self, key: Hashable, write: DeferredWrite) -> None:
        """Have `write` run once at the end of the transaction, before the outbox rows are
        written (the first registered per key counts): handlers collect rows in a slot and
        `write` stores them with one round trip."""
        self._before_commit.setdefault(key, write)

    async def run_before_commit(self) -> None:
        writes = self._before_commit
        while writes:
            await writes.pop(next(iter(writes)))()
