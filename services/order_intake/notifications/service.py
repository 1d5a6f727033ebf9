"""Customer notifications: recorded in the consumer's transaction, sent after it committed.

- The handler of `CustomerNotification` (on `oms.notifications.v1`) renders the e-mail and
  records it in `notifications`, keyed by the message id, in the consumer's transaction: a
  redelivered message is dropped by the inbox and could not insert a second row anyway.
- The sender (a background task) claims up to `BATCH` due rows under `FOR UPDATE SKIP LOCKED`,
  sends them one by one, and records every outcome with one statement in the same transaction.
  Replicas never send the same row concurrently. Delivery is at-least-once: a crash after the
  SMTP server accepted a mail and before the commit sends the batch's mails again on restart
  (with the same Message-ID headers); nothing is sent twice otherwise.
- A failed send is retried with exponential backoff up to `notification_max_attempts`, then
  marked `failed`. A customer without an e-mail address is `skipped`. With `smtp_enabled` off
  (the default, e.g. under `make run`) the e-mail is only logged as "would send" and marked
  `logged`.
- Logs never carry the customer's e-mail or postal address: only the kind, the order and the
  notification id (and the SMTP error's class and code on failure).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.order_intake.notifications import store
from services.order_intake.notifications.mailer import Mailer, SmtpMailer, describe_failure
from services.order_intake.notifications.rendering import render
from services.order_intake.settings import OrderIntakeSettings
from shared.contracts.order_intake import CustomerNotification
from shared.envelope import Envelope
from shared.platform.consumer import Handler
from shared.platform.outbox import UnitOfWork
from shared.platform.service import Runtime

log = logging.getLogger(__name__)

BATCH = 50


async def record_notification(
    uow: UnitOfWork, envelope: Envelope, message: CustomerNotification
) -> None:
    order = await store.order_for_notification(uow.conn, message.order_id)
    email = render(message.kind, message.order_id, message.customer, message.data, order)
    await store.insert_notification(
        uow.conn,
        envelope.message_id,
        message.order_id,
        message.kind,
        message.customer.email,
        email.subject,
        email.body,
    )


def notification_handlers() -> dict[str, Handler]:
    return {CustomerNotification.TYPE: record_notification}


async def send_due_notifications(
    pool: asyncpg.Pool, settings: OrderIntakeSettings, mailer: Mailer, limit: int = BATCH
) -> int:
    """Send what is due, up to `limit` in one transaction; the number handled."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await store.claim_due_notifications(conn, datetime.now(UTC), limit)
        outcomes = [
            (row["notification_id"], *await _deliver(row, settings, mailer)) for row in rows
        ]
        await store.finish_attempts(conn, outcomes)
    return len(rows)


async def _deliver(
    row: dict[str, Any], settings: OrderIntakeSettings, mailer: Mailer
) -> tuple[str, str | None, datetime | None]:
    """Send one notification: (status, error, retry at), the status `pending` again with the
    time to retry when it is retried later."""
    notification_id = row["notification_id"]
    if not row["recipient"]:
        log.info(
            "%s notification %s for order %s skipped: no e-mail address",
            row["kind"],
            notification_id,
            row["order_id"],
        )
        return "skipped", "no e-mail address", None
    if not settings.smtp_enabled:
        log.info(
            "would send %s e-mail %s for order %s (SMTP disabled): %s",
            row["kind"],
            notification_id,
            row["order_id"],
            row["subject"],
        )
        return "logged", None, None
    try:
        await mailer.send(row["recipient"], row["subject"], row["body"], str(notification_id))
    except Exception as exc:
        error = describe_failure(exc)
        attempts = row["attempts"] + 1
        if attempts >= settings.notification_max_attempts:
            log.error(
                "%s e-mail %s for order %s failed for good after %d attempts: %s",
                row["kind"],
                notification_id,
                row["order_id"],
                attempts,
                error,
            )
            return "failed", error, None
        delay = min(settings.notification_retry_initial_s * 2 ** (attempts - 1), 3600.0)
        log.warning(
            "%s e-mail %s for order %s failed (attempt %d, retry in %.0fs): %s",
            row["kind"],
            notification_id,
            row["order_id"],
            attempts,
            delay,
            error,
        )
        return "pending", error, datetime.now(UTC) + timedelta(seconds=delay)
    log.info("sent %s e-mail %s for order %s", row["kind"], notification_id, row["order_id"])
    return "sent", None, None


def notification_sender(
    settings: OrderIntakeSettings, mailer: Mailer | None = None
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    chosen: Mailer = mailer or SmtpMailer.from_settings(settings)

    async def send_notifications(runtime: Runtime) -> None:
        while True:
            try:
                handled = await send_due_notifications(runtime.pool, settings, chosen)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notification pass failed")
                handled = 0
            if handled < BATCH:
                await asyncio.sleep(settings.notification_poll_interval_s)

    return send_notifications
