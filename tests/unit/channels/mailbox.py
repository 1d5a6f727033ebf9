"""A real SMTP server in-process (aiosmtpd) that keeps what it receives, for tests."""

from __future__ import annotations

import asyncio
import email
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.services import free_port


@dataclass
class Mailbox:
    host: str = "127.0.0.1"
    port: int = 0
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for rcpt, message in self.received if address in rcpt]

    async def wait_for(
        self, address: str, subject_part: str, timeout_s: float = 60
    ) -> EmailMessage:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for message in self.to(address):
                if subject_part in str(message["Subject"]):
                    return message
            await asyncio.sleep(0.2)
        subjects = [str(m["Subject"]) for _, m in self.received]
        raise AssertionError(f"no e-mail {subject_part!r} to {address}; received: {subjects}")


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    mailbox = Mailbox(port=free_port())
    controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
