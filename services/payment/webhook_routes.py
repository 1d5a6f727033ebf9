"""`POST /v1/payments/webhooks/stripe`: Stripe's events, proven by their signature."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import stripe
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from services.payment import webhooks
from services.payment.settings import PaymentSettings
from shared.platform.auth import Permission, Principal, token_if_present
from shared.platform.errors import ApiError
from shared.platform.openapi import json_body
from shared.platform.service import RuntimeDep, service_settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["payment"])
Settings = Annotated[PaymentSettings, Depends(service_settings(PaymentSettings))]

SIGNATURE_HEADER = "Stripe-Signature"


class WebhookAnswer(BaseModel):
    event_id: str
    type: str
    duplicate: bool = Field(description="true: this event was handled before; nothing changed")
    applied: int = Field(
        description="refunds, disputes and 3-D Secure outcomes recorded from this event"
    )


def _verified_event(raw: bytes, signature: str | None, settings: PaymentSettings) -> Any:
    secret = settings.stripe_webhook_secret
    if secret is None:
        # Nothing can verify: refused like a wrong signature (Stripe's dashboard shows the
        # failures), and said in the log for the operator.
        log.warning("a Stripe webhook arrived but OMS_STRIPE_WEBHOOK_SECRET is not set")
        raise ApiError(
            400,
            "invalid_signature",
            "no Stripe webhook signing secret is configured (OMS_STRIPE_WEBHOOK_SECRET)",
        )
    try:
        return stripe.Webhook.construct_event(
            raw,
            signature or "",
            secret.get_secret_value(),
            tolerance=settings.stripe_webhook_tolerance_s,
        )
    except stripe.SignatureVerificationError as exc:
        raise ApiError(
            400,
            "invalid_signature",
            f"the {SIGNATURE_HEADER} header is missing, stale or does not verify",
        ) from exc
    except ValueError as exc:
        raise ApiError(400, "malformed_json", f"the body is not a Stripe event: {exc}") from exc


@router.post(
    "/payments/webhooks/stripe",
    response_model=WebhookAnswer,
    openapi_extra=json_body("a Stripe event, exactly as Stripe sends it, signed"),
    responses={
        400: {
            "description": "invalid_signature (Stripe-Signature missing, stale or wrong, or "
            "OMS_STRIPE_WEBHOOK_SECRET not set: nothing changes) or malformed_json"
        },
        401: {"description": "a token was sent that does not verify"},
        403: {"description": "a token was sent without payment_events:post"},
    },
)
async def stripe_webhook(
    runtime: RuntimeDep,
    settings: Settings,
    request: Request,
    principal: Principal | None = token_if_present(Permission.PAYMENT_EVENTS),
) -> WebhookAnswer:
    """A Stripe event, always verified against the endpoint's signing secret (a token, if one
    is sent, must carry payment_events:post but does not replace the signature). Refunds made
    outside the OMS (Stripe's dashboard) are recorded on the payment and announced as
    PaymentRefundedExternally; a dispute is recorded and announced as PaymentDisputed; a
    PaymentIntent that waited for 3-D Secure and is now `requires_capture`
    (`payment_intent.amount_capturable_updated`) is authorised (PaymentAuthorized), one that
    failed or was cancelled (`payment_intent.payment_failed` / `.canceled`) declined; other
    events are acknowledged and ignored. The same event delivered again changes nothing."""
    raw = await request.body()
    event = _verified_event(raw, request.headers.get(SIGNATURE_HEADER), settings)
    document = event.to_dict()
    event_id, event_type = str(document.get("id") or ""), str(document.get("type") or "")
    if not event_id:
        raise ApiError(400, "malformed_json", "the Stripe event has no id", field="id")
    actions = webhooks.stripe_actions(document)
    async with runtime.uow() as uow:
        recorded = await webhooks.record(uow, "stripe", event_id, event_type, actions)
    return WebhookAnswer(
        event_id=event_id,
        type=event_type,
        duplicate=recorded.duplicate,
        applied=recorded.applied,
    )
