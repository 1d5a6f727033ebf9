"""A local BigCommerce store API double: a real HTTP server (FastAPI under uvicorn, 127.0.0.1, a
free port, in a background thread) serving one store at `/stores/{store_hash}/...`.

Built from BigCommerce's documented shapes (developer.bigcommerce.com: Orders V2 — Get an
Order, Update an Order, List Order Products, Get Order Shipping Addresses, Get / Create Order
Shipments; Inventory V3 — Absolute Adjustment; API Rate Limits; API Status Codes; Webhooks —
callback payload, custom `headers`, Standard Webhooks signature):

- `GET /v2/orders/{id}` (404 `[{"status": 404, "message": ...}]` when unknown),
  `PUT /v2/orders/{id}` (`status_id` 0..14),
- `GET /v2/orders/{id}/products`, `.../shipping_addresses`, `.../shipments` (`page`, `limit`;
  shipments answer 204 No Content when there are none),
- `POST /v2/orders/{id}/shipments`: `order_address_id` and `items[{order_product_id,
  quantity}]` required, quantities no more than what is left to ship (400 otherwise), tracking
  number at most 50 characters; the products' `quantity_shipped` and the order's status
  (Shipped 2 / Partially Shipped 3) follow,
- `PUT /v3/inventory/adjustments/absolute`: `items[{location_id, sku | variant_id |
  product_id, quantity}]`, at most 2,000; 422 problem+json otherwise.

Every request needs `X-Auth-Token` (401 otherwise) and the store's hash (404 for another).
Faults: `fail_next(path_contains, status)` answers the next matching request with `status` — a
429 carries BigCommerce's `X-Rate-Limit-*` headers (no Retry-After), 5xx the V2 error array.

Webhooks: `webhook_body(scope, order_id)` is a callback as BigCommerce posts it;
`send_webhook(url, body)` posts it with the subscription's custom header and, given a client
secret, a Standard Webhooks signature. With `notify(url, ...)` the double posts
`store/order/statusUpdated` itself whenever an order's status changes (as BigCommerce does
after a shipment or a cancellation).

Recorded for assertions: `requests` (method, path), `shipments` per order, `adjustments`
(each PUT's items) and `inventory` {(location_id, sku): quantity}.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.support.served_app import ServedApp
from tests.unit.channels.bigcommerce_payloads import STORE_HASH, order_parts

TEST_TOKEN = "bc-test-token-0123456789abcdef"
WEBHOOK_HEADER = "X-OMS-Webhook-Secret"
STATUS_NAMES = {
    0: "Incomplete",
    1: "Pending",
    2: "Shipped",
    3: "Partially Shipped",
    4: "Refunded",
    5: "Cancelled",
    6: "Declined",
    7: "Awaiting Payment",
    8: "Awaiting Pickup",
    9: "Awaiting Shipment",
    10: "Completed",
    11: "Awaiting Fulfillment",
    12: "Manual Verification Required",
    13: "Disputed",
    14: "Partially Refunded",
}


class V2Error(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class V3Error(Exception):
    def __init__(self, status: int, title: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.errors = errors or {}


@dataclass
class Fault:
    path_contains: str
    method: str | None
    status: int
    reset_ms: int


@dataclass
class Notify:
    url: str
    secret: str | None
    client_secret: str | None


def _now_rfc2822() -> str:
    return format_datetime(datetime.now(UTC).replace(microsecond=0))


def _v2_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse([{"status": status, "message": message}], status, headers=headers)


def _v3_error(status: int, title: str, errors: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse(
        {
            "status": status,
            "title": title,
            "type": "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes",
            "errors": errors or {},
        },
        status,
        media_type="application/problem+json",
    )


def webhook_body(scope: str, order_id: int, store_hash: str = STORE_HASH) -> bytes:
    """A callback as BigCommerce posts it; `hash` is the SHA-1 of the JSON-encoded data."""
    data: dict[str, Any] = {"type": "order", "id": order_id}
    return json.dumps(
        {
            "scope": scope,
            "store_id": "1025646",
            "data": data,
            "hash": hashlib.sha1(json.dumps(data).encode()).hexdigest(),
            "created_at": int(time.time()),
            "producer": f"stores/{store_hash}",
        }
    ).encode()


def signature_headers(client_secret: str, body: bytes, msg_id: str | None = None) -> dict[str, str]:
    """Standard Webhooks headers as BigCommerce signs a delivery with the app's client secret."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = str(int(time.time()))
    digest = hmac.new(
        client_secret.encode(),
        msg_id.encode() + b"." + stamp.encode() + b"." + body,
        hashlib.sha256,
    ).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def delivery_headers(
    body: bytes, *, secret: str | None, client_secret: str | None = None
) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "User-Agent": "BigCommerce webhooks"}
    if secret is not None:
        headers[WEBHOOK_HEADER] = secret
    if client_secret is not None:
        headers.update(signature_headers(client_secret, body))
    return headers


