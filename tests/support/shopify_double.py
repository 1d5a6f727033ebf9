"""A local Shopify Admin GraphQL double: a real HTTP server (FastAPI under uvicorn, 127.0.0.1, a
free port, in a background thread) that the connector's Shopify client talks to.

Built from the shapes documented at shopify.dev/docs/api/admin-graphql and
shopify.dev/docs/api/usage (authentication, rate limits, idempotent requests):

- `POST /admin/api/{version}/graphql.json` with `X-Shopify-Access-Token`; a missing or wrong
  token -> 401 `{"errors": "[API] Invalid API key or access token (...)"}`.
- It is a double, not a GraphQL server: it reads the operation's first root field from the
  query text (`productVariants`, `inventorySetQuantities`, `order`, `fulfillmentCreate`,
  `orderCancel`, `refundCreate`; anything else -> an `undefinedField` error) and its
  `variables`, checks the non-null arguments and input fields the schema requires (a missing
  one -> a top-level error, as GraphQL validation answers) and answers the full object whatever
  the selection.
- Mutations answer `userErrors { field message code }` as documented: unknown inventory item or
  location, a fulfillment order line item quantity beyond what remains, a closed fulfillment
  order, an order already cancelled (`INVALID`), a refund beyond what is left of its parent
  transaction or with the wrong gateway. Mutations with userErrors change nothing.
- Cost-based rate limit: a bucket (`maximumAvailable` 1000, `restoreRate` 50 a second, a query
  costs 2 or 4, a mutation 10); a call the bucket cannot pay -> HTTP 200 with
  `errors: [{message: "Throttled", extensions: {code: "THROTTLED"}}]` and
  `extensions.cost.throttleStatus`. Every answer carries `extensions.cost`.
- API versions: before 2026-01 `inventorySetQuantities` needs `ignoreCompareQuantity: true` or a
  matching `compareQuantity` per row (else `COMPARE_QUANTITY_STALE`); from 2026-01 a row's
  `changeFromQuantity` (null: no check) wins; from 2026-04 it is required on every row and
  `refundCreate` / `inventorySetQuantities` need `@idempotent(key:)`. From 2026-01 a repeated
  idempotency key answers the first call's result without acting again.

State for tests: `add_variant`, `add_order` (with fulfillment orders and a paid SALE
transaction); `throttle(...)` empties the bucket; `fail_next(...)` answers the next matching
call with an HTTP error (401, 429 with Retry-After, 5xx) before acting, or after acting (the
answer lost on the way back). Recorded: `calls` (root field, variables), `set_quantity_calls`,
`fulfillments`, `cancellations`, `refunds`; `available(sku)` the level at the location.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.support.served_app import ServedApp

TEST_TOKEN = "shpat_test_double_0123456789abcdef"
LOCATION_ID = "gid://shopify/Location/65000001"
ROOT_FIELDS = (
    "productVariants",
    "inventorySetQuantities",
    "fulfillmentCreate",
    "orderCancel",
    "refundCreate",
    "order",
)
ROOT = re.compile(r"\b(" + "|".join(ROOT_FIELDS) + r")\s*\(")
IDEMPOTENT = re.compile(r'@idempotent\(\s*key:\s*"((?:[^"\\]|\\.)*)"\s*\)')
SKU_TERM = re.compile(r'sku:(?:"((?:[^"\\]|\\.)*)"|([^\s"]+))')
CANCEL_REASONS = {"CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "STAFF", "OTHER"}
QUANTITY_NAMES = {"available", "on_hand"}
MUTATION_COST = 10
UNAUTHORIZED = {
    "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
}


class GraphQLError(Exception):
    """A top-level GraphQL error (validation), answered with HTTP 200 and `errors`."""


@dataclass
class Fault:
    root: str | None
    status: int
    retry_after: str | None
    after: bool


@dataclass
class FulfillmentOrderLine:
    id: str
    line_item_id: str
    sku: str
    total: int
    remaining: int


@dataclass
class FulfillmentOrder:
    id: str
    status: str
    lines: list[FulfillmentOrderLine]


@dataclass
class Transaction:
    id: str
    kind: str
    status: str
    gateway: str
    amount: Decimal
    currency: str
    parent: str | None = None


@dataclass
class Order:
    id: str
    currency: str
    fulfillment_orders: list[FulfillmentOrder]
    transactions: list[Transaction]
    fulfillments: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    cancelled_at: str | None = None


@dataclass
class Call:
    root: str
    variables: dict[str, Any]
    idempotency_key: str | None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _path(*parts: object) -> list[str]:
    return [str(part) for part in parts]


def _user_error(path: list[str], message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"field": path, "message": message}
    if code is not None:
        error["code"] = code
    return error


def _require(value: Any, where: str) -> Any:
    if value is None:
        raise GraphQLError(
            f"Variable {where} was provided invalid value (Expected value to not be null)"
        )
    return value


class ShopifyDouble:
    def __init__(self, access_token: str = TEST_TOKEN, location_id: str = LOCATION_ID) -> None:
        self.access_token = access_token
        self.location_id = location_id
        self._ids = itertools.count(1000001)
        self._lock = threading.Lock()
        self.variants: dict[str, list[tuple[str, str]]] = {}  # sku -> [(variant, item)]
        self.levels: dict[tuple[str, str], int] = {}
        self.orders: dict[str, Order] = {}
        self.calls: list[Call] = []
        self.set_quantity_calls: list[list[tuple[str, int]]] = []  # [(sku, quantity)] per call
        self.fulfillments: list[dict[str, Any]] = []
        self.cancellations: list[dict[str, Any]] = []
        self.refunds: list[dict[str, Any]] = []
        self._idempotent: dict[tuple[str, str], dict[str, Any]] = {}
        self._faults: list[Fault] = []
        self.maximum_available = 1000.0
        self.restore_rate = 50.0
        self._bucket = self.maximum_available
        self._bucket_at = time.monotonic()
        self.throttled = 0
        self.app = self._build_app()
        self._served = ServedApp(self.app, "Shopify double")
        self.port = self._served.port

    # --- for tests -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @contextlib.contextmanager
    def serving(self) -> Iterator[ShopifyDouble]:
        self._served.start()
        try:
            yield self
        finally:
            self._served.stop()

    def _gid(self, kind: str) -> str:
        return f"gid://shopify/{kind}/{next(self._ids)}"

    def add_variant(self, sku: str, quantity: int = 0) -> str:
        """A product variant with this SKU, stocked at the location; its inventory item id."""
        with self._lock:
            variant, item = self._gid("ProductVariant"), self._gid("InventoryItem")
            self.variants.setdefault(sku, []).append((variant, item))
            self.levels[(item, self.location_id)] = quantity
            return item

    def add_order(
        self,
        order_id: int | str,
        lines: list[tuple[str, int]],
        *,
        split: list[list[tuple[str, int]]] | None = None,
        paid: Decimal | str = Decimal("59.44"),
        currency: str = "EUR",
        gateway: str = "shopify_payments",
    ) -> str:
        """An order with one fulfillment order of its lines (or one per group of `split`), and
        one successful SALE transaction of `paid`; its gid."""
        with self._lock:
            gid = f"gid://shopify/Order/{order_id}"
            line_items = {sku: self._gid("LineItem") for sku, _ in lines}
            groups = split or [lines]
            fulfillment_orders = [
                FulfillmentOrder(
                    self._gid("FulfillmentOrder"),
                    "OPEN",
                    [
                        FulfillmentOrderLine(
                            self._gid("FulfillmentOrderLineItem"), line_items[sku], sku, q, q
                        )
                        for sku, q in group
                    ],
                )
                for group in groups
            ]
            sale = Transaction(
                self._gid("OrderTransaction"), "SALE", "SUCCESS", gateway, Decimal(paid), currency
            )
            self.orders[gid] = Order(gid, currency, fulfillment_orders, [sale])
            return gid

    def throttle(self, available: float = 0.0, restore_rate: float | None = None) -> None:
        """Empty the cost bucket down to `available` points (refilling at `restore_rate`)."""
        with self._lock:
            self._bucket = available
            self._bucket_at = time.monotonic()
            if restore_rate is not None:
                self.restore_rate = restore_rate

    def fail_next(
        self,
        status: int,
        *,
        root: str | None = None,
        retry_after: str | None = None,
        after: bool = False,
        times: int = 1,
    ) -> None:
        """Answer the next call (of `root`, if given) with HTTP `status`; `after`: act first
        (the answer is lost, the change is made)."""
        with self._lock:
            self._faults.extend(Fault(root, status, retry_after, after) for _ in range(times))

    def calls_of(self, root: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.root == root]

    def available(self, sku: str) -> int | None:
        with self._lock:
            variants = self.variants.get(sku)
            if not variants:
                return None
            return self.levels.get((variants[0][1], self.location_id))

    def pushes_per_sku(self) -> Counter[str]:
        """How many inventorySetQuantities calls set each SKU."""
        with self._lock:
            return Counter(sku for call in self.set_quantity_calls for sku, _ in call)

    def remaining(self, order_gid: str) -> dict[str, int]:
        """Per SKU, the units the order's fulfillment orders still have open."""
        with self._lock:
            left: dict[str, int] = {}
            for fo in self.orders[order_gid].fulfillment_orders:
                for line in fo.lines:
                    left[line.sku] = left.get(line.sku, 0) + line.remaining
            return left

    # --- the app -------------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="Shopify Admin GraphQL double")

        @app.post("/admin/api/{version}/graphql.json")
        async def graphql(version: str, request: Request) -> Response:
            if request.headers.get("x-shopify-access-token") != self.access_token:
                return JSONResponse(UNAUTHORIZED, status_code=401)
            if not re.fullmatch(r"\d{4}-\d{2}|unstable", version):
                return JSONResponse({"errors": "Not Found"}, status_code=404)
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("query"), str):
                return JSONResponse(
                    {"errors": {"query": "Required parameter missing or invalid"}},
                    status_code=400,
                )
            return self._answer(version, body["query"], body.get("variables") or {})

        return app

    def _take_fault(self, root: str) -> Fault | None:
        for fault in self._faults:
            if fault.root in (None, root):
                self._faults.remove(fault)
                return fault
        return None

    def _cost(self, root: str) -> int:
        if root in ("order", "productVariants"):
            return 4 if root == "order" else 2
        return MUTATION_COST

    def _throttle_status(self) -> dict[str, float]:
        return {
            "maximumAvailable": self.maximum_available,
            "currentlyAvailable": round(self._bucket, 1),
            "restoreRate": self.restore_rate,
        }

    def _answer(self, version: str, query: str, variables: dict[str, Any]) -> Response:
        with self._lock:
            body_start = query.find("{")
            match = ROOT.search(query, max(body_start, 0))
            if match is None:
                return JSONResponse(
                    {
                        "errors": [
                            {
                                "message": "Field doesn't exist on type 'QueryRoot'",
                                "extensions": {"code": "undefinedField"},
                            }
                        ]
                    }
                )
            root = match.group(1)
            fault = self._take_fault(root)
            if fault is not None and not fault.after:
                return self._fault_response(fault)
            now = time.monotonic()
            self._bucket = min(
                self.maximum_available, self._bucket + (now - self._bucket_at) * self.restore_rate
            )
            self._bucket_at = now
            cost = self._cost(root)
            if self._bucket < cost:
                self.throttled += 1
                return JSONResponse(
                    {
                        "errors": [
                            {
                                "message": "Throttled",
                                "extensions": {
                                    "code": "THROTTLED",
                                    "documentation": "https://shopify.dev/api/usage/rate-limits",
                                },
                            }
                        ],
                        "extensions": {
                            "cost": {
                                "requestedQueryCost": cost,
                                "actualQueryCost": None,
                                "throttleStatus": self._throttle_status(),
                            }
                        },
                    }
                )
            self._bucket -= cost
            key_match = IDEMPOTENT.search(query)
            key = key_match.group(1) if key_match else None
            self.calls.append(Call(root, variables, key))
            try:
                data = self._dispatch(root, version, variables, key)
            except GraphQLError as exc:
                return JSONResponse({"errors": [{"message": str(exc)}]})
            if fault is not None:
                return self._fault_response(fault)
            return JSONResponse(
                {
                    "data": {root: data},
                    "extensions": {
                        "cost": {
                            "requestedQueryCost": cost,
                            "actualQueryCost": cost,
                            "throttleStatus": self._throttle_status(),
                        }
                    },
                }
            )

    @staticmethod
    def _fault_response(fault: Fault) -> Response:
        if fault.status == 401:
            return JSONResponse(UNAUTHORIZED, status_code=401)
        if fault.status == 429:
            headers = {"Retry-After": fault.retry_after or "1.0"}
            return JSONResponse(
                {"errors": "Exceeded 2 calls per second for api client. Reduce request rates."},
                status_code=429,
                headers=headers,
            )
        if fault.status >= 500:
            return Response("<html><body>Service unavailable</body></html>", fault.status)
        return JSONResponse({"errors": "Error"}, status_code=fault.status)

    def _dispatch(self, root: str, version: str, variables: dict[str, Any], key: str | None) -> Any:
        idempotent = version >= "2026-01"
        if version >= "2026-04" and root in ("inventorySetQuantities", "refundCreate") and not key:
            raise GraphQLError(f"The @idempotent directive is required for {root}")
        if idempotent and key is not None and (root, key) in self._idempotent:
            return self._idempotent[(root, key)]
        handler = {
            "productVariants": self._product_variants,
            "inventorySetQuantities": self._set_quantities,
            "order": self._order,
            "fulfillmentCreate": self._fulfillment_create,
            "orderCancel": self._order_cancel,
            "refundCreate": self._refund_create,
        }[root]
        result = handler(version, variables)
        if idempotent and key is not None:
            self._idempotent[(root, key)] = result
        return result

    # --- queries -------------------------------------------------------------------------------

    def _product_variants(self, version: str, variables: dict[str, Any]) -> Any:
        first = variables.get("first")
        if not isinstance(first, int) or not 0 < first <= 250:
            raise GraphQLError("productVariants: `first` must be between 1 and 250")
        terms = [a or b for a, b in SKU_TERM.findall(str(variables.get("query") or ""))]
        terms = [term.replace('\\"', '"').replace("\\\\", "\\") for term in terms]
        # Shopify's search matches tokens and prefixes, not only the exact SKU.
        found = [
            (variant, sku, item)
            for sku, variants in self.variants.items()
            if any(sku.startswith(term) for term in terms)
            for variant, item in variants
        ]
        found.sort()
        start = int(variables.get("after") or 0)
        page = found[start : start + first]
        more = start + first < len(found)
        return {
            "nodes": [
                {"id": variant, "sku": sku, "inventoryItem": {"id": item}}
                for variant, sku, item in page
            ],
            "pageInfo": {"hasNextPage": more, "endCursor": str(start + first) if more else None},
        }

    def _order(self, version: str, variables: dict[str, Any]) -> Any:
        order = self.orders.get(_require(variables.get("id"), "$id of type ID!"))
        if order is None:
            return None
        fulfilled = sum(
            line.total - line.remaining for fo in order.fulfillment_orders for line in fo.lines
        )
        left = sum(line.remaining for fo in order.fulfillment_orders for line in fo.lines)
        status = (
            "UNFULFILLED" if fulfilled == 0 else "FULFILLED" if left == 0 else "PARTIALLY_FULFILLED"
        )
        return {
            "id": order.id,
            "cancelledAt": order.cancelled_at,
            "displayFulfillmentStatus": status,
            "fulfillments": [
                {
                    "id": f["id"],
                    "status": f["status"],
                    "trackingInfo": [{"number": f["tracking"].get("number")}],
                }
                for f in order.fulfillments
            ],
            "fulfillmentOrders": {
                "nodes": [
                    {
                        "id": fo.id,
                        "status": fo.status,
                        "lineItems": {
                            "nodes": [
                                {
                                    "id": line.id,
                                    "remainingQuantity": line.remaining,
                                    "totalQuantity": line.total,
                                    "lineItem": {"id": line.line_item_id, "sku": line.sku},
                                }
                                for line in fo.lines
                            ]
                        },
                    }
                    for fo in order.fulfillment_orders
                ]
            },
            "refunds": [{"id": r["id"], "note": r["note"]} for r in order.refunds],
            "transactions": [
                {
                    "id": t.id,
                    "kind": t.kind,
                    "status": t.status,
                    "gateway": t.gateway,
                    "amountSet": {
                        "shopMoney": {"amount": str(t.amount), "currencyCode": t.currency},
                        "presentmentMoney": {"amount": str(t.amount), "currencyCode": t.currency},
                    },
                    "parentTransaction": {"id": t.parent} if t.parent else None,
                }
                for t in order.transactions
            ],
        }

    # --- mutations -----------------------------------------------------------------------------

    def _set_quantities(self, version: str, variables: dict[str, Any]) -> Any:
        data = _require(variables.get("input"), "$input of type InventorySetQuantitiesInput!")
        name = _require(data.get("name"), "$input.name of type String!")
        reason = _require(data.get("reason"), "$input.reason of type String!")
        rows = _require(
            data.get("quantities"), "$input.quantities of type [InventoryQuantityInput!]!"
        )
        errors: list[dict[str, Any]] = []
        if name not in QUANTITY_NAMES:
            errors.append(
                _user_error(_path("input", "name"), "The quantity name is invalid.", "INVALID_NAME")
            )
        if not isinstance(reason, str) or not reason:
            errors.append(
                _user_error(_path("input", "reason"), "The reason is invalid.", "INVALID_REASON")
            )
        if len(rows) > 250:
            errors.append(
                _user_error(
                    _path("input", "quantities"),
                    "The quantities can't exceed 250.",
                    "INVALID_QUANTITY",
                )
            )
        changes: list[tuple[str, str, int]] = []
        for index, row in enumerate(rows):
            item = _require(
                row.get("inventoryItemId"), f"$input.quantities.{index}.inventoryItemId of type ID!"
            )
            location = _require(
                row.get("locationId"), f"$input.quantities.{index}.locationId of type ID!"
            )
            quantity = _require(
                row.get("quantity"), f"$input.quantities.{index}.quantity of type Int!"
            )
            here = _path("input", "quantities", index)
            if not any(item == i for variants in self.variants.values() for _, i in variants):
                errors.append(
                    _user_error(
                        [*here, "inventoryItemId"],
                        "The specified inventory item could not be found.",
                        "INVALID_INVENTORY_ITEM",
                    )
                )
                continue
            if location != self.location_id:
                errors.append(
                    _user_error(
                        [*here, "locationId"],
                        "The specified location could not be found.",
                        "INVALID_LOCATION",
                    )
                )
                continue
            current = self.levels.get((item, location), 0)
            if version >= "2026-04" and "changeFromQuantity" not in row:
                errors.append(
                    _user_error(
                        [*here, "changeFromQuantity"],
                        "changeFromQuantity is required.",
                        "INVALID_QUANTITY",
                    )
                )
                continue
            if version >= "2026-01" and "changeFromQuantity" in row:
                expected = row["changeFromQuantity"]
                if expected is not None and expected != current:
                    errors.append(
                        _user_error(
                            [*here, "changeFromQuantity"],
                            "The specified compare quantity is stale.",
                            "CHANGE_FROM_QUANTITY_STALE",
                        )
                    )
                    continue
            elif not data.get("ignoreCompareQuantity") and row.get("compareQuantity") != current:
                errors.append(
                    _user_error(
                        [*here, "compareQuantity"],
                        "The specified compare quantity does not match the current quantity.",
                        "COMPARE_QUANTITY_STALE",
                    )
                )
                continue
            changes.append((item, location, int(quantity)))
        if errors:
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}
        sku_of = {item: sku for sku, variants in self.variants.items() for _, item in variants}
        for item, location, quantity in changes:
            self.levels[(item, location)] = quantity
        self.set_quantity_calls.append([(sku_of[item], q) for item, _, q in changes])
        return {
            "inventoryAdjustmentGroup": {
                "id": self._gid("InventoryAdjustmentGroup"),
                "reason": reason,
            },
            "userErrors": [],
        }

    def _fulfillment_create(self, version: str, variables: dict[str, Any]) -> Any:
        data = _require(variables.get("fulfillment"), "$fulfillment of type FulfillmentInput!")
        groups = _require(
            data.get("lineItemsByFulfillmentOrder"),
            "$fulfillment.lineItemsByFulfillmentOrder of type [FulfillmentOrderLineItemsInput!]!",
        )
        errors: list[dict[str, Any]] = []
        plan: list[tuple[FulfillmentOrderLine, int]] = []
        owners: set[str] = set()
        if not groups:
            errors.append(
                _user_error(
                    _path("fulfillment", "lineItemsByFulfillmentOrder"),
                    "Line items by fulfillment order can't be blank.",
                )
            )
        for gi, group in enumerate(groups):
            here = _path("fulfillment", "lineItemsByFulfillmentOrder", gi)
            fo_id = _require(group.get("fulfillmentOrderId"), "fulfillmentOrderId of type ID!")
            found = [
                (o, fo)
                for o in self.orders.values()
                for fo in o.fulfillment_orders
                if fo.id == fo_id
            ]
            if not found:
                errors.append(
                    _user_error([*here, "fulfillmentOrderId"], "Fulfillment order does not exist.")
                )
                continue
            order, fo = found[0]
            owners.add(order.id)
            if fo.status not in ("OPEN", "IN_PROGRESS") or order.cancelled_at:
                errors.append(
                    _user_error(
                        [*here, "fulfillmentOrderId"],
                        f"Fulfillment order {fo.id} has an unfulfillable status= {fo.status.lower()}.",
                    )
                )
                continue
            items = group.get("fulfillmentOrderLineItems")
            if items is None:
                plan.extend((line, line.remaining) for line in fo.lines if line.remaining)
                continue
            for li, item in enumerate(items):
                line = next((x for x in fo.lines if x.id == item.get("id")), None)
                quantity = item.get("quantity")
                if line is None:
                    errors.append(
                        _user_error(
                            [*here, "fulfillmentOrderLineItems", str(li), "id"],
                            "Fulfillment order line item does not exist.",
                        )
                    )
                elif not isinstance(quantity, int) or not 0 < quantity <= line.remaining:
                    errors.append(
                        _user_error(
                            [*here, "fulfillmentOrderLineItems", str(li), "quantity"],
                            "Invalid fulfillment order line item quantity requested.",
                        )
                    )
                else:
                    plan.append((line, quantity))
        if len(owners) > 1:
            errors.append(
                _user_error(
                    _path("fulfillment", "lineItemsByFulfillmentOrder"),
                    "All fulfillment orders must belong to the same order.",
                )
            )
        if errors:
            return {"fulfillment": None, "userErrors": errors}
        order = self.orders[owners.pop()]
        for line, quantity in plan:
            line.remaining -= quantity
        for fo in order.fulfillment_orders:
            if any(line in fo.lines for line, _ in plan):
                fo.status = "CLOSED" if all(x.remaining == 0 for x in fo.lines) else "IN_PROGRESS"
        fulfillment = {
            "id": self._gid("Fulfillment"),
            "status": "SUCCESS",
            "order": order.id,
            "tracking": dict(data.get("trackingInfo") or {}),
            "notify_customer": data.get("notifyCustomer"),
            "lines": [(line.sku, quantity) for line, quantity in plan],
            "created_at": _now(),
        }
        order.fulfillments.append(fulfillment)
        self.fulfillments.append(fulfillment)
        return {"fulfillment": {"id": fulfillment["id"], "status": "SUCCESS"}, "userErrors": []}

    def _order_cancel(self, version: str, variables: dict[str, Any]) -> Any:
        order_id = _require(variables.get("orderId"), "$orderId of type ID!")
        reason = _require(variables.get("reason"), "$reason of type OrderCancelReason!")
        refund = _require(variables.get("refund"), "$refund of type Boolean!")
        restock = _require(variables.get("restock"), "$restock of type Boolean!")
        if reason not in CANCEL_REASONS:
            raise GraphQLError(
                f"Variable $reason of type OrderCancelReason! was provided invalid value {reason!r}"
            )
        order = self.orders.get(order_id)
        if order is None:
            errors = [_user_error(["orderId"], "Order not found", "NOT_FOUND")]
        elif order.cancelled_at:
            errors = [
                _user_error(
                    ["orderId"], "Cannot cancel an order that has already been cancelled", "INVALID"
                )
            ]
        else:
            errors = []
        if errors:
            return {"job": None, "orderCancelUserErrors": errors, "userErrors": errors}
        assert order is not None
        order.cancelled_at = _now()
        for fo in order.fulfillment_orders:
            if fo.status in ("OPEN", "IN_PROGRESS"):
                fo.status = "CLOSED"
        if refund:
            for sale in [
                t
                for t in order.transactions
                if t.kind in ("SALE", "CAPTURE") and t.status == "SUCCESS"
            ]:
                left = sale.amount - self._refunded(order, sale.id)
                if left > 0:
                    order.transactions.append(
                        Transaction(
                            self._gid("OrderTransaction"),
                            "REFUND",
                            "SUCCESS",
                            sale.gateway,
                            left,
                            sale.currency,
                            sale.id,
                        )
                    )
        self.cancellations.append(
            {
                "order": order.id,
                "reason": reason,
                "refund": refund,
                "restock": restock,
                "notify_customer": variables.get("notifyCustomer"),
                "staff_note": variables.get("staffNote"),
            }
        )
        return {
            "job": {"id": self._gid("Job"), "done": False},
            "orderCancelUserErrors": [],
            "userErrors": [],
        }

    @staticmethod
    def _refunded(order: Order, parent: str) -> Decimal:
        return sum(
            (
                t.amount
                for t in order.transactions
                if t.kind == "REFUND" and t.status == "SUCCESS" and t.parent == parent
            ),
            Decimal(0),
        )

    def _refund_create(self, version: str, variables: dict[str, Any]) -> Any:
        data = _require(variables.get("input"), "$input of type RefundInput!")
        order_id = _require(data.get("orderId"), "$input.orderId of type ID!")
        order = self.orders.get(order_id)
        if order is None:
            return {
                "refund": None,
                "userErrors": [_user_error(["orderId"], "Order does not exist")],
            }
        errors: list[dict[str, Any]] = []
        if data.get("currency") not in (None, order.currency):
            errors.append(_user_error(["currency"], f"Currency must be {order.currency}."))
        plan: list[tuple[Transaction, Decimal]] = []
        for index, row in enumerate(data.get("transactions") or []):
            here = _path("transactions", index)
            for name in ("orderId", "gateway", "kind", "amount"):
                _require(row.get(name), f"$input.transactions.{index}.{name}")
            parent = next((t for t in order.transactions if t.id == row.get("parentId")), None)
            try:
                amount = Decimal(str(row["amount"]))
            except InvalidOperation:
                raise GraphQLError(
                    f"$input.transactions.{index}.amount is not a valid Money"
                ) from None
            if row["kind"] != "REFUND":
                errors.append(_user_error([*here, "kind"], "Kind must be refund."))
            elif (
                parent is None
                or parent.kind not in ("SALE", "CAPTURE")
                or parent.status != "SUCCESS"
            ):
                errors.append(_user_error([*here, "parentId"], "Parent transaction not found."))
            elif row["gateway"] != parent.gateway:
                errors.append(
                    _user_error(
                        [*here, "gateway"], "Gateway does not match the parent transaction."
                    )
                )
            elif amount <= 0 or amount > parent.amount - self._refunded(order, parent.id) - sum(
                (a for p, a in plan if p is parent), Decimal(0)
            ):
                errors.append(
                    _user_error([*here, "amount"], "Amount cannot exceed the refundable amount.")
                )
            else:
                plan.append((parent, amount))
        if errors:
            return {"refund": None, "userErrors": errors}
        refund_id = self._gid("Refund")
        for parent, amount in plan:
            order.transactions.append(
                Transaction(
                    self._gid("OrderTransaction"),
                    "REFUND",
                    "SUCCESS",
                    parent.gateway,
                    amount,
                    parent.currency,
                    parent.id,
                )
            )
        refund = {
            "id": refund_id,
            "order": order.id,
            "note": data.get("note"),
            "notify": data.get("notify"),
            "amount": sum((a for _, a in plan), Decimal(0)),
            "transactions": [(p.id, a) for p, a in plan],
        }
        order.refunds.append(refund)
        self.refunds.append(refund)
        return {"refund": {"id": refund_id}, "userErrors": []}
