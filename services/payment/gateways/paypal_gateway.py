"""PayPal behind the payment gateway interface: Orders v2 with intent AUTHORIZE, Payments v2 for
capture, void and refund, over PayPal's REST API with httpx (async).

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
the first answer. The OAuth token comes from `POST /v1/oauth2/token` (client credentials, HTTP
basic auth) and is cached until shortly before it expires; a 401 gets a fresh token and one
retry. A 429 is retried after its Retry-After a bounded number of times; a 5xx, 408/409, a
timeout or a broken connection raise `GatewayTimeout` (the retry, with the same request id, tells
what happened). A 4xx with a definite answer is a decline with PayPal's issue as code
(`paypal_rules.decline_code`).

Not PayPal's own SDK (`paypal-server-sdk`): it is synchronous, and its `apimatic-*` dependencies
install a top-level `tests` package into site-packages, which shadows ours and ships in the image.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr

from services.payment.gateways import paypal_rules as rules
from services.payment.gateways.base import GatewayResult, GatewayTimeout
from services.payment.gateways.paypal_rules import CaptureBalance, PayPalError
from services.payment.settings import PaymentSettings

log = logging.getLogger(__name__)

SANDBOX_API_BASE = "https://api-m.sandbox.paypal.com"
LIVE_API_BASE = "https://api-m.paypal.com"

# PayPal's order ids: upper-case letters and digits, at most 36 (Orders v2 reference).
_ORDER_ID = re.compile(r"^[A-Z0-9]{1,36}$")
_CAPTURED_STATUSES = frozenset({"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"})
_REFUND_COUNTS = frozenset({"COMPLETED", "PENDING"})
_AUTHORIZED_STATUSES = frozenset({"CREATED", "PENDING", "PARTIALLY_CAPTURED", "CAPTURED"})
_REPRESENTATION = "return=representation"


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


@dataclass(frozen=True)
class _AccessToken:
    value: str
    renew_at: float  # time.monotonic()


class PayPalGateway:
    """The PaymentGateway protocol on PayPal (see the module docstring)."""

    @classmethod
    def from_settings(cls, settings: PaymentSettings) -> PayPalGateway:
        if settings.paypal_client_id is None or settings.paypal_client_secret is None:
            raise ValueError(
                "OMS_PAYPAL_CLIENT_ID and OMS_PAYPAL_CLIENT_SECRET are required:"
                " a payment route names paypal"
            )
        return cls(
            PayPalSettings(
                client_id=settings.paypal_client_id,
                client_secret=settings.paypal_client_secret,
                api_base=settings.paypal_api_base,
            )
        )

    def __init__(
        self,
        settings: PayPalSettings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._token: _AccessToken | None = None
        self._token_lock = asyncio.Lock()
        self._currencies: dict[str, str] = {}
        self._client = httpx.AsyncClient(
            base_url=settings.api_base.rstrip("/"),
            timeout=settings.timeout_s,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- the gateway operations --------------------------------------------------------------

    async def authorize(
        self, idempotency_key: str, amount: Decimal, currency: str, token: str
    ) -> GatewayResult:
        if not _ORDER_ID.match(token):
            return GatewayResult.decline("invalid_token", "not a PayPal order id")
        order = await self._get("authorize", idempotency_key, f"/v2/checkout/orders/{token}")
        if isinstance(order, PayPalError):
            return _declined(order)
        refused = _check_order(order, amount, currency)
        if refused is not None:
            return refused
        authorized = await self._post(
            "authorize",
            idempotency_key,
            f"/v2/checkout/orders/{token}/authorize",
            request_id=rules.request_id(idempotency_key),
            prefer=_REPRESENTATION,
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
        captured = await self._post(
            "capture",
            idempotency_key,
            f"/v2/payments/authorizations/{_segment(reference)}/capture",
            request_id=rules.request_id(idempotency_key),
            prefer=_REPRESENTATION,
            body={"amount": value, "final_capture": False},
        )
        if isinstance(captured, PayPalError):
            return _declined(captured)
        if captured.get("status") not in ("COMPLETED", "PENDING"):
            return GatewayResult.decline(
                "capture_declined", f"PayPal's capture is {captured.get('status')}"
            )
        return GatewayResult.approve(captured["id"])

    async def void(self, idempotency_key: str, reference: str) -> GatewayResult:
        voided = await self._post(
            "void",
            idempotency_key,
            f"/v2/payments/authorizations/{_segment(reference)}/void",
            request_id=rules.request_id(idempotency_key),
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
        order = await self._get(
            "refund", idempotency_key, f"/v2/checkout/orders/{_segment(order_id)}"
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
        return await self._post(
            "refund",
            idempotency_key,
            f"/v2/payments/captures/{_segment(piece.capture_id)}/refund",
            request_id=rules.refund_request_id(idempotency_key, piece.capture_id),
            prefer=_REPRESENTATION,
            body={
                "amount": rules.money(piece.amount, currency),
                "custom_id": idempotency_key[:127],
            },
        )

    async def _authorization(
        self, idempotency_key: str, authorization_id: str
    ) -> dict[str, Any] | PayPalError:
        authorization = await self._get(
            "read authorization",
            idempotency_key,
            f"/v2/payments/authorizations/{_segment(authorization_id)}",
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

    # --- HTTP ----------------------------------------------------------------------------------

    async def _get(
        self, operation: str, idempotency_key: str, path: str
    ) -> dict[str, Any] | PayPalError:
        return await self._send(operation, idempotency_key, "GET", path, headers={})

    async def _post(
        self,
        operation: str,
        idempotency_key: str,
        path: str,
        *,
        request_id: str,
        prefer: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any] | PayPalError:
        headers = {"PayPal-Request-Id": request_id}
        if prefer is not None:
            headers["Prefer"] = prefer
        return await self._send(operation, idempotency_key, "POST", path, headers, body)

    async def _send(
        self,
        operation: str,
        idempotency_key: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any] | PayPalError:
        """One call: the answer's JSON body, or PayPal's definite refusal; raises GatewayTimeout
        when the outcome is unknown or PayPal is unavailable."""
        refreshed = False
        rate_limited = 0
        while True:
            token = await self._access_token(operation, idempotency_key)
            try:
                response = await self._client.request(
                    method,
                    path,
                    json=body,
                    headers={**headers, "Authorization": f"Bearer {token.value}"},
                )
            except httpx.TransportError as exc:  # timeouts, refused or broken connections
                log.warning("PayPal %s on %s: %s", operation, idempotency_key, type(exc).__name__)
                raise GatewayTimeout(operation, idempotency_key) from None
            status = response.status_code
            if status < 300:
                answer = _json(response)
                return answer if isinstance(answer, dict) else {}
            error = PayPalError.from_body(status, _json(response))
            if status == 401 and not refreshed:
                refreshed = True
                self._forget(token)
                continue
            if status == 429 and rate_limited < self._settings.rate_limit_retries:
                rate_limited += 1
                await self._sleep(self._retry_after(response.headers))
                continue
            if status in (401, 429) or rules.is_ambiguous(status):
                log.warning(
                    "PayPal %s answered %s on %s (debug id %s)",
                    operation,
                    status,
                    idempotency_key,
                    error.debug_id,
                )
                raise PayPalUnavailable(operation, idempotency_key)
            return error

    async def _access_token(self, operation: str, idempotency_key: str) -> _AccessToken:
        """The cached OAuth token, or a new one (one request at a time asks for it)."""
        async with self._token_lock:
            token = self._token
            if token is None or time.monotonic() >= token.renew_at:
                token = self._token = await self._new_token(operation, idempotency_key)
            return token

    async def _new_token(self, operation: str, idempotency_key: str) -> _AccessToken:
        asked = time.monotonic()
        try:
            response = await self._client.post(
                "/v1/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(self._settings.client_id, self._settings.client_secret.get_secret_value()),
            )
        except httpx.TransportError as exc:
            log.warning("PayPal token for %s: %s", operation, type(exc).__name__)
            raise GatewayTimeout(operation, idempotency_key) from None
        answer = _json(response)
        if response.status_code != 200 or not isinstance(answer, dict):
            error = PayPalError.from_body(response.status_code, answer)
            # Bad credentials, or PayPal down: either way nothing can be asked.
            log.error(
                "PayPal: no OAuth token for %s, %s %s (check the client id and secret)",
                operation,
                response.status_code,
                error.name,
            )
            raise PayPalUnavailable(operation, idempotency_key)
        try:
            value = str(answer["access_token"])
            lifetime = float(answer.get("expires_in", 0))
        except (KeyError, TypeError, ValueError):
            log.error("PayPal: the token answer for %s has no access_token", operation)
            raise PayPalUnavailable(operation, idempotency_key) from None
        return _AccessToken(value, asked + lifetime - self._settings.token_clock_skew_s)

    def _forget(self, token: _AccessToken) -> None:
        """PayPal refused the token before its time (revoked, or clocks apart): the next call
        asks for a new one — unless a concurrent call already did."""
        if self._token is token:
            self._token = None

    def _retry_after(self, headers: httpx.Headers) -> float:
        raw = headers.get("Retry-After")
        try:
            seconds = float(raw) if raw is not None else 1.0
        except ValueError:
            seconds = 1.0
        return max(0.0, min(seconds, self._settings.max_retry_after_s))


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _segment(identifier: str) -> str:
    """An id as one path segment (ids come back from PayPal; never let one change the path)."""
    return quote(identifier, safe="")


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
