"""What the handlers of one consumer batch share: they all run in one transaction.

A `Batch` holds the batch's messages in offset order, the position of the one being handled
(so a handler may load what the rest of the batch needs in one statement), typed slots a
service keeps per batch (`BatchKey[T]`, e.g. rows collected to be written together), and the
writes deferred to just before the commit (`before_commit`). A unit of work outside a consumer
(an HTTP request, a scheduler pass) has a batch of its own without messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar, overload

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
        self._slots: dict[BatchKey[Any] | str, Any] = {}
        self._before_commit: dict[Hashable, DeferredWrite] = {}

    @property
    def upcoming(self) -> Sequence[Contract]:
        """The message being handled and those after it."""
        return self.messages[self.position :]

    @overload
    def get(self, key: BatchKey[T]) -> T | None: ...
    @overload
    def get(self, key: str, default: Any = None) -> Any: ...
    def get(self, key: BatchKey[Any] | str, default: Any = None) -> Any:
        if isinstance(key, str) and key in _FIELDS:
            return _FIELDS[key](self)
        return self._slots.get(key, default)

    @overload
    def setdefault(self, key: BatchKey[T], default: T) -> T: ...
    @overload
    def setdefault(self, key: str, default: Any) -> Any: ...
    def setdefault(self, key: BatchKey[Any] | str, default: Any) -> Any:
        return self._slots.setdefault(key, default)

    def set(self, key: BatchKey[T], value: T) -> None:
        self._slots[key] = value

    @overload
    def pop(self, key: BatchKey[T]) -> T | None: ...
    @overload
    def pop(self, key: str, default: Any = None) -> Any: ...
    def pop(self, key: BatchKey[Any] | str, default: Any = None) -> Any:
        return self._slots.pop(key, default)

    # TRANSITIONAL, remove when services/order_intake/handlers.py uses BatchKey slots and
    # `messages` / `position`: the string keys of the untyped dict this class replaced (with
    # the `str` overloads above and `_FIELDS`).
    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._slots[key] = value

    def before_commit(self, key: Hashable, write: DeferredWrite) -> None:
        """Have `write` run once at the end of the transaction, before the outbox rows are
        written (the first registered per key counts): handlers collect rows in a slot and
        `write` stores them with one round trip."""
        self._before_commit.setdefault(key, write)

    async def run_before_commit(self) -> None:
        writes = self._before_commit
        while writes:
            await writes.pop(next(iter(writes)))()


# TRANSITIONAL (see Batch.__getitem__): what the old dict's "messages" and "position" held.
_FIELDS: dict[str, Callable[[Batch], Any]] = {
    "messages": lambda batch: batch.messages or None,
    "position": lambda batch: batch.position,
}
