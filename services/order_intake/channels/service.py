"""Channel intake's service: from a delivery to a stored order and a started saga (or a cancel
request).

Both ingress paths call this module: the webhook endpoint (`webhook_routes`) and the Kafka topic
`oms.channel.orders.v1` (`kafka_ingress`). A delivery goes through:

1. `find_adapter`: the channel's adapter, or an unknown channel refused;
2. `read_delivery`: `check_signature`, the channel's HMAC over the raw body (Shopify,
   WooCommerce), then `prepare`: the body parsed (JSON numbers as exact decimals), mapped by
   the channel's adapter, priced — every refusal here is an `IntakeRefused` naming the field;
3. `take_in` (`ingest`), inside the caller's transaction, under a lock on (channel, external
   order id):
   - a delivery id already answered is answered again the same way (never applied twice);
   - an order already known by (channel, external id) is answered with its order id, unless
     the channel changed it (Shopify `orders/updated`, a polled order seen again with another
     address or other lines): then it is an order edit (`channels/edits.py`, rules in
     domain/edits.py), applied or refused through the saga;
   - a new order is stored and its saga started like a native order; a cancellation that
     arrived before it (webhooks are not ordered) is applied to it at once;
   - a cancellation goes through the saga like `POST /v1/orders/{id}/cancel`; when the saga
     refuses (shipped, waiting for an operator) the refusal is recorded in the order's timeline
     with an operator alert, once, and reported to the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.order_intake.channels import store
from services.order_intake.channels.adapters import ADAPTERS, adapter_for
from services.order_intake.channels.adapters.base import (
    CancelOrder,
    ChannelAdapter,
    ChannelPayloadError,
    ChannelResult,
    Ignored,
    NewOrder,
    parse_json,
    verify_signature,
)
from services.order_intake.channels.edits import take_edit
from services.order_intake.domain import saga as saga_domain
from services.order_intake.domain.order import price
from services.order_intake.domain.pricing import PricingError
from services.order_intake.domain.saga import CancelRefused, SagaPolicy, Status
from services.order_intake.orders import service as order_service
from services.order_intake.orders import store as order_store
from services.order_intake.orders.saga_runner import now, persist
from services.order_intake.rejected_requests.refusal import IntakeRefused
from services.order_intake.settings import OrderIntakeSettings
from shared.contracts.order_intake import OperatorAlert
from shared.platform.outbox import UnitOfWork
from shared.platform.saga import store as saga_store
from shared.platform.saga.store import TimelineRow

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
CANCEL_REFUSED_EVENT = "channel_cancel_refused"


@dataclass(frozen=True)
class Outcome:
    """What a delivery did. `duplicate`: it repeated one already applied (nothing changed)."""

    # created | duplicate | cancel_requested | cancel_recorded | cancel_refused | ignored |
    # edit_applied | edit_requested | edit_refused
    kind: str
    external_id: str | None = None
    order_id: str | None = None
    status: str | None = None
    duplicate: bool = False
    reason: str | None = None
    refusal: dict[str, str] = field(default_factory=dict)


# --- before the transaction ------------------------------------------------------------------


def find_adapter(channel: str) -> ChannelAdapter:
    adapter = adapter_for(channel)
    if adapter is None:
        raise IntakeRefused(
            404,
            "unknown_channel",
            f"unknown channel {channel!r}; channels: {', '.join(sorted(ADAPTERS))}",
        )
    return adapter


def read_delivery(
    adapter: ChannelAdapter,
    settings: OrderIntakeSettings,
    headers: Mapping[str, str],
    raw: bytes,
    *,
    signature_required: bool,
) -> ChannelResult:
    """The delivery's signature checked (see check_signature), then its body mapped."""
    check_signature(adapter, settings, headers, raw, required=signature_required)
    return prepare(adapter, headers, raw, settings)


def webhook_secret(settings: OrderIntakeSettings, channel: str) -> bytes | None:
    secrets = {
        "shopify": settings.shopify_webhook_secret,
        "woocommerce": settings.woocommerce_webhook_secret,
    }
    secret = secrets.get(channel)
    return secret.get_secret_value().encode() if secret is not None else None


