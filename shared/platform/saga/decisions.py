"""The pure pieces every saga's domain module shares: the `Decision` one input to a saga
returns (the messages to send, the timeline entries to record; a saga may add what else it
tracks) and `Refused`, a request the saga's state does not allow. No I/O: the sagas' domain
modules import it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shared.envelope import Contract

EntryT = TypeVar("EntryT")


@dataclass
class Decision(Generic[EntryT]):
    """What to send and what to record after one saga input."""

    messages: list[Contract] = field(default_factory=list)
    timeline: list[EntryT] = field(default_factory=list)

    def send(self, *messages: Contract) -> None:
        self.messages.extend(messages)


class Refused(Exception):
    """The saga refuses a request (a cancel, an operator or API action); `code` and `message`
    say why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
