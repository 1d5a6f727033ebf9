"""The connector's HTTP API: what it is doing for each account (cursors, stock levels, pushes),
an operator's retry of a dead push and poll-now, and the endpoint for channels whose webhooks
carry only an order id (the order is fetched through the API, then handed to order-intake)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from services.channel_connector import store, workers
from services.channel_connector.accounts import Account, Accounts
from services.channel_connector.clients.base import Capability, NotSupported, WebhookRefused
from services.channel_connector.domain import PushKind
from services.channel_connector.settings import ChannelConnectorSettings
from shared.platform.auth import Permission, requires, token_if_present
from shared.platform.errors import ApiError
from shared.platform.openapi import json_body
from shared.platform.service import RuntimeDep

MAX_WEBHOOK_BYTES = 256 * 1024


class AccountView(BaseModel):
    name: str
    channel: str
    capabilities: list[str]
    cursor_at: datetime | None = None
    polled_at: datetime | None = None
    orders_handed_on: int = 0
    last_poll_error: str | None = None


class PushView(BaseModel):
    push_id: int
    account: str
    kind: str
    key: str
    order_id: str | None
    status: str
    attempts: int
    last_error: str | None
    channel_reference: str | None
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime
    payload: dict[str, Any]


class StockLevelView(BaseModel):
    account: str
    sku: str
    quantity: int
    pushed_quantity: int | None
    pushed_at: datetime | None
    push_count: int
    last_error: str | None


class AccountList(BaseModel):
    accounts: list[AccountView]


class PushList(BaseModel):
    pushes: list[PushView]


class StockLevelList(BaseModel):
    levels: list[StockLevelView]


class PollAnswer(BaseModel):
    account: str
    handed_on: int


class WebhookAnswer(BaseModel):
    account: str
    queued: list[str]


def _push_view(push: store.Push) -> PushView:
    return PushView(
        push_id=push.push_id,
        account=push.account,
        kind=push.kind.value,
        key=push.key,
        order_id=push.order_id,
        status=push.status.value,
        attempts=push.attempts,
        last_error=push.last_error,
        channel_reference=push.channel_reference,
        created_at=push.created_at,
        updated_at=push.updated_at,
        next_attempt_at=push.next_attempt_at,
        payload=push.payload,
    )


def router_for(accounts: Accounts, settings: ChannelConnectorSettings) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["channel connector"])

    def account_named(name: str) -> Account:
        account = accounts.get(name)
        if account is None:
            raise ApiError(
                404, "unknown_account", f"no connector account {name!r}", field="account"
            )
        return account

    @router.get(
        "/connectors",
        response_model=AccountList,
        dependencies=[requires(Permission.ORDERS_READ)],
    )
    async def list_accounts(runtime: RuntimeDep) -> AccountList:
        """The accounts this connector serves, what each does, and where each poll is."""
        async with runtime.pool.acquire() as conn:
            by_account = {c.account: c for c in await store.cursors(conn)}
        views = []
        for account in accounts:
            cursor = by_account.get(account.name)
            views.append(
                AccountView(
                    name=account.name,
                    channel=account.channel,
                    capabilities=sorted(c.value for c in Capability if account.does(c)),
                    cursor_at=cursor.cursor_at if cursor else None,
                    polled_at=cursor.polled_at if cursor else None,
                    orders_handed_on=cursor.orders_seen if cursor else 0,
                    last_poll_error=cursor.last_error if cursor else None,
                )
            )
        return AccountList(accounts=views)

    @router.get(
        "/connectors/pushes",
        response_model=PushList,
        dependencies=[requires(Permission.ORDERS_READ)],
    )
    async def list_pushes(
        runtime: RuntimeDep,
        status: Annotated[str | None, Query(pattern="^(pending|done|dead|skipped)$")] = None,
        kind: Annotated[
            str | None, Query(pattern="^(shipment|cancellation|refund|fetch_order)$")
        ] = None,
        order_id: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> PushList:
        """Shipments, cancellations, refunds and order fetches for the channels, newest first."""
        async with runtime.pool.acquire() as conn:
            found = await store.list_pushes(
                conn, status=status, kind=kind, order_id=order_id, limit=limit
            )
        return PushList(pushes=[_push_view(push) for push in found])

    @router.post(
        "/connectors/pushes/{push_id}/retry",
        response_model=PushView,
        dependencies=[requires(Permission.ORDERS_OPERATE)],
        responses={
            404: {"description": "no such push"},
            409: {"description": "the push is not dead"},
        },
    )
    async def retry_push(push_id: int, runtime: RuntimeDep) -> PushView:
        """Send a dead push again (its attempts start over), with the account as configured now."""
        async with runtime.uow() as uow:
            retried = await store.retry_dead_push(uow.conn, push_id)
            if retried is None:
                existing = await store.get_push(uow.conn, push_id)
                if existing is None:
                    raise ApiError(404, "push_not_found", f"no push {push_id}", field="push_id")
                raise ApiError(409, "push_not_dead", f"push {push_id} is {existing.status.value}")
        return _push_view(retried)

    @router.get(
        "/connectors/stock",
        response_model=StockLevelList,
        dependencies=[requires(Permission.STOCK_READ)],
    )
    async def list_stock(
        runtime: RuntimeDep,
        account: Annotated[str | None, Query(max_length=64)] = None,
        sku: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> StockLevelList:
        """The stock level of each SKU per account, what the channel was last told and when."""
        async with runtime.pool.acquire() as conn:
            rows = await store.stock_levels(conn, account, sku, limit)
        return StockLevelList(levels=[StockLevelView(**row.__dict__) for row in rows])

    @router.post(
        "/connectors/{account}/poll",
        response_model=PollAnswer,
        dependencies=[requires(Permission.ORDERS_OPERATE)],
        responses={
            404: {"description": "no such account"},
            409: {"description": "the account is not polled"},
        },
    )
    async def poll_now(account: str, runtime: RuntimeDep) -> PollAnswer:
        """Poll the account's channel now (as its poller does every poll interval)."""
        found = account_named(account)
        if not found.does(Capability.POLL_ORDERS):
            raise ApiError(409, "not_polled", f"account {account} is not polled", field="account")
        handed_on = await workers.poll_account(runtime, found, workers.poll_overlap(settings))
        return PollAnswer(account=account, handed_on=handed_on)

    @router.post(
        "/connectors/{account}/webhooks",
        response_model=WebhookAnswer,
        openapi_extra=json_body("the channel's webhook, exactly as the channel sends it"),
        responses={
            400: {"description": "malformed: the delivery names no order"},
            401: {"description": "the delivery's signature or secret does not match"},
            404: {"description": "no such account"},
            409: {"description": "the account's channel sends no order webhooks here"},
            413: {"description": "the body is too large"},
        },
    )
    async def receive_webhook(
        account: str,
        request: Request,
        runtime: RuntimeDep,
        principal: Any = token_if_present(Permission.CHANNEL_ORDERS),
    ) -> WebhookAnswer:
        """An id-only order webhook (BigCommerce's `store/order/*`): verified by the channel's
        client, its order queued to be fetched through the API and handed to order-intake."""
        found = account_named(account)
        if not found.does(Capability.WEBHOOK_ORDERS):
            raise ApiError(
                409, "no_webhooks", f"{found.channel} sends no order webhooks", field="account"
            )
        raw = await request.body()
        if len(raw) > MAX_WEBHOOK_BYTES:
            raise ApiError(413, "too_large", "the webhook body is too large")
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            order_ids = found.client.webhook_order_ids(headers, raw)
        except WebhookRefused as exc:
            raise ApiError(401, "invalid_signature", str(exc)) from exc
        except NotSupported as exc:
            raise ApiError(409, "no_webhooks", str(exc), field="account") from exc
        except ValueError as exc:
            raise ApiError(400, "malformed_webhook", str(exc)) from exc
        delivery = hashlib.sha256(raw).hexdigest()[:16]
        async with runtime.uow() as uow:
            for order_id in order_ids:
                await store.enqueue_push(
                    uow.conn,
                    found.name,
                    PushKind.FETCH_ORDER,
                    f"{order_id}:{delivery}",
                    {"external_id": order_id},
                )
        return WebhookAnswer(account=account, queued=order_ids)

    return router
