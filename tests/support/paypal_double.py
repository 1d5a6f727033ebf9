"""A local PayPal REST double: a real HTTP server (FastAPI under uvicorn, 127.0.0.1, a free port,
in a background thread) that the PayPal gateway (`services/payment/gateways/paypal_gateway.py`) talks to.

Built from PayPal's documented shapes (developer.paypal.com: Authentication, Orders v2, Payments
v2, "Idempotency", "Rate limiting", the error pages of each issue):

- `POST /v1/oauth2/token` (Basic client id:secret, `grant_type=client_credentials`) -> an access
  token with `expires_in`; a wrong secret -> 401 `invalid_client`.
- `POST /v2/checkout/orders` (`intent`, `purchase_units[].amount`) -> 201, status CREATED with an
  `approve` link; the buyer's approval in PayPal's UI is `approve(order_id)` here.
- `GET /v2/checkout/orders/{id}` -> the order, with `purchase_units[0].payments` (authorizations,
  captures, refunds).
- `POST /v2/checkout/orders/{id}/authorize` -> 201, the COMPLETED order with its authorization.
  Not approved -> 422 ORDER_NOT_APPROVED; authorised twice -> 422 ORDER_ALREADY_AUTHORIZED; an
  order told to decline -> 422 INSTRUMENT_DECLINED (or the issue given).
- `GET /v2/payments/authorizations/{id}` -> the authorization, with
  `supplementary_data.related_ids.order_id`.
- `POST /v2/payments/authorizations/{id}/capture` (`amount`, `final_capture`) -> 201, a capture.
  Voided -> 422 AUTHORIZATION_VOIDED; fully captured -> 422 AUTHORIZATION_ALREADY_CAPTURED; the
  captures beyond the authorised amount -> 422 MAX_CAPTURE_AMOUNT_EXCEEDED (the double allows no
  overage, as under PSD2); a currency other than the authorization's -> 422 CURRENCY_MISMATCH.
- `POST /v2/payments/authorizations/{id}/void` -> 204 (200 with the authorization when asked
  `Prefer: return=representation`). Voided -> 422 PREVIOUSLY_VOIDED; fully captured -> 422
  PREVIOUSLY_CAPTURED; after a partial capture it voids the rest, as documented.
- `POST /v2/payments/captures/{id}/refund` (`amount`, `custom_id`, ...) -> 201, a refund; beyond
  what is left of the capture -> 422 REFUND_AMOUNT_EXCEEDED; nothing left -> 422
  CAPTURE_FULLY_REFUNDED.
- Amounts: strings with the currency's decimals; more decimals -> 422 DECIMAL_PRECISION.

Every /v2 call needs `Authorization: Bearer <token>`; a token past its `expires_in` or expired
by `expire_tokens()` -> 401 `invalid_token`. A POST's `PayPal-Request-Id` is remembered with
its answer: the same id gets the same answer (status and body) without acting again.

Faults: `fail_next(...)` answers the next matching request with 429 (with Retry-After), 500 or
another status, before handling it or after (the ambiguous failure: done, but the caller hears
an error). `decline(order_id, issue)` makes an order's authorisation fail.

For assertions: `requests` (method, path, PayPal-Request-Id), `tokens_issued`, and the state
(`orders`, `authorizations`, `captures`, `refunds`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.support.served_app import ServedApp

CLIENT_ID = "AYdoubleClientId0123456789"
CLIENT_SECRET = "EDdoubleClientSecret0123456789"
_ZERO_DECIMAL = {"HUF", "JPY", "TWD"}
_UNPROCESSABLE = (
    "The requested action could not be performed, semantically incorrect, or failed business"
    " validation."
)


class ApiError(Exception):
    def __init__(self, status: int, issue: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.issue = issue
        self.description = description


@dataclass
class Fault:
    path_contains: str
    method: str | None
    status: int
    after_processing: bool
    retry_after: int | None


@dataclass
class Order:
    id: str
    intent: str
    currency: str
    value: str
    status: str = "CREATED"
    decline_issue: str | None = None
    authorization_ids: list[str] = field(default_factory=list)
    created: str = ""


@dataclass
class Authorization:
    id: str
    order_id: str
    currency: str
    amount: Decimal
    status: str = "CREATED"
    capture_ids: list[str] = field(default_factory=list)
    created: str = ""


@dataclass
class Capture:
    id: str
    authorization_id: str
    currency: str
    amount: Decimal
    final_capture: bool
    status: str = "COMPLETED"
    refund_ids: list[str] = field(default_factory=list)
    created: str = ""


@dataclass
class Refund:
    id: str
    capture_id: str
    currency: str
    amount: Decimal
    custom_id: str | None
    note_to_payer: str | None
    status: str = "COMPLETED"
    created: str = ""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _paypal_id() -> str:
    # PayPal's ids: 17 upper-case letters and digits.
    alphabet = "ABCDEFGHJKLMNPRSTUVWXY0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(17))


def _parse_amount(raw: Any, currency: str) -> Decimal:
    if not isinstance(raw, dict) or not isinstance(raw.get("value"), str):
        raise ApiError(400, "MISSING_REQUIRED_PARAMETER", "amount.value is required.")
    if raw.get("currency_code") != currency:
        raise ApiError(
            422, "CURRENCY_MISMATCH", "The currency must be the currency of the authorization."
        )
    value = raw["value"]
    places = 0 if currency in _ZERO_DECIMAL else 2
    try:
        amount = Decimal(value)
    except ArithmeticError:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", "amount.value is not a number.") from None
    decimals = len(value.split(".", 1)[1]) if "." in value else 0
    if decimals > places:
        raise ApiError(
            422, "DECIMAL_PRECISION", "The value of the field should not have more decimals."
        )
    if amount <= 0:
        raise ApiError(422, "CANNOT_BE_ZERO_OR_NEGATIVE", "The amount must be greater than zero.")
    return amount


def _fmt(amount: Decimal, currency: str) -> str:
    places = 0 if currency in _ZERO_DECIMAL else 2
    return f"{amount.quantize(Decimal(1).scaleb(-places)):f}"


class PayPalDouble:
    def __init__(
        self,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        *,
        token_ttl_s: int = 32400,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl_s = token_ttl_s
        self.orders: dict[str, Order] = {}
        self.authorizations: dict[str, Authorization] = {}
        self.captures: dict[str, Capture] = {}
        self.refunds: dict[str, Refund] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.tokens_issued = 0
        self._tokens: dict[str, float] = {}
        self._answers: dict[str, tuple[int, Any]] = {}
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.app = self._build_app()
        self._served = ServedApp(self.app, "PayPal double")
        self.port = self._served.port

    # --- for tests ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            for state in (self.orders, self.authorizations, self.captures, self.refunds):
                state.clear()
            self.requests.clear()
            self._tokens.clear()
            self._answers.clear()
            self._faults.clear()
            self.tokens_issued = 0

    def create_order(self, value: str, currency: str = "EUR", *, intent: str = "AUTHORIZE") -> str:
        """An order as the shop front creates it (`POST /v2/checkout/orders`), not yet approved."""
        with self._lock:
            order = self._new_order(
                {
                    "intent": intent,
                    "purchase_units": [{"amount": {"currency_code": currency, "value": value}}],
                }
            )
        return order.id

    def approve(self, order_id: str) -> None:
        """The buyer logs in to PayPal and approves the order."""
        with self._lock:
            order = self.orders[order_id]
            if order.status == "CREATED":
                order.status = "APPROVED"

    def approved_order(self, value: str, currency: str = "EUR") -> str:
        order_id = self.create_order(value, currency)
        self.approve(order_id)
        return order_id

    def decline(self, order_id: str, issue: str = "INSTRUMENT_DECLINED") -> None:
        """Authorising this order fails with `issue` (the buyer's funding source is refused)."""
        with self._lock:
            self.orders[order_id].decline_issue = issue

    def expire_tokens(self) -> None:
        """Every access token issued so far is refused from now on (401 invalid_token)."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    def fail_next(
        self,
        path_contains: str,
        status: int,
        *,
        method: str | None = "POST",
        after_processing: bool = False,
        retry_after: int | None = None,
    ) -> None:
        """The next request whose path contains `path_contains` is answered `status` with
        PayPal's error body; `after_processing`: it is handled (and its answer remembered under
        its PayPal-Request-Id) first — the caller just hears the error."""
        with self._lock:
            self._faults.append(Fault(path_contains, method, status, after_processing, retry_after))

    def posts(self, path_contains: str) -> list[tuple[str, str, str | None]]:
        return [r for r in self.requests if r[0] == "POST" and path_contains in r[1]]

    def captures_of(self, authorization_id: str) -> list[Capture]:
        return [self.captures[c] for c in self.authorizations[authorization_id].capture_ids]

    def refunds_of(self, authorization_id: str) -> list[Refund]:
        return [self.refunds[r] for c in self.captures_of(authorization_id) for r in c.refund_ids]

    @contextlib.contextmanager
    def serving(self) -> Iterator[PayPalDouble]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def start(self) -> None:
        self._served.start()

    def stop(self) -> None:
        self._served.stop()

    # --- the app ------------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="PayPal double", openapi_url=None, docs_url=None, redoc_url=None)

        @app.exception_handler(ApiError)
        async def api_error(request: Request, exc: ApiError) -> Response:
            return _answer(exc.status, _error_body(exc.status, exc.issue, exc.description))

        @app.middleware("http")
        async def gatekeeper(request: Request, call_next: Any) -> Response:
            path = request.url.path
            request_id = request.headers.get("paypal-request-id")
            with self._lock:
                self.requests.append((request.method, path, request_id))
                fault = next(
                    (
                        f
                        for f in self._faults
                        if f.path_contains in path and f.method in (None, request.method)
                    ),
                    None,
                )
                if fault is not None:
                    self._faults.remove(fault)
            if fault is not None and not fault.after_processing:
                return _fault_response(fault)
            if path.startswith("/v2/"):
                refused = self._authenticate(request.headers.get("authorization"))
                if refused is not None:
                    return refused
            response: Response = await call_next(request)
            if fault is not None:
                return _fault_response(fault)
            return response

        @app.post("/v1/oauth2/token")
        async def token(request: Request) -> JSONResponse:
            form = (await request.body()).decode()
            if not self._client_authenticated(request.headers.get("authorization")):
                return JSONResponse(
                    {
                        "error": "invalid_client",
                        "error_description": "Client Authentication failed",
                    },
                    status_code=401,
                )
            if "grant_type=client_credentials" not in form:
                return JSONResponse(
                    {"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"},
                    status_code=400,
                )
            access_token = "A21AA" + secrets.token_urlsafe(48)
            with self._lock:
                self._tokens[access_token] = time.time() + self.token_ttl_s
                self.tokens_issued += 1
            return JSONResponse(
                {
                    "scope": "https://uri.paypal.com/services/payments/payment/authcapture",
                    "access_token": access_token,
                    "token_type": "Bearer",
                    "app_id": "APP-80W284485P519543T",
                    "expires_in": self.token_ttl_s,
                    "nonce": f"{_now()}{secrets.token_hex(8)}",
                }
            )

        @app.post("/v2/checkout/orders")
        async def create_order(request: Request) -> Response:
            body = await _json(request)
            return self._idempotent(request, lambda: (201, self._order_json(self._new_order(body))))

        @app.get("/v2/checkout/orders/{order_id}")
        async def get_order(order_id: str) -> Response:
            with self._lock:
                return _answer(
                    *self._handle(lambda: (200, self._order_json(self._order(order_id))))
                )

        @app.post("/v2/checkout/orders/{order_id}/authorize")
        async def authorize_order(order_id: str, request: Request) -> Response:
            return self._idempotent(request, lambda: self._authorize(order_id))

        @app.get("/v2/payments/authorizations/{authorization_id}")
        async def get_authorization(authorization_id: str) -> Response:
            with self._lock:
                return _answer(
                    *self._handle(
                        lambda: (
                            200,
                            self._authorization_json(self._authorization(authorization_id), True),
                        )
                    )
                )

        @app.post("/v2/payments/authorizations/{authorization_id}/capture")
        async def capture(authorization_id: str, request: Request) -> Response:
            body = await _json(request)
            return self._idempotent(request, lambda: self._capture(authorization_id, body))

        @app.post("/v2/payments/authorizations/{authorization_id}/void")
        async def void(authorization_id: str, request: Request) -> Response:
            representation = "return=representation" in request.headers.get("prefer", "")
            return self._idempotent(request, lambda: self._void(authorization_id, representation))

        @app.get("/v2/payments/captures/{capture_id}")
        async def get_capture(capture_id: str) -> Response:
            with self._lock:
                return _answer(
                    *self._handle(lambda: (200, self._capture_json(self._capture_by(capture_id))))
                )

        @app.post("/v2/payments/captures/{capture_id}/refund")
        async def refund(capture_id: str, request: Request) -> Response:
            body = await _json(request)
            return self._idempotent(request, lambda: self._refund(capture_id, body))

        return app

    # --- behaviour ----------------------------------------------------------------------------

    def _idempotent(self, request: Request, act: Any) -> Response:
        request_id = request.headers.get("paypal-request-id")
        with self._lock:
            if request_id and request_id in self._answers:
                return _answer(*self._answers[request_id])
            status, body = self._handle(act)
            if request_id and status < 500:
                self._answers[request_id] = (status, body)
        return _answer(status, body)

    @staticmethod
    def _handle(act: Any) -> tuple[int, Any]:
        try:
            result: tuple[int, Any] = act()
            return result
        except ApiError as exc:
            return exc.status, _error_body(exc.status, exc.issue, exc.description)

    def _new_order(self, body: dict[str, Any]) -> Order:
        intent = body.get("intent")
        units = body.get("purchase_units")
        if intent not in ("AUTHORIZE", "CAPTURE"):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "intent must be AUTHORIZE or CAPTURE.")
        if not isinstance(units, list) or not units or not isinstance(units[0], dict):
            raise ApiError(400, "MISSING_REQUIRED_PARAMETER", "purchase_units is required.")
        amount = units[0].get("amount") or {}
        currency = str(amount.get("currency_code", ""))
        _parse_amount(amount, currency)
        order = Order(_paypal_id(), intent, currency, str(amount["value"]), created=_now())
        self.orders[order.id] = order
        return order

    def _order(self, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None:
            raise ApiError(404, "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
        return order

    def _authorization(self, authorization_id: str) -> Authorization:
        authorization = self.authorizations.get(authorization_id)
        if authorization is None:
            raise ApiError(404, "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
        return authorization

    def _capture_by(self, capture_id: str) -> Capture:
        capture = self.captures.get(capture_id)
        if capture is None:
            raise ApiError(404, "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
        return capture

    def _authorize(self, order_id: str) -> tuple[int, Any]:
        order = self._order(order_id)
        if order.intent != "AUTHORIZE":
            raise ApiError(
                422, "ACTION_DOES_NOT_MATCH_INTENT", "Order was created with an intent to CAPTURE."
            )
        if order.authorization_ids:
            raise ApiError(422, "ORDER_ALREADY_AUTHORIZED", "Order already authorized.")
        if order.status != "APPROVED":
            raise ApiError(
                422, "ORDER_NOT_APPROVED", "Payer has not yet approved the Order for payment."
            )
        if order.decline_issue is not None:
            raise ApiError(
                422,
                order.decline_issue,
                "The instrument presented was either declined by the processor or bank, or it"
                " can't be used for this payment.",
            )
        authorization = Authorization(
            _paypal_id(), order.id, order.currency, Decimal(order.value), created=_now()
        )
        self.authorizations[authorization.id] = authorization
        order.authorization_ids.append(authorization.id)
        order.status = "COMPLETED"
        return 201, self._order_json(order)

    def _capture(self, authorization_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        authorization = self._authorization(authorization_id)
        if authorization.status == "VOIDED":
            raise ApiError(
                422, "AUTHORIZATION_VOIDED", "A voided authorization cannot be captured."
            )
        if authorization.status == "CAPTURED":
            raise ApiError(
                422,
                "AUTHORIZATION_ALREADY_CAPTURED",
                "Authorization has been previously captured and hence cannot be captured again.",
            )
        amount = (
            _parse_amount(body["amount"], authorization.currency)
            if "amount" in body
            else authorization.amount - self._captured(authorization)
        )
        if self._captured(authorization) + amount > authorization.amount:
            raise ApiError(
                422,
                "MAX_CAPTURE_AMOUNT_EXCEEDED",
                "Capture amount exceeds allowable limit.",
            )
        final = bool(body.get("final_capture", False))
        capture = Capture(
            _paypal_id(), authorization.id, authorization.currency, amount, final, created=_now()
        )
        self.captures[capture.id] = capture
        authorization.capture_ids.append(capture.id)
        fully = self._captured(authorization) == authorization.amount
        authorization.status = "CAPTURED" if final or fully else "PARTIALLY_CAPTURED"
        return 201, self._capture_json(capture)

    def _void(self, authorization_id: str, representation: bool) -> tuple[int, Any]:
        authorization = self._authorization(authorization_id)
        if authorization.status == "VOIDED":
            raise ApiError(
                422,
                "PREVIOUSLY_VOIDED",
                "Authorization has been previously voided and hence cannot be voided again.",
            )
        if authorization.status == "CAPTURED":
            raise ApiError(
                422,
                "PREVIOUSLY_CAPTURED",
                "Authorization has been previously captured and hence cannot be voided.",
            )
        authorization.status = "VOIDED"
        if representation:
            return 200, self._authorization_json(authorization, True)
        return 204, None

    def _refund(self, capture_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        capture = self._capture_by(capture_id)
        left = capture.amount - self._refunded(capture)
        if left <= 0:
            raise ApiError(
                422, "CAPTURE_FULLY_REFUNDED", "The capture has already been fully refunded."
            )
        amount = _parse_amount(body["amount"], capture.currency) if "amount" in body else left
        if amount > left:
            raise ApiError(
                422,
                "REFUND_AMOUNT_EXCEEDED",
                "The refund amount must be less than or equal to the capture amount that has not"
                " yet been refunded.",
            )
        refund = Refund(
            _paypal_id(),
            capture.id,
            capture.currency,
            amount,
            custom_id=body.get("custom_id"),
            note_to_payer=body.get("note_to_payer"),
            created=_now(),
        )
        self.refunds[refund.id] = refund
        capture.refund_ids.append(refund.id)
        capture.status = (
            "REFUNDED" if self._refunded(capture) == capture.amount else ("PARTIALLY_REFUNDED")
        )
        return 201, self._refund_json(refund)

    def _captured(self, authorization: Authorization) -> Decimal:
        return sum((self.captures[c].amount for c in authorization.capture_ids), Decimal(0))

    def _refunded(self, capture: Capture) -> Decimal:
        return sum((self.refunds[r].amount for r in capture.refund_ids), Decimal(0))

    # --- representations ----------------------------------------------------------------------

    def _link(self, path: str, rel: str, method: str = "GET") -> dict[str, str]:
        return {"href": f"{self.base_url}{path}", "rel": rel, "method": method}

    def _money(self, amount: Decimal | str, currency: str) -> dict[str, str]:
        return {"currency_code": currency, "value": _fmt(Decimal(amount), currency)}

    def _order_json(self, order: Order) -> dict[str, Any]:
        unit: dict[str, Any] = {
            "reference_id": "default",
            "amount": {"currency_code": order.currency, "value": order.value},
            "payee": {"email_address": "merchant@example.com", "merchant_id": "7KNGBPH2U58GQ"},
        }
        authorizations = [self.authorizations[a] for a in order.authorization_ids]
        if authorizations:
            captures = [self.captures[c] for a in authorizations for c in a.capture_ids]
            refunds = [self.refunds[r] for c in captures for r in c.refund_ids]
            unit["payments"] = {
                "authorizations": [self._authorization_json(a, False) for a in authorizations],
                **({"captures": [self._capture_json(c) for c in captures]} if captures else {}),
                **({"refunds": [self._refund_json(r) for r in refunds]} if refunds else {}),
            }
        links = [self._link(f"/v2/checkout/orders/{order.id}", "self")]
        if order.status == "CREATED":
            links.append(
                {
                    "href": f"https://www.sandbox.paypal.com/checkoutnow?token={order.id}",
                    "rel": "approve",
                    "method": "GET",
                }
            )
        if order.status == "APPROVED":
            links.append(
                self._link(f"/v2/checkout/orders/{order.id}/authorize", "authorize", "POST")
            )
        answer: dict[str, Any] = {
            "id": order.id,
            "intent": order.intent,
            "status": order.status,
            "purchase_units": [unit],
            "create_time": order.created,
            "links": links,
        }
        if order.status in ("APPROVED", "COMPLETED"):
            answer["payment_source"] = {
                "paypal": {
                    "email_address": "buyer@example.com",
                    "account_id": "QYR5Z8XDVJNXQ",
                    "account_status": "VERIFIED",
                    "name": {"given_name": "John", "surname": "Doe"},
                }
            }
            answer["payer"] = {
                "name": {"given_name": "John", "surname": "Doe"},
                "email_address": "buyer@example.com",
                "payer_id": "QYR5Z8XDVJNXQ",
            }
        return answer

    def _authorization_json(self, authorization: Authorization, full: bool) -> dict[str, Any]:
        created = datetime.strptime(authorization.created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        path = f"/v2/payments/authorizations/{authorization.id}"
        answer: dict[str, Any] = {
            "id": authorization.id,
            "status": authorization.status,
            "amount": self._money(authorization.amount, authorization.currency),
            "seller_protection": {
                "status": "ELIGIBLE",
                "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"],
            },
            "expiration_time": (created + timedelta(days=29)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "create_time": authorization.created,
            "update_time": _now(),
            "links": [
                self._link(path, "self"),
                self._link(f"{path}/capture", "capture", "POST"),
                self._link(f"{path}/void", "void", "POST"),
                self._link(f"{path}/reauthorize", "reauthorize", "POST"),
                self._link(f"/v2/checkout/orders/{authorization.order_id}", "up"),
            ],
        }
        if full:
            answer["supplementary_data"] = {"related_ids": {"order_id": authorization.order_id}}
            answer["payee"] = {
                "email_address": "merchant@example.com",
                "merchant_id": "7KNGBPH2U58GQ",
            }
        return answer

    def _capture_json(self, capture: Capture) -> dict[str, Any]:
        fee = (capture.amount * Decimal("0.0349")).quantize(Decimal("0.01"))
        path = f"/v2/payments/captures/{capture.id}"
        order_id = self.authorizations[capture.authorization_id].order_id
        return {
            "id": capture.id,
            "status": capture.status,
            "amount": self._money(capture.amount, capture.currency),
            "final_capture": capture.final_capture,
            "seller_protection": {"status": "ELIGIBLE"},
            "seller_receivable_breakdown": {
                "gross_amount": self._money(capture.amount, capture.currency),
                "paypal_fee": self._money(fee, capture.currency),
                "net_amount": self._money(capture.amount - fee, capture.currency),
            },
            "create_time": capture.created,
            "update_time": _now(),
            "links": [
                self._link(path, "self"),
                self._link(f"{path}/refund", "refund", "POST"),
                self._link(f"/v2/payments/authorizations/{capture.authorization_id}", "up"),
            ],
            "supplementary_data": {
                "related_ids": {
                    "order_id": order_id,
                    "authorization_id": capture.authorization_id,
                }
            },
        }

    def _refund_json(self, refund: Refund) -> dict[str, Any]:
        capture = self.captures[refund.capture_id]
        answer: dict[str, Any] = {
            "id": refund.id,
            "status": refund.status,
            "amount": self._money(refund.amount, refund.currency),
            "seller_payable_breakdown": {
                "gross_amount": self._money(refund.amount, refund.currency),
                "net_amount": self._money(refund.amount, refund.currency),
                "total_refunded_amount": self._money(self._refunded(capture), refund.currency),
            },
            "create_time": refund.created,
            "update_time": _now(),
            "links": [
                self._link(f"/v2/payments/refunds/{refund.id}", "self"),
                self._link(f"/v2/payments/captures/{refund.capture_id}", "up"),
            ],
        }
        if refund.custom_id is not None:
            answer["custom_id"] = refund.custom_id
        if refund.note_to_payer is not None:
            answer["note_to_payer"] = refund.note_to_payer
        return answer

    # --- authentication -----------------------------------------------------------------------

    def _client_authenticated(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(authorization[6:]).decode()
        except ValueError:
            return False
        return decoded == f"{self.client_id}:{self.client_secret}"

    def _authenticate(self, authorization: str | None) -> Response | None:
        if not authorization or not authorization.startswith("Bearer "):
            return JSONResponse(
                {
                    "error": "invalid_token",
                    "error_description": "No permission for the requested operation",
                },
                status_code=401,
            )
        with self._lock:
            expires = self._tokens.get(authorization[7:], 0.0)
        if expires <= time.time():
            return JSONResponse(
                {
                    "error": "invalid_token",
                    "error_description": "Token signature verification failed",
                },
                status_code=401,
            )
        return None


def _answer(status: int, body: Any) -> Response:
    if body is None:
        return Response(status_code=status)
    return JSONResponse(body, status_code=status, headers={"paypal-debug-id": "f0ad1d0ub1e"})


def _error_body(status: int, issue: str, description: str) -> dict[str, Any]:
    name, message = {
        400: (
            "INVALID_REQUEST",
            "Request is not well-formed, syntactically incorrect, or violates schema.",
        ),
        404: ("RESOURCE_NOT_FOUND", "The specified resource does not exist."),
        422: ("UNPROCESSABLE_ENTITY", _UNPROCESSABLE),
    }.get(status, ("INTERNAL_SERVER_ERROR", "An internal server error has occurred."))
    return {
        "name": name,
        "message": message,
        "debug_id": secrets.token_hex(6),
        "details": [{"issue": issue, "description": description}],
        "links": [
            {
                "href": f"https://developer.paypal.com/api/rest/reference/orders/v2/errors/#{issue}",
                "rel": "information_link",
                "method": "GET",
            }
        ],
    }


def _fault_response(fault: Fault) -> Response:
    if fault.status == 429:
        body = {
            "name": "RATE_LIMIT_REACHED",
            "message": "Too many requests. Blocked due to rate limiting.",
            "debug_id": secrets.token_hex(6),
        }
    else:
        body = {
            "name": "INTERNAL_SERVER_ERROR",
            "message": "An internal server error has occurred.",
            "debug_id": secrets.token_hex(6),
        }
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    return JSONResponse(body, status_code=fault.status, headers=headers)


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(
            400, "MALFORMED_REQUEST_JSON", "The request JSON is not well formed."
        ) from None
    return body if isinstance(body, dict) else {}
