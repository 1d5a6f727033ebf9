"""Stripe behind the gateway interface: PaymentIntents with manual capture, through Stripe's
official Python SDK (`stripe`, its `StripeClient` on an httpx client, `*_async` calls).

- authorise: one PaymentIntent created and confirmed (`confirm=true`, `capture_method=manual`)
  with the order's token as its PaymentMethod (`pm_...`, from Stripe.js / Elements) and, when
  OMS_STRIPE_REQUEST_MULTICAPTURE is on, `request_multicapture=if_available`. `requires_capture`
  is an approval (the reference is the PaymentIntent's id); `requires_action` (3-D Secure) is
  "the customer must act" with the PaymentIntent's `client_secret` and `next_action` type (the
  shop front completes it with Stripe.js; the outcome arrives by webhook, services/payment/
  webhooks.py); a card error is a decline with our code (`decline_for`).
- capture: `amount_to_capture` per shipment. When multicapture is available on the charge,
  every capture is sent with `final_capture=false`, so the rest stays capturable for the next
  shipment (real Stripe gives multicapture to IC+ accounts and online Visa, Mastercard, Amex,
  Discover; without it the first capture is final and Stripe releases the rest, so a second
  capture is declined). The decision depends only on the charge, never on what is left, so a
  retry under the same idempotency key sends the same parameters.
- void: the PaymentIntent cancelled. refund: a Refund on the PaymentIntent, any part of it.

Every call carries the OMS idempotency key (`idempotency_key` request option); the SDK's own
retries are off (RetryingGateway retries with the same key). A network error, a 429 or a 5xx
is a `GatewayTimeout` (ambiguous). Caveat: Stripe stores the answer of a request that began to
execute, a 500 included, and replays it for 24 hours under the same key. A wrong API key
raises `StripeNotUsable`: the command is retried, then dead-lettered, rather than declined.

Amounts go in the currency's minor units (gateways/amounts.py: JPY has none, KWD three).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import stripe

from services.payment.gateways.amounts import AmountNotRepresentable, to_minor_units
from services.payment.gateways.base import GatewayResult, GatewayRisk, GatewayTimeout
from services.payment.settings import PaymentSettings

log = logging.getLogger(__name__)

# Stripe's error `code` / `decline_code` -> our decline code (`None`: keep the code Stripe gave).
# Lost, stolen and fraud-flagged cards are answered as a plain decline: Stripe advises never
# telling the customer why (the Stripe code is logged for operators).
_DECLINE_CODES = {
    "insufficient_funds": "insufficient_funds",
    "card_velocity_exceeded": "insufficient_funds",
    "withdrawal_count_limit_exceeded": "insufficient_funds",
    "expired_card": "expired_card",
    "incorrect_cvc": "incorrect_cvc",
    "invalid_cvc": "incorrect_cvc",
    "incorrect_number": "invalid_card",
    "invalid_number": "invalid_card",
    "invalid_expiry_month": "invalid_card",
    "invalid_expiry_year": "invalid_card",
    "incorrect_zip": "incorrect_zip",
    "processing_error": "processing_error",
    "authentication_required": "authentication_required",
    "card_not_supported": "card_not_supported",
    "currency_not_supported": "currency_not_supported",
    "amount_too_small": "invalid_amount",
    "amount_too_large": "invalid_amount",
    "lost_card": "card_declined",
    "stolen_card": "card_declined",
    "pickup_card": "card_declined",
    "fraudulent": "card_declined",
    "merchant_blacklist": "card_declined",
    "generic_decline": "card_declined",
    "do_not_honor": "card_declined",
    "card_declined": "card_declined",
}
_DECLINE_TEXT = {
    "insufficient_funds": "The card has insufficient funds.",
    "expired_card": "The card has expired.",
    "incorrect_cvc": "The card's security code is incorrect.",
    "invalid_card": "The card number or expiry date is invalid.",
    "incorrect_zip": "The card's postal code is incorrect.",
    "processing_error": "The card could not be processed; try again.",
    "authentication_required": "The card needs authentication (3-D Secure) by the customer.",
    "card_not_supported": "The card does not support this purchase.",
    "currency_not_supported": "The card does not support this currency.",
    "invalid_amount": "The amount is outside what the card network accepts.",
    "card_declined": "The card was declined.",
}


def decline_for(code: str | None, decline_code: str | None) -> GatewayResult:
    """Our decline for Stripe's error `code` and the issuer's `decline_code` (the more precise
    of the two wins: `card_declined` + `insufficient_funds` is insufficient_funds)."""
    for candidate in (decline_code, code):
        if candidate and candidate in _DECLINE_CODES:
            ours = _DECLINE_CODES[candidate]
            return GatewayResult.decline(ours, _DECLINE_TEXT[ours])
    unknown = decline_code or code or "card_declined"
    return GatewayResult.decline(unknown, f"Declined by Stripe ({unknown}).")


class StripeNotUsable(RuntimeError):
    """Stripe refused our credentials or permissions: configuration, not the customer's card."""


