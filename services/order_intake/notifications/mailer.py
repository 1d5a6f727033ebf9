"""Sending one e-mail over SMTP (stdlib smtplib, run in a worker thread)."""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

from services.order_intake.settings import OrderIntakeSettings


class Mailer(Protocol):
    async def send(self, recipient: str, subject: str, body: str, message_id: str) -> None: ...


@dataclass(frozen=True)
class SmtpMailer:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_s: float = 10

    @classmethod
    def from_settings(cls, settings: OrderIntakeSettings) -> SmtpMailer:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_sender,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
            timeout_s=settings.smtp_timeout_s,
        )

    async def send(self, recipient: str, subject: str, body: str, message_id: str) -> None:
        """Send one text e-mail. `message_id` becomes its Message-ID (the notification id), so a
        resend after a crash carries the same id and mail clients can tell it is a repeat."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = recipient
        message["Subject"] = subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = f"<{message_id}@oms>"
        message.set_content(body)
        await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


def describe_failure(exc: BaseException) -> str:
    """The failure without the recipient's address (smtplib puts it in some messages)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__} {exc.smtp_code}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in exc.recipients.values()})
        return f"SMTPRecipientsRefused {codes}"
    return type(exc).__name__
