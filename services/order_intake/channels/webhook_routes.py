"""`POST /v1/channels/{channel}/orders`: a sales channel's order webhook, or a polled marketplace
order, in the channel's own payload (DESIGN.md §9).

Answers (JSON):
- 202 a new order (`outcome` created) or a cancellation applied / recorded before its order,
  or an order edit applied (`edit_applied`) or asked of fulfilment (`edit_requested`);
- 200 an order edit refused (`edit_refused`, `reason` says why: picking started, shipped, a
  line change): recorded on the order's timeline with an operator alert, and not worth a
  retry by the channel;
- 200 a repeat of a delivery or of an order already received (`duplicate` true, same
  `order_id`), an ignored delivery (a status the OMS does not act on), a WooCommerce ping;
- 400 malformed JSON, 422 a payload that does not map (the error names the field), 401 a bad
  or missing signature, 404 an unknown channel, 413 a body over `max_body_bytes`, 409 a channel
  cancellation the saga refuses (the order shipped), 503 a signed channel without a secret.
Every refused request is kept raw in `rejected_requests` for an operator.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.order_intake.channels.adapters.base import NewOrder, lower_keys
from services.order_intake.channels.service import (
    Outcome,
    find_adapter,
    kept_headers,
    read_delivery,
    take_in,
)
from services.order_intake.dependencies import IntakeDep
from services.order_intake.operators.admission import OVERLOADED_RESPONSE
from services.order_intake.rejected_requests.refusal import BODY_REFUSALS, IntakeRefused
from shared.platform.auth import Permission, Principal, token_if_present
from shared.platform.errors import ApiError
from shared.platform.openapi import json_body

router = APIRouter(prefix="/v1", tags=["channels"])


class ChannelOrderAnswer(BaseModel):
    channel: str
    outcome: str
    external_id: str | None = None
    order_id: str | None = None
    status: str | None = None
    duplicate: bool = False
    reason: str | None = None


@router.post(
    "/channels/{channel}/orders",
    status_code=202,
    response_model=ChannelOrderAnswer,
    openapi_extra=json_body("the channel's own order payload, exactly as the channel sends it"),
    responses={
        200: {"description": "a repeat delivery (same order_id), or a delivery ignored"},
        **BODY_REFUSALS,
        401: {
            "description": "missing or wrong webhook signature, or no token for a polled channel"
        },
        403: {"description": "the token is not for this channel"},
        404: {"description": "unknown channel"},
        409: {"description": "a channel cancellation refused: the order has shipped"},
        422: {"description": "the payload does not map to an order (the error names the field)"},
        **OVERLOADED_RESPONSE,
        503: {"description": "the channel's webhook secret is not configured"},
    },
)
async def receive_channel_order(
    channel: str,
    request: Request,
    intake: IntakeDep,
    principal: Principal | None = token_if_present(Permission.CHANNEL_ORDERS),
) -> JSONResponse:
    """A channel's order webhook (Shopify, WooCommerce: proven by their HMAC signature, always)
    or a polled marketplace order (Amazon SP-API, eBay Fulfillment API: the seller's poller
    proves itself with a `channel:<name>` token). A token, when sent, must be for this
    channel."""
    refusals, policy = intake.refusals, intake.policy
    raw = await intake.read_body()
    headers = lower_keys(request.headers)
    try:
        adapter = find_adapter(channel)
    except IntakeRefused as refused:
        raise await refusals.error(refused, raw, kept_headers(headers)) from refused
    if principal is not None and not principal.may_act_for_channel(channel):
        raise ApiError(
            403,
            "forbidden",
            f"this token may not post orders for channel {channel}",
            permission=str(Permission.CHANNEL_ORDERS),
        )
    if principal is None and adapter.signature_header is None:
        raise ApiError(
            401,
            "unauthenticated",
            f"{channel} orders come from the seller's poller: a channel:{channel} token is needed",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if adapter.is_ping is not None and adapter.is_ping(raw, headers):
        return JSONResponse(
            ChannelOrderAnswer(channel=channel, outcome="ping_acknowledged").model_dump(),
            status_code=200,
        )
    try:
        result = read_delivery(adapter, intake.settings, headers, raw, signature_required=True)
    except IntakeRefused as refused:
        raise await refusals.error(refused, raw, kept_headers(headers)) from refused
    if isinstance(result, NewOrder):
        intake.admit()  # cancellations and updates still pass while orders are refused
    try:
        async with intake.runtime.uow() as uow:
            outcome = await take_in(uow, policy, adapter, headers, raw, result)
    except asyncpg.UniqueViolationError:
        # The same order stored at the same moment by another path (the native API, Kafka):
        # this delivery is then a repeat of it.
        async with intake.runtime.uow() as uow:
            outcome = await take_in(uow, policy, adapter, headers, raw, result)
    if outcome.kind == "created" and not outcome.duplicate:
        intake.accepted()
    return _answer(channel, outcome)


def _answer(channel: str, outcome: Outcome) -> JSONResponse:
    if outcome.kind == "cancel_refused":
        raise ApiError(
            409,
            outcome.refusal.get("code", "cancel_refused"),
            outcome.refusal.get("message", "the order can no longer be cancelled"),
            order_id=outcome.order_id,
            order_status=outcome.status,
        )
    fresh = not outcome.duplicate and outcome.kind in {
        "created",
        "cancel_requested",
        "cancel_recorded",
        "edit_applied",
        "edit_requested",
    }
    body: dict[str, Any] = ChannelOrderAnswer(
        channel=channel,
        outcome=outcome.kind,
        external_id=outcome.external_id,
        order_id=outcome.order_id,
        status=outcome.status,
        duplicate=outcome.duplicate,
        reason=outcome.reason,
    ).model_dump()
    return JSONResponse(body, status_code=202 if fresh else 200)
