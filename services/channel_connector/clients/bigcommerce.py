"""BigCommerce: the store's REST API (`{api_base}/stores/{store_hash}/v2|v3/...`, header
`X-Auth-Token`) for one store.

Settings of the account:
- credentials `access_token` (an API account's or app's token; required), `webhook_secret` (the
  value of the header the connector requires on every webhook delivery) and `client_secret`
  (the app's client secret: BigCommerce signs webhook deliveries with it, Standard Webhooks);
- options `store_hash` (required), `location_id` (the inventory location stock is set at,
  default 1), `webhook_header` (the header carrying `webhook_secret`, default
  `X-OMS-Webhook-Secret`).

What it does:
- Webhooks (`store/order/created`, `store/order/updated`, `store/order/statusUpdated`) carry
  only `data.id`. A delivery is verified before its order is queued: BigCommerce sends the
  `headers` given when the webhook was created with every delivery, so the subscription sets
  `{webhook_header: webhook_secret}` and the connector compares it in constant time. BigCommerce
  also documents a Standard Webhooks signature (`webhook-id`, `webhook-timestamp`,
  `webhook-signature: v1,<base64 HMAC-SHA256(client secret, "{id}.{timestamp}.{body}")>`); with
  `client_secret` set it is required as well, the timestamp within five minutes. Without either
  secret every delivery is refused. Another scope, or another store's `producer`, is malformed.
- `fetch_order`: `GET /v2/orders/{id}`, then all pages of its `products` and
  `shipping_addresses`, embedded under those keys: the document order-intake's `bigcommerce`
  adapter reads.
- Stock: `PUT /v3/inventory/adjustments/absolute` with `{location_id, sku, quantity}` items,
  up to `stock_batch_size` SKUs a request (the API takes 2,000).
- Shipments: `POST /v2/orders/{id}/shipments` with the order's shipping address and
  `items: [{order_product_id, quantity}]`, the shipped SKUs assigned to the products' open
  quantities (`quantity - quantity_shipped`). Idempotent: a shipment already on the order with
  the push's key in its `comments`, or with the same tracking number, is the push done.
- Cancellations: `PUT /v2/orders/{id}` with `status_id` 5 (Cancelled); an order already
  cancelled is done. BigCommerce cancels whole orders, so an order with shipped items is not
  cancelled there (the push is skipped, saying why).
- Refunds are not pushed: BigCommerce refunds go through refund quotes against the order's
  payment providers, which the connector does not know; they are made in the control panel.
- Rate limit: the store's quota (150 requests per 30 s on Standard and Plus plans) by default
  4 requests a second; a 429's `X-Rate-Limit-Time-Reset-Ms` is the wait before trying again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from services.channel_connector.clients import base
from services.channel_connector.domain import PolledOrder
from services.channel_connector.http import ChannelApiError, ChannelHttp
from services.channel_connector.rules.bigcommerce import (
    CANCELLED,
    CHANNEL,
    DEFAULT_API_BASE,
    DEFAULT_RATE,
    DEFAULT_WEBHOOK_HEADER,
    MAX_ADJUSTMENT_ITEMS,
    MAX_PAGES,
    ORDER_ID_PATTERN,
    PAGE_LIMIT,
    SHIPPED_STATUSES,
    STORE_HASH_PATTERN,
    compose_order,
    existing_shipment,
    modified_at,
    reset_wait_s,
    shared_secret_matches,
    shipment_body,
    standard_webhook_matches,
    stock_items,
    webhook_order_ids,
)
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings


async def _reset_as_retry_after(response: httpx.Response) -> None:
    """BigCommerce says how long a 429 lasts in `X-Rate-Limit-Time-Reset-Ms`: given to
    ChannelHttp as the Retry-After it reads."""
    if response.status_code == 429 and "retry-after" not in response.headers:
        wait = reset_wait_s(response.headers.get("x-rate-limit-time-reset-ms"))
        if wait is not None:
            response.headers["Retry-After"] = f"{wait:.3f}"


# --- the client --------------------------------------------------------------------------------


class BigCommerceClient(base.BaseClient):
    channel = CHANNEL
    capabilities = frozenset(
        {
            base.Capability.WEBHOOK_ORDERS,
            base.Capability.STOCK,
            base.Capability.SHIPMENTS,
            base.Capability.CANCELLATIONS,
        }
    )
    stock_batch_size = 100

    def __init__(self, account: AccountSettings, settings: ChannelConnectorSettings) -> None:
        self.account = account.name
        store_hash = account.options.get("store_hash", "").strip()
        if not STORE_HASH_PATTERN.match(store_hash):
            raise ValueError(
                f"account {account.name}: options.store_hash is required (the store's API path"
                " hash, letters and digits)"
            )
        token = account.credential("access_token")
        if not token:
            raise ValueError(f"account {account.name}: credentials.access_token is required")
        try:
            self.location_id = int(account.options.get("location_id", "1"))
        except ValueError as exc:
            raise ValueError(
                f"account {account.name}: options.location_id must be a number"
            ) from exc
        self.store_hash = store_hash
        self.webhook_header = account.options.get("webhook_header", DEFAULT_WEBHOOK_HEADER).lower()
        self._webhook_secret = account.credential("webhook_secret") or None
        self._client_secret = account.credential("client_secret") or None
        api_base = (account.api_base or DEFAULT_API_BASE).rstrip("/")
        self.http = ChannelHttp(
            account.name,
            f"{api_base}/stores/{store_hash}",
            timeout_s=settings.connector_http_timeout_s,
            rate=account.requests_per_second or DEFAULT_RATE,
            burst=5,
            headers={
                "X-Auth-Token": token,
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            max_inline_wait_s=settings.connector_max_inline_wait_s,
        )
        self.http.client.event_hooks = {"request": [], "response": [_reset_as_retry_after]}

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- webhooks ------------------------------------------------------------------------------

    def webhook_order_ids(self, headers: Mapping[str, str], body: bytes) -> list[str]:
        headers = {k.lower(): v for k, v in headers.items()}
        if self._webhook_secret is None and self._client_secret is None:
            raise base.WebhookRefused(
                f"account {self.account} has no webhook_secret (nor client_secret) to verify"
                " BigCommerce webhooks with"
            )
        if self._webhook_secret is not None and not shared_secret_matches(
            headers, self.webhook_header, self._webhook_secret
        ):
            raise base.WebhookRefused(
                f"the {self.webhook_header} header does not match the account's webhook_secret"
            )
        if self._client_secret is not None and not standard_webhook_matches(
            headers, body, self._client_secret.encode(), time.time()
        ):
            raise base.WebhookRefused(
                "the webhook-signature is missing, stale or does not match the client_secret"
            )
        return webhook_order_ids(body, self.store_hash)

    # --- orders --------------------------------------------------------------------------------

    async def _get_all(self, path: str) -> list[dict[str, Any]]:
        """Every page of a V2 collection (204 No Content: none)."""
        found: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            response = await self.http.request(
                "GET", path, params={"limit": PAGE_LIMIT, "page": page}
            )
            if response.status_code == 204 or not response.content:
                break
            items = response.json()
            if not isinstance(items, list):
                raise ChannelApiError(f"GET {path}: expected a list", retryable=False)
            found += items
            if len(items) < PAGE_LIMIT:
                break
        return found

    async def _order(self, order_id: str) -> dict[str, Any]:
        order = (await self.http.request("GET", f"/v2/orders/{order_id}")).json()
        if not isinstance(order, dict):
            raise ChannelApiError(f"GET /v2/orders/{order_id}: expected an object", retryable=False)
        return order

    async def fetch_order(self, external_id: str) -> PolledOrder:
        order_id = _checked_id(external_id)
        order = await self._order(order_id)
        products = await self._get_all(f"/v2/orders/{order_id}/products")
        addresses = await self._get_all(f"/v2/orders/{order_id}/shipping_addresses")
        document = compose_order(order, products, addresses)
        return PolledOrder(
            external_id=str(order.get("id", order_id)),
            updated_at=modified_at(order, datetime.now(UTC)),
            payload=json.dumps(document),
        )

    # --- pushes --------------------------------------------------------------------------------

    async def push_stock(self, levels: Sequence[base.StockPush]) -> None:
        items = stock_items(levels, self.location_id)
        for start in range(0, len(items), MAX_ADJUSTMENT_ITEMS):
            await self.http.request(
                "PUT",
                "/v3/inventory/adjustments/absolute",
                json={
                    "reason": "Available to promise from the OMS",
                    "items": items[start : start + MAX_ADJUSTMENT_ITEMS],
                },
            )

    async def push_shipment(self, shipment: base.ShipmentPush) -> str | None:
        order_id = _checked_id(shipment.external_id)
        path = f"/v2/orders/{order_id}/shipments"
        done = existing_shipment(await self._get_all(path), shipment)
        if done is not None:
            return done
        products = await self._get_all(f"/v2/orders/{order_id}/products")
        addresses: list[dict[str, Any]] = []
        if all(not int(p.get("order_address_id") or 0) for p in products):
            addresses = await self._get_all(f"/v2/orders/{order_id}/shipping_addresses")
        body = shipment_body(shipment, products, addresses)
        created = (await self.http.request("POST", path, json=body)).json()
        return str(created.get("id")) if isinstance(created, dict) else None

    async def cancel_order(self, cancellation: base.CancellationPush) -> str | None:
        order_id = _checked_id(cancellation.external_id)
        order = await self._order(order_id)
        status_id = order.get("status_id")
        if status_id == CANCELLED:
            return order_id
        if status_id in SHIPPED_STATUSES:
            raise base.NotSupported(
                f"BigCommerce order {order_id} is {order.get('status') or status_id}: BigCommerce"
                " cancels whole orders only, cancel the rest in its control panel"
            )
        await self.http.request("PUT", f"/v2/orders/{order_id}", json={"status_id": CANCELLED})
        return order_id


def _checked_id(external_id: str) -> str:
    text = str(external_id).strip()
    if not ORDER_ID_PATTERN.match(text):
        raise ValueError(f"{external_id!r} is not a BigCommerce order id")
    return text


def create(account: AccountSettings, settings: ChannelConnectorSettings) -> base.ChannelClient:
    return BigCommerceClient(account, settings)