def check_signature(
    adapter: ChannelAdapter,
    settings: OrderIntakeSettings,
    headers: Mapping[str, str],
    raw: bytes,
    *,
    required: bool,
) -> None:
    """Verify the channel's signature over the raw body.

    `required` (webhooks): a signed channel's delivery must carry a valid signature. Not
    required (Kafka, whose producers the broker authenticates): a signature that is present is
    still verified, so a forwarded webhook cannot be altered on the way.
    """
    if adapter.signature_header is None:
        return
    given = headers.get(adapter.signature_header)
    if given is None and not required:
        return
    secret = webhook_secret(settings, adapter.name)
    if secret is None:
        if not required:
            return
        raise IntakeRefused(
            503,
            "channel_not_configured",
            f"no webhook secret is configured for {adapter.name}"
            f" (OMS_{adapter.name.upper()}_WEBHOOK_SECRET)",
        )
    if not verify_signature(secret, raw, given):
        raise IntakeRefused(
            401,
            "invalid_signature",
            f"the {adapter.signature_header} signature does not match the body"
            if given
            else f"the {adapter.signature_header} header is missing",
        )


def prepare(
    adapter: ChannelAdapter,
    headers: Mapping[str, str],
    raw: bytes,
    settings: OrderIntakeSettings,
) -> ChannelResult:
    """Parse and map a delivery's body; raises IntakeRefused naming what is wrong."""
    try:
        payload = parse_json(raw)
    except ValueError as exc:
        raise IntakeRefused(400, "malformed_json", f"the body is not JSON: {exc}") from exc
    try:
        result = adapter.parse(payload, headers)
    except ChannelPayloadError as exc:
        raise IntakeRefused(422, exc.code, str(exc), field=exc.field) from exc
    if isinstance(result, NewOrder):
        if len(result.order.lines) > settings.max_order_lines:
            raise IntakeRefused(
                422,
                "too_many_lines",
                f"an order has at most {settings.max_order_lines} lines",
            )
        try:
            price(result.order)  # refuses what cannot be priced (unknown method, too large)
        except PricingError as exc:
            raise IntakeRefused(422, exc.code, str(exc)) from exc
    return result


def raw_request(channel: str, headers: Mapping[str, str], raw: bytes) -> dict[str, Any]:
    """What is kept of a delivery with its order: the exact body and the channel's headers
    (the signature included, so an operator can verify it again)."""
    return {
        "channel": channel,
        "headers": kept_headers(headers),
        "body": raw.decode("utf-8", errors="replace"),
    }


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in _SECRET_HEADERS}


# --- in the transaction ----------------------------------------------------------------------


async def take_in(
    uow: UnitOfWork,
    policy: SagaPolicy,
    adapter: ChannelAdapter,
    headers: Mapping[str, str],
    raw: bytes,
    result: ChannelResult,
) -> Outcome:
    """Ingest a delivery read by read_delivery, keeping its raw request with a new order."""
    delivery_id = headers.get(adapter.delivery_id_header) if adapter.delivery_id_header else None
    request = raw_request(adapter.name, headers, raw)
    return await ingest(uow, policy, adapter.name, result, delivery_id, request)


async def ingest(
    uow: UnitOfWork,
    policy: SagaPolicy,
    channel: str,
    result: ChannelResult,
    delivery_id: str | None,
    request: dict[str, Any],
) -> Outcome:
    conn = uow.conn
    external_id = result.external_id
    if external_id is not None:
        await store.lock_channel_order(conn, channel, external_id)
    if delivery_id is not None:
        known = await store.channel_delivery(conn, channel, delivery_id)
        if known is not None:
            return await _repeat(conn, channel, known)

    if isinstance(result, NewOrder):
        outcome = await _new_order(uow, policy, channel, result, request)
    elif isinstance(result, CancelOrder):
        outcome = await _cancel(uow, policy, channel, result)
    else:
        outcome = await _ignored(conn, channel, result)

    if delivery_id is not None:
        detail: dict[str, Any] = {}
        if outcome.reason:
            detail["reason"] = outcome.reason
        if outcome.refusal:
            detail["refusal"] = outcome.refusal
        await store.record_channel_delivery(
            conn, channel, delivery_id, external_id, outcome.order_id, outcome.kind, detail
        )
    return outcome


