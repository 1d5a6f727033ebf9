"""A local OTTO Market API double: a real HTTP server (FastAPI under uvicorn, 127.0.0.1, a free
port, in a background thread) that the OTTO client (`services/channel_connector/clients/otto.py`)
talks to.

Built from OTTO's documented shapes (api.otto.market: Developer's Guide "Authentication",
Orders v4, Shipments v1, Availability v1 quantities, API guidelines on rate limits):

- `POST /v1/token` (form): `grant_type=client_credentials` with `client_id`, `client_secret`
  and `scope` (space-separated: orders, shipments, availability, ...), or the older
  `grant_type=password` with `client_id=token-otto-api`, `username`, `password` -> an access
  token with `expires_in` (`token_ttl_s`, 1800 like OTTO's). Wrong credentials -> 401
  `invalid_client` / `invalid_grant`; another grant -> 400 `unsupported_grant_type`.
- Every other call needs `Authorization: Bearer <token>`: a token past its `expires_in` (or
  expired by `expire_tokens()`) -> 401; a token without the call's scope -> 403.
- `GET /v4/orders?fromDate=&limit=` (limit <= 128): orders whose `lastModifiedDate` is at or
  after `fromDate`, oldest change first, `{"resources": [...], "links": [{"rel": "next",
  "href": "/v4/orders?nextcursor=..."}]}` while more remain; with `nextcursor` only `limit`
  counts. `GET /v4/orders/{salesOrderId}` -> the order, 404 unknown.
- `POST /v1/shipments` {trackingKey {carrier, trackingNumber}, shipDate, shipFromAddress {city,
  countryCode (alpha-3), zipCode}, positionItems [{positionItemId, salesOrderId}]} -> 201
  {shipmentId}; the items become SENT with `sentDate` and `trackingInfo`. Missing fields, an
  unknown carrier -> 400; an item that is not PROCESSABLE, or a tracking key used before -> 409
  (nothing changes). `POST /v1/shipments/carriers/{carrier}/trackingnumbers/{n}/positionitems`
  adds items to that shipment (404 if there is none).
- `POST /v4/orders/{salesOrderId}/positionItems/{ids}/cancellation` (ids comma-separated): the
  PROCESSABLE ones become CANCELLED_BY_PARTNER, CANCELLED_BY_PARTNER ones are ignored, any other
  state -> 409 and nothing changes.
- `POST /v1/availability/quantities` [{sku, quantity}] -> 200; more than 200 -> 413; a SKU not
  in `known_skus` (when set) -> 207 with `errors` naming it.
- Errors are `{"errors": [{"path", "title", "detail", "code"}]}`; the token endpoint answers
  OAuth's `{"error", "error_description"}`.

Faults: `fail_next(path_contains, status, ...)` answers the next matching request with 429
(with Retry-After), 5xx or another status. Every change to an order moves its
`lastModifiedDate` to now.

For assertions: `requests` (method, path, query), `tokens_issued`, `shipments`, `quantities`,
`stock_requests` (each request's body), `cancellations`, the `orders` themselves.
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
from urllib.parse import parse_qsl, unquote

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.served_app import ServedApp
from tests.unit.channels.otto_payloads import body as json_body

CLIENT_ID = "otto-app-4f1c2b"
CLIENT_SECRET = "otto-secret-9d8e7f6a5b4c"
USERNAME = "api-user@shop.example.com"
PASSWORD = "otto-password-123"
PASSWORD_CLIENT_ID = "token-otto-api"
CARRIERS = frozenset(
    {"DHL", "DHL_EXPRESS", "DHL_FREIGHT", "DHL_HOME_DELIVERY", "GLS", "HERMES", "DPD", "UPS"}
    | {"DB_SCHENKER", "DACHSER", "DSV", "FEDEX", "KUEHNE_NAGEL", "RHENUS", "TNT", "GEL"}
)
SCOPE_OF = (
    ("/v4/orders", "orders"),
    ("/v1/shipments", "shipments"),
    ("/v1/availability", "availability"),
)
MAX_PAGE = 128
MAX_QUANTITIES = 200


@dataclass
class Fault:
    path_contains: str
    method: str | None
    status: int
    retry_after: int | None


@dataclass
class Token:
    expires_at: float
    scopes: frozenset[str]


@dataclass
class Shipment:
    shipment_id: str
    carrier: str
    tracking_number: str
    ship_date: str
    ship_from: dict[str, Any]
    position_items: list[dict[str, str]] = field(default_factory=list)


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _errors(status: int, path: str, title: str, detail: str) -> dict[str, Any]:
    return {"errors": [{"path": path, "title": title, "detail": detail, "code": status}]}


def _answer(status: int, payload: Any = None, headers: dict[str, str] | None = None) -> Response:
    if payload is None:
        return Response(status_code=status, headers=headers)
    return Response(
        json_body(payload), status_code=status, media_type="application/json", headers=headers
    )


class OttoDouble:
    def __init__(
        self,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        *,
        token_ttl_s: int = 1800,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl_s = token_ttl_s
        self.orders: dict[str, dict[str, Any]] = {}
        self.shipments: list[Shipment] = []
        self.quantities: dict[str, int] = {}
        self.stock_requests: list[list[dict[str, Any]]] = []
        self.cancellations: list[tuple[str, list[str]]] = []
        self.known_skus: set[str] | None = None
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.tokens_issued = 0
        self.token_requests: list[dict[str, str]] = []
        self._tokens: dict[str, Token] = {}
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.app = self._build_app()
        self._served = ServedApp(self.app, "OTTO Market double")
        self.port = self._served.port

    # --- for tests ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @contextlib.contextmanager
    def serving(self) -> Iterator[OttoDouble]:
        self._served.start()
        try:
            yield self
        finally:
            self._served.stop()

    def add_order(self, order: dict[str, Any]) -> dict[str, Any]:
        """An order placed on OTTO (a deep copy is kept; its lastModifiedDate as given)."""
        copied = json.loads(json_body(order), parse_float=Decimal)
        with self._lock:
            self.orders[copied["salesOrderId"]] = copied
        return copied

    def set_status(self, sales_order_id: str, position_item_id: str, status: str) -> None:
        """OTTO changes an item (the customer pays, the marketplace cancels)."""
        with self._lock:
            order = self.orders[sales_order_id]
            self._item(order, position_item_id)["fulfillmentStatus"] = status
            self._touch(order)

    def statuses(self, sales_order_id: str) -> dict[str, str]:
        with self._lock:
            return {
                i["positionItemId"]: i["fulfillmentStatus"]
                for i in self.orders[sales_order_id]["positionItems"]
            }

    def expire_tokens(self) -> None:
        """Every access token issued so far is refused from now on (401)."""
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = 0.0

    def fail_next(
        self,
        path_contains: str,
        status: int,
        *,
        method: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        with self._lock:
            self._faults.append(Fault(path_contains, method, status, retry_after))

    def calls(self, method: str, path_contains: str) -> list[tuple[str, str, dict[str, str]]]:
        return [r for r in self.requests if r[0] == method and path_contains in r[1]]

    # --- the app ------------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        routes = [
            Route("/v1/token", self._token, methods=["POST"]),
            Route("/v4/orders", self._list_orders, methods=["GET"]),
            Route("/v4/orders/{sales_order_id}", self._get_order, methods=["GET"]),
            Route(
                "/v4/orders/{sales_order_id}/positionItems/{ids}/cancellation",
                self._cancel_items,
                methods=["POST"],
            ),
            Route("/v1/shipments", self._create_shipment, methods=["POST"]),
            Route(
                "/v1/shipments/carriers/{carrier}/trackingnumbers/{number}/positionitems",
                self._append_items,
                methods=["POST"],
            ),
            Route("/v1/availability/quantities", self._store_quantities, methods=["POST"]),
        ]
        app = FastAPI(
            title="OTTO Market double",
            routes=routes,
            openapi_url=None,
            docs_url=None,
            redoc_url=None,
        )

        @app.middleware("http")
        async def gatekeeper(request: Request, call_next: Any) -> Response:
            path = request.url.path
            with self._lock:
                self.requests.append((request.method, path, dict(request.query_params)))
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
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else None
                title = "Too Many Requests" if fault.status == 429 else "Error"
                return _answer(
                    fault.status, _errors(fault.status, path, title, "injected fault"), headers
                )
            if path != "/v1/token":
                refused = self._authenticate(path, request.headers.get("authorization"))
                if refused is not None:
                    return refused
            response: Response = await call_next(request)
            return response

        return app

    def _authenticate(self, path: str, header: str | None) -> Response | None:
        if not header or not header.startswith("Bearer "):
            return _answer(401, _errors(401, path, "Unauthorized", "no bearer token"))
        with self._lock:
            token = self._tokens.get(header.removeprefix("Bearer "))
        if token is None or time.time() >= token.expires_at:
            return _answer(
                401,
                _errors(401, path, "Unauthorized", "the access token is invalid or expired"),
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        needed = next((scope for prefix, scope in SCOPE_OF if path.startswith(prefix)), None)
        if needed is not None and needed not in token.scopes:
            return _answer(403, _errors(403, path, "Forbidden", f"scope {needed} is missing"))
        return None

    async def _token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        with self._lock:
            self.token_requests.append({k: v for k, v in form.items() if "secret" not in k})
        grant = form.get("grant_type")
        if grant == "client_credentials":
            if form.get("client_id") != self.client_id or form.get("client_secret") != (
                self.client_secret
            ):
                return _answer(
                    401,
                    {"error": "invalid_client", "error_description": "Invalid client credentials"},
                )
            scopes = frozenset(form.get("scope", "").split())
        elif grant == "password":
            if form.get("client_id") != PASSWORD_CLIENT_ID or (
                form.get("username"),
                form.get("password"),
            ) != (USERNAME, PASSWORD):
                return _answer(
                    401,
                    {"error": "invalid_grant", "error_description": "Invalid user credentials"},
                )
            scopes = frozenset({"orders", "shipments", "availability", "products", "returns"})
        else:
            return _answer(
                400,
                {"error": "unsupported_grant_type", "error_description": f"grant {grant!r}"},
            )
        access_token = base64.urlsafe_b64encode(secrets.token_bytes(48)).decode().rstrip("=")
        with self._lock:
            self._tokens[access_token] = Token(time.time() + self.token_ttl_s, scopes)
            self.tokens_issued += 1
        return _answer(
            200,
            {
                "access_token": access_token,
                "expires_in": self.token_ttl_s,
                "refresh_expires_in": 0,
                "token_type": "Bearer",
                "not-before-policy": 0,
                "scope": " ".join(sorted(scopes)),
            },
        )

    # --- orders -------------------------------------------------------------------------------

    async def _list_orders(self, request: Request) -> Response:
        params = request.query_params
        try:
            limit = int(params.get("limit", MAX_PAGE))
        except ValueError:
            limit = -1
        if not 1 <= limit <= MAX_PAGE:
            return _answer(
                400, _errors(400, "/v4/orders", "Bad Request", f"limit must be 1..{MAX_PAGE}")
            )
        cursor = params.get("nextcursor")
        if cursor is not None:
            try:
                state = json.loads(base64.urlsafe_b64decode(cursor.encode()))
                from_date, offset = state["fromDate"], int(state["offset"])
            except (ValueError, KeyError, TypeError):
                return _answer(400, _errors(400, "/v4/orders", "Bad Request", "bad nextcursor"))
        else:
            from_date, offset = params.get("fromDate"), 0
            if from_date is not None:
                try:
                    _time(from_date)
                except ValueError:
                    return _answer(
                        400, _errors(400, "/v4/orders", "Bad Request", "fromDate is not ISO 8601")
                    )
        with self._lock:
            matching = [
                o
                for o in self.orders.values()
                if from_date is None or _time(o["lastModifiedDate"]) >= _time(from_date)
            ]
            matching.sort(key=lambda o: (_time(o["lastModifiedDate"]), o["salesOrderId"]))
            page = matching[offset : offset + limit]
            payload: dict[str, Any] = {
                "resources": json.loads(json_body(page), parse_float=Decimal)
            }
            if offset + limit < len(matching):
                state = {"fromDate": from_date, "offset": offset + limit}
                next_cursor = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
                payload["links"] = [{"rel": "next", "href": f"/v4/orders?nextcursor={next_cursor}"}]
            else:
                payload["links"] = []
        return _answer(200, payload)

    async def _get_order(self, request: Request) -> Response:
        sales_order_id = request.path_params["sales_order_id"]
        with self._lock:
            order = self.orders.get(sales_order_id)
            if order is None:
                return _answer(
                    404,
                    _errors(404, request.url.path, "Not Found", f"no order {sales_order_id}"),
                )
            return _answer(200, order)

    async def _cancel_items(self, request: Request) -> Response:
        sales_order_id = request.path_params["sales_order_id"]
        ids = [unquote(i) for i in request.path_params["ids"].split(",") if i]
        path = request.url.path
        with self._lock:
            order = self.orders.get(sales_order_id)
            if order is None:
                return _answer(404, _errors(404, path, "Not Found", f"no order {sales_order_id}"))
            items = []
            for item_id in ids:
                item = next(
                    (i for i in order["positionItems"] if i["positionItemId"] == item_id), None
                )
                if item is None:
                    return _answer(404, _errors(404, path, "Not Found", f"no item {item_id}"))
                if item["fulfillmentStatus"] not in ("PROCESSABLE", "CANCELLED_BY_PARTNER"):
                    return _answer(
                        409,
                        _errors(
                            409,
                            path,
                            "Conflict",
                            f"position item {item_id} is {item['fulfillmentStatus']}",
                        ),
                    )
                items.append(item)
            changed = [i for i in items if i["fulfillmentStatus"] == "PROCESSABLE"]
            for item in changed:
                item["fulfillmentStatus"] = "CANCELLED_BY_PARTNER"
                item["cancellationDate"] = now_text()
                item["cancellationReason"] = "CANCELLED_ON_PARTNER_WISH"
            if changed:
                self._touch(order)
            self.cancellations.append((sales_order_id, [i["positionItemId"] for i in changed]))
        return _answer(200)

    # --- shipments ----------------------------------------------------------------------------

    async def _create_shipment(self, request: Request) -> Response:
        path = request.url.path
        try:
            body = json.loads(await request.body(), parse_float=Decimal)
            key = body["trackingKey"]
            carrier, number = key["carrier"], key["trackingNumber"]
            ship_date = body["shipDate"]
            ship_from = body["shipFromAddress"]
            entries = body["positionItems"]
            if not all(isinstance(v, str) and v for v in (carrier, number, ship_date)):
                raise ValueError("trackingKey and shipDate must be strings")
            if not isinstance(ship_from, dict) or not all(
                isinstance(ship_from.get(k), str) and ship_from[k]
                for k in ("city", "zipCode", "countryCode")
            ):
                raise ValueError("shipFromAddress needs city, zipCode and countryCode")
            if len(ship_from["countryCode"]) != 3:
                raise ValueError("shipFromAddress.countryCode must be ISO 3166-1 alpha-3")
            shipped_on = _time(ship_date)
            if shipped_on.utcoffset() != timedelta(0):
                raise ValueError("shipDate must be UTC")
            if not isinstance(entries, list) or not entries:
                raise ValueError("positionItems must not be empty")
        except (ValueError, KeyError, TypeError) as exc:
            return _answer(400, _errors(400, path, "Bad Request", str(exc)))
        if carrier not in CARRIERS:
            return _answer(400, _errors(400, path, "Bad Request", f"unknown carrier {carrier}"))
        with self._lock:
            if any(s.carrier == carrier and s.tracking_number == number for s in self.shipments):
                return _answer(
                    409,
                    _errors(409, path, "Conflict", f"tracking key {carrier}/{number} exists"),
                )
            refused = self._check_processable(path, entries)
            if refused is not None:
                return refused
            shipment = Shipment(
                f"shp-{secrets.token_hex(6)}", carrier, number, ship_date, dict(ship_from)
            )
            self._mark_sent(shipment, entries)
            self.shipments.append(shipment)
        return _answer(201, {"shipmentId": shipment.shipment_id})

    async def _append_items(self, request: Request) -> Response:
        path = request.url.path
        carrier = unquote(request.path_params["carrier"])
        number = unquote(request.path_params["number"])
        try:
            entries = json.loads(await request.body(), parse_float=Decimal)
            if not isinstance(entries, list) or not entries:
                raise ValueError("the position items must not be empty")
        except ValueError as exc:
            return _answer(400, _errors(400, path, "Bad Request", str(exc)))
        with self._lock:
            shipment = next(
                (s for s in self.shipments if (s.carrier, s.tracking_number) == (carrier, number)),
                None,
            )
            if shipment is None:
                return _answer(404, _errors(404, path, "Not Found", "no such shipment"))
            refused = self._check_processable(path, entries)
            if refused is not None:
                return refused
            self._mark_sent(shipment, entries)
        return _answer(200)

    def _check_processable(self, path: str, entries: list[Any]) -> Response | None:
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not all(
                isinstance(entry.get(k), str) and entry[k]
                for k in ("positionItemId", "salesOrderId")
            ):
                return _answer(
                    400,
                    _errors(
                        400,
                        path,
                        "Bad Request",
                        f"positionItems[{index}] needs positionItemId and salesOrderId",
                    ),
                )
            order = self.orders.get(entry["salesOrderId"])
            item = (
                next(
                    (
                        i
                        for i in order["positionItems"]
                        if i["positionItemId"] == entry["positionItemId"]
                    ),
                    None,
                )
                if order is not None
                else None
            )
            if item is None:
                return _answer(
                    400,
                    _errors(400, path, "Bad Request", f"unknown item {entry['positionItemId']}"),
                )
            if item["fulfillmentStatus"] != "PROCESSABLE":
                return _answer(
                    409,
                    _errors(
                        409,
                        path,
                        "Conflict",
                        f"position item {entry['positionItemId']} is {item['fulfillmentStatus']}",
                    ),
                )
        if len({(e["salesOrderId"], e["positionItemId"]) for e in entries}) != len(entries):
            return _answer(400, _errors(400, path, "Bad Request", "a position item twice"))
        return None

    def _mark_sent(self, shipment: Shipment, entries: list[dict[str, str]]) -> None:
        for entry in entries:
            order = self.orders[entry["salesOrderId"]]
            item = self._item(order, entry["positionItemId"])
            item["fulfillmentStatus"] = "SENT"
            item["sentDate"] = now_text()
            item["trackingInfo"] = {
                "carrier": shipment.carrier,
                "trackingNumber": shipment.tracking_number,
            }
            shipment.position_items.append(
                {"positionItemId": entry["positionItemId"], "salesOrderId": entry["salesOrderId"]}
            )
            self._touch(order)

    # --- quantities ---------------------------------------------------------------------------

    async def _store_quantities(self, request: Request) -> Response:
        path = request.url.path
        try:
            entries = json.loads(await request.body())
            if not isinstance(entries, list):
                raise ValueError("the body must be a list")
        except ValueError as exc:
            return _answer(400, _errors(400, path, "Bad Request", str(exc)))
        if len(entries) > MAX_QUANTITIES:
            return _answer(
                413,
                {
                    "type": path,
                    "title": "Payload Too Large",
                    "status": 413,
                    "validationErrors": [
                        {"detail": f"at most {MAX_QUANTITIES} quantities", "logref": "q-413"}
                    ],
                },
            )
        for index, entry in enumerate(entries):
            quantity = entry.get("quantity") if isinstance(entry, dict) else None
            sku = entry.get("sku") if isinstance(entry, dict) else None
            if (
                not isinstance(sku, str)
                or not sku
                or isinstance(quantity, bool)
                or not isinstance(quantity, int)
                or quantity < 0
            ):
                return _answer(
                    400,
                    _errors(400, path, "Bad Request", f"[{index}] needs sku and quantity >= 0"),
                )
        errors = []
        results = []
        with self._lock:
            self.stock_requests.append(entries)
            for entry in entries:
                if self.known_skus is not None and entry["sku"] not in self.known_skus:
                    errors.append(
                        {
                            "code": 404,
                            "title": "SKU not found",
                            "detail": f"sku {entry['sku']} is unknown",
                            "logref": "q-404",
                            "path": path,
                        }
                    )
                    continue
                self.quantities[entry["sku"]] = entry["quantity"]
                results.append({"sku": entry["sku"], "quantity": entry["quantity"]})
        if errors:
            return _answer(207, {"results": results, "errors": errors})
        return _answer(200, {"results": results})

    # --- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _item(order: dict[str, Any], position_item_id: str) -> dict[str, Any]:
        return next(i for i in order["positionItems"] if i["positionItemId"] == position_item_id)

    @staticmethod
    def _touch(order: dict[str, Any]) -> None:
        stamp = now_text()
        previous = _time(order["lastModifiedDate"])
        if _time(stamp) <= previous:  # every change is a new version, even within 1 ms
            later = previous.astimezone(UTC) + timedelta(milliseconds=1)
            stamp = later.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        order["lastModifiedDate"] = stamp
        order.setdefault("orderLifecycleInformation", {})["lifecycleChangeDate"] = stamp
