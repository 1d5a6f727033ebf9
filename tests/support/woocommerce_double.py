"""A local WooCommerce REST API v3 double: a real HTTP server (FastAPI under uvicorn on a free
127.0.0.1 port, in a thread) that the connector's WooCommerce client talks to through
`api_base`.

Built from WooCommerce's documented shapes (REST API v3 reference: Products, Product
variations, Orders, Order notes, Order refunds, batch endpoints; errors as WordPress REST
errors `{"code", "message", "data": {"status"}}`):

- `GET /wp-json/wc/v3/products?sku=a,b` -> the products and variations with those SKUs
  (variations as `type: variation` with `parent_id`, as WooCommerce returns them).
- `POST /products/batch`, `POST /products/{id}/variations/batch` `{"update": [...]}` -> `{"update":
  [...]}`, an unknown id answered in place with `{"id", "error": {...}}`; more than 100 entries
  -> 413 `woocommerce_rest_request_entity_too_large`.
- `GET/PUT /orders/{id}` (PUT takes `status`), `GET/POST /orders/{id}/notes` (`note`
  required), `GET/POST /orders/{id}/refunds` (`amount` required, at most what is left to refund:
  else 400 `woocommerce_rest_cannot_create_order_refund`); an unknown order -> 404
  `woocommerce_rest_shop_order_invalid_id`.

Authentication: HTTP Basic with the consumer key and secret (WooCommerce over HTTPS): none ->
401 `woocommerce_rest_cannot_view`, a wrong key or secret -> 401
`woocommerce_rest_authentication_error`. Faults: `fail_next(...)` answers the next matching
request with an error (429 with `Retry-After`, 5xx with WordPress's critical-error body).

Recorded for assertions: `requests` (method, path), `stock_updates` (product id, quantity),
`notes_added` (order id, note, customer note), `status_changes` (order id, status),
`refunds_made` (order id, body).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.support.served_app import ServedApp

CONSUMER_KEY = "ck_0123456789abcdef0123456789abcdef01234567"
CONSUMER_SECRET = "cs_76543210fedcba9876543210fedcba9876543210"
PREFIX = "/wp-json/wc/v3"
ORDER_STATUSES = frozenset(
    {"pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed"}
)
BATCH_LIMIT = 100


class WooError(Exception):
    def __init__(self, status: int, code: str, message: str, **data: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.data = data


@dataclass
class Fault:
    path_contains: str
    method: str | None
    status: int
    code: str
    message: str
    retry_after: str | None


def _error(status: int, code: str, message: str, **data: Any) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": message, "data": {"status": status, **data}}, status_code=status
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class WooCommerceDouble:
    def __init__(self, key: str = CONSUMER_KEY, secret: str = CONSUMER_SECRET) -> None:
        self.key = key
        self.secret = secret
        self.products: dict[int, dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.stock_updates: list[tuple[int, int]] = []
        self.notes_added: list[tuple[int, str, bool]] = []
        self.status_changes: list[tuple[int, str]] = []
        self.refunds_made: list[tuple[int, dict[str, Any]]] = []
        self._faults: list[Fault] = []
        self._next_id = 5000
        self._lock = threading.Lock()
        self.app = self._build_app()
        self._served = ServedApp(self.app, "WooCommerce double")

    # --- for tests -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The store's address: the account's `api_base`."""
        return self._served.base_url

    def add_product(self, sku: str, *, stock: int | None = None) -> int:
        with self._lock:
            product_id = self._new_id()
            self.products[product_id] = self._product(product_id, sku, "simple", 0, stock)
            return product_id

    def add_variation(self, parent_sku: str, sku: str, *, stock: int | None = None) -> int:
        """A variable product (`parent_sku`, created when new) and one variation of it."""
        with self._lock:
            parent = next(
                (p for p in self.products.values() if p["sku"] == parent_sku), None
            ) or self._product(self._new_id(), parent_sku, "variable", 0, None)
            self.products[parent["id"]] = parent
            variation_id = self._new_id()
            self.products[variation_id] = self._product(
                variation_id, sku, "variation", parent["id"], stock
            )
            return variation_id

    def add_order(self, order: dict[str, Any]) -> None:
        """A REST v3 order (e.g. the webhook's body): kept with its notes and refunds."""
        with self._lock:
            stored = copy.deepcopy(order)
            stored.setdefault("refunds", [])
            stored["_notes"] = []
            stored["_refunds"] = []
            self.orders[int(stored["id"])] = stored

    def order(self, order_id: int) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.orders[order_id])

    def notes(self, order_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self.orders[order_id]["_notes"])

    def fail_next(
        self,
        path_contains: str,
        status: int,
        *,
        method: str | None = None,
        retry_after: str | None = None,
        code: str = "internal_server_error",
        message: str = "<p>There has been a critical error on this website.</p>",
    ) -> None:
        with self._lock:
            self._faults.append(Fault(path_contains, method, status, code, message, retry_after))

    @contextlib.contextmanager
    def serving(self) -> Iterator[WooCommerceDouble]:
        self._served.start()
        try:
            yield self
        finally:
            self._served.stop()

    # --- state -----------------------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    @staticmethod
    def _product(
        product_id: int, sku: str, kind: str, parent_id: int, stock: int | None
    ) -> dict[str, Any]:
        return {
            "id": product_id,
            "name": sku,
            "type": kind,
            "status": "publish",
            "sku": sku,
            "parent_id": parent_id,
            "manage_stock": stock is not None,
            "stock_quantity": stock,
            "stock_status": "instock" if (stock or 0) > 0 else "outofstock",
        }

    def _order(self, order_id: str) -> dict[str, Any]:
        try:
            return self.orders[int(order_id)]
        except (KeyError, ValueError):
            raise WooError(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.") from None

    @staticmethod
    def _public(order: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in order.items() if not k.startswith("_")}

    def _update_stock(self, entry: Any, parent: int | None) -> dict[str, Any]:
        product_id = entry.get("id") if isinstance(entry, dict) else None
        product = self.products.get(product_id) if isinstance(product_id, int) else None
        if product is None or (parent is not None and product["parent_id"] != parent):
            code = (
                "woocommerce_rest_product_variation_invalid_id"
                if parent is not None
                else "woocommerce_rest_product_invalid_id"
            )
            return {
                "id": product_id or 0,
                "error": {"code": code, "message": "Invalid ID.", "data": {"status": 400}},
            }
        quantity = entry.get("stock_quantity")
        if "stock_quantity" in entry:
            if isinstance(quantity, bool) or not isinstance(quantity, int):
                return {
                    "id": product_id,
                    "error": {
                        "code": "rest_invalid_param",
                        "message": "Invalid parameter(s): stock_quantity",
                        "data": {"status": 400},
                    },
                }
            if entry.get("manage_stock") is True:
                product["manage_stock"] = True
            if product["manage_stock"]:
                product["stock_quantity"] = quantity
                product["stock_status"] = "instock" if quantity > 0 else "outofstock"
                self.stock_updates.append((product["id"], quantity))
        return copy.deepcopy(product)

    # --- the app ---------------------------------------------------------------------------------

    def _authenticate(self, header: str | None) -> None:
        if not header or not header.lower().startswith("basic "):
            raise WooError(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
        try:
            key, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise WooError(
                401, "woocommerce_rest_authentication_error", "Consumer key is invalid."
            ) from None
        if key != self.key:
            raise WooError(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
        if secret != self.secret:
            raise WooError(
                401, "woocommerce_rest_authentication_error", "Consumer secret is invalid."
            )

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="WooCommerce double", openapi_url=None, docs_url=None, redoc_url=None)

        @app.exception_handler(WooError)
        async def woo_error(request: Request, exc: WooError) -> JSONResponse:
            return _error(exc.status, exc.code, exc.message, **exc.data)

        @app.middleware("http")
        async def gatekeeper(request: Request, call_next: Any) -> Response:
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
            if fault is not None:
                response = _error(fault.status, fault.code, fault.message)
                if fault.retry_after is not None:
                    response.headers["Retry-After"] = fault.retry_after
                return response
            try:
                self._authenticate(request.headers.get("authorization"))
            except WooError as exc:
                return _error(exc.status, exc.code, exc.message)
            answer: Response = await call_next(request)
            return answer

        async def body_of(request: Request) -> dict[str, Any]:
            try:
                body = json.loads(await request.body() or b"{}", parse_float=Decimal)
            except ValueError:
                raise WooError(400, "rest_invalid_json", "Invalid JSON body passed.") from None
            if not isinstance(body, dict):
                raise WooError(400, "rest_invalid_json", "Invalid JSON body passed.")
            return body

        @app.get(f"{PREFIX}/products")
        async def list_products(sku: str = "", per_page: int = 10) -> JSONResponse:
            wanted = {s for s in sku.split(",") if s} | ({sku} if sku else set())
            with self._lock:
                found = [
                    copy.deepcopy(p)
                    for p in self.products.values()
                    if not wanted or p["sku"] in wanted
                ]
            return JSONResponse(found[:per_page])

        async def batch(request: Request, parent: int | None) -> JSONResponse:
            body = await body_of(request)
            updates = body.get("update") or []
            if not isinstance(updates, list):
                raise WooError(400, "rest_invalid_param", "Invalid parameter(s): update")
            if len(updates) > BATCH_LIMIT:
                raise WooError(
                    413,
                    "woocommerce_rest_request_entity_too_large",
                    f"Unable to accept more than {BATCH_LIMIT} items for this request.",
                )
            with self._lock:
                if parent is not None and self.products.get(parent, {}).get("type") != "variable":
                    raise WooError(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
                return JSONResponse({"update": [self._update_stock(e, parent) for e in updates]})

        @app.post(f"{PREFIX}/products/batch")
        async def products_batch(request: Request) -> JSONResponse:
            return await batch(request, None)

        @app.post(f"{PREFIX}/products/{{parent}}/variations/batch")
        async def variations_batch(parent: int, request: Request) -> JSONResponse:
            return await batch(request, parent)

        @app.get(f"{PREFIX}/orders/{{order_id}}")
        async def get_order(order_id: str) -> JSONResponse:
            with self._lock:
                return JSONResponse(self._public(copy.deepcopy(self._order(order_id))))

        @app.put(f"{PREFIX}/orders/{{order_id}}")
        async def update_order(order_id: str, request: Request) -> JSONResponse:
            body = await body_of(request)
            with self._lock:
                order = self._order(order_id)
                status = body.get("status")
                if status is not None:
                    if status not in ORDER_STATUSES:
                        raise WooError(
                            400,
                            "rest_invalid_param",
                            "Invalid parameter(s): status",
                            params={"status": f"status is not one of {sorted(ORDER_STATUSES)}."},
                        )
                    if order["status"] != status:
                        order["status"] = status
                        order["date_modified"] = _now()
                        if status == "completed":
                            order["date_completed"] = _now()
                        self.status_changes.append((order["id"], status))
                return JSONResponse(self._public(copy.deepcopy(order)))

        @app.get(f"{PREFIX}/orders/{{order_id}}/notes")
        async def list_notes(order_id: str) -> JSONResponse:
            with self._lock:
                return JSONResponse(copy.deepcopy(self._order(order_id)["_notes"]))

        @app.post(f"{PREFIX}/orders/{{order_id}}/notes")
        async def add_note(order_id: str, request: Request) -> JSONResponse:
            body = await body_of(request)
            note = body.get("note")
            if not isinstance(note, str) or not note:
                raise WooError(
                    400,
                    "rest_missing_callback_param",
                    "Missing parameter(s): note",
                    params=["note"],
                )
            with self._lock:
                order = self._order(order_id)
                created = {
                    "id": self._new_id(),
                    "author": "WooCommerce",
                    "date_created": _now(),
                    "note": note,
                    "customer_note": bool(body.get("customer_note")),
                }
                order["_notes"].insert(0, created)
                self.notes_added.append((order["id"], note, created["customer_note"]))
                return JSONResponse(created, status_code=201)

        @app.get(f"{PREFIX}/orders/{{order_id}}/refunds")
        async def list_refunds(order_id: str) -> JSONResponse:
            with self._lock:
                return JSONResponse(copy.deepcopy(self._order(order_id)["_refunds"]))

        @app.post(f"{PREFIX}/orders/{{order_id}}/refunds")
        async def add_refund(order_id: str, request: Request) -> JSONResponse:
            body = await body_of(request)
            try:
                amount = Decimal(str(body.get("amount")))
            except InvalidOperation:
                amount = Decimal(0)
            with self._lock:
                order = self._order(order_id)
                refunded = sum((Decimal(r["amount"]) for r in order["_refunds"]), Decimal(0))
                if amount <= 0 or amount > Decimal(str(order["total"])) - refunded:
                    raise WooError(
                        400, "woocommerce_rest_cannot_create_order_refund", "Invalid refund amount."
                    )
                created = {
                    "id": self._new_id(),
                    "date_created": _now(),
                    "amount": f"{amount:.2f}",
                    "reason": str(body.get("reason") or ""),
                    "refunded_by": 1,
                    "refunded_payment": bool(body.get("api_refund", True)),
                    "meta_data": [
                        {"id": self._new_id(), "key": m.get("key"), "value": m.get("value")}
                        for m in body.get("meta_data") or []
                        if isinstance(m, dict)
                    ],
                    "line_items": [],
                }
                order["_refunds"].insert(0, created)
                order["refunds"].insert(
                    0, {"id": created["id"], "reason": created["reason"], "total": f"-{amount:.2f}"}
                )
                self.refunds_made.append((order["id"], json.loads(json.dumps(body, default=str))))
                return JSONResponse(created, status_code=201)

        return app
