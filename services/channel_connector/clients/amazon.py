"""Amazon Selling Partner API (SP-API) for one seller account.

- Auth: Login with Amazon (LWA), a refresh-token grant to `lwa_url`; the access token goes in
  `x-amz-access-token`, is fetched again shortly before it expires, on a 401, and on the 403
  `Unauthorized` SP-API answers an expired (or revoked) token with.
- Polls (Orders v0): `getOrders` by `LastUpdatedAfter` for the account's marketplaces (seller
  fulfilled orders only: `FulfillmentChannels=MFN`), every page by `NextToken`, with a
  Restricted Data Token for the buyer's details and shipping address (Tokens API; kept until
  shortly before it expires; `restricted_data=false` polls with the LWA token), then each
  order's `getOrderItems` (every page): the payload order-intake's Amazon adapter reads is the
  order with its items under `OrderItems`. Pending orders are not handed on (no prices yet).
- Shipments: `confirmShipment` per parcel, its items mapped onto the order's open items
  (`rules.amazon.plan_shipment`), the parcel's id as `packageReferenceId` (numeric: see
  `rules.amazon.package_reference_id`). A parcel whose units Amazon already counts as shipped,
  or Amazon's "already fulfilled" answer, is done; a confirmation sent again under the same
  packageReferenceId edits that package on Amazon's side.
- Stock: Listings Items `patchListingsItem`, the seller-fulfilled quantity
  (`fulfillment_availability`, channel code DEFAULT), one call per SKU.
- Cancellations and refunds: not offered. Amazon takes a seller's cancellation through the
  Feeds API (order acknowledgement with StatusCode Failure) or Seller Central, and refunds
  through Seller Central or a payment adjustment feed: asynchronous feed documents this client
  does not write. They stay with the operator (README, "Channel connector").

Every operation keeps to its own documented usage plan (a token bucket per operation; the
`x-amzn-RateLimit-Limit` header, when Amazon sends it, replaces the documented rate). A 429
(SP-API sends no Retry-After) waits a token's time at that rate, doubling, inline while short;
longer waits go back to the connector's queue with that wait.

Credentials: `client_id`, `client_secret`, `refresh_token`. Options: `marketplace_ids` (comma
separated, required), `seller_id` (required for stock), `lwa_url`, `product_type` (the
Listings patch's productType, default PRODUCT), `restricted_data` (default true).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from services.channel_connector.clients import base
from services.channel_connector.domain import PolledOrder
from services.channel_connector.http import (
    ChannelApiError,
    ChannelHttp,
    OAuthToken,
    RateLimiter,
    form_token_grant,
    retry_after_seconds,
)
from services.channel_connector.rules import amazon as rules
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://sellingpartnerapi-na.amazon.com"
DEFAULT_LWA_URL = "https://api.amazon.com/auth/o2/token"
DEFAULT_PRODUCT_TYPE = "PRODUCT"
USER_AGENT = "oms-channel-connector/1.0 (Language=Python)"
INLINE_THROTTLES = 4
MAX_RESULTS_PER_PAGE = 100
# Kept a little under Amazon's buckets: its clock is not ours, and a request sent the moment our
# bucket has a token may reach Amazon a moment before its bucket has one.
RATE_MARGIN = 0.9
MAX_PAGES = 500  # a guard against a NextToken that never ends


class Operation:
    """One SP-API operation's token bucket, at its documented rate until Amazon's
    `x-amzn-RateLimit-Limit` says otherwise (both less RATE_MARGIN, the burst less one)."""

    def __init__(self, plan: rules.UsagePlan) -> None:
        self.plan = plan
        self.limiter = RateLimiter(plan.rate * RATE_MARGIN, max(1.0, plan.burst - 1))

    @property
    def rate(self) -> float:
        return self.limiter.rate

    def observe(self, headers: Mapping[str, str]) -> None:
        rate = rules.rate_limit(headers)
        if rate is not None and rate * RATE_MARGIN != self.limiter.rate:
            log.info("%s: Amazon's rate limit is %s/s", self.plan.operation, rate)
            self.limiter.rate = rate * RATE_MARGIN


class AmazonClient(base.BaseClient):
    channel = "amazon"
    stock_batch_size = 1  # one patchListingsItem per SKU: one refused SKU holds up no other

    def __init__(
        self,
        account: AccountSettings,
        *,
        timeout_s: float,
        max_inline_wait_s: float,
    ) -> None:
        self.account = account.name
        client_id = _required(account, "credentials", "client_id")
        client_secret = _required(account, "credentials", "client_secret")
        refresh_token = _required(account, "credentials", "refresh_token")
        marketplaces = [
            m.strip() for m in account.options.get("marketplace_ids", "").split(",") if m.strip()
        ]
        if not marketplaces:
            raise ValueError(
                f"account {account.name}: options.marketplace_ids is required"
                " (comma separated, e.g. ATVPDKIKX0DER)"
            )
        self.marketplace_ids = marketplaces
        self.seller_id = account.options.get("seller_id", "").strip() or None
        self.product_type = account.options.get("product_type", "").strip() or DEFAULT_PRODUCT_TYPE
        lwa_url = account.options.get("lwa_url", "").strip() or DEFAULT_LWA_URL
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            "client_secret": client_secret,
        }

        async def fetch(client: httpx.AsyncClient) -> tuple[str, float]:
            return await form_token_grant(client, lwa_url, form)

        self.token = OAuthToken(account.name, fetch)

        async def fetch_restricted(_client: httpx.AsyncClient) -> tuple[str, float]:
            return await self._restricted_data_token()

        self.restricted_token = OAuthToken(account.name, fetch_restricted)
        # The per-operation buckets do the limiting; the account-wide one only caps the total.
        overall = account.requests_per_second or 50.0

        def http(token: OAuthToken) -> ChannelHttp:
            return ChannelHttp(
                account.name,
                account.api_base or DEFAULT_API_BASE,
                timeout_s=timeout_s,
                rate=overall,
                burst=max(1.0, overall),
                headers={"user-agent": USER_AGENT, "accept": "application/json"},
                token=token,
                token_header="x-amz-access-token",
                token_prefix="",
                max_inline_wait_s=max_inline_wait_s,
            )

        self.http = http(self.token)
        # getOrders with the buyer's PII: a Restricted Data Token in x-amz-access-token.
        restricted = account.options.get("restricted_data", "true").strip().lower()
        if restricted not in ("true", "false"):
            raise ValueError(
                f"account {account.name}: options.restricted_data must be true or false"
            )
        self.orders_http = http(self.restricted_token) if restricted == "true" else self.http
        self.max_inline_wait_s = max_inline_wait_s
        self.operations = {plan.operation: Operation(plan) for plan in rules.USAGE_PLANS}
        capabilities = {base.Capability.POLL_ORDERS, base.Capability.SHIPMENTS}
        if self.seller_id:
            capabilities.add(base.Capability.STOCK)
        self.capabilities = frozenset(capabilities)

    async def aclose(self) -> None:
        await self.http.aclose()
        if self.orders_http is not self.http:
            await self.orders_http.aclose()

    # --- the wire ------------------------------------------------------------------------------

    async def _call(
        self,
        plan: rules.UsagePlan,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        accept: Collection[int] = (),
        http: ChannelHttp | None = None,
    ) -> httpx.Response:
        """One SP-API operation: its rate limit kept, a refused (expired) token fetched again
        once, a 429 waited out while short. Returns a 2xx or a status in `accept`."""
        operation = self.operations[plan.operation]
        http = http or self.http
        refreshed = False
        throttled = 0
        while True:
            await operation.limiter.acquire()
            response = await http.request(
                method, path, params=params, json=json_body, accept=(403, 429, *accept)
            )
            operation.observe(response.headers)
            status = response.status_code
            if status == 403:
                errors = rules.errors_of(_json(response))
                if rules.token_refused(errors) and not refreshed:
                    refreshed = True
                    assert http.token is not None
                    http.token.invalidate(response.request.headers.get("x-amz-access-token", ""))
                    log.info(
                        "%s: Amazon refused the access token, fetching a new one", self.account
                    )
                    continue
                raise ChannelApiError(
                    f"{plan.operation}: 403 {rules.describe(errors) or response.text[:300]}",
                    retryable=False,
                    status=403,
                )
            if status == 429:
                wait = rules.throttle_wait(
                    operation.rate,
                    throttled,
                    retry_after_seconds(response.headers.get("retry-after")),
                )
                if wait <= self.max_inline_wait_s and throttled < INLINE_THROTTLES:
                    throttled += 1
                    log.info("%s: %s throttled, waiting %.1fs", self.account, plan.operation, wait)
                    await asyncio.sleep(wait)
                    continue
                raise ChannelApiError(
                    f"{plan.operation}: throttled (429)",
                    retryable=True,
                    status=429,
                    retry_after_s=wait,
                )
            return response

    # --- orders --------------------------------------------------------------------------------

    async def poll_orders(self, since: datetime) -> list[PolledOrder]:
        orders = await self._orders_updated_since(since)
        polled = []
        for order in orders:
            if not rules.hand_on(order):
                continue
            order_id = str(order.get("AmazonOrderId") or "")
            if not order_id:
                raise ValueError("getOrders: an order without AmazonOrderId")
            items = await self._order_items(order_id)
            payload = {**order, "OrderItems": items}
            polled.append(
                PolledOrder(
                    external_id=order_id,
                    updated_at=rules.parse_time(
                        order.get("LastUpdateDate"), f"order {order_id}: LastUpdateDate"
                    ),
                    payload=json.dumps(payload, separators=(",", ":")),
                )
            )
        return polled

    async def _orders_updated_since(self, since: datetime) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "MarketplaceIds": ",".join(self.marketplace_ids),
            "LastUpdatedAfter": rules.amazon_time(since),
            "FulfillmentChannels": "MFN",
            "MaxResultsPerPage": MAX_RESULTS_PER_PAGE,
        }
        found: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            response = await self._call(
                rules.GET_ORDERS, "GET", rules.ORDERS_PATH, params=params, http=self.orders_http
            )
            payload = _payload(response, "getOrders")
            orders = payload.get("Orders") or []
            if not isinstance(orders, list):
                raise ValueError("getOrders: payload.Orders is not a list")
            found += [order for order in orders if isinstance(order, dict)]
            next_token = payload.get("NextToken")
            if not next_token:
                return found
            params = {"MarketplaceIds": ",".join(self.marketplace_ids), "NextToken": next_token}
        raise ValueError(f"getOrders: more than {MAX_PAGES} pages")

    async def _restricted_data_token(self) -> tuple[str, float]:
        response = await self._call(
            rules.CREATE_RDT,
            "POST",
            "/tokens/2021-03-01/restrictedDataToken",
            json_body=rules.restricted_data_request(),
            accept=(400,),
        )
        body = _json(response)
        if response.status_code == 400:
            raise ChannelApiError(
                "createRestrictedDataToken: 400"
                f" {rules.describe(rules.errors_of(body)) or response.text[:300]}",
                retryable=False,
                status=400,
            )
        token = body.get("restrictedDataToken") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ChannelApiError(
                "createRestrictedDataToken: no restrictedDataToken", retryable=False
            )
        return token, float(body.get("expiresIn") or 3600)

    async def _order_items(self, order_id: str) -> list[dict[str, Any]]:
        path = f"/orders/v0/orders/{quote(order_id, safe='')}/orderItems"
        params: dict[str, Any] | None = None
        items: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            response = await self._call(rules.GET_ORDER_ITEMS, "GET", path, params=params)
            payload = _payload(response, "getOrderItems")
            page = payload.get("OrderItems") or []
            if not isinstance(page, list):
                raise ValueError(f"getOrderItems {order_id}: payload.OrderItems is not a list")
            items += [item for item in page if isinstance(item, dict)]
            next_token = payload.get("NextToken")
            if not next_token:
                return items
            params = {"NextToken": next_token}
        raise ValueError(f"getOrderItems {order_id}: more than {MAX_PAGES} pages")

    async def _marketplace_of(self, order_id: str) -> str:
        if len(self.marketplace_ids) == 1:
            return self.marketplace_ids[0]
        path = f"/orders/v0/orders/{quote(order_id, safe='')}"
        order = _payload(await self._call(rules.GET_ORDER, "GET", path), "getOrder")
        marketplace = order.get("MarketplaceId")
        if not isinstance(marketplace, str) or not marketplace:
            raise ValueError(f"getOrder {order_id}: no MarketplaceId")
        return marketplace

    # --- shipments -----------------------------------------------------------------------------

    async def push_shipment(self, shipment: base.ShipmentPush) -> str | None:
        order_id = shipment.external_id
        package = rules.package_reference_id(shipment.key)
        items = rules.order_items(await self._order_items(order_id))
        plan = rules.plan_shipment(shipment.lines, items, shipment.earlier)
        if plan.already_shipped:
            log.info(
                "%s: parcel %s of %s already shipped on Amazon",
                self.account,
                shipment.key,
                order_id,
            )
            return package
        body = rules.confirmation_body(
            marketplace_id=await self._marketplace_of(order_id),
            package_reference=package,
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            shipped_at=shipment.shipped_at,
            items=plan.items,
        )
        response = await self._call(
            rules.CONFIRM_SHIPMENT,
            "POST",
            f"/orders/v0/orders/{quote(order_id, safe='')}/shipmentConfirmation",
            json_body=body,
            accept=(400,),
        )
        if response.status_code == 400:
            errors = rules.errors_of(_json(response))
            if rules.already_shipped(errors):
                return package
            raise ChannelApiError(
                f"confirmShipment {order_id}: 400 {rules.describe(errors) or response.text[:300]}",
                retryable=False,
                status=400,
            )
        return package

    # --- stock ---------------------------------------------------------------------------------

    async def push_stock(self, levels: Sequence[base.StockPush]) -> None:
        if self.seller_id is None:  # not offered without one (capabilities)
            raise base.NotSupported(f"account {self.account}: stock needs options.seller_id")
        refused: dict[str, str] = {}
        for level in levels:
            path = (
                f"/listings/2021-08-01/items/{quote(self.seller_id, safe='')}"
                f"/{quote(level.sku, safe='')}"
            )
            response = await self._call(
                rules.PATCH_LISTINGS_ITEM,
                "PATCH",
                path,
                params={"marketplaceIds": ",".join(self.marketplace_ids)},
                json_body=rules.availability_patch(level.quantity, self.product_type),
                accept=(400, 404),
            )
            body = _json(response)
            if response.status_code in (400, 404):
                refused[level.sku] = (
                    f"patchListingsItem {response.status_code}"
                    f" {rules.describe(rules.errors_of(body)) or response.text[:300]}"
                )
                continue
            status, issues = rules.listing_issues(body)
            if status != "ACCEPTED":
                refused[level.sku] = (
                    f"patchListingsItem {status or 'no status'} {'; '.join(issues)}".rstrip()
                )
        if refused:
            raise base.StockRefused(refused, retryable=False)


def _required(account: AccountSettings, where: str, name: str) -> str:
    value = account.credential(name) if where == "credentials" else account.options.get(name)
    if not value:
        raise ValueError(f"account {account.name}: {where}.{name} is required for Amazon")
    return value


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _payload(response: httpx.Response, operation: str) -> dict[str, Any]:
    body = _json(response)
    payload = body.get("payload") if isinstance(body, dict) else None
    if not isinstance(payload, dict):
        raise ValueError(f"{operation}: the answer has no payload object")
    return payload


def create(account: AccountSettings, settings: ChannelConnectorSettings) -> AmazonClient:
    return AmazonClient(
        account,
        timeout_s=settings.connector_http_timeout_s,
        max_inline_wait_s=settings.connector_max_inline_wait_s,
    )