def _error_codes(error: stripe.StripeError) -> tuple[str | None, str | None]:
    detail = error.error
    return error.code, getattr(detail, "decline_code", None) if detail is not None else None


def _as_result(error: stripe.StripeError, operation: str, idempotency_key: str) -> GatewayResult:
    """A Stripe error as a decline; raises GatewayTimeout when the outcome is unknown (network,
    429, 5xx) and StripeNotUsable for credential errors."""
    if isinstance(error, stripe.APIConnectionError | stripe.RateLimitError):
        raise GatewayTimeout(operation, idempotency_key) from error
    if isinstance(error, stripe.APIError) or (error.http_status or 0) >= 500:
        raise GatewayTimeout(operation, idempotency_key) from error
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        raise StripeNotUsable(f"Stripe refused the API key on {operation}: {error}") from error
    code, decline_code = _error_codes(error)
    log.info(
        "stripe declined %s: code=%s decline_code=%s status=%s",
        operation,
        code,
        decline_code,
        error.http_status,
    )
    if isinstance(error, stripe.CardError):
        return decline_for(code, decline_code)
    if isinstance(error, stripe.IdempotencyError):
        return GatewayResult.decline(
            "idempotency_key_reused", "the idempotency key was used with other parameters"
        )
    if code == "resource_missing":
        return GatewayResult.decline("unknown_reference", "Stripe has no such PaymentIntent")
    return GatewayResult.decline(code or "invalid_request", error.user_message or str(error))


def _multicapture_available(intent: dict[str, Any]) -> bool:
    """Whether the authorisation's charge may be captured several times (the charge expanded)."""
    charge = intent.get("latest_charge")
    if not isinstance(charge, dict):
        return False
    details = (charge.get("payment_method_details") or {}).get("card") or {}
    return bool((details.get("multicapture") or {}).get("status") == "available")


