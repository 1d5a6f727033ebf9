"""The connector's background jobs: send queued pushes, push stock levels (coalesced), poll.

- `send_due_pushes` claims due pushes under `FOR UPDATE SKIP LOCKED`, hands each to its
  account's client and records the outcome in the same transaction: done (with the channel's
  reference), pending again after a backoff or the channel's Retry-After, skipped (the channel
  cannot do it), or dead after `connector_max_attempts` / a refusal for good — with an
  `OperatorAlert`. A fetched order (an id-only webhook) is handed to order-intake as a
  `ChannelOrderReceived` in that transaction. A crash between the channel's answer and the
  commit sends the push again: clients treat "already done" as done.
- `push_due_stock` sends each account's changed levels whose coalescing interval has passed,
  in batches of the client's size: a burst of changes to one SKU becomes one push now and one
  with the last value after the interval.
- `poll_account` asks the channel for orders changed since the cursor (less an overlap), hands
  the versions not handed on before to order-intake (through the outbox) and moves the cursor,
  in one transaction: a restart resumes from the cursor, nothing missed, nothing twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.channel_connector import store
from services.channel_connector.accounts import Account, Accounts
from services.channel_connector.clients import base
from services.channel_connector.domain import (
    PolledOrder,
    PushKind,
    PushStatus,
    RetryPolicy,
    UnmatchedShipment,
    after_failure,
    new_versions,
    next_cursor,
    poll_from,
    quantities_from,
)
from services.channel_connector.http import ChannelApiError
from services.channel_connector.settings import ChannelConnectorSettings
from shared.contracts.channels import ChannelOrderReceived
from shared.contracts.order_intake import OperatorAlert
from shared.platform.outbox import UnitOfWork
from shared.platform.scheduling import repeat
from shared.platform.service import BackgroundJob, Runtime

log = logging.getLogger(__name__)

PUSH_BATCH = 10
NEEDS = {
    PushKind.SHIPMENT: base.Capability.SHIPMENTS,
    PushKind.CANCELLATION: base.Capability.CANCELLATIONS,
    PushKind.REFUND: base.Capability.REFUNDS,
    PushKind.FETCH_ORDER: base.Capability.WEBHOOK_ORDERS,
}
BY_HAND = frozenset({PushKind.CANCELLATION, PushKind.REFUND})
"""Pushes a channel's API cannot take are done by an operator on the channel (alerted)."""
POLLED_HEADER = "x-oms-polled-by"


def retry_policy(settings: ChannelConnectorSettings) -> RetryPolicy:
    return RetryPolicy(
        settings.connector_max_attempts,
        settings.connector_retry_initial_s,
        settings.connector_retry_max_s,
    )


def channel_order_received(account: Account, order: PolledOrder) -> ChannelOrderReceived:
    return ChannelOrderReceived(
        channel=account.channel,
        headers={POLLED_HEADER: account.name},
        payload=order.payload,
    )


def hand_on(uow: UnitOfWork, account: Account, order: PolledOrder) -> None:
    """An order for order-intake, keyed (and correlated) by the channel's id."""
    uow.emit(
        channel_order_received(account, order),
        key=order.external_id,
        correlation_id=f"{account.channel}:{order.external_id}",
    )


# --- pushes ----------------------------------------------------------------------------------


async def _attempt(uow: UnitOfWork, account: Account, push: store.Push) -> str | None:
    """One attempt at a push; returns the channel's reference. Raises what the client raises."""
    if not account.does(NEEDS[push.kind]):
        raise base.NotSupported(f"{account.channel}'s API takes no {push.kind.value}s here")
    payload = push.payload
    client = account.client
    if push.kind is PushKind.SHIPMENT:
        earlier = await store.shipped_before(uow.conn, account.name, str(push.order_id))
        return await client.push_shipment(
            base.ShipmentPush(
                key=push.key,
                order_id=payload["order_id"],
                external_id=payload["external_id"],
                carrier=payload["carrier"],
                tracking_number=payload["tracking_number"],
                tracking_url=payload.get("tracking_url"),
                shipped_at=datetime.fromisoformat(payload["shipped_at"]),
                lines=quantities_from(payload["lines"]),
                earlier=tuple(earlier),
            )
        )
    if push.kind is PushKind.CANCELLATION:
        return await client.cancel_order(
            base.CancellationPush(
                key=push.key,
                order_id=payload["order_id"],
                external_id=payload["external_id"],
                reason=payload["reason"],
                lines=quantities_from(payload["lines"]),
            )
        )
    if push.kind is PushKind.REFUND:
        return await client.refund_order(
            base.RefundPush(
                key=push.key,
                order_id=payload["order_id"],
                external_id=payload["external_id"],
                return_id=payload["return_id"],
                amount=Decimal(payload["amount"]),
                currency=payload["currency"],
                reason=payload["reason"],
            )
        )
    if push.kind is PushKind.FETCH_ORDER:
        order = await client.fetch_order(payload["external_id"])
        await store.remember_order_accounts(
            uow.conn, account.name, account.channel, [order.external_id]
        )
        hand_on(uow, account, order)
        return order.external_id
    raise base.NotSupported(f"unknown push kind {push.kind}")


