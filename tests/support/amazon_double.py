"""A local Amazon Selling Partner API double: Login with Amazon's token endpoint and the SP-API
operations the channel connector uses, on a free local port in a background thread.

Built from the documented shapes (developer-docs.amazon.com/sp-api: Orders API v0 reference,
Listings Items API 2021-08-01, "Connecting to the SP-API" for LWA, "Usage Plans and Rate Limits",
"Confirm the shipment status"):

- `POST /auth/o2/token` (LWA): `grant_type=refresh_token` with `refresh_token`, `client_id`,
  `client_secret` (form) -> `{"access_token": "Atza|...", "token_type": "bearer",
  "expires_in", "refresh_token"}`; wrong client -> 401 `invalid_client`, wrong refresh token ->
  400 `invalid_grant` (OAuth 2 error bodies). Tokens live `token_lifetime_s`; `expire_tokens()`
  expires every token issued so far.
- Every SP-API call needs `x-amz-access-token`: missing, unknown or expired -> 403
  `{"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied.",
  "details": "The access token you provided has expired."}]}` (or the missing / invalid
  wording).
- `GET /orders/v0/orders` (getOrders): `MarketplaceIds` required, and `LastUpdatedAfter` or
  `CreatedAfter` unless `NextToken`; `FulfillmentChannels`, `MaxResultsPerPage`; oldest change
  first; `payload.Orders`, `payload.NextToken`. `GET /orders/v0/orders/{id}` (getOrder);
  `GET /orders/v0/orders/{id}/orderItems` (getOrderItems, `payload.OrderItems`, `NextToken`,
  `items_page_size` items a page).
- `POST /orders/v0/orders/{id}/shipmentConfirmation` (confirmShipment): `marketplaceId` and
  `packageDetail` (`packageReferenceId` a positive number, `carrierCode`, `carrierName` when
  Other, `trackingNumber`, `shipDate`, `orderItems` [{orderItemId, quantity}]) -> 204; the same
  packageReferenceId again edits that package; more units than are open -> 400 InvalidInput
  "... order already fulfilled". Shipped units move `QuantityShipped`, the order's status and
  `LastUpdateDate`.
- `POST /tokens/2021-03-01/restrictedDataToken` (createRestrictedDataToken):
  `restrictedResources` [{method, path, dataElements}] -> `{"restrictedDataToken", "expiresIn"}`.
  getOrders / getOrder show the buyer's details and full shipping address only to a restricted
  data token granting `buyerInfo` / `shippingAddress` for their path (an RDT is good only for
  the paths it names); to an LWA token the address is city, region, postal code and country.
- `PATCH /listings/2021-08-01/items/{sellerId}/{sku}?marketplaceIds=` (patchListingsItem):
  `productType` and `patches` required -> `{"sku", "status": "ACCEPTED", "submissionId",
  "issues": []}`; a fulfillment_availability quantity becomes the listing's quantity. A SKU in
  `unlisted` answers 200 with status INVALID and an ERROR issue (what the API does for a patch
  it cannot apply).

Errors use `{"errors": [{"code", "message", "details"}]}`. Every answer but 401/403 carries
`x-amzn-RateLimit-Limit` (the operation's rate) and `x-amzn-RequestId`. With `enforce_rates`
each operation is a token bucket at its documented rate and burst (429 QuotaExceeded when
empty); `throttle_next(operation)` throttles one call; `fail_next(operation, status)` answers
one call with a 5xx.

For assertions: `requests` (operation, method, path), `token_grants`, `confirmations` (the
confirmShipment bodies accepted, new packages), `package_edits`, `listing_patches` (sku, body)
`quantities` (sku -> quantity) and `throttled` (the operations answered 429).
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.support.served_app import ServedApp

CLIENT_ID = "amzn1.application-oa2-client.double0123456789"
CLIENT_SECRET = "amzn1.oa2-cs.v1.double-secret"
REFRESH_TOKEN = "Atzr|double-refresh-token"
SELLER_ID = "A2DOUBLESELLER"
MARKETPLACE_US = "ATVPDKIKX0DER"

# operation -> (rate per second, burst), as the API references document them
USAGE_PLANS = {
    "getOrders": (0.0167, 20),
    "getOrder": (0.5, 30),
    "getOrderItems": (0.5, 30),
    "confirmShipment": (2.0, 10),
    "patchListingsItem": (5.0, 10),
    "createRestrictedDataToken": (1.0, 10),
}

DENIED = "Access to requested resource is denied."
EXPIRED = "The access token you provided has expired."
INVALID = "The access token you provided is revoked, malformed or invalid."
MISSING = "Access token is missing in the request header."
RDT_METHODS = {"GET", "PUT", "POST", "DELETE"}
RDT_DATA_ELEMENTS = {"buyerInfo", "shippingAddress", "buyerTaxInformation"}
ADDRESS_WITHOUT_PII = ("City", "StateOrRegion", "PostalCode", "CountryCode")
ALREADY_FULFILLED = (
    "Failed to create package due to not finding a matching package or order already fulfilled."
)


class SpApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def _errors(status: int, code: str, message: str, details: str = "") -> JSONResponse:
    return JSONResponse(
        {"errors": [{"code": code, "message": message, "details": details}]}, status_code=status
    )


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SpApiError(400, "InvalidInput", f"Invalid {name}.", value) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class Bucket:
    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class AmazonDouble:
    def __init__(
        self,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        refresh_token: str = REFRESH_TOKEN,
        seller_id: str = SELLER_ID,
        token_lifetime_s: int = 3600,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.seller_id = seller_id
        self.token_lifetime_s = token_lifetime_s
        self.orders: dict[str, dict[str, Any]] = {}
        self.items: dict[str, list[dict[str, Any]]] = {}
        self.packages: dict[str, dict[str, dict[str, Any]]] = {}  # order -> reference -> body
        self.tokens: dict[str, float] = {}  # access token -> expires at (monotonic)
        # restricted data token -> (expires at, path -> the data elements it grants)
        self.rdts: dict[str, tuple[float, dict[str, set[str]]]] = {}
        self.rdt_grants = 0
        self.requests: list[tuple[str, str, str]] = []
        self.token_grants = 0
        self.confirmations: list[tuple[str, dict[str, Any]]] = []
        self.package_edits: list[tuple[str, dict[str, Any]]] = []
        self.listing_patches: list[tuple[str, dict[str, Any]]] = []
        self.quantities: dict[str, int] = {}
        self.throttled: list[str] = []  # the operations answered 429
        self.unlisted: set[str] = set()  # SKUs the seller has no offer for (patch INVALID)
        self.orders_page_size = 100
        self.items_page_size = 100
        self.enforce_rates = False
        self._buckets: dict[str, Bucket] = {}
        self._throttles: dict[str, int] = {}
        self._failures: dict[str, list[int]] = {}
        self._next_tokens: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self.app = self._build_app()
        self._served = ServedApp(self.app, "Amazon SP-API double")
        self.port = self._served.port

    # --- for tests -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def lwa_url(self) -> str:
        return f"{self.base_url}/auth/o2/token"

    def account(self, name: str = "amazon-us", **extra: Any) -> dict[str, Any]:
        """Connector account settings (as in OMS_CONNECTOR_ACCOUNTS) pointing at this double."""
        options = {
            "marketplace_ids": MARKETPLACE_US,
            "seller_id": self.seller_id,
            "lwa_url": self.lwa_url,
            **extra.pop("options", {}),
        }
        return {
            "name": name,
            "channel": "amazon",
            "api_base": self.base_url,
            "credentials": {
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "refresh_token": self.refresh_token,
            },
            "options": options,
            **extra,
        }

    def add_order(self, order: dict[str, Any], *, updated_at: datetime | None = None) -> str:
        """An order as getOrder returns it, its items under `OrderItems` (as the adapter reads
        it) kept apart for getOrderItems. `updated_at`: its LastUpdateDate (default now)."""
        order = copy.deepcopy(order)
        items = order.pop("OrderItems", [])
        order["LastUpdateDate"] = _iso(updated_at or datetime.now(UTC))
        order.setdefault("PurchaseDate", order["LastUpdateDate"])
        order.setdefault("MarketplaceId", MARKETPLACE_US)
        order.setdefault("FulfillmentChannel", "MFN")
        for item in items:
            item.setdefault("QuantityShipped", 0)
        with self._lock:
            self.orders[order["AmazonOrderId"]] = order
            self.items[order["AmazonOrderId"]] = items
        return str(order["AmazonOrderId"])

    def expire_tokens(self) -> None:
        with self._lock:
            for token in self.tokens:
                self.tokens[token] = 0.0
            for rdt, (_expires, grants) in self.rdts.items():
                self.rdts[rdt] = (0.0, grants)

    def throttle_next(self, operation: str, times: int = 1) -> None:
        with self._lock:
            self._throttles[operation] = self._throttles.get(operation, 0) + times

    def fail_next(self, operation: str, status: int = 500) -> None:
        with self._lock:
            self._failures.setdefault(operation, []).append(status)

    def calls(self, operation: str) -> int:
        return sum(1 for op, _method, _path in self.requests if op == operation)

    def shipped(self, order_id: str) -> dict[str, int]:
        """OrderItemId -> QuantityShipped."""
        return {i["OrderItemId"]: int(i["QuantityShipped"]) for i in self.items[order_id]}

    @contextlib.contextmanager
    def serving(self) -> Iterator[AmazonDouble]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def start(self) -> None:
        self._served.start()

    def stop(self) -> None:
        self._served.stop()

    # --- the rules -----------------------------------------------------------------------------

    def _authenticate(self, token: str | None, path: str) -> set[str]:
        """The restricted data elements the token grants on `path` (none for an LWA token);
        raises the 403 SP-API answers a missing, unknown or expired token with. A restricted
        data token is good only for the operations it names."""
        if not token:
            raise SpApiError(403, "Unauthorized", DENIED, MISSING)
        if token in self.rdts:
            expires_at, grants = self.rdts[token]
            if path not in grants:
                raise SpApiError(403, "Unauthorized", DENIED, INVALID)
            if time.monotonic() >= expires_at:
                raise SpApiError(403, "Unauthorized", DENIED, EXPIRED)
            return grants[path]
        expires_at = self.tokens.get(token, -1.0)
        if expires_at < 0:
            raise SpApiError(403, "Unauthorized", DENIED, INVALID)
        if time.monotonic() >= expires_at:
            raise SpApiError(403, "Unauthorized", DENIED, EXPIRED)
        return set()

    def _create_rdt(self, body: Any) -> dict[str, Any]:
        resources = body.get("restrictedResources") if isinstance(body, dict) else None
        if not isinstance(resources, list) or not resources:
            raise SpApiError(400, "InvalidInput", "restrictedResources is required.")
        grants: dict[str, set[str]] = {}
        for resource in resources:
            if not isinstance(resource, dict) or resource.get("method") not in RDT_METHODS:
                raise SpApiError(400, "InvalidInput", "restrictedResources[].method is invalid.")
            path = resource.get("path")
            if not isinstance(path, str) or not path.startswith("/"):
                raise SpApiError(400, "InvalidInput", "restrictedResources[].path is invalid.")
            elements = resource.get("dataElements") or []
            unknown = set(elements) - RDT_DATA_ELEMENTS
            if unknown:
                raise SpApiError(
                    400, "InvalidInput", f"Invalid dataElements: {', '.join(sorted(unknown))}."
                )
            grants[path] = set(elements)
        rdt = f"Atz.sprdt|{uuid.uuid4().hex}"
        self.rdts[rdt] = (time.monotonic() + self.token_lifetime_s, grants)
        self.rdt_grants += 1
        return {"restrictedDataToken": rdt, "expiresIn": self.token_lifetime_s}

    def _admit(self, operation: str) -> JSONResponse | None:
        """A forced failure or throttle, or the token bucket's 429; None to go on."""
        rate, burst = USAGE_PLANS[operation]
        headers = {"x-amzn-RateLimit-Limit": str(rate), "x-amzn-RequestId": str(uuid.uuid4())}
        with self._lock:
            failures = self._failures.get(operation)
            if failures:
                status = failures.pop(0)
                code = "ServiceUnavailable" if status == 503 else "InternalFailure"
                response = _errors(
                    status, code, "We encountered an internal error. Please try again."
                )
                response.headers.update(headers)
                return response
            throttled = self._throttles.get(operation, 0) > 0
            if throttled:
                self._throttles[operation] -= 1
            elif self.enforce_rates:
                bucket = self._buckets.get(operation)
                if bucket is None:
                    bucket = self._buckets[operation] = Bucket(rate, burst, burst, time.monotonic())
                throttled = not bucket.take()
        if throttled:
            with self._lock:
                self.throttled.append(operation)
            response = _errors(
                429, "QuotaExceeded", "You exceeded your quota for the requested resource."
            )
            response.headers.update(headers)
            return response
        return None

    def _order(self, order_id: str) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            raise SpApiError(404, "NotFound", "Order not found.", f"no order {order_id}")
        return order

    def _page(self, rows: list[Any], size: int) -> tuple[list[Any], str | None]:
        if len(rows) <= size:
            return rows, None
        token = uuid.uuid4().hex
        self._next_tokens[token] = rows[size:]
        return rows[:size], token

    def _rest(self, token: str) -> list[Any]:
        rows = self._next_tokens.pop(token, None)
        if rows is None:
            raise SpApiError(400, "InvalidInput", "Invalid NextToken.", token)
        return rows

    def _get_orders(self, query: dict[str, str], granted: set[str]) -> dict[str, Any]:
        marketplaces = [m for m in query.get("MarketplaceIds", "").split(",") if m]
        if not marketplaces:
            raise SpApiError(400, "InvalidInput", "Missing required MarketplaceIds.")
        size = int(query.get("MaxResultsPerPage") or 100)
        size = min(size, self.orders_page_size)
        if query.get("NextToken"):
            page, token = self._page(self._rest(query["NextToken"]), size)
        else:
            updated_after = query.get("LastUpdatedAfter")
            created_after = query.get("CreatedAfter")
            if not updated_after and not created_after:
                raise SpApiError(
                    400,
                    "InvalidInput",
                    "Either CreatedAfter or LastUpdatedAfter must be specified.",
                )
            channels = [c for c in query.get("FulfillmentChannels", "").split(",") if c]
            rows = [
                order
                for order in self.orders.values()
                if order["MarketplaceId"] in marketplaces
                and (not channels or order["FulfillmentChannel"] in channels)
                and (
                    not updated_after
                    or _parse(order["LastUpdateDate"], "LastUpdateDate")
                    >= _parse(updated_after, "LastUpdatedAfter")
                )
                and (
                    not created_after
                    or _parse(order["PurchaseDate"], "PurchaseDate")
                    >= _parse(created_after, "CreatedAfter")
                )
            ]
            rows.sort(key=lambda o: (o["LastUpdateDate"], o["AmazonOrderId"]))
            page, token = self._page([copy.deepcopy(o) for o in rows], size)
        payload: dict[str, Any] = {
            "Orders": [_restricted(order, granted) for order in page],
            "LastUpdatedBefore": _iso(datetime.now(UTC) - timedelta(minutes=2)),
        }
        if token:
            payload["NextToken"] = token
        return {"payload": payload}

    def _get_order_items(self, order_id: str, query: dict[str, str]) -> dict[str, Any]:
        self._order(order_id)
        if query.get("NextToken"):
            rows = self._rest(query["NextToken"])
        else:
            rows = copy.deepcopy(self.items[order_id])
        page, token = self._page(rows, self.items_page_size)
        payload: dict[str, Any] = {"AmazonOrderId": order_id, "OrderItems": page}
        if token:
            payload["NextToken"] = token
        return {"payload": payload}

    def _confirm(self, order_id: str, body: Any) -> None:
        order = self._order(order_id)
        if not isinstance(body, dict):
            raise SpApiError(400, "InvalidInput", "The request body is not a JSON object.")
        marketplace = body.get("marketplaceId")
        if not marketplace:
            raise SpApiError(400, "InvalidInput", "marketplaceId is required.")
        if marketplace != order["MarketplaceId"]:
            raise SpApiError(400, "InvalidInput", "marketplaceId does not match the order.")
        package = body.get("packageDetail")
        if not isinstance(package, dict):
            raise SpApiError(400, "InvalidInput", "packageDetail is required.")
        reference = str(package.get("packageReferenceId") or "")
        if not reference.isdigit() or int(reference) <= 0:
            raise SpApiError(
                400,
                "InvalidInput",
                "PackageReferenceId: is invalid, must be a positive numeric value.",
            )
        for name in ("carrierCode", "trackingNumber", "shipDate"):
            if not package.get(name):
                raise SpApiError(400, "InvalidInput", f"{name} is required.")
        if package["carrierCode"] == "Other" and not package.get("carrierName"):
            raise SpApiError(
                400, "InvalidInput", "carrierName is required when carrierCode is Other."
            )
        ship_date = _parse(str(package["shipDate"]), "shipDate")
        if ship_date > datetime.now(UTC) + timedelta(minutes=5):
            raise SpApiError(400, "InvalidInput", "shipDate must not be in the future.")
        lines = package.get("orderItems")
        if not isinstance(lines, list) or not lines:
            raise SpApiError(400, "InvalidInput", "orderItems is required.")
        items = {item["OrderItemId"]: item for item in self.items[order_id]}
        wanted: dict[str, int] = {}
        for line in lines:
            item_id = str(line.get("orderItemId")) if isinstance(line, dict) else ""
            quantity = line.get("quantity") if isinstance(line, dict) else None
            if item_id not in items:
                raise SpApiError(
                    400,
                    "InvalidInput",
                    "OrderItemId is invalid, please obtain the value through the getOrderItems"
                    " API or Manage Orders page",
                )
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
                raise SpApiError(400, "InvalidInput", "quantity must be a positive integer.")
            wanted[item_id] = wanted.get(item_id, 0) + quantity
        packages = self.packages.setdefault(order_id, {})
        previous = packages.get(reference)
        before = _package_units(previous) if previous else {}
        for item_id, quantity in wanted.items():
            item = items[item_id]
            open_units = item["QuantityOrdered"] - item["QuantityShipped"] + before.get(item_id, 0)
            if quantity > open_units:
                raise SpApiError(400, "InvalidInput", ALREADY_FULFILLED)
        for item_id, quantity in before.items():
            items[item_id]["QuantityShipped"] -= quantity
        for item_id, quantity in wanted.items():
            items[item_id]["QuantityShipped"] += quantity
        packages[reference] = copy.deepcopy(body)
        if previous is None:
            self.confirmations.append((order_id, copy.deepcopy(body)))
        else:
            self.package_edits.append((order_id, copy.deepcopy(body)))
        ordered = sum(i["QuantityOrdered"] for i in items.values())
        shipped = sum(i["QuantityShipped"] for i in items.values())
        order["NumberOfItemsShipped"] = shipped
        order["NumberOfItemsUnshipped"] = ordered - shipped
        order["OrderStatus"] = "Shipped" if shipped >= ordered else "PartiallyShipped"
        order["LastUpdateDate"] = _iso(datetime.now(UTC))

    def _patch_listing(
        self, seller_id: str, sku: str, query: dict[str, str], body: Any
    ) -> dict[str, Any]:
        if seller_id != self.seller_id:
            raise SpApiError(403, "Unauthorized", DENIED, "The seller did not authorise this app.")
        if not query.get("marketplaceIds"):
            raise SpApiError(400, "InvalidInput", "Missing required marketplaceIds.")
        if not isinstance(body, dict) or not body.get("productType"):
            raise SpApiError(400, "InvalidInput", "productType is required.")
        patches = body.get("patches")
        if not isinstance(patches, list) or not patches:
            raise SpApiError(400, "InvalidInput", "patches is required.")
        if sku in self.unlisted:
            return {
                "sku": sku,
                "status": "INVALID",
                "submissionId": uuid.uuid4().hex,
                "issues": [
                    {
                        "code": "4000001",
                        "message": f"The SKU {sku} does not match any listing of this seller.",
                        "severity": "ERROR",
                        "attributeNames": [],
                    }
                ],
            }
        for patch in patches:
            if not isinstance(patch, dict) or patch.get("op") not in (
                "add",
                "replace",
                "merge",
                "delete",
            ):
                raise SpApiError(400, "InvalidInput", "patches[].op is invalid.")
            path = patch.get("path")
            if not isinstance(path, str) or not path.startswith("/attributes/"):
                raise SpApiError(400, "InvalidInput", "patches[].path is invalid.")
            if path == "/attributes/fulfillment_availability":
                value = patch.get("value")
                if not isinstance(value, list) or not value:
                    raise SpApiError(400, "InvalidInput", "fulfillment_availability needs a value.")
                for entry in value:
                    quantity = entry.get("quantity") if isinstance(entry, dict) else None
                    if not isinstance(entry, dict) or not entry.get("fulfillment_channel_code"):
                        raise SpApiError(
                            400, "InvalidInput", "fulfillment_channel_code is required."
                        )
                    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
                        raise SpApiError(400, "InvalidInput", "quantity must be a whole number.")
                    if entry["fulfillment_channel_code"] == "DEFAULT":
                        self.quantities[sku] = quantity
        self.listing_patches.append((sku, copy.deepcopy(body)))
        return {"sku": sku, "status": "ACCEPTED", "submissionId": uuid.uuid4().hex, "issues": []}

    # --- the app -------------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="Amazon SP-API double", openapi_url=None, docs_url=None, redoc_url=None)

        async def operation(
            request: Request, name: str, handle: Any, success: int = 200
        ) -> Response:
            with self._lock:
                self.requests.append((name, request.method, request.url.path))
            try:
                granted = self._authenticate(
                    request.headers.get("x-amz-access-token"), request.url.path
                )
            except SpApiError as exc:
                return _errors(exc.status, exc.code, exc.message, exc.details)
            refused = self._admit(name)
            if refused is not None:
                return refused
            headers = {
                "x-amzn-RateLimit-Limit": str(USAGE_PLANS[name][0]),
                "x-amzn-RequestId": str(uuid.uuid4()),
            }
            try:
                raw = await request.body()
                body = json.loads(raw) if raw else None
            except ValueError:
                return _errors(400, "InvalidInput", "The request body is not JSON.")
            query = dict(request.query_params)
            try:
                with self._lock:
                    answer = handle(query, body, granted)
            except SpApiError as exc:
                response = _errors(exc.status, exc.code, exc.message, exc.details)
                if exc.status not in (401, 403):
                    response.headers.update(headers)
                return response
            if success == 204:
                return Response(status_code=204, headers=headers)
            return JSONResponse(answer, status_code=success, headers=headers)

        @app.post("/auth/o2/token")
        async def token(request: Request) -> JSONResponse:
            # The form by hand: python-multipart (Starlette's form parser) is not a dependency.
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            with self._lock:
                self.requests.append(("token", "POST", "/auth/o2/token"))
                if form.get("grant_type") != "refresh_token":
                    return JSONResponse(
                        {
                            "error": "unsupported_grant_type",
                            "error_description": "The grant type is not supported.",
                        },
                        status_code=400,
                    )
                if (
                    form.get("client_id") != self.client_id
                    or form.get("client_secret") != self.client_secret
                ):
                    return JSONResponse(
                        {
                            "error": "invalid_client",
                            "error_description": "Client authentication failed",
                        },
                        status_code=401,
                    )
                if form.get("refresh_token") != self.refresh_token:
                    return JSONResponse(
                        {
                            "error": "invalid_grant",
                            "error_description": "The request has an invalid grant parameter : refresh_token",
                        },
                        status_code=400,
                    )
                access = f"Atza|{uuid.uuid4().hex}"
                self.tokens[access] = time.monotonic() + self.token_lifetime_s
                self.token_grants += 1
            return JSONResponse(
                {
                    "access_token": access,
                    "refresh_token": self.refresh_token,
                    "token_type": "bearer",
                    "expires_in": self.token_lifetime_s,
                }
            )

        @app.get("/orders/v0/orders")
        async def get_orders(request: Request) -> Response:
            return await operation(
                request, "getOrders", lambda q, _b, granted: self._get_orders(q, granted)
            )

        @app.get("/orders/v0/orders/{order_id}")
        async def get_order(order_id: str, request: Request) -> Response:
            return await operation(
                request,
                "getOrder",
                lambda _q, _b, granted: {"payload": _restricted(self._order(order_id), granted)},
            )

        @app.get("/orders/v0/orders/{order_id}/orderItems")
        async def get_order_items(order_id: str, request: Request) -> Response:
            return await operation(
                request, "getOrderItems", lambda q, _b, _g: self._get_order_items(order_id, q)
            )

        @app.post("/orders/v0/orders/{order_id}/shipmentConfirmation")
        async def confirm_shipment(order_id: str, request: Request) -> Response:
            return await operation(
                request,
                "confirmShipment",
                lambda _q, body, _g: self._confirm(order_id, body),
                success=204,
            )

        @app.patch("/listings/2021-08-01/items/{seller_id}/{sku}")
        async def patch_listing(seller_id: str, sku: str, request: Request) -> Response:
            return await operation(
                request,
                "patchListingsItem",
                lambda q, body, _g: self._patch_listing(seller_id, sku, q, body),
            )

        @app.post("/tokens/2021-03-01/restrictedDataToken")
        async def create_rdt(request: Request) -> Response:
            return await operation(
                request, "createRestrictedDataToken", lambda _q, body, _g: self._create_rdt(body)
            )

        return app


def _restricted(order: dict[str, Any], granted: set[str]) -> dict[str, Any]:
    """The order as a caller without a restricted data token for its PII sees it: the
    shipping address down to city, region, postal code and country, no buyer details."""
    order = copy.deepcopy(order)
    address = order.get("ShippingAddress")
    if "shippingAddress" not in granted and isinstance(address, dict):
        order["ShippingAddress"] = {k: address[k] for k in ADDRESS_WITHOUT_PII if k in address}
    if "buyerInfo" not in granted and "BuyerInfo" in order:
        order["BuyerInfo"] = {}
    return order


def _package_units(body: dict[str, Any]) -> dict[str, int]:
    units: dict[str, int] = {}
    for line in body["packageDetail"]["orderItems"]:
        units[line["orderItemId"]] = units.get(line["orderItemId"], 0) + line["quantity"]
    return units
