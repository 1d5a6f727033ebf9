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

import base64
import binascii
import email.utils
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from services.channel_connector.clients.base import (
    BaseClient,
    CancellationPush,
    Capability,
    ChannelClient,
    NotSupported,
    ShipmentPush,
    StockPush,
    WebhookRefused,
)
from services.channel_connector.domain import ChannelLine, PolledOrder, assign_to_channel_lines
from services.channel_connector.http import ChannelApiError, ChannelHttp
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings

CHANNEL = "bigcommerce"
DEFAULT_API_BASE = "https://api.bigcommerce.com"
DEFAULT_WEBHOOK_HEADER = "x-oms-webhook-secret"
DEFAULT_RATE = 4.0
PAGE_LIMIT = 250
MAX_PAGES = 40
MAX_ADJUSTMENT_ITEMS = 2000
SIGNATURE_TOLERANCE_S = 300
ORDER_SCOPES = frozenset(
    {"store/order/created", "store/order/updated", "store/order/statusUpdated"}
)
CANCELLED = 5
SHIPPED_STATUSES = frozenset({2, 3, 10})  # Shipped, Partially Shipped, Completed
_STORE_HASH = re.compile(r"^[A-Za-z0-9]{1,64}$")
_ORDER_ID = re.compile(r"^[1-9][0-9]{0,18}$")
# OMS carrier names → BigCommerce `tracking_carrier` (AfterShip courier slugs).
TRACKING_CARRIERS = {
    "ups": "ups",
    "usps": "usps",
    "fedex": "fedex",
    "dhl": "dhl",
    "dhl_express": "dhl",
    "dhl_parcel": "dhl-germany",
    "dhl_de": "dhl-germany",
    "dpd": "dpd",
    "gls": "gls",
    "hermes": "hermes-de",
    "royal_mail": "royal-mail",
    "royalmail": "royal-mail",
    "canada_post": "canada-post",
    "australia_post": "australia-post",
    "postnl": "postnl",
}


# --- pure: webhooks ----------------------------------------------------------------------------


def shared_secret_matches(headers: Mapping[str, str], header: str, secret: str) -> bool:
    """The delivery carries `secret` in `header` (names lower-cased), compared in constant
    time."""
    given = headers.get(header.lower())
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), secret.encode())


def standard_webhook_matches(
    headers: Mapping[str, str],
    body: bytes,
    key: bytes,
    now: float,
    tolerance_s: float = SIGNATURE_TOLERANCE_S,
) -> bool:
    """A Standard Webhooks signature: `webhook-signature` holds space-separated `v1,<base64>`
    entries, one of which is HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}"); the
    timestamp (Unix seconds) is within `tolerance_s` of `now`."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        return False
    try:
        sent_at = int(stamp)
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance_s:
        return False
    expected = hmac.new(key, f"{msg_id}.{sent_at}.".encode() + body, hashlib.sha256).digest()
    for entry in signatures.split():
        version, _, value = entry.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, given):
            return True
    return False


def webhook_order_ids(body: bytes, store_hash: str) -> list[str]:
    """The order a verified order webhook names. Raises ValueError naming what is wrong."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"the webhook body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ValueError("the webhook body must be a JSON object")
    scope = payload.get("scope")
    if scope not in ORDER_SCOPES:
        raise ValueError(
            f"scope: {scope!r} is not handled; subscribe {', '.join(sorted(ORDER_SCOPES))}"
        )
    producer = payload.get("producer")
    if producer is not None and producer != f"stores/{store_hash}":
        raise ValueError(f"producer: {producer!r} is not this account's store")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise ValueError("data: is required")
    if data.get("type", "order") != "order":
        raise ValueError(f"data.type: {data.get('type')!r} is not an order")
    order_id = data.get("id")
    if isinstance(order_id, bool) or not isinstance(order_id, int | str):
        raise ValueError("data.id: is required")
    text = str(order_id).strip()
    if not _ORDER_ID.match(text):
        raise ValueError(f"data.id: {order_id!r} is not an order id")
    return [text]


# --- pure: documents and pushes ----------------------------------------------------------------


