"""A local Magento 2 (Adobe Commerce) REST API double: a real HTTP server (FastAPI under uvicorn
on a free 127.0.0.1 port, in a thread) that the connector's Magento client talks to through
`api_base` (`{base_url}/rest/default`).

Built from Adobe's documented web API shapes (REST reference: salesOrderRepositoryV1,
salesShipOrderV1, salesShipmentRepositoryV1, salesOrderManagementV1 cancel, salesRefundOrderV1,
salesCreditmemoRepositoryV1, inventoryApiSourceItemsSaveV1; "Status codes and REST responses"
for errors, `{"message", "parameters"}`):

- `GET /V1/orders?searchCriteria[...]`: filter groups (`eq`, `gteq`, `gt`, `lteq`, `lt`) on
  any top-level field, `sortOrders`, `pageSize` / `currentPage` — and, as Magento does, a page
  past the last answered with the last page again. `{"items", "search_criteria",
  "total_count"}`. `GET /V1/orders/{id}`; an unknown id -> 404.
- `POST /V1/order/{id}/ship` `{items: [{order_item_id, qty}], tracks, arguments}`: each item
  must be open (ordered - shipped - cancelled) for its qty, tracks need `track_number` and
  `carrier_code`; the items' (and configurable children's) `qty_shipped` move, the order goes
  `complete` when everything invoiced has shipped; answers the shipment id. An order that
  cannot ship -> 400 "Shipment Document Validation Error(s): The order does not allow a
  shipment to be created.". `GET /V1/shipments?searchCriteria` (by `order_id`).
- `POST /V1/orders/{id}/cancel` -> `true`, or `false` when Magento cannot cancel (already
  cancelled, complete, closed, or invoiced in full).
- `POST /V1/order/{id}/refund`: an offline credit memo. `items` empty refunds every item in
  full (as Magento does); `arguments.adjustment_positive` adds to it; more than was invoiced
  and not yet refunded -> 400. `GET /V1/creditmemos?searchCriteria` (by `order_id`), with
  their `comments`.
- `POST /V1/inventory/source-items` `{sourceItems: [...]}` -> `[]`; a SKU the double does not
  know refuses the whole request with 400 "Validation Failed".

Authentication: `Authorization: Bearer <access token>`; none or another -> 401 "The consumer
isn't authorized to access %resources.". Faults: `fail_next(...)` (429 with `Retry-After`, 5xx
with Magento's production-mode body "Internal Error. Details are available in Magento log file.
Report ID: ...").

Recorded for assertions: `requests` (method, path), `ship_calls` (order id, body),
`order_searches` (the `updated_at` filter value of each order search), `source_items` (sku ->
(source, quantity, status)), `cancel_calls`, `refund_calls`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.support.served_app import ServedApp

ACCESS_TOKEN = "mg_int_5b1c3a7e9d2f4c6a8b0e1d3f5a7c9e2b"
_FILTER = re.compile(
    r"^searchCriteria\[filter_groups\]\[(\d+)\]\[filters\]\[(\d+)\]\[(field|value|condition_type)\]$"
)
_SORT = re.compile(r"^searchCriteria\[sortOrders\]\[(\d+)\]\[(field|direction)\]$")
NOT_SHIPPABLE = (
    "Shipment Document Validation Error(s):\nThe order does not allow a shipment to be created."
)


class MagentoError(Exception):
    def __init__(self, status: int, message: str, parameters: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameters = parameters


@dataclass
class Fault:
    path_contains: str
    method: str | None
    status: int
    message: str
    retry_after: str | None


def _error(status: int, message: str, parameters: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"message": message}
    if parameters is not None:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=status)


def magento_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _num(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value is not None else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def _out(value: Decimal) -> float | int:
    """A quantity or amount as Magento writes it in JSON."""
    return int(value) if value == value.to_integral_value() else float(value)


def _matches(value: Any, condition: str, wanted: str) -> bool:
    if value is None:
        return False
    text = str(value)
    if condition == "eq":
        return text == wanted
    if condition == "neq":
        return text != wanted
    compare = {"gteq": text >= wanted, "gt": text > wanted, "lteq": text <= wanted}
    if condition in compare:
        return compare[condition]
    if condition == "lt":
        return text < wanted
    raise MagentoError(400, f'Invalid condition type "{condition}".')


def _criteria(
    params: dict[str, str],
) -> tuple[list[list[dict[str, str]]], list[tuple[str, str]], int | None, int]:
    groups: dict[int, dict[int, dict[str, str]]] = {}
    sorts: dict[int, dict[str, str]] = {}
    for key, value in params.items():
        found = _FILTER.match(key)
        if found:
            group, index, part = int(found[1]), int(found[2]), found[3]
            groups.setdefault(group, {}).setdefault(index, {})[part] = value
            continue
        found = _SORT.match(key)
        if found:
            sorts.setdefault(int(found[1]), {})[found[2]] = value
    filters = [[f for _, f in sorted(group.items())] for _, group in sorted(groups.items())]
    sort = [(s["field"], s.get("direction", "ASC").upper()) for _, s in sorted(sorts.items())]
    size = int(params["searchCriteria[pageSize]"]) if "searchCriteria[pageSize]" in params else None
    page = int(params.get("searchCriteria[currentPage]", "1"))
    return filters, sort, size, page


def _search(rows: list[dict[str, Any]], params: dict[str, str]) -> dict[str, Any]:
    filters, sort, size, page = _criteria(params)
    found = [
        row
        for row in rows
        if all(
            any(
                _matches(row.get(f["field"]), f.get("condition_type", "eq"), f.get("value", ""))
                for f in group
            )
            for group in filters
        )
    ]
    for field, direction in reversed(sort):
        found.sort(
            key=lambda row: (
                str(row.get(field)).zfill(20) if field.endswith("id") else str(row.get(field))
            ),
            reverse=direction == "DESC",
        )
    total = len(found)
    if size:
        last = max(1, -(-total // size))
        page = min(max(1, page), last)  # Magento: past the last page, the last page again
        found = found[(page - 1) * size : page * size]
    return {
        "items": copy.deepcopy(found),
        "search_criteria": {"filter_groups": [{"filters": g} for g in filters]},
        "total_count": total,
    }


class MagentoDouble:
    def __init__(self, token: str = ACCESS_TOKEN, store_code: str = "default") -> None:
        self.token = token
        self.store_code = store_code
        self.orders: dict[int, dict[str, Any]] = {}
        self.shipments: list[dict[str, Any]] = []
        self.creditmemos: list[dict[str, Any]] = []
        self.skus: set[str] = set()
        self.source_items: dict[str, tuple[str, Decimal, int]] = {}
        self.requests: list[tuple[str, str]] = []
        self.ship_calls: list[tuple[int, dict[str, Any]]] = []
        self.order_searches: list[str | None] = []
        self.cancel_calls: list[int] = []
        self.refund_calls: list[tuple[int, dict[str, Any]]] = []
        self._faults: list[Fault] = []
        self._next_id = 700
        self._lock = threading.Lock()
        self.app = self._build_app()
        self._served = ServedApp(self.app, "Magento double")

    # --- for tests -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self._served.base_url

    @property
    def api_base(self) -> str:
        """The account's `api_base`: the REST root with the store code."""
        return f"{self.base_url}/rest/{self.store_code}"

    def add_order(self, order: dict[str, Any], *, touch: bool = True) -> None:
        """An order as `GET /V1/orders/{id}` returns it; `touch`: its `updated_at` is now."""
        with self._lock:
            stored = copy.deepcopy(order)
            if touch:
                stored["updated_at"] = magento_now()
            self.orders[int(stored["entity_id"])] = stored

    def order(self, entity_id: int) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.orders[entity_id])

    def fail_next(
        self,
        path_contains: str,
        status: int,
        *,
        method: str | None = None,
        retry_after: str | None = None,
        message: str | None = None,
    ) -> None:
        if message is None:
            message = (
                "Too many requests"
                if status == 429
                else "Internal Error. Details are available in Magento log file. Report ID:"
                f" webapi-{uuid.uuid4().hex[:13]}"
            )
        with self._lock:
            self._faults.append(Fault(path_contains, method, status, message, retry_after))

    @contextlib.contextmanager
    def serving(self) -> Iterator[MagentoDouble]:
        self._served.start()
        try:
            yield self
        finally:
            self._served.stop()

    # --- state -----------------------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _order(self, entity_id: str) -> dict[str, Any]:
        try:
            return self.orders[int(entity_id)]
        except (KeyError, ValueError):
            raise MagentoError(
                404, "The entity that was requested doesn't exist. Verify the entity and try again."
            ) from None

    @staticmethod
    def _open(item: dict[str, Any]) -> Decimal:
        return (
            _num(item.get("qty_ordered"))
            - _num(item.get("qty_shipped"))
            - _num(item.get("qty_canceled"))
        )

    def _ship(self, order: dict[str, Any], body: dict[str, Any]) -> int:
        if order.get("state") not in ("new", "processing"):
            raise MagentoError(400, NOT_SHIPPABLE)
        by_id = {int(item["item_id"]): item for item in order["items"]}
        wanted = body.get("items") or []
        if not wanted:
            wanted = [
                {"order_item_id": i["item_id"], "qty": _out(self._open(i))}
                for i in order["items"]
                if i.get("parent_item_id") is None and self._open(i) > 0
            ]
        if not wanted:
            raise MagentoError(400, NOT_SHIPPABLE)
        for entry in wanted:
            item = by_id.get(int(entry.get("order_item_id") or 0))
            qty = _num(entry.get("qty"))
            if item is None:
                raise MagentoError(
                    400,
                    "Shipment Document Validation Error(s):\nThe order item"
                    f" {entry.get('order_item_id')} does not belong to the order.",
                )
            if qty <= 0 or qty > self._open(item):
                raise MagentoError(
                    400,
                    "Shipment Document Validation Error(s):\nThe quantity to ship must not be"
                    " greater than the unshipped quantity.",
                )
        tracks = body.get("tracks") or []
        for track in tracks:
            for field in ("track_number", "carrier_code"):
                if not track.get(field):
                    raise MagentoError(
                        400, '"%fieldName" is required. Enter and try again.', {"fieldName": field}
                    )
        for entry in wanted:
            item = by_id[int(entry["order_item_id"])]
            qty = _num(entry["qty"])
            item["qty_shipped"] = _out(_num(item.get("qty_shipped")) + qty)
            for child in order["items"]:
                if child.get("parent_item_id") == item["item_id"]:
                    child["qty_shipped"] = _out(_num(child.get("qty_shipped")) + qty)
        shipment_id = self._new_id()
        self.shipments.append(
            {
                "entity_id": shipment_id,
                "order_id": order["entity_id"],
                "increment_id": f"{shipment_id:09d}",
                "created_at": magento_now(),
                "items": [
                    {
                        "order_item_id": int(e["order_item_id"]),
                        "qty": e["qty"],
                        "sku": by_id[int(e["order_item_id"])]["sku"],
                    }
                    for e in wanted
                ],
                "tracks": [
                    {
                        "entity_id": self._new_id(),
                        "order_id": order["entity_id"],
                        "parent_id": shipment_id,
                        "track_number": t["track_number"],
                        "title": t.get("title"),
                        "carrier_code": t["carrier_code"],
                    }
                    for t in tracks
                ],
                "comments": [],
            }
        )
        if all(self._open(i) <= 0 for i in order["items"] if i.get("parent_item_id") is None):
            order["state"] = order["status"] = "complete"
        order["updated_at"] = magento_now()
        return shipment_id

    def _cancel(self, order: dict[str, Any]) -> bool:
        if order.get("state") in ("canceled", "complete", "closed", "holded"):
            return False
        invoiced = _num(order.get("total_invoiced"))
        if invoiced > 0 and invoiced >= _num(order.get("grand_total")):
            return False
        for item in order["items"]:
            item["qty_canceled"] = _out(_num(item.get("qty_canceled")) + self._open(item))
        order["state"] = order["status"] = "canceled"
        order["updated_at"] = magento_now()
        return True

    def _refund(self, order: dict[str, Any], body: dict[str, Any]) -> int:
        invoiced = _num(order.get("total_invoiced"))
        if invoiced <= 0 or order.get("state") in ("canceled", "closed"):
            raise MagentoError(400, "The order does not allow a creditmemo to be created.")
        arguments = body.get("arguments") or {}
        by_id = {int(item["item_id"]): item for item in order["items"]}
        qtys = {int(e["order_item_id"]): _num(e.get("qty")) for e in body.get("items") or []}
        goods = Decimal(0)
        for item_id, item in by_id.items():
            if item.get("parent_item_id") is not None:
                continue
            qty = qtys.get(item_id, Decimal(0)) if qtys else _num(item.get("qty_ordered"))
            if qty:
                unit = _num(item.get("row_total")) / _num(item.get("qty_ordered"))
                goods += unit * qty + _num(item.get("tax_amount")) * qty / _num(
                    item.get("qty_ordered")
                )
        shipping = (
            _num(arguments.get("shipping_amount"))
            if "shipping_amount" in arguments
            else (_num(order.get("shipping_amount")) if not qtys else Decimal(0))
        )
        total = (
            goods.quantize(Decimal("0.01"))
            + shipping
            + _num(arguments.get("adjustment_positive"))
            - _num(arguments.get("adjustment_negative"))
        )
        left = invoiced - _num(order.get("total_refunded"))
        if total <= 0:
            raise MagentoError(400, "The credit memo's total must be positive.")
        if total > left:
            raise MagentoError(400, "The most money available to refund is %1.", [f"{left:.2f}"])
        memo_id = self._new_id()
        comment = body.get("comment") or {}
        self.creditmemos.append(
            {
                "entity_id": memo_id,
                "order_id": order["entity_id"],
                "increment_id": f"{memo_id:09d}",
                "grand_total": _out(total),
                "adjustment_positive": _out(_num(arguments.get("adjustment_positive"))),
                "state": 2,
                "comments": [
                    {
                        "entity_id": self._new_id(),
                        "parent_id": memo_id,
                        "comment": comment["comment"],
                        "is_visible_on_front": comment.get("is_visible_on_front", 0),
                    }
                ]
                if body.get("appendComment") and comment.get("comment")
                else [],
                "items": [],
            }
        )
        order["total_refunded"] = _out(_num(order.get("total_refunded")) + total)
        order["updated_at"] = magento_now()
        return memo_id

    # --- the app ---------------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="Magento double", openapi_url=None, docs_url=None, redoc_url=None)
        root = "/rest/{store}/V1"

        @app.exception_handler(MagentoError)
        async def magento_error(request: Request, exc: MagentoError) -> JSONResponse:
            return _error(exc.status, exc.message, exc.parameters)

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
                response = _error(fault.status, fault.message)
                if fault.retry_after is not None:
                    response.headers["Retry-After"] = fault.retry_after
                return response
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return _error(
                    401,
                    "The consumer isn't authorized to access %resources.",
                    {"resources": "Magento_Sales::sales"},
                )
            if not path.startswith(f"/rest/{self.store_code}/"):
                return _error(404, f'Requested store is not found ("{path.split("/")[2]}")')
            answer: Response = await call_next(request)
            return answer

        async def body_of(request: Request) -> dict[str, Any]:
            raw = await request.body()
            try:
                body = json.loads(raw or b"{}", parse_float=Decimal)
            except ValueError:
                raise MagentoError(400, "Decoding error: \nSyntax error") from None
            if not isinstance(body, dict):
                raise MagentoError(400, "Decoding error: \nSyntax error")
            return body

        def plain(obj: Any) -> Any:
            return json.loads(json.dumps(obj, default=lambda d: _out(d)))

        @app.get(f"{root}/orders")
        async def search_orders(request: Request) -> JSONResponse:
            params = dict(request.query_params)
            filters, _, _, _ = _criteria(params)
            with self._lock:
                self.order_searches.append(
                    next(
                        (
                            f.get("value")
                            for g in filters
                            for f in g
                            if f.get("field") == "updated_at"
                        ),
                        None,
                    )
                )
                return JSONResponse(_search(list(self.orders.values()), params))

        @app.get(f"{root}/orders/{{entity_id}}")
        async def get_order(entity_id: str) -> JSONResponse:
            with self._lock:
                return JSONResponse(copy.deepcopy(self._order(entity_id)))

        @app.post(f"{root}/order/{{entity_id}}/ship")
        async def ship(entity_id: str, request: Request) -> JSONResponse:
            body = await body_of(request)
            with self._lock:
                order = self._order(entity_id)
                self.ship_calls.append((order["entity_id"], plain(body)))
                return JSONResponse(self._ship(order, body))

        @app.get(f"{root}/shipments")
        async def search_shipments(request: Request) -> JSONResponse:
            with self._lock:
                return JSONResponse(_search(self.shipments, dict(request.query_params)))

        @app.post(f"{root}/orders/{{entity_id}}/cancel")
        async def cancel(entity_id: str) -> JSONResponse:
            with self._lock:
                order = self._order(entity_id)
                self.cancel_calls.append(order["entity_id"])
                return JSONResponse(self._cancel(order))

        @app.post(f"{root}/order/{{entity_id}}/refund")
        async def refund(entity_id: str, request: Request) -> JSONResponse:
            body = await body_of(request)
            with self._lock:
                order = self._order(entity_id)
                self.refund_calls.append((order["entity_id"], plain(body)))
                return JSONResponse(self._refund(order, body))

        @app.get(f"{root}/creditmemos")
        async def search_creditmemos(request: Request) -> JSONResponse:
            with self._lock:
                return JSONResponse(_search(self.creditmemos, dict(request.query_params)))

        @app.post(f"{root}/inventory/source-items")
        async def save_source_items(request: Request) -> JSONResponse:
            body = await body_of(request)
            items = body.get("sourceItems")
            if not isinstance(items, list) or not items:
                raise MagentoError(
                    400,
                    '"%fieldName" is required. Enter and try again.',
                    {"fieldName": "sourceItems"},
                )
            with self._lock:
                for item in items:
                    for field in ("sku", "source_code"):
                        if not item.get(field):
                            raise MagentoError(
                                400,
                                '"%fieldName" is required. Enter and try again.',
                                {"fieldName": field},
                            )
                    if item["sku"] not in self.skus:
                        return JSONResponse(
                            {
                                "message": "Validation Failed",
                                "errors": [
                                    {
                                        "message": 'Product with SKU "%sku" does not exist.',
                                        "parameters": {"sku": item["sku"]},
                                    }
                                ],
                            },
                            status_code=400,
                        )
                for item in items:
                    self.source_items[item["sku"]] = (
                        item["source_code"],
                        _num(item.get("quantity")),
                        int(item.get("status") or 0),
                    )
            return JSONResponse([])

        return app