class BigCommerceDouble:
    def __init__(self, token: str = TEST_TOKEN, store_hash: str = STORE_HASH) -> None:
        self.token = token
        self.store_hash = store_hash
        self.orders: dict[int, dict[str, Any]] = {}
        self.products: dict[int, list[dict[str, Any]]] = {}
        self.addresses: dict[int, list[dict[str, Any]]] = {}
        self.shipments: dict[int, list[dict[str, Any]]] = {}
        self.inventory: dict[tuple[int, str], int] = {}
        self.adjustments: list[list[dict[str, Any]]] = []
        self.requests: list[tuple[str, str]] = []
        self.notified: list[tuple[str, int, int]] = []  # (scope, order id, HTTP status)
        self._notify: Notify | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._faults: list[Fault] = []
        self._next_shipment_id = 1
        self._lock = threading.Lock()
        self.app = self._build_app()
        self._served = ServedApp(self.app, "BigCommerce double")
        self.port = self._served.port

    # --- for tests -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The `api_base` of an account (the client adds `/stores/{store_hash}`)."""
        return f"http://127.0.0.1:{self.port}"

    def add_order(self, order_id: int, **kwargs: Any) -> dict[str, Any]:
        """An order in the store (see bigcommerce_payloads.order_parts for the arguments)."""
        order, products, addresses = order_parts(order_id, **kwargs)
        with self._lock:
            self.orders[order_id] = order
            self.products[order_id] = products
            self.addresses[order_id] = addresses
        return order

    def order_fetches(self, order_id: int) -> int:
        return self.requests.count(("GET", f"/stores/{self.store_hash}/v2/orders/{order_id}"))

    def fail_next(
        self, path_contains: str, status: int, *, method: str | None = None, reset_ms: int = 0
    ) -> None:
        with self._lock:
            self._faults.append(Fault(path_contains, method, status, reset_ms))

    def notify(self, url: str, *, secret: str | None, client_secret: str | None = None) -> None:
        """Post `store/order/statusUpdated` to `url` whenever an order's status changes."""
        self._notify = Notify(url, secret, client_secret)

    async def send_webhook(
        self,
        url: str,
        body: bytes,
        *,
        secret: str | None,
        client_secret: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = delivery_headers(body, secret=secret, client_secret=client_secret)
        sent.update(headers or {})
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(url, content=body, headers=sent)

    @contextlib.contextmanager
    def serving(self) -> Iterator[BigCommerceDouble]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def start(self) -> None:
        self._served.start()

    def stop(self) -> None:
        self._served.stop()

    # --- the app -------------------------------------------------------------------------------

    def _order(self, order_id: int) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            raise V2Error(404, "The requested resource was not found.")
        return order

    def _status_changed(self, order_id: int) -> None:
        notify = self._notify
        if notify is None:
            return
        body = webhook_body("store/order/statusUpdated", order_id, self.store_hash)

        async def post() -> None:
            try:
                response = await self.send_webhook(
                    notify.url, body, secret=notify.secret, client_secret=notify.client_secret
                )
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            self.notified.append(("store/order/statusUpdated", order_id, status))

        task = asyncio.get_running_loop().create_task(post())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="BigCommerce double", openapi_url=None, docs_url=None, redoc_url=None)
        prefix = f"/stores/{self.store_hash}"

        @app.exception_handler(V2Error)
        async def v2_error(request: Request, exc: V2Error) -> JSONResponse:
            return _v2_error(exc.status, exc.message)

        @app.exception_handler(V3Error)
        async def v3_error(request: Request, exc: V3Error) -> JSONResponse:
            return _v3_error(exc.status, exc.title, exc.errors)

        @app.middleware("http")
        async def authenticate_and_fault(request: Request, call_next: Any) -> Response:
            path = request.url.path
            with self._lock:
                self.requests.append((request.method, path))
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
            if request.headers.get("x-auth-token") != self.token:
                return _v2_error(401, "No valid credentials were found in this request")
            if not path.startswith(prefix + "/"):
                return _v2_error(404, "The requested store was not found.")
            if fault is not None:
                if fault.status == 429:
                    return _v2_error(
                        429,
                        "Too many requests",
                        headers={
                            "X-Rate-Limit-Time-Window-Ms": "30000",
                            "X-Rate-Limit-Time-Reset-Ms": str(fault.reset_ms),
                            "X-Rate-Limit-Requests-Quota": "150",
                            "X-Rate-Limit-Requests-Left": "0",
                        },
                    )
                return _v2_error(fault.status, "Internal Server Error")
            if request.method in ("POST", "PUT") and not request.headers.get(
                "content-type", ""
            ).startswith("application/json"):
                return _v2_error(415, "The request body must be application/json")
            response: Response = await call_next(request)
            return response

        def page(items: list[dict[str, Any]], request: Request) -> list[dict[str, Any]]:
            try:
                number = max(1, int(request.query_params.get("page", "1")))
                limit = int(request.query_params.get("limit", "50"))
            except ValueError as exc:
                raise V2Error(400, "page and limit must be numbers") from exc
            if not 1 <= limit <= 250:
                raise V2Error(413, "The limit must be between 1 and 250")
            return copy.deepcopy(items[(number - 1) * limit : number * limit])

        async def json_body(request: Request) -> Any:
            try:
                return await request.json()
            except ValueError as exc:
                raise V2Error(400, "The request body is not valid JSON") from exc

        @app.get(prefix + "/v2/orders/{order_id}")
        async def get_order(order_id: int) -> JSONResponse:
            with self._lock:
                return JSONResponse(copy.deepcopy(self._order(order_id)))

        @app.put(prefix + "/v2/orders/{order_id}")
        async def update_order(order_id: int, request: Request) -> JSONResponse:
            body = await json_body(request)
            if not isinstance(body, dict):
                raise V2Error(400, "The request body must be an object")
            with self._lock:
                order = self._order(order_id)
                changed = False
                if "status_id" in body:
                    status_id = body["status_id"]
                    if not isinstance(status_id, int) or status_id not in STATUS_NAMES:
                        raise V2Error(400, "The field 'status_id' is invalid.")
                    changed = order["status_id"] != status_id
                    order["status_id"] = status_id
                    order["status"] = order["custom_status"] = STATUS_NAMES[status_id]
                order["date_modified"] = _now_rfc2822()
                answer = copy.deepcopy(order)
            if changed:
                self._status_changed(order_id)
            return JSONResponse(answer)

        @app.get(prefix + "/v2/orders/{order_id}/products")
        async def get_products(order_id: int, request: Request) -> JSONResponse:
            with self._lock:
                self._order(order_id)
                return JSONResponse(page(self.products[order_id], request))

        @app.get(prefix + "/v2/orders/{order_id}/shipping_addresses")
        async def get_addresses(order_id: int, request: Request) -> JSONResponse:
            with self._lock:
                self._order(order_id)
                return JSONResponse(page(self.addresses[order_id], request))

        @app.get(prefix + "/v2/orders/{order_id}/shipments", response_model=None)
        async def get_shipments(order_id: int, request: Request) -> Response:
            with self._lock:
                self._order(order_id)
                found = page(self.shipments.get(order_id, []), request)
            if not found:
                return Response(status_code=204)
            return JSONResponse(found)

        @app.post(prefix + "/v2/orders/{order_id}/shipments")
        async def create_shipment(order_id: int, request: Request) -> JSONResponse:
            body = await json_body(request)
            if not isinstance(body, dict):
                raise V2Error(400, "The request body must be an object")
            with self._lock:
                order = self._order(order_id)
                shipment = self._new_shipment(order, body)
                self.shipments.setdefault(order_id, []).append(shipment)
                status_before = order["status_id"]
                self._record_shipped(order, shipment)
                changed = order["status_id"] != status_before
                answer = copy.deepcopy(shipment)
            if changed:
                self._status_changed(order_id)
            return JSONResponse(answer, status_code=201)

        @app.put(prefix + "/v3/inventory/adjustments/absolute")
        async def absolute_adjustment(request: Request) -> JSONResponse:
            try:
                body = await request.json()
            except ValueError as exc:
                raise V3Error(400, "The request body is not valid JSON") from exc
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list) or not items:
                raise V3Error(422, "items is required", {"items": "must not be empty"})
            if len(items) > 2000:
                raise V3Error(422, "Too many items", {"items": "at most 2000"})
            levels: dict[tuple[int, str], int] = {}
            for index, item in enumerate(items):
                if not isinstance(item, dict):
                    raise V3Error(422, "Invalid item", {f"items.{index}": "must be an object"})
                location = item.get("location_id")
                quantity = item.get("quantity")
                keys = [k for k in ("sku", "variant_id", "product_id") if item.get(k) is not None]
                if not isinstance(location, int) or isinstance(location, bool):
                    raise V3Error(422, "Invalid item", {f"items.{index}.location_id": "required"})
                if len(keys) != 1:
                    raise V3Error(
                        422,
                        "Invalid item",
                        {f"items.{index}": "one of sku, variant_id or product_id is required"},
                    )
                if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
                    raise V3Error(
                        422, "Invalid item", {f"items.{index}.quantity": "a whole number >= 0"}
                    )
                levels[(location, str(item[keys[0]]))] = quantity
            with self._lock:
                self.inventory.update(levels)
                self.adjustments.append(copy.deepcopy(items))
            return JSONResponse({"transaction_id": str(uuid.uuid4())})

        return app

    def _new_shipment(self, order: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        order_id = order["id"]
        address_id = body.get("order_address_id")
        addresses = {a["id"]: a for a in self.addresses[order_id]}
        if not isinstance(address_id, int) or address_id not in addresses:
            raise V2Error(400, "The field 'order_address_id' is invalid or missing.")
        items = body.get("items")
        if not isinstance(items, list) or not items:
            raise V2Error(400, "The field 'items' is required.")
        tracking = body.get("tracking_number", "")
        if not isinstance(tracking, str) or len(tracking) > 50:
            raise V2Error(400, "The field 'tracking_number' must be at most 50 characters.")
        products = {p["id"]: p for p in self.products[order_id]}
        shipped: dict[int, int] = {}
        for item in items:
            product_id = item.get("order_product_id") if isinstance(item, dict) else None
            quantity = item.get("quantity") if isinstance(item, dict) else None
            if not isinstance(product_id, int) or product_id not in products:
                raise V2Error(400, "The field 'order_product_id' is invalid or missing.")
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
                raise V2Error(400, "The field 'quantity' is invalid or missing.")
            product = products[product_id]
            if product["order_address_id"] != address_id:
                raise V2Error(400, "The product is not shipped to that order address.")
            shipped[product_id] = shipped.get(product_id, 0) + quantity
            if shipped[product_id] > product["quantity"] - product["quantity_shipped"]:
                raise V2Error(
                    400,
                    "The quantity specified is greater than the quantity of the product that is"
                    " available to ship.",
                )
        shipment_id = self._next_shipment_id
        self._next_shipment_id += 1
        return {
            "id": shipment_id,
            "order_id": order_id,
            "customer_id": order["customer_id"],
            "order_address_id": address_id,
            "date_created": _now_rfc2822(),
            "tracking_number": tracking,
            "merchant_shipping_cost": "0.0000",
            "shipping_method": body.get("shipping_method", ""),
            "shipping_provider": body.get("shipping_provider", ""),
            "tracking_carrier": body.get("tracking_carrier", ""),
            "tracking_link": body.get("tracking_link", ""),
            "comments": body.get("comments", ""),
            "billing_address": order["billing_address"],
            "shipping_address": addresses[address_id],
            "items": [
                {
                    "order_product_id": item["order_product_id"],
                    "product_id": products[item["order_product_id"]]["product_id"],
                    "quantity": item["quantity"],
                }
                for item in items
            ],
            "shipping_provider_display_name": "",
            "generated_tracking_link": "",
        }

    def _record_shipped(self, order: dict[str, Any], shipment: dict[str, Any]) -> None:
        products = {p["id"]: p for p in self.products[order["id"]]}
        for item in shipment["items"]:
            products[item["order_product_id"]]["quantity_shipped"] += item["quantity"]
        shipped = sum(p["quantity_shipped"] for p in products.values())
        ordered = sum(p["quantity"] for p in products.values())
        order["items_shipped"] = shipped
        order["status_id"] = 2 if shipped >= ordered else 3
        order["status"] = order["custom_status"] = STATUS_NAMES[order["status_id"]]
        order["date_shipped"] = order["date_modified"] = _now_rfc2822()