def compose_order(
    order: Mapping[str, Any],
    products: Sequence[Mapping[str, Any]],
    addresses: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The order with its products and shipping addresses embedded (in the order those keys
    are only links to the sub-resources)."""
    return {**order, "products": list(products), "shipping_addresses": list(addresses)}


def modified_at(order: Mapping[str, Any], fallback: datetime) -> datetime:
    """The order's `date_modified` (RFC 2822, as BigCommerce writes dates)."""
    value = order.get("date_modified") or order.get("date_created")
    if not isinstance(value, str) or not value.strip():
        return fallback
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return fallback
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def open_lines(products: Sequence[Mapping[str, Any]]) -> list[ChannelLine]:
    """The order's products as channel lines: id, SKU, what has not shipped yet."""
    lines = []
    for product in products:
        ordered = int(product.get("quantity") or 0)
        shipped = int(product.get("quantity_shipped") or 0)
        lines.append(
            ChannelLine(
                line_id=str(product["id"]),
                sku=str(product.get("sku") or ""),
                open_quantity=max(0, ordered - shipped),
            )
        )
    return lines


def shipment_comment(key: str) -> str:
    return f"OMS shipment {key}"


def existing_shipment(shipments: Sequence[Mapping[str, Any]], push: ShipmentPush) -> str | None:
    """The id of a shipment already on the order for this push: its key in the comments, or the
    same tracking number."""
    marker = shipment_comment(push.key)
    tracking = push.tracking_number.strip()
    for shipment in shipments:
        if marker in str(shipment.get("comments") or ""):
            return str(shipment.get("id"))
        if tracking and str(shipment.get("tracking_number") or "").strip() == tracking:
            return str(shipment.get("id"))
    return None


def tracking_carrier(carrier: str) -> str:
    """BigCommerce's `tracking_carrier` for an OMS carrier name; "" when it has none (the
    tracking number and link are still sent)."""
    return TRACKING_CARRIERS.get(carrier.strip().lower().replace("-", "_").replace(" ", "_"), "")


def shipment_body(
    push: ShipmentPush,
    products: Sequence[Mapping[str, Any]],
    addresses: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The `POST /v2/orders/{id}/shipments` body for a parcel: its SKUs on the products' open
    quantities (raises UnmatchedShipment when they do not fit), shipped to the products' address
    (ValueError when they go to several)."""
    assigned = assign_to_channel_lines(push.lines, open_lines(products))
    by_id = {str(product["id"]): product for product in products}
    address_ids = {int(by_id[line_id].get("order_address_id") or 0) for line_id, _ in assigned}
    address_ids.discard(0)
    if not address_ids and addresses:
        address_ids = {int(addresses[0]["id"])}
    if len(address_ids) != 1:
        raise ValueError(
            f"order {push.external_id}: the shipped products go to {len(address_ids)} shipping"
            " addresses; one shipment goes to one"
        )
    body: dict[str, Any] = {
        "order_address_id": address_ids.pop(),
        "tracking_number": push.tracking_number.strip()[:50],
        "tracking_carrier": tracking_carrier(push.carrier),
        "comments": shipment_comment(push.key),
        "items": [
            {"order_product_id": int(line_id), "quantity": quantity}
            for line_id, quantity in assigned
        ],
    }
    if push.tracking_url:
        body["tracking_link"] = push.tracking_url[:500]
    return body


def stock_items(levels: Sequence[StockPush], location_id: int) -> list[dict[str, Any]]:
    return [
        {"location_id": location_id, "sku": level.sku, "quantity": max(0, level.quantity)}
        for level in levels
    ]


def reset_wait_s(value: str | None) -> float | None:
    """`X-Rate-Limit-Time-Reset-Ms` in seconds."""
    if not value:
        return None
    try:
        milliseconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, milliseconds / 1000.0)


async def _reset_as_retry_after(response: httpx.Response) -> None:
    """BigCommerce says how long a 429 lasts in `X-Rate-Limit-Time-Reset-Ms`: given to
    ChannelHttp as the Retry-After it reads."""
    if response.status_code == 429 and "retry-after" not in response.headers:
        wait = reset_wait_s(response.headers.get("x-rate-limit-time-reset-ms"))
        if wait is not None:
            response.headers["Retry-After"] = f"{wait:.3f}"


# --- the client --------------------------------------------------------------------------------


class BigCommerceClient(BaseClient):
    channel = CHANNEL
    capabilities = frozenset(
        {
            Capability.WEBHOOK_ORDERS,
            Capability.STOCK,
            Capability.SHIPMENTS,
            Capability.CANCELLATIONS,
        }
    )
    stock_batch_size = 100

    def __init__(self, account: AccountSettings, settings: ChannelConnectorSettings) -> None:
        self.account = account.name
        store_hash = account.options.get("store_hash", "").strip()
        if not _STORE_HASH.match(store_hash):
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
        base = (account.api_base or DEFAULT_API_BASE).rstrip("/")
        self.http = ChannelHttp(
            account.name,
            f"{base}/stores/{store_hash}",
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
            raise WebhookRefused(
                f"account {self.account} has no webhook_secret (nor client_secret) to verify"
                " BigCommerce webhooks with"
            )
        if self._webhook_secret is not None and not shared_secret_matches(
            headers, self.webhook_header, self._webhook_secret
        ):
            raise WebhookRefused(
                f"the {self.webhook_header} header does not match the account's webhook_secret"
            )
        if self._client_secret is not None and not standard_webhook_matches(
            headers, body, self._client_secret.encode(), time.time()
        ):
            raise WebhookRefused(
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

    async def push_stock(self, levels: Sequence[StockPush]) -> None:
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

    async def push_shipment(self, shipment: ShipmentPush) -> str | None:
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

    async def cancel_order(self, cancellation: CancellationPush) -> str | None:
        order_id = _checked_id(cancellation.external_id)
        order = await self._order(order_id)
        status_id = order.get("status_id")
        if status_id == CANCELLED:
            return order_id
        if status_id in SHIPPED_STATUSES:
            raise NotSupported(
                f"BigCommerce order {order_id} is {order.get('status') or status_id}: BigCommerce"
                " cancels whole orders only, cancel the rest in its control panel"
            )
        await self.http.request("PUT", f"/v2/orders/{order_id}", json={"status_id": CANCELLED})
        return order_id


def _checked_id(external_id: str) -> str:
    text = str(external_id).strip()
    if not _ORDER_ID.match(text):
        raise ValueError(f"{external_id!r} is not a BigCommerce order id")
    return text


def create(account: AccountSettings, settings: ChannelConnectorSettings) -> ChannelClient:
    return BigCommerceClient(account, settings)
