"""PayPal behind the payment gateway interface: Orders v2 with intent AUTHORIZE, Payments v2 for
capture, void and refund, through PayPal's official Python SDK (`paypal-server-sdk`).

The flow. The shop front creates a PayPal order (`POST /v2/checkout/orders`, `intent:
AUTHORIZE`) and the buyer approves it in PayPal's UI; the order's id is the `token` our
AuthorizePayment carries. Then, here:

- authorise: the order is read (`GET /v2/checkout/orders/{id}`) and must be for the amount and
  currency asked; `POST /v2/checkout/orders/{id}/authorize` authorises it. Our reference is the
  authorization's id.
- capture: `POST /v2/payments/authorizations/{id}/capture` with the amount (the authorization's
  currency) and `final_capture: false` — one capture per shipment; PayPal closes the
  authorization itself once all of it is captured.
- void: `POST /v2/payments/authorizations/{id}/void`.
- refund: a refund refers to a capture, ours to the authorization. The captures and refunds are
  read from PayPal (authorization -> its order -> `purchase_units[0].payments`), not kept here,
  so the gateway holds no state; the amount is spread over the captures oldest first
  (`paypal_rules.plan_refund`), one `POST /v2/payments/captures/{id}/refund` per capture, each
  tagged `custom_id` = our idempotency key so that a retry counts what is already refunded.

Every POST carries `PayPal-Request-Id` = our idempotency key: PayPal answers a repeated id with
the first answer. A 401 gets a fresh OAuth token (client credentials, cached by the SDK until
shortly before it expires) and one retry; a 429 is retried after its Retry-After a bounded
number of times; a 5xx, 408/409, a timeout or a broken connection raise `GatewayTimeout` (the
retry, with the same request id, tells what happened). A 4xx with a definite answer is a decline
with PayPal's issue as code (`paypal_rules.decline_code`).

The SDK is synchronous (requests): each call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import requests
from apimatic_core.exceptions.auth_validation_exception import AuthValidationException
from paypalserversdk.configuration import Configuration, Server
from paypalserversdk.exceptions.api_exception import ApiException
from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials
from paypalserversdk.models.capture_request import CaptureRequest
from paypalserversdk.models.money import Money
from paypalserversdk.models.refund_request import RefundRequest
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient
from pydantic import BaseModel, SecretStr

from services.payment import paypal_rules as rules
from services.payment.gateway import GatewayResult, GatewayTimeout
from services.payment.paypal_rules import CaptureBalance, PayPalError

log = logging.getLogger(__name__)

SANDBOX_API_BASE = "https://api-m.sandbox.paypal.com"
LIVE_API_BASE = "https://api-m.paypal.com"

# PayPal's order ids: upper-case letters and digits, at most 36 (Orders v2 reference).
_ORDER_ID = re.compile(r"^[A-Z0-9]{1,36}$")
_CAPTURED_STATUSES = frozenset({"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"})
_REFUND_COUNTS = frozenset({"COMPLETED", "PENDING"})
_AUTHORIZED_STATUSES = frozenset({"CREATED", "PENDING", "PARTIALLY_CAPTURED", "CAPTURED"})


class PayPalSettings(BaseModel):
    """Credentials of a PayPal REST app (developer.paypal.com -> Apps & Credentials) and where
    to call: the sandbox or live API base."""

    client_id: str
    client_secret: SecretStr
    api_base: str = SANDBOX_API_BASE
    timeout_s: float = 15.0
    # 429s retried after their Retry-After (each wait capped), then GatewayTimeout.
    rate_limit_retries: int = 3
    max_retry_after_s: float = 10.0
    # A token is renewed this long before PayPal says it expires.
    token_clock_skew_s: int = 60


class PayPalUnavailable(GatewayTimeout):
    """PayPal could not be asked (no token, rate limited, 5xx): retried like a timeout."""


class _Configuration(Configuration):  # type: ignore[misc]
    """The SDK knows only PayPal's two hosts; this one calls the configured base (a local
    double in the tests)."""

    def __init__(self, api_base: str, **kwargs: Any) -> None:
        self._api_base = api_base.rstrip("/")
        super().__init__(**kwargs)

    def get_base_uri(self, server: Any = Server.DEFAULT) -> str:
        return self._api_base


class PayPalGateway:
    """The PaymentGateway protocol on PayPal (see the module docstring)."""

    def __init__(
        self,
        settings: PayPalSettings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._token: Any = None
        self._currencies: dict[str, str] = {}
        credentials = ClientCredentialsAuthCredentials(
            o_auth_client_id=settings.client_id,
            o_auth_client_secret=settings.client_secret.get_secret_value(),
            o_auth_on_token_update=self._remember_token,
            o_auth_clock_skew=settings.token_clock_skew_s,
        )
        self._client = PaypalServersdkClient(
            config=_Configuration(
                settings.api_base,
                timeout=settings.timeout_s,
                max_retries=0,  # retries are ours: same request id, bounded, Retry-After
                client_credentials_auth_credentials=credentials,
            )
        )

    async def aclose(self) -> None:
        session = getattr(self._client.config.http_client, "session", None)
        if session is not None:
            await asyncio.to_thread(session.close)

    # --- the gateway operations --------------------------------------------------------------

    async def authorize(
        self, idempotency_key: str, amount: Decimal, currency: str, token: str
    ) -> GatewayResult:
        if not _ORDER_ID.match(token):
            return GatewayResult.decline("invalid_token", "not a PayPal order id")
        order = await self._send(
            "authorize", idempotency_key, lambda: self._client.orders.get_order({"id": token})
        )
        if isinstance(order, PayPalError):
            return _declined(order)
        refused = _check_order(order, amount, currency)
        if refused is not None:
            return refused
        authorized = await self._send(
            "authorize",
            idempotency_key,
            lambda: self._client.orders.authorize_order(
                {
                    "id": token,
                    "paypal_request_id": rules.request_id(idempotency_key),
                    "prefer": "return=representation",
                }
            ),
        )
        if isinstance(authorized, PayPalError):
            return _declined(authorized)
        authorizations = _payments(authorized).get("authorizations") or []
        if not authorizations:
            return GatewayResult.decline("no_authorization", "PayPal returned no authorization")
        authorization = authorizations[-1]
        status = authorization.get("status")
        if status not in _AUTHORIZED_STATUSES:
            return GatewayResult.decline(
                "authorization_denied", f"PayPal's authorization is {status}"
            )
        self._currencies[authorization["id"]] = authorization["amount"]["currency_code"]
        return GatewayResult.approve(authorization["id"])

    async def capture(self, idempotency_key: str, reference: str, amount: Decimal) -> GatewayResult:
        currency = await self._currency_of(idempotency_key, reference)
        if isinstance(currency, PayPalError):
            return _declined(currency)
        try:
            value = rules.money(amount, currency)
        except rules.AmountNotRepresentable as exc:
            return GatewayResult.decline("invalid_amount", str(exc))
        body = CaptureRequest(
            amount=Money(currency_code=value["currency_code"], value=value["value"]),
            final_capture=False,
        )
        captured = await self._send(
            "capture",
            idempotency_key,
            lambda: self._client.payments.capture_authorized_payment(
                {
                    "authorization_id": reference,
                    "paypal_request_id": rules.request_id(idempotency_key),
                    "prefer": "return=representation",
                    "body": body,
                }
            ),
        )
        if isinstance(captured, PayPalError):
            return _declined(captured)
        if captured.get("status") not in ("COMPLETED", "PENDING"):
            return GatewayResult.decline(
                "capture_declined", f"PayPal's capture is {captured.get('status')}"
            )
        return GatewayResult.approve(captured["id"])

    async def void(self, idempotency_key: str, reference: str) -> GatewayResult:
        voided = await self._send(
            "void",
            idempotency_key,
            lambda: self._client.payments.void_payment(
                {
                    "authorization_id": reference,
                    "paypal_request_id": rules.request_id(idempotency_key),
                }
            ),
        )
        if isinstance(voided, PayPalError):
            return _declined(voided)
        return GatewayResult.approve(reference)

    async def refund(self, idempotency_key: str, reference: str, amount: Decimal) -> GatewayResult:
        authorization = await self._authorization(idempotency_key, reference)
        if isinstance(authorization, PayPalError):
            return _declined(authorization)
        order_id = (
            (authorization.get("supplementary_data") or {}).get("related_ids", {}).get("order_id")
        )
        if not order_id:
            return GatewayResult.decline("unknown_reference", "the authorization names no order")
        order = await self._send(
            "refund", idempotency_key, lambda: self._client.orders.get_order({"id": order_id})
        )
        if isinstance(order, PayPalError):
            return _declined(order)
        payments = _payments(order)
        currency = authorization["amount"]["currency_code"]
        plan = rules.plan_refund(amount, _balances(payments, idempotency_key))
        if plan.refused is not None:
            return GatewayResult.decline(plan.refused, "more than was captured and not refunded")
        refund_ids = [
            r["id"] for r in payments.get("refunds") or [] if r.get("custom_id") == idempotency_key
        ]
        for piece in plan.pieces:
            refunded = await self._refund_piece(idempotency_key, piece, currency)
            if isinstance(refunded, PayPalError):
                # Pieces already refunded stay (PayPal has them, tagged with the key): a retry
                # of the key counts them and refunds only the rest.
                return _declined(refunded)
            refund_ids.append(refunded["id"])
        return GatewayResult.approve(",".join(refund_ids))

    # --- helpers -----------------------------------------------------------------------------

    async def _refund_piece(
        self, idempotency_key: str, piece: rules.RefundPiece, currency: str
    ) -> dict[str, Any] | PayPalError:
        value = rules.money(piece.amount, currency)
        body = RefundRequest(
            amount=Money(currency_code=value["currency_code"], value=value["value"]),
            custom_id=idempotency_key[:127],
        )
        return await self._send(
            "refund",
            idempotency_key,
            lambda: self._client.payments.refund_captured_payment(
                {
                    "capture_id": piece.capture_id,
                    "paypal_request_id": rules.refund_request_id(idempotency_key, piece.capture_id),
                    "prefer": "return=representation",
                    "body": body,
                }
            ),
        )

    async def _authorization(
        self, idempotency_key: str, authorization_id: str
    ) -> dict[str, Any] | PayPalError:
        authorization = await self._send(
            "read authorization",
            idempotency_key,
            lambda: self._client.payments.get_authorized_payment(
                {"authorization_id": authorization_id}
            ),
        )
        if not isinstance(authorization, PayPalError):
            self._currencies[authorization_id] = authorization["amount"]["currency_code"]
        return authorization

    async def _currency_of(self, idempotency_key: str, authorization_id: str) -> str | PayPalError:
        if authorization_id not in self._currencies:
            authorization = await self._authorization(idempotency_key, authorization_id)
            if isinstance(authorization, PayPalError):
                return authorization
        return self._currencies[authorization_id]

    def _remember_token(self, token: Any) -> None:
        self._token = token

    def _expire_token(self) -> None:
        """PayPal refused the token before its time (revoked, or clocks apart): the SDK fetches
        a new one on the next call."""
        if self._token is not None:
            self._token.expiry = 0

    async def _send(
        self, operation: str, idempotency_key: str, call: Callable[[], Any]
    ) -> dict[str, Any] | PayPalError:
        """One SDK call in a worker thread: the answer's JSON body, or PayPal's definite
        refusal; raises GatewayTimeout when the outcome is unknown or PayPal is unavailable."""
        refreshed = False
        rate_limited = 0
        while True:
            try:
                response = await asyncio.to_thread(call)
            except ApiException as exc:
                status = int(exc.response_code)
                error = PayPalError.from_body(status, _json(exc.response.text))
                if status == 401 and not refreshed:
                    refreshed = True
                    self._expire_token()
                    continue
                if status == 429 and rate_limited < self._settings.rate_limit_retries:
                    rate_limited += 1
                    await self._sleep(self._retry_after(exc.response.headers))
                    continue
                if status in (401, 429) or rules.is_ambiguous(status):
                    log.warning(
                        "PayPal %s answered %s on %s (debug id %s)",
                        operation,
                        status,
                        idempotency_key,
                        error.debug_id,
                    )
                    raise PayPalUnavailable(operation, idempotency_key) from None
                return error
            except AuthValidationException:
                # The token endpoint refused or failed: bad credentials or PayPal down.
                log.error(
                    "PayPal: no OAuth token for %s (check the client id and secret)", operation
                )
                raise PayPalUnavailable(operation, idempotency_key) from None
            except requests.RequestException as exc:
                log.warning("PayPal %s on %s: %s", operation, idempotency_key, type(exc).__name__)
                raise GatewayTimeout(operation, idempotency_key) from None
            body = _json(response.text)
            return body if isinstance(body, dict) else {}

    def _retry_after(self, headers: Any) -> float:
        raw = headers.get("Retry-After") if headers is not None else None
        try:
            seconds = float(raw) if raw is not None else 1.0
        except ValueError:
            seconds = 1.0
        return max(0.0, min(seconds, self._settings.max_retry_after_s))


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _declined(error: PayPalError) -> GatewayResult:
    return GatewayResult.decline(rules.decline_code(error), rules.decline_reason(error))


def _payments(order: dict[str, Any]) -> dict[str, Any]:
    units = order.get("purchase_units") or [{}]
    payments = units[0].get("payments") or {}
    return payments if isinstance(payments, dict) else {}


def _check_order(order: dict[str, Any], amount: Decimal, currency: str) -> GatewayResult | None:
    """The approved order must be the one we are asked to authorise."""
    if order.get("intent") != "AUTHORIZE":
        return GatewayResult.decline(
            "order_intent_not_authorize", "the PayPal order was created to capture at once"
        )
    units = order.get("purchase_units") or []
    if len(units) != 1:
        return GatewayResult.decline("order_mismatch", "the PayPal order has several units")
    ordered = units[0].get("amount") or {}
    if (
        ordered.get("currency_code") != currency.upper()
        or rules.parse_money(str(ordered.get("value", "0"))) != amount
    ):
        return GatewayResult.decline(
            "order_mismatch",
            f"the PayPal order is for {ordered.get('value')} {ordered.get('currency_code')},"
            f" not {amount} {currency.upper()}",
        )
    return None


def _balances(payments: dict[str, Any], idempotency_key: str) -> list[CaptureBalance]:
    refunded: dict[str, Decimal] = {}
    by_this_refund: dict[str, Decimal] = {}
    for refund in payments.get("refunds") or []:
        if refund.get("status") not in _REFUND_COUNTS:
            continue
        capture_id = _refunded_capture(refund)
        value = rules.parse_money(refund["amount"]["value"])
        refunded[capture_id] = refunded.get(capture_id, Decimal(0)) + value
        if refund.get("custom_id") == idempotency_key:
            by_this_refund[capture_id] = by_this_refund.get(capture_id, Decimal(0)) + value
    return [
        CaptureBalance(
            capture_id=capture["id"],
            captured=rules.parse_money(capture["amount"]["value"]),
            refunded=refunded.get(capture["id"], Decimal(0)),
            refunded_by_this_refund=by_this_refund.get(capture["id"], Decimal(0)),
        )
        for capture in payments.get("captures") or []
        if capture.get("status") in _CAPTURED_STATUSES
    ]


def _refunded_capture(refund: dict[str, Any]) -> str:
    """The capture a refund belongs to: its `up` link ends in /captures/{id}."""
    for link in refund.get("links") or []:
        if link.get("rel") == "up" and "/captures/" in link.get("href", ""):
            return str(link["href"]).rstrip("/").rsplit("/", 1)[-1]
    return ""