class StripeGateway:
    """`PaymentGateway` over Stripe PaymentIntents (see the module docstring)."""

    name = "stripe"

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str = stripe.DEFAULT_API_BASE,
        timeout_s: float = 30.0,
        request_multicapture: bool = True,
    ) -> None:
        if not api_key:
            raise ValueError("OMS_STRIPE_API_KEY is required for the Stripe gateway")
        self._http = stripe.HTTPXClient(timeout=timeout_s)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base},
            http_client=self._http,
            max_network_retries=0,
        )
        self._request_multicapture = request_multicapture

    @classmethod
    def from_settings(cls, settings: PaymentSettings) -> StripeGateway:
        if settings.stripe_api_key is None:
            raise ValueError("OMS_STRIPE_API_KEY is required: a payment route names stripe")
        return cls(
            settings.stripe_api_key.get_secret_value(),
            api_base=settings.stripe_api_base,
            timeout_s=settings.stripe_timeout_s,
            request_multicapture=settings.stripe_request_multicapture,
        )

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def authorize(
        self, idempotency_key: str, amount: Decimal, currency: str, token: str
    ) -> GatewayResult:
        try:
            minor = to_minor_units(amount, currency)
        except AmountNotRepresentable as exc:
            return GatewayResult.decline("invalid_amount", str(exc))
        params: dict[str, Any] = {
            "amount": minor,
            "currency": currency.lower(),
            "confirm": True,
            "capture_method": "manual",
            # Cards only: no redirect-based method that would need a return_url.
            "payment_method_types": ["card"],
            # The shop front collects the card with Stripe.js / Elements: a PaymentMethod id.
            "payment_method": token,
            # Radar's verdict is on the charge: read it with the answer.
            "expand": ["latest_charge"],
        }
        if self._request_multicapture:
            params["payment_method_options"] = {"card": {"request_multicapture": "if_available"}}
        try:
            intent = await self._client.v1.payment_intents.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            return _as_result(error, "authorize", idempotency_key)
        return _authorization_result(intent.to_dict())

    async def capture(self, idempotency_key: str, reference: str, amount: Decimal) -> GatewayResult:
        try:
            intent = await self._client.v1.payment_intents.retrieve_async(
                reference, {"expand": ["latest_charge"]}
            )
            minor = to_minor_units(amount, intent.currency)
            params: dict[str, Any] = {"amount_to_capture": minor}
            if _multicapture_available(intent.to_dict()):
                params["final_capture"] = False
            captured = await self._client.v1.payment_intents.capture_async(
                reference,
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        except AmountNotRepresentable as exc:
            return GatewayResult.decline("invalid_amount", str(exc))
        except stripe.StripeError as error:
            return _as_result(error, "capture", idempotency_key)
        charge = captured.latest_charge
        charge_id = charge if isinstance(charge, str) else getattr(charge, "id", None)
        return GatewayResult.approve(charge_id or captured.id)

    async def void(self, idempotency_key: str, reference: str) -> GatewayResult:
        try:
            intent = await self._client.v1.payment_intents.cancel_async(
                reference, {}, {"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as error:
            return _as_result(error, "void", idempotency_key)
        return GatewayResult.approve(intent.id)

    async def refund(self, idempotency_key: str, reference: str, amount: Decimal) -> GatewayResult:
        try:
            intent = await self._client.v1.payment_intents.retrieve_async(reference)
            minor = to_minor_units(amount, intent.currency)
            refund = await self._client.v1.refunds.create_async(
                {"payment_intent": reference, "amount": minor},
                {"idempotency_key": idempotency_key},
            )
        except AmountNotRepresentable as exc:
            return GatewayResult.decline("invalid_amount", str(exc))
        except stripe.StripeError as error:
            return _as_result(error, "refund", idempotency_key)
        if refund.status in ("failed", "canceled"):
            code = getattr(refund, "failure_reason", None) or "refund_failed"
            return GatewayResult.decline(code, f"Stripe refused the refund ({code}).")
        return GatewayResult.approve(refund.id)


RADAR_LEVELS = frozenset({"normal", "elevated", "highest"})


def radar_risk(intent: dict[str, Any]) -> GatewayRisk | None:
    """Stripe Radar's verdict on the PaymentIntent's charge (`latest_charge.outcome`), when the
    charge was expanded and Radar assessed it (`not_assessed` / `unknown` tell nothing)."""
    charge = intent.get("latest_charge")
    outcome = charge.get("outcome") if isinstance(charge, dict) else None
    if not isinstance(outcome, dict) or outcome.get("risk_level") not in RADAR_LEVELS:
        return None
    score = outcome.get("risk_score")
    return GatewayRisk(
        str(outcome["risk_level"]), score if isinstance(score, int) and 0 <= score <= 100 else None
    )


def _authorization_result(intent: dict[str, Any]) -> GatewayResult:
    """What a confirmed manual-capture PaymentIntent's status means for the authorisation."""
    status = intent.get("status")
    if status in ("requires_capture", "succeeded"):
        return GatewayResult.approve(str(intent["id"]), radar_risk(intent))
    secret = intent.get("client_secret")
    if status == "requires_action" and isinstance(secret, str) and secret:
        next_action = (intent.get("next_action") or {}).get("type") or "use_stripe_sdk"
        return GatewayResult.requires_customer_action(str(intent["id"]), secret, str(next_action))
    if status == "requires_action":
        # Without a client secret the shop front cannot complete it.
        return decline_for("authentication_required", None)
    error = intent.get("last_payment_error")
    if status == "requires_payment_method" and isinstance(error, dict):
        return decline_for(error.get("code"), error.get("decline_code"))
    # processing, canceled, requires_confirmation: no authorisation we can capture.
    return GatewayResult.decline(f"payment_intent_{status}", f"Stripe answered status {status}.")