async def _new_order(
    uow: UnitOfWork,
    policy: SagaPolicy,
    channel: str,
    result: NewOrder,
    request: dict[str, Any],
) -> Outcome:
    conn = uow.conn
    order = result.order
    early_cancel = await store.take_pending_cancel(conn, channel, result.external_id)
    saga = await order_service.start_order(
        uow, order, price(order), policy, request, early_cancel=early_cancel
    )
    if saga is None:
        existing = await order_store.order_id_for_external_id(conn, channel, result.external_id)
        assert existing is not None
        kind, known, reason = await take_edit(uow, channel, result, existing)
        return Outcome(
            kind,
            result.external_id,
            existing,
            known.status.value,
            duplicate=kind == "duplicate",
            reason=reason,
        )
    return Outcome("created", result.external_id, saga.order_id, saga.status.value)


async def _cancel(
    uow: UnitOfWork, policy: SagaPolicy, channel: str, result: CancelOrder
) -> Outcome:
    conn = uow.conn
    order_id = await order_store.order_id_for_external_id(conn, channel, result.external_id)
    if order_id is None:
        await store.remember_pending_cancel(conn, channel, result.external_id, result.reason)
        return Outcome("cancel_recorded", result.external_id, reason=result.reason)
    saga = await order_store.load_saga(conn, order_id, lock=True)
    assert saga is not None
    status = saga.status
    if status == Status.REJECTED or status in {Status.CANCELLING, Status.CANCELLED}:
        # Nothing left to cancel, or already being cancelled: a repeat, not a new request.
        return Outcome(
            "cancel_requested", result.external_id, order_id, status.value, duplicate=True
        )
    if saga.cancel_requested:
        return Outcome(
            "cancel_requested", result.external_id, order_id, status.value, duplicate=True
        )
    try:
        decision = saga_domain.request_cancel(saga, result.reason, now(), policy)
    except CancelRefused as exc:
        refusal = {"code": exc.code, "message": exc.message}
        if not await order_store.has_timeline_event(conn, order_id, CANCEL_REFUSED_EVENT):
            detail = {"channel": channel, "reason": result.reason, **refusal}
            await saga_store.append_timeline(
                conn,
                order_store.SAGAS,
                [TimelineRow(order_id, status.value, CANCEL_REFUSED_EVENT, detail)],
            )
            uow.emit(
                OperatorAlert(
                    order_id=order_id,
                    kind=CANCEL_REFUSED_EVENT,
                    message=f"{channel} cancelled order {result.external_id}"
                    f" ({order_id}), but {exc.message}",
                ),
                key=order_id,
                correlation_id=order_id,
            )
        return Outcome(
            "cancel_refused", result.external_id, order_id, status.value, refusal=refusal
        )
    await persist(uow, saga, status, decision)
    return Outcome("cancel_requested", result.external_id, order_id, saga.status.value)


async def _ignored(conn: Any, channel: str, result: Ignored) -> Outcome:
    if result.external_id is not None:
        existing = await order_store.order_id_for_external_id(conn, channel, result.external_id)
        if existing is not None:
            return await _known_order(conn, "duplicate", result.external_id, existing)
    return Outcome("ignored", result.external_id, reason=result.reason)


async def _known_order(conn: Any, kind: str, external_id: str | None, order_id: str) -> Outcome:
    saga = await order_store.load_saga(conn, order_id, lock=False)
    status = saga.status.value if saga is not None else None
    return Outcome(kind, external_id, order_id, status, duplicate=True)


async def _repeat(conn: Any, channel: str, known: dict[str, Any]) -> Outcome:
    """The answer to a delivery id seen before: the same outcome, now as a duplicate."""
    external_id = known["external_id"]
    order_id = known["order_id"]
    if order_id is None and external_id is not None:
        order_id = await order_store.order_id_for_external_id(conn, channel, external_id)
    detail = known["detail"] or {}
    status = None
    if order_id is not None:
        saga = await order_store.load_saga(conn, order_id, lock=False)
        status = saga.status.value if saga is not None else None
    return Outcome(
        known["outcome"],
        external_id,
        order_id,
        status,
        duplicate=True,
        reason=detail.get("reason"),
        refusal=detail.get("refusal") or {},
    )