def _alert(
    uow: UnitOfWork, push: store.Push, error: str, *, kind: str = "channel_push_failed"
) -> None:
    subject = f"order {push.order_id}" if push.order_id else f"{push.kind.value} {push.key}"
    retry = (
        f"; retry it with POST /v1/connectors/pushes/{push.push_id}/retry"
        if kind == "channel_push_failed"
        else ""
    )
    uow.emit(
        OperatorAlert(
            kind=kind,
            message=(
                f"{push.account}: the {push.kind.value} of {subject} could not be sent to the"
                f" channel ({error}){retry}"
            ),
            order_id=push.order_id or push.key,
        ),
        key=push.order_id or push.key,
        correlation_id=push.order_id or f"{push.account}:{push.key}",
    )


async def send_push(
    uow: UnitOfWork, account: Account, push: store.Push, policy: RetryPolicy
) -> PushStatus:
    """One attempt and its outcome recorded (in the caller's transaction)."""
    attempts = push.attempts + 1
    now = datetime.now(UTC)
    try:
        reference = await _attempt(uow, account, push)
    except base.NotSupported as exc:
        await store.finish_push(
            uow.conn, push.push_id, PushStatus.SKIPPED, attempts=attempts, error=str(exc)
        )
        if push.kind in BY_HAND:
            _alert(uow, push, f"{exc}: do it on the channel by hand", kind="channel_action_needed")
        return PushStatus.SKIPPED
    except (ChannelApiError, UnmatchedShipment, ValueError, KeyError) as exc:
        retryable = isinstance(exc, ChannelApiError) and exc.retryable
        retry_after = exc.retry_after_s if isinstance(exc, ChannelApiError) else None
        outcome = after_failure(
            attempts, policy, now, retryable=retryable, retry_after_s=retry_after
        )
        error = f"{type(exc).__name__}: {exc}"[:1000]
        await store.finish_push(
            uow.conn,
            push.push_id,
            outcome.status,
            attempts=attempts,
            error=error,
            next_attempt_at=outcome.next_attempt_at,
        )
        if outcome.status is PushStatus.DEAD:
            log.error(
                "%s push %s is dead after %d attempt(s): %s", push.kind, push.key, attempts, error
            )
            _alert(uow, push, error)
        else:
            log.warning("%s push %s failed (attempt %d): %s", push.kind, push.key, attempts, error)
        return outcome.status
    await store.finish_push(
        uow.conn, push.push_id, PushStatus.DONE, attempts=attempts, reference=reference
    )
    return PushStatus.DONE


async def send_due_pushes(
    runtime: Runtime, accounts: Accounts, policy: RetryPolicy, *, limit: int = PUSH_BATCH
) -> int:
    """Send the due pushes (up to `limit`), each in its own transaction; the number handled."""
    handled = 0
    for _ in range(limit):
        async with runtime.uow() as uow:
            due = await store.claim_due_pushes(uow.conn, accounts.names(), datetime.now(UTC), 1)
            if not due:
                return handled
            push = due[0]
            account = accounts.get(push.account)
            assert account is not None
            await send_push(uow, account, push, policy)
        handled += 1
    return handled


# --- stock -----------------------------------------------------------------------------------


