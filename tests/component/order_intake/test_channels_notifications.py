"""Customer notifications: recorded with the consumer's transaction, sent after it over SMTP to
a real in-process SMTP server (aiosmtpd); never twice, never the address in the logs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from services.order_intake.app import build
from services.order_intake.notifications.mailer import SmtpMailer
from services.order_intake.notifications.service import send_due_notifications
from services.order_intake.settings import OrderIntakeSettings
from shared.contracts.common import Customer
from shared.contracts.order_intake import CustomerNotification
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra
from tests.support.services import free_port
from tests.unit.channels import payloads
from tests.unit.channels.mailbox import Mailbox, smtp_server, text_of

pytestmark = pytest.mark.component

ADA = "ada@example.com"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as server:
        yield server


def settings_for(mailbox: Mailbox, **overrides: Any) -> OrderIntakeSettings:
    values: dict[str, Any] = {
        "shopify_webhook_secret": SecretStr(payloads.SHOPIFY_SECRET),
        "smtp_enabled": True,
        "smtp_host": mailbox.host,
        "smtp_port": mailbox.port,
        "smtp_sender": "orders@shop.example.com",
        "notification_retry_initial_s": 60,
        "notification_max_attempts": 2,
        **overrides,
    }
    return OrderIntakeSettings(**values)


@pytest.fixture
async def intake(infra: Infra, mailbox: Mailbox) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build(settings_for(mailbox))):
        yield harness


@contextlib.contextmanager
def service_logs() -> Iterator[list[str]]:
    """The messages the OMS's own loggers write (the app replaces pytest's log handler)."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.name.startswith("services."):
                lines.append(record.getMessage())

    handler = Keep(logging.INFO)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def settings_of(intake: ComponentHarness) -> OrderIntakeSettings:
    settings = intake.spec.settings
    assert isinstance(settings, OrderIntakeSettings)
    return settings


async def send(intake: ComponentHarness, settings: OrderIntakeSettings | None = None) -> int:
    chosen = settings or settings_of(intake)
    return await send_due_notifications(intake.pool, chosen, SmtpMailer.from_settings(chosen))


async def place_shopify_order(intake: ComponentHarness) -> str:
    raw = payloads.body(payloads.shopify_order())
    async with intake.http() as client:
        response = await client.post(
            "/v1/channels/shopify/orders", content=raw, headers=payloads.shopify_headers(raw)
        )
    assert response.status_code == 202, response.text
    order_id: str = response.json()["order_id"]
    return order_id


def notice(order_id: str, kind: str, email: str | None = ADA, **data: Any) -> CustomerNotification:
    return CustomerNotification(
        order_id=order_id,
        kind=kind,
        customer=Customer(email=email, name="Ada Lovelace"),
        data=data,
    )


async def statuses(intake: ComponentHarness) -> list[tuple[str, str, int]]:
    rows = await intake.fetch(
        "SELECT kind, status, attempts FROM notifications ORDER BY created_at"
    )
    return [(r["kind"], r["status"], r["attempts"]) for r in rows]


async def test_confirmation_is_sent_once_with_the_order_details(
    intake: ComponentHarness, mailbox: Mailbox
):
    order_id = await place_shopify_order(intake)
    envelope = await intake.deliver(
        notice(order_id, "confirmed", total="59.44", currency="EUR"), correlation_id=order_id
    )
    await intake.deliver(notice(order_id, "x"), correlation_id=order_id, envelope=envelope)
    assert await statuses(intake) == [("confirmed", "pending", 0)]
    assert mailbox.received == [], "nothing is sent inside the consumer's transaction"

    with service_logs() as logged:
        assert await send(intake) == 1
        assert await send(intake) == 0
    [(recipients, message)] = mailbox.received
    assert recipients == [ADA]
    assert message["Subject"] == f"Your order {order_id} is confirmed"
    assert message["From"] == "orders@shop.example.com"
    assert message["Message-ID"] == f"<{envelope.message_id}@oms>"
    body = text_of(message)
    assert "Hello Ada Lovelace," in body
    assert "2 x MUG-1 at 12.50 EUR = 25.00 EUR" in body
    assert "1 x TSHIRT-M at 20.00 EUR = 20.00 EUR" in body
    assert "Total:    59.44 EUR" in body
    assert "Invalidenstraße 116" in body
    assert await statuses(intake) == [("confirmed", "sent", 1)]
    assert any(order_id in line for line in logged)
    assert not any(ADA in line or "Invalidenstraße" in line for line in logged)


async def test_rejection_and_shipping_notices_say_why_and_where(
    intake: ComponentHarness, mailbox: Mailbox
):
    order_id = await place_shopify_order(intake)
    await intake.deliver(
        notice(
            order_id,
            "rejected",
            reason="unknown_sku: NOPE-1",
            short_lines=[{"sku": "NOPE-1", "line_id": "l1", "requested": 1, "available": 0}],
        ),
        correlation_id=order_id,
    )
    await intake.deliver(
        notice(order_id, "shipped", fulfilment_id="f1", carrier="dhl", tracking_number="JJD42"),
        correlation_id=order_id,
    )
    await intake.deliver(notice(order_id, "delayed", stage="shipping"), correlation_id=order_id)
    assert await send(intake) == 3
    by_subject = {str(m["Subject"]): text_of(m) for _, m in mailbox.received}
    assert "we do not sell NOPE-1" in by_subject[f"We could not accept your order {order_id}"]
    shipped = by_subject[f"Your order {order_id} has shipped"]
    assert "dhl" in shipped and "JJD42" in shipped
    assert "shipping is taking longer" in by_subject[f"Your order {order_id} is delayed"]


async def test_without_smtp_it_only_logs_would_send(infra: Infra, mailbox: Mailbox):
    async for intake in start_harness(infra, build(settings_for(mailbox, smtp_enabled=False))):
        await intake.deliver(notice("ord_x", "delivered", fulfilment_id="f1"), correlation_id="o")
        with service_logs() as logged:
            assert await send(intake) == 1
        assert mailbox.received == []
        assert await statuses(intake) == [("delivered", "logged", 1)]
        assert any("would send delivered e-mail" in line for line in logged)
        assert not any(ADA in line for line in logged)


async def test_a_customer_without_an_address_is_skipped(intake: ComponentHarness, mailbox: Mailbox):
    await intake.deliver(notice("ord_y", "confirmed", email=None), correlation_id="ord_y")
    assert await send(intake) == 1
    assert mailbox.received == []
    assert await statuses(intake) == [("confirmed", "skipped", 1)]


async def test_an_unreachable_mail_server_is_retried_later_then_given_up(
    intake: ComponentHarness, mailbox: Mailbox
):
    await intake.deliver(notice("ord_z", "confirmed"), correlation_id="ord_z")
    unreachable = settings_of(intake).model_copy(update={"smtp_port": free_port()})
    assert await send(intake, unreachable) == 1
    [row] = await intake.fetch(
        "SELECT status, attempts, last_error, next_attempt_at > now() AS later FROM notifications"
    )
    assert (row["status"], row["attempts"], row["later"]) == ("pending", 1, True)
    assert row["last_error"] == "ConnectionRefusedError"
    assert await send(intake, unreachable) == 0, "not due again before its backoff"
    await intake.pool.execute("UPDATE notifications SET next_attempt_at = now()")
    assert await send(intake, unreachable) == 1
    assert await statuses(intake) == [("confirmed", "failed", 2)]
    assert mailbox.received == []
