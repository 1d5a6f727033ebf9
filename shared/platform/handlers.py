"""The one way a service registers its message handlers.

A service builds one `HandlerRegistry` (in its app's `build`, with what its handlers need passed
in) and hands it to its ServiceSpec; the consumer reads it as a mapping of message type to
handler. A group of handlers may be registered with `after=`: a batch hook run first in the same
transaction, e.g. writing what earlier messages of the consumer batch deferred to the commit, so
that these handlers read it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from shared.envelope import Contract, Envelope
from shared.platform.consumer import Handler
from shared.platform.outbox import UnitOfWork

BatchHook = Callable[[UnitOfWork], Awaitable[None]]


def _after(hook: BatchHook, handler: Handler) -> Handler:
    async def handle(uow: UnitOfWork, envelope: Envelope, message: Any) -> None:
        await hook(uow)
        await handler(uow, envelope, message)

    return handle


class HandlerRegistry(Mapping[str, Handler]):
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(
        self, handler: Handler, *contracts: type[Contract], after: BatchHook | None = None
    ) -> None:
        """`handler` applies the messages of these contracts; `after`: a hook run first."""
        self.include({contract.TYPE: handler for contract in contracts}, after=after)

    def include(self, handlers: Mapping[str, Handler], *, after: BatchHook | None = None) -> None:
        """Every handler of another registry (or mapping of message type to handler)."""
        for message_type, handler in handlers.items():
            if message_type in self._handlers:
                raise ValueError(f"two handlers for {message_type}")
            self._handlers[message_type] = handler if after is None else _after(after, handler)

    def __getitem__(self, message_type: str) -> Handler:
        return self._handlers[message_type]

    def __iter__(self) -> Iterator[str]:
        return iter(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)
