"""A local double of eBay's Sell APIs: a real HTTP server (FastAPI under uvicorn, 127.0.0.1, a
free port, in a background thread) that the eBay client
(`services/channel_connector/clients/ebay.py`) talks to.

Built from eBay's documented shapes (developer.ebay.com: OAuth "refresh token request",
Fulfillment API getOrders / getOrder / getShippingFulfillments / createShippingFulfillment /
issueRefund, Inventory API bulkUpdatePriceQuantity, Post-Order API "Create Cancellation
Request", "Handling error messages"):

- `POST /identity/v1/oauth2/token` (Basic client_id:client_secret, form `grant_type=
  refresh_token`, `refresh_token`, `scope`) -> `{access_token, expires_in, token_type}`; a
  wrong client -> 401 `invalid_client`; a wrong refresh token -> 400 `invalid_grant`.
- `GET /sell/fulfillment/v1/order?filter=lastmodifieddate:[from..to]&limit&offset` -> an
  OrderSearchPagedCollection (`orders`, `total`, `limit`, `offset`, `next` while more);
  limit 1..200. As documented, `cancelStatus.cancelRequests` is always empty here.
- `GET /sell/fulfillment/v1/order/{orderId}` -> the order; unknown -> 404.
- `GET|POST /sell/fulfillment/v1/order/{orderId}/shipping_fulfillment` -> the fulfillments /
  201 with `Location` of the new one. Line items must be the order's, with a quantity of at
  least 1 and no more than is unfulfilled; a tracking number needs a carrier code. The lines'
  `lineItemFulfillmentStatus` and the order's `orderFulfillmentStatus` follow.
- `POST /sell/inventory/v1/bulk_update_price_quantity` -> 200 (all updated) or 207 with one
  `statusCode` per SKU; 1..25 requests; a SKU without an inventory item -> its 404 with errors.
- `POST /post-order/v2/cancellation` (`Authorization: IAF <token>`, X-EBAY-C-MARKETPLACE-ID,
  `legacyOrderId`, `cancelReason`) -> `{cancelId}`, the order CANCELED at once (a seller's
  cancellation); an order with a cancellation or shipped -> no cancelId, `eligible: false`.
- `POST /sell/fulfillment/v1/order/{orderId}/issue_refund` (`reasonForRefund`,
  `orderLevelRefundAmount`) -> `{refundId, refundStatus: PENDING}`, the refund in the order's
  `paymentSummary.refunds`; more than is left to refund -> 400.

Every call but the token's needs a token issued here and not expired (`token_ttl_s`,
`expire_tokens()`): else 401 with eBay's error body (errorId 1001). Errors use eBay's shape
`{"errors": [{errorId, domain, category, message, longMessage}]}` (the Post-Order API's
`{"errorMessage": {"error": [...]}}`).

Faults: `fail_next(...)` answers the next matching request with 429 (with or without
Retry-After), 500 or another status, before handling it or after (the ambiguous failure: done,
but the caller hears an error).

For assertions: `requests` (method, path, query), `fulfillment_posts`, `stock_posts`,
`tokens_issued`, and the state (`orders`, `fulfillments`, `quantities`).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.support.served_app import ServedApp

CLIENT_ID = "OmsTestA-oms-PRD-0a1b2c3d4-5e6f7a8b"
CLIENT_SECRET = "PRD-a1b2c3d4e5f6-0a1b-2c3d-4e5f-6a7b"
REFRESH_TOKEN = "v^1.1#i^1#r^1#p^3#I^3#f^0#t^Ul4xMF8xOkRFQTRGRUY"
ORDERS = "/sell/fulfillment/v1/order"
MAX_LIMIT = 200
REFUND_REASONS = {
    "BUYER_CANCEL",
    "BUYER_RETURN",
    "ITEM_NOT_RECEIVED",
    "SELLER_WRONG_ITEM",
    "SELLER_CANCEL",
    "FOUND_CHEAPER_PRICE",
    "ITEM_NOT_AS_DESCRIBED",
    "OTHER_ADJUSTMENT",
    "SHIPPING_DISCOUNT",
}
SELLER_CANCEL_REASONS = {"OUT_OF_STOCK_OR_CANNOT_FULFILL", "BUYER_ASKED_CANCEL", "ADDRESS_ISSUES"}


class EbayError(Exception):
    def __init__(
        self, status: int, error_id: int, message: str, *, domain: str = "API_FULFILLMENT"
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.message = message
        self.domain = domain


@dataclass
class Fault:
    path_contains: str
    method: str | None
    status: int
    after_processing: bool
    retry_after: int | None


@dataclass
class Fulfillment:
    id: str
    order_id: str
    lines: list[tuple[str, int]]
    tracking_number: str | None
    carrier: str | None
    shipped: str


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str
    body: Any = None


@dataclass
class State:
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    fulfillments: dict[str, list[Fulfillment]] = field(default_factory=dict)
    quantities: dict[str, int] = field(default_factory=dict)  # inventory items: SKU -> qty


def now_text() -> str:
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _error(error_id: int, domain: str, category: str, message: str) -> dict[str, Any]:
    return {
        "errors": [
            {
                "errorId": error_id,
                "domain": domain,
                "category": category,
                "message": message,
                "longMessage": message,
            }
        ]
    }


_FAULT_BODIES = {
    429: _error(
        2001,
        "ACCESS",
        "REQUEST",
        "Too many requests. The request limit has been reached for the resource.",
    ),
    500: _error(
        2003,
        "ACCESS",
        "APPLICATION",
        "There was a problem with an eBay internal system or process. Contact eBay developer"
        " support for assistance.",
    ),
    503: _error(2003, "ACCESS", "APPLICATION", "Service unavailable."),
}


class EbayDouble:
    def __init__(
        self,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        refresh_token: str = REFRESH_TOKEN,
        *,
        token_ttl_s: int = 7200,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.token_ttl_s = token_ttl_s
        self.state = State()
        self.requests: list[Recorded] = []
        self.tokens_issued = 0
        self.token_scopes: list[str] = []
        self._tokens: dict[str, float] = {}
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.app = self._build_app()
        self._served = ServedApp(self.app, "eBay double")
        self.port = self._served.port

    # --- for tests ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def orders(self) -> dict[str, dict[str, Any]]:
        return self.state.orders

    @property
    def quantities(self) -> dict[str, int]:
        return self.state.quantities

    def add_order(self, order: dict[str, Any], *, modified: str | None = None) -> str:
        """An order placed and paid on eBay; its `lastModifiedDate` now (or `modified`)."""
        with self._lock:
            stored = copy.deepcopy(order)
            stored["lastModifiedDate"] = modified or now_text()
            self.state.orders[stored["orderId"]] = stored
            self.state.fulfillments.setdefault(stored["orderId"], [])
        return str(stored["orderId"])

    def add_inventory_item(self, sku: str, quantity: int = 0) -> None:
        with self._lock:
            self.state.quantities[sku] = quantity

    def fulfillments_of(self, order_id: str) -> list[Fulfillment]:
        with self._lock:
            return list(self.state.fulfillments.get(order_id, []))

    def expire_tokens(self) -> None:
        """Every access token issued so far is refused from now on (401, errorId 1001)."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    def fail_next(
        self,
        path_contains: str,
        status: int,
        *,
        method: str | None = None,
        after_processing: bool = False,
        retry_after: int | None = None,
    ) -> None:
        """The next request whose path contains `path_contains` is answered `status` with eBay's
        error body; `after_processing`: it is handled first — the caller just hears the error."""
        with self._lock:
            self._faults.append(Fault(path_contains, method, status, after_processing, retry_after))

    def calls(self, method: str, path_contains: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and path_contains in r.path]

    @property
    def fulfillment_posts(self) -> list[Recorded]:
        return self.calls("POST", "/shipping_fulfillment")

    @property
    def stock_posts(self) -> list[Recorded]:
        return self.calls("POST", "/bulk_update_price_quantity")

    @contextlib.contextmanager
    def serving(self) -> Iterator[EbayDouble]:
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
        app = FastAPI(title="eBay double", openapi_url=None, docs_url=None, redoc_url=None)

        @app.exception_handler(EbayError)
        async def ebay_error(request: Request, exc: EbayError) -> Response:
            category = "APPLICATION" if exc.status >= 500 else "REQUEST"
            return JSONResponse(
                _error(exc.error_id, exc.domain, category, exc.message), status_code=exc.status
            )

        @app.middleware("http")
        async def gatekeeper(request: Request, call_next: Any) -> Response:
            path = request.url.path
            raw = await request.body()
            body: Any = None
            if raw and request.headers.get("content-type", "").startswith("application/json"):
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
            with self._lock:
                self.requests.append(
                    Recorded(
                        request.method,
                        path,
                        parse_qs(request.url.query),
                        request.headers.get("authorization", ""),
                        body,
                    )
                )
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
            if path != "/identity/v1/oauth2/token":
                prefix = "IAF " if path.startswith("/post-order/") else "Bearer "
                refused = self._authenticate(request.headers.get("authorization"), prefix)
                if refused is not None:
                    return refused
            response: Response = await call_next(request)
            if fault is not None:
                return _fault_response(fault)
            return response

        @app.post("/identity/v1/oauth2/token")
        async def token(request: Request) -> JSONResponse:
            if not request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"
            ):
                return JSONResponse(
                    {"error": "invalid_request", "error_description": "Content-Type"},
                    status_code=400,
                )
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            if not self._client_authenticated(request.headers.get("authorization")):
                return JSONResponse(
                    {
                        "error": "invalid_client",
                        "error_description": "client authentication failed",
                    },
                    status_code=401,
                )
            if form.get("grant_type") != "refresh_token":
                return JSONResponse(
                    {
                        "error": "unsupported_grant_type",
                        "error_description": "grant type in request is not supported by the"
                        " authorization server",
                    },
                    status_code=400,
                )
            if not form.get("scope"):
                return JSONResponse(
                    {"error": "invalid_scope", "error_description": "scope is required"},
                    status_code=400,
                )
            if form.get("refresh_token") != self.refresh_token:
                return JSONResponse(
                    {
                        "error": "invalid_grant",
                        "error_description": "the provided authorization refresh token is"
                        " invalid or was issued to another client",
                    },
                    status_code=400,
                )
            access_token = "v^1.1#i^1#f^0#p^3#I^3#r^0#t^" + secrets.token_urlsafe(48)
            with self._lock:
                self._tokens[access_token] = time.time() + self.token_ttl_s
                self.tokens_issued += 1
                self.token_scopes.append(form.get("scope", ""))
            return JSONResponse(
                {
                    "access_token": access_token,
                    "expires_in": self.token_ttl_s,
                    "token_type": "User Access Token",
                }
            )

        @app.get(ORDERS)
        async def get_orders(request: Request) -> Response:
            with self._lock:
                return JSONResponse(self._search(request.query_params))

        @app.get(ORDERS + "/{order_id}")
        async def get_order(order_id: str) -> Response:
            with self._lock:
                return JSONResponse(copy.deepcopy(self._order(order_id)))

        @app.get(ORDERS + "/{order_id}/shipping_fulfillment")
        async def get_fulfillments(order_id: str) -> Response:
            with self._lock:
                self._order(order_id)
                found = [self._fulfillment_json(f) for f in self.state.fulfillments[order_id]]
                return JSONResponse({"fulfillments": found, "total": len(found), "warnings": []})

        @app.get(ORDERS + "/{order_id}/shipping_fulfillment/{fulfillment_id}")
        async def get_fulfillment(order_id: str, fulfillment_id: str) -> Response:
            with self._lock:
                self._order(order_id)
                for found in self.state.fulfillments[order_id]:
                    if found.id == fulfillment_id:
                        return JSONResponse(self._fulfillment_json(found))
            raise EbayError(404, 32200, "Fulfillment ID invalid.")

        @app.post(ORDERS + "/{order_id}/shipping_fulfillment")
        async def create_fulfillment(order_id: str, request: Request) -> Response:
            body = await _json(request)
            with self._lock:
                created = self._create_fulfillment(order_id, body)
            location = f"{self.base_url}{ORDERS}/{order_id}/shipping_fulfillment/{created.id}"
            return JSONResponse({}, status_code=201, headers={"Location": location})

        @app.post(ORDERS + "/{order_id}/issue_refund")
        async def issue_refund(order_id: str, request: Request) -> Response:
            body = await _json(request)
            with self._lock:
                return JSONResponse(self._refund(order_id, body))

        @app.post("/sell/inventory/v1/bulk_update_price_quantity")
        async def bulk_quantity(request: Request) -> Response:
            body = await _json(request, domain="API_INVENTORY")
            with self._lock:
                status, answer = self._bulk_quantity(body)
            return JSONResponse(answer, status_code=status)

        @app.post("/post-order/v2/cancellation")
        async def cancellation(request: Request) -> Response:
            if not request.headers.get("x-ebay-c-marketplace-id"):
                return _post_order_error(400, 1002, "Missing X-EBAY-C-MARKETPLACE-ID header.")
            try:
                body = await _json(request, domain="cancelErrorDomain")
            except EbayError as exc:
                return _post_order_error(exc.status, exc.error_id, exc.message)
            with self._lock:
                return self._cancel(body)

        return app

    # --- behaviour ----------------------------------------------------------------------------

    def _order(self, order_id: str) -> dict[str, Any]:
        order = self.state.orders.get(order_id)
        if order is None:
            raise EbayError(404, 32100, f"Invalid order ID: {order_id}")
        return order

    def _search(self, query: Any) -> dict[str, Any]:
        try:
            limit = int(query.get("limit", "50"))
            offset = int(query.get("offset", "0"))
        except ValueError:
            raise EbayError(400, 30700, "Invalid limit or offset.") from None
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            raise EbayError(400, 30700, f"The limit must be 1 to {MAX_LIMIT}.")
        low, high = _modified_range(query.get("filter"))
        matching = [
            o
            for o in self.state.orders.values()
            if (low is None or _parse_time(o["lastModifiedDate"]) >= low)
            and (high is None or _parse_time(o["lastModifiedDate"]) <= high)
        ]
        matching.sort(key=lambda o: (o.get("creationDate", ""), o["orderId"]), reverse=True)
        page = matching[offset : offset + limit]
        orders = []
        for order in page:
            shown = copy.deepcopy(order)
            if isinstance(shown.get("cancelStatus"), dict):
                shown["cancelStatus"]["cancelRequests"] = []  # as documented for getOrders
            orders.append(shown)
        base = f"{self.base_url}{ORDERS}?"
        filter_part = f"filter={query['filter']}&" if query.get("filter") else ""
        answer: dict[str, Any] = {
            "href": f"{base}{filter_part}limit={limit}&offset={offset}",
            "total": len(matching),
            "limit": limit,
            "offset": offset,
            "orders": orders,
            "warnings": [],
        }
        if offset + limit < len(matching):
            answer["next"] = f"{base}{filter_part}limit={limit}&offset={offset + limit}"
        if offset > 0:
            answer["prev"] = f"{base}{filter_part}limit={limit}&offset={max(0, offset - limit)}"
        return answer

    def _fulfilled(self, order_id: str) -> dict[str, int]:
        done: dict[str, int] = {}
        for fulfillment in self.state.fulfillments[order_id]:
            for line_id, quantity in fulfillment.lines:
                done[line_id] = done.get(line_id, 0) + quantity
        return done

    def _create_fulfillment(self, order_id: str, body: dict[str, Any]) -> Fulfillment:
        order = self._order(order_id)
        refs = body.get("lineItems")
        if not isinstance(refs, list) or not refs:
            raise EbayError(400, 32100, "The lineItems array is required.")
        tracking = body.get("trackingNumber")
        carrier = body.get("shippingCarrierCode")
        if tracking and not carrier:
            raise EbayError(
                400, 32400, "shippingCarrierCode is required when a trackingNumber is given."
            )
        if order.get("cancelStatus", {}).get("cancelState") == "CANCELED":
            raise EbayError(409, 32800, "The order has been cancelled.")
        by_id = {item["lineItemId"]: item for item in order["lineItems"]}
        done = self._fulfilled(order_id)
        lines: list[tuple[str, int]] = []
        for ref in refs:
            line_id = ref.get("lineItemId") if isinstance(ref, dict) else None
            if line_id not in by_id:
                raise EbayError(400, 32100, f"Invalid line item ID: {line_id}")
            quantity = ref.get("quantity", 1)
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
                raise EbayError(400, 32400, "The quantity must be a whole number above zero.")
            left = int(by_id[line_id]["quantity"]) - done.get(line_id, 0)
            if quantity > left:
                raise EbayError(
                    400,
                    32400,
                    f"Line item {line_id}: the quantity {quantity} exceeds the {left} not yet"
                    " fulfilled.",
                )
            done[line_id] = done.get(line_id, 0) + quantity
            lines.append((line_id, quantity))
        shipped = body.get("shippedDate") or now_text()
        try:
            _parse_time(shipped)
        except ValueError:
            raise EbayError(400, 32400, "shippedDate is not a valid date.") from None
        created = Fulfillment(
            str(secrets.randbelow(9 * 10**21) + 10**21),
            order_id,
            lines,
            tracking,
            carrier,
            shipped,
        )
        self.state.fulfillments[order_id].append(created)
        for item in order["lineItems"]:
            covered = done.get(item["lineItemId"], 0)
            item["lineItemFulfillmentStatus"] = (
                "FULFILLED"
                if covered >= int(item["quantity"])
                else ("IN_PROGRESS" if covered else "NOT_STARTED")
            )
        statuses = {item["lineItemFulfillmentStatus"] for item in order["lineItems"]}
        order["orderFulfillmentStatus"] = (
            "FULFILLED" if statuses == {"FULFILLED"} else "IN_PROGRESS"
        )
        order["fulfillmentHrefs"] = [
            f"{self.base_url}{ORDERS}/{order_id}/shipping_fulfillment/{f.id}"
            for f in self.state.fulfillments[order_id]
        ]
        order["lastModifiedDate"] = now_text()
        return created

    def _fulfillment_json(self, fulfillment: Fulfillment) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "fulfillmentId": fulfillment.id,
            "lineItems": [{"lineItemId": i, "quantity": q} for i, q in fulfillment.lines],
            "shippedDate": fulfillment.shipped,
        }
        if fulfillment.tracking_number:
            answer["shipmentTrackingNumber"] = fulfillment.tracking_number
        if fulfillment.carrier:
            answer["shippingCarrierCode"] = fulfillment.carrier
        return answer

    def _bulk_quantity(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        requests = body.get("requests")
        if not isinstance(requests, list) or not 1 <= len(requests) <= 25:
            raise EbayError(
                400, 25709, "The requests array must have 1 to 25 entries.", domain="API_INVENTORY"
            )
        responses = []
        for request in requests:
            sku = request.get("sku") if isinstance(request, dict) else None
            availability = request.get("shipToLocationAvailability") if sku else None
            quantity = availability.get("quantity") if isinstance(availability, dict) else None
            if not isinstance(sku, str) or not sku:
                responses.append(
                    {"statusCode": 400, **_error(25709, "API_INVENTORY", "REQUEST", "sku missing")}
                )
                continue
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
                responses.append(
                    {
                        "sku": sku,
                        "statusCode": 400,
                        **_error(
                            25004,
                            "API_INVENTORY",
                            "REQUEST",
                            "shipToLocationAvailability.quantity must be a whole number, 0 or"
                            " more.",
                        ),
                    }
                )
                continue
            if sku not in self.state.quantities:
                responses.append(
                    {
                        "sku": sku,
                        "statusCode": 404,
                        **_error(
                            25702,
                            "API_INVENTORY",
                            "REQUEST",
                            f"SKU {sku} is not available in the system.",
                        ),
                    }
                )
                continue
            self.state.quantities[sku] = quantity
            responses.append({"sku": sku, "statusCode": 200})
        all_ok = all(r["statusCode"] == 200 for r in responses)
        return (200 if all_ok else 207), {"responses": responses}

    def _cancel(self, body: dict[str, Any]) -> Response:
        legacy = body.get("legacyOrderId")
        reason = body.get("cancelReason")
        if not legacy:
            return _post_order_error(400, 1701, "legacyOrderId is required.")
        if reason not in SELLER_CANCEL_REASONS:
            return _post_order_error(400, 1702, f"Invalid cancelReason: {reason}")
        order = next(
            (o for o in self.state.orders.values() if o.get("legacyOrderId") == legacy), None
        )
        if order is None:
            return _post_order_error(404, 1703, f"Order {legacy} not found.")
        status = order.setdefault("cancelStatus", {"cancelState": "NONE_REQUESTED"})
        failure = []
        if status.get("cancelState") in ("CANCELED", "IN_PROGRESS"):
            failure.append("CANCELLATION_EXIST")
        if self.state.fulfillments.get(order["orderId"]):
            failure.append("ITEM_SHIPPED")
        result: dict[str, Any] = {"legacyOrderId": legacy, "eligible": not failure}
        if failure:
            result["failureReason"] = failure
            return JSONResponse({"orderEligibilityResult": result})
        cancel_id = str(5000000000 + secrets.randbelow(999999999))
        status["cancelState"] = "CANCELED"
        status["cancelledDate"] = now_text()
        status.setdefault("cancelRequests", []).append(
            {
                "cancelRequestId": cancel_id,
                "cancelInitiator": "SELLER",
                "cancelReason": reason,
                "cancelRequestState": "COMPLETED",
                "cancelRequestedDate": now_text(),
                "cancelCompletedDate": now_text(),
            }
        )
        order["lastModifiedDate"] = now_text()
        return JSONResponse({"cancelId": cancel_id, "orderEligibilityResult": result}, 201)

    def _refund(self, order_id: str, body: dict[str, Any]) -> dict[str, Any]:
        order = self._order(order_id)
        reason = body.get("reasonForRefund")
        if reason not in REFUND_REASONS:
            raise EbayError(400, 34900, f"Invalid reasonForRefund: {reason}")
        if len(str(body.get("comment") or "")) > 100:
            raise EbayError(400, 34901, "The comment is longer than 100 characters.")
        amount = body.get("orderLevelRefundAmount")
        if not isinstance(amount, dict):
            raise EbayError(400, 34902, "orderLevelRefundAmount or refundItems is required.")
        total = order["pricingSummary"]["total"]
        if amount.get("currency") != total["currency"]:
            raise EbayError(400, 34903, "The refund currency must be the order's currency.")
        value_text = str(amount.get("value", ""))
        try:
            value = Decimal(value_text)
        except ArithmeticError:
            raise EbayError(400, 34904, "The refund amount is not a number.") from None
        if value <= 0 or ("." in value_text and len(value_text.split(".", 1)[1]) > 2):
            raise EbayError(400, 34904, "The refund amount is not a valid amount.")
        summary = order.setdefault("paymentSummary", {})
        refunds = summary.setdefault("refunds", [])
        refunded = sum(
            (Decimal(r["amount"]["value"]) for r in refunds if r["refundStatus"] != "FAILED"),
            Decimal(0),
        )
        if refunded + value > Decimal(total["value"]):
            raise EbayError(
                400, 34905, "The refund amount exceeds the amount left to refund on the order."
            )
        refund_id = f"5{secrets.randbelow(10**11):011d}"
        refunds.append(
            {
                "refundId": refund_id,
                "refundStatus": "PENDING",
                "amount": {"value": f"{value:.2f}", "currency": total["currency"]},
                "refundDate": now_text(),
                "refundReferenceId": secrets.token_hex(8).upper(),
            }
        )
        order["orderPaymentStatus"] = (
            "FULLY_REFUNDED"
            if refunded + value == Decimal(total["value"])
            else "PARTIALLY_REFUNDED"
        )
        order["lastModifiedDate"] = now_text()
        return {"refundId": refund_id, "refundStatus": "PENDING"}

    # --- authentication -----------------------------------------------------------------------

    def _client_authenticated(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(authorization[6:]).decode()
        except ValueError:
            return False
        return decoded == f"{self.client_id}:{self.client_secret}"

    def _authenticate(self, authorization: str | None, prefix: str) -> Response | None:
        token = authorization[len(prefix) :] if authorization else ""
        if not authorization or not authorization.startswith(prefix):
            token = ""
        with self._lock:
            expires = self._tokens.get(token, 0.0) if token else 0.0
        if expires <= time.time():
            message = (
                "Invalid access token. Check the value of the Authorization HTTP request header."
            )
            if prefix == "IAF ":
                return _post_order_error(401, 1001, message, domain="Security")
            return JSONResponse(_error(1001, "OAuth", "REQUEST", message), status_code=401)
        return None


def _modified_range(raw: str | None) -> tuple[datetime | None, datetime | None]:
    """`lastmodifieddate:[2016-03-21T08:25:43.511Z..]` (or `..to]`); other filters refused."""
    if not raw:
        return None, None
    name, _, value = raw.partition(":")
    if name.strip() != "lastmodifieddate" or not (value.startswith("[") and value.endswith("]")):
        raise EbayError(400, 30850, f"Invalid filter: {raw}")
    low_text, sep, high_text = value[1:-1].partition("..")
    if not sep:
        raise EbayError(400, 30850, f"Invalid filter range: {raw}")
    try:
        low = _parse_time(low_text) if low_text else None
        high = _parse_time(high_text) if high_text else None
    except ValueError:
        raise EbayError(400, 30850, f"Invalid date in filter: {raw}") from None
    for moment in (low, high):
        if moment is not None and moment.tzinfo is None:
            raise EbayError(400, 30850, "Dates in the filter must be UTC (Z).")
    return low, high


async def _json(request: Request, domain: str = "API_FULFILLMENT") -> dict[str, Any]:
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise EbayError(415, 2004, "Content-Type must be application/json.", domain=domain)
    try:
        body = await request.json()
    except ValueError:
        raise EbayError(400, 2004, "The request body is not valid JSON.", domain=domain) from None
    if not isinstance(body, dict):
        raise EbayError(400, 2004, "The request body must be an object.", domain=domain)
    return body


def _post_order_error(
    status: int, error_id: int, message: str, *, domain: str = "cancelErrorDomain"
) -> JSONResponse:
    return JSONResponse(
        {
            "errorMessage": {
                "error": [
                    {
                        "errorId": error_id,
                        "domain": domain,
                        "severity": "ERROR",
                        "category": "REQUEST" if status < 500 else "SYSTEM",
                        "message": message,
                        "longMessage": message,
                        "httpStatusCode": str(status),
                    }
                ]
            }
        },
        status_code=status,
    )


def _fault_response(fault: Fault) -> Response:
    body = _FAULT_BODIES.get(fault.status) or _error(
        2003, "ACCESS", "APPLICATION", f"HTTP {fault.status}"
    )
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    return JSONResponse(body, status_code=fault.status, headers=headers)