async def push_due_stock(
    runtime: Runtime, account: Account, settings: ChannelConnectorSettings
) -> int:
    """One batch of the account's due stock levels pushed; the number of levels handled."""
    client = account.client
    interval = timedelta(seconds=account.settings.stock_push_interval_s)
    async with runtime.uow() as uow:
        now = datetime.now(UTC)
        due = await store.claim_due_levels(uow.conn, account.name, now, client.stock_batch_size)
        if not due:
            return 0
        changed = [level for level in due if level.quantity != level.pushed_quantity]
        unchanged = [level for level in due if level.quantity == level.pushed_quantity]
        if unchanged:
            # Back to what the channel already has: nothing to send, and no interval started.
            await store.record_levels_pushed(
                uow.conn, account.name, unchanged, pushed_at=now, not_before=now, sent=False
            )
        if not changed:
            return len(due)
        refused: dict[str, str] = {}
        try:
            await client.push_stock(
                [base.StockPush(level.sku, level.quantity) for level in changed]
            )
        except base.StockRefused as exc:
            log.warning("%s: %s", account.name, exc)
            refused = exc.refused
            wait = interval.total_seconds() if exc.retryable else 3600.0
            await store.record_levels_failed(
                uow.conn,
                account.name,
                sorted(refused),
                error=str(exc),
                not_before=now + timedelta(seconds=max(wait, settings.connector_retry_initial_s)),
            )
        except ChannelApiError as exc:
            wait = max(
                interval.total_seconds(),
                exc.retry_after_s or 0.0,
                settings.connector_retry_initial_s if exc.retryable else 0.0,
            )
            log.warning("%s: stock push of %d SKU(s) failed: %s", account.name, len(changed), exc)
            await store.record_levels_failed(
                uow.conn,
                account.name,
                [level.sku for level in changed],
                error=str(exc),
                not_before=now + timedelta(seconds=wait if exc.retryable else 3600),
            )
            return len(due)
        except base.NotSupported as exc:
            await store.record_levels_failed(
                uow.conn,
                account.name,
                [level.sku for level in changed],
                error=str(exc),
                not_before=now + timedelta(days=1),
            )
            return len(due)
        done = datetime.now(UTC)
        taken = [level for level in changed if level.sku not in refused]
        await store.record_levels_pushed(
            uow.conn, account.name, taken, pushed_at=done, not_before=done + interval, sent=True
        )
    return len(due)


# --- polling ---------------------------------------------------------------------------------


async def poll_account(runtime: Runtime, account: Account, overlap: timedelta) -> int:
    """One poll of the account; the number of order versions handed to order-intake.

    The channel is asked outside any transaction (a poll may take minutes at a channel's rate
    limit); what it answered is then handed on and the cursor moved in one transaction, under
    the cursor's lock. Another replica's poll in between only means versions seen twice, which
    are not handed on twice."""
    async with runtime.pool.acquire() as conn:
        cursor_at = await store.cursor_of(conn, account.name)
    started = datetime.now(UTC)
    since = poll_from(
        cursor_at, overlap, started - timedelta(seconds=account.settings.first_poll_lookback_s)
    )
    error: str | None = None
    try:
        polled = await account.client.poll_orders(since)
    except (ChannelApiError, ValueError) as exc:
        log.warning("%s: poll failed: %s", account.name, exc)
        polled, error = [], str(exc)[:1000]
    async with runtime.uow() as uow:
        cursor = await store.lock_cursor(uow.conn, account.name)
        fresh = new_versions(polled, await store.versions_seen(uow.conn, account.name, polled))
        for order in fresh:
            hand_on(uow, account, order)
        await store.remember_versions(uow.conn, account.name, fresh)
        await store.remember_order_accounts(
            uow.conn, account.name, account.channel, sorted({o.external_id for o in fresh})
        )
        await store.save_cursor(
            uow.conn,
            account.name,
            next_cursor(cursor.cursor_at, fresh),
            started,
            len(fresh),
            error,
        )
    return len(fresh)


# --- the jobs --------------------------------------------------------------------------------


def poll_overlap(settings: ChannelConnectorSettings) -> timedelta:
    return timedelta(seconds=settings.connector_poll_overlap_s)


def background_jobs(settings: ChannelConnectorSettings, accounts: Accounts) -> list[BackgroundJob]:
    policy = retry_policy(settings)
    overlap = poll_overlap(settings)
    jobs: list[BackgroundJob] = []

    async def pushes(runtime: Runtime) -> None:
        await repeat(
            lambda: send_due_pushes(runtime, accounts, policy),
            interval_s=settings.connector_send_interval_s,
            name="push sender",
            full_batch=PUSH_BATCH,
        )

    jobs.append(pushes)
    for account in accounts:
        if account.does(base.Capability.STOCK):
            jobs.append(_stock_job(settings, account))
        if account.does(base.Capability.POLL_ORDERS):
            jobs.append(_poll_job(account, overlap))
    return jobs


def _stock_job(settings: ChannelConnectorSettings, account: Account) -> BackgroundJob:
    async def stock(runtime: Runtime) -> None:
        await repeat(
            lambda: push_due_stock(runtime, account, settings),
            interval_s=settings.connector_send_interval_s,
            name=f"{account.name} stock pusher",
            full_batch=account.client.stock_batch_size,
        )

    return stock


def _poll_job(account: Account, overlap: timedelta) -> BackgroundJob:
    async def poll(runtime: Runtime) -> None:
        await repeat(
            lambda: poll_account(runtime, account, overlap),
            interval_s=account.settings.poll_interval_s,
            name=f"{account.name} poller",
        )

    return poll
