"""eBay's Sell APIs for one seller account (what is sent and read: `rules/ebay.py`).

Credentials: `client_id`, `client_secret` (the application's keys) and `refresh_token` (the
seller's consent): a user access token is fetched with the refresh-token grant at
`/identity/v1/oauth2/token` (Basic client_id:client_secret) and refreshed before it expires
and when eBay answers 401. Options: `scopes` (space-separated; default sell.fulfillment and
sell.inventory), `marketplace_id` (default EBAY_US; the order's own marketplace wins),
`carrier_codes` (`dhl=DHL,royal_mail=RoyalMail`: eBay's carrier code per OMS carrier),
`page_size` (orders per getOrders page, 1..200, default 200).

- poll_orders: `GET /sell/fulfillment/v1/order?filter=lastmodifieddate:[since..]`, every page;
- push_shipment: `POST /sell/fulfillment/v1/order/{orderId}/shipping_fulfillment` with the
  parcel's units assigned to the order's open lines; a fulfillment with the parcel's tracking
  number already on the order is the parcel (no second call);
- push_stock: Inventory API `POST /sell/inventory/v1/bulk_update_price_quantity`, 25 SKUs a call;
- cancel_order: Post-Order API `POST /post-order/v2/cancellation` (an order already cancelled,
  or with a seller's cancel request, is done);
- refund_order: `POST /sell/fulfillment/v1/order/{orderId}/issue_refund` (order level).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from services.channel_connector.clients import base
from services.channel_connector.domain import PolledOrder, assign_to_channel_lines
from services.channel_connector.http import (
    ChannelApiError,
    ChannelHttp,
    OAuthToken,
    form_token_grant,
)
from services.channel_connector.rules import ebay as rules
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.ebay.com"
TOKEN_PATH = "/identity/v1/oauth2/token"
DEFAULT_SCOPES = (
    "https://api.ebay.com/oauth/api_scope/sell.fulfillment"
    " https://api.ebay.com/oauth/api_scope/sell.inventory"
)
DEFAULT_MARKETPLACE = "EBAY_US"
# eBay's default limits are per day (Fulfillment 100,000 calls, Inventory 2,000,000 a day);
# a few calls a second keeps a busy account well inside them.
DEFAULT_RATE = 5.0
MAX_PAGES = 500


class EbayClient(base.BaseClient):
    channel = "ebay"
    capabilities = frozenset(
        {
            base.Capability.POLL_ORDERS,
            base.Capability.SHIPMENTS,
            base.Capability.STOCK,
            base.Capability.CANCELLATIONS,
            base.Capability.REFUNDS,
        }
    )
    stock_batch_size = rules.STOCK_BATCH

    def __init__(self, account: AccountSettings, settings: ChannelConnectorSettings) -> None:
        missing = [
            name
            for name in ("client_id", "client_secret", "refresh_token")
            if not account.credential(name)
        ]
        if missing:
            raise ValueError(f"account {account.name}: eBay needs credentials {', '.join(missing)}")
        self.account = account.name
        self._client_id = account.credential("client_id") or ""
        self._client_secret = account.credential("client_secret") or ""
        self._refresh_token = account.credential("refresh_token") or ""
        self._scopes = account.options.get("scopes") or DEFAULT_SCOPES
        self.marketplace = account.options.get("marketplace_id") or DEFAULT_MARKETPLACE
        self.carrier_codes = rules.parse_carrier_codes(account.options.get("carrier_codes"))
        self.page_size = _page_size(account.options.get("page_size"))
        api_base = account.api_base or DEFAULT_API_BASE
        rate = account.requests_per_second or DEFAULT_RATE
        self.token = OAuthToken(account.name, self._fetch_token)
        common: dict[str, Any] = {
            "timeout_s": settings.connector_http_timeout_s,
            "rate": rate,
            "burst": max(1.0, rate),
            "token": self.token,
            "max_inline_wait_s": settings.connector_max_inline_wait_s,
            "headers": {"Accept": "application/json"},
        }
        self.http = ChannelHttp(account.name, api_base, **common)
        # The Post-Order API takes the same OAuth user token as `IAF <token>`.
        self.post_order = ChannelHttp(account.name, api_base, token_prefix="IAF ", **common)

    async def _fetch_token(self, client: httpx.AsyncClient) -> tuple[str, float]:
        return await form_token_grant(
            client,
            TOKEN_PATH,
            {
                "grant_type": "refresh_token",
                "refresh_token": self._refresh_token,
                "scope": self._scopes,
            },
            auth=(self._client_id, self._client_secret),
        )

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.post_order.aclose()

    # --- orders ------------------------------------------------------------------------------

    async def poll_orders(self, since: datetime) -> list[PolledOrder]:
        found: list[PolledOrder] = []
        response = await self.http.request(
            "GET", rules.ORDERS_PATH, params=rules.orders_query(since, self.page_size)
        )
        for _ in range(MAX_PAGES):
            page = rules.read_orders_page(_json(response))
            found.extend(page.orders)
            if page.next_path is None or not page.orders:
                return found
            response = await self.http.request("GET", page.next_path)
        raise ChannelApiError(
            f"getOrders: more than {MAX_PAGES} pages since {since.isoformat()}", retryable=True
        )

    async def fetch_order(self, external_id: str) -> PolledOrder:
        return rules.polled_order(await self._order(external_id))

    async def _order(self, order_id: str) -> dict[str, Any]:
        response = await self.http.request("GET", f"{rules.ORDERS_PATH}/{_seg(order_id)}")
        body = _json(response)
        if not isinstance(body, dict):
            raise rules.EbayAnswerError("(order)", "is not an object")
        return body

    # --- shipments ---------------------------------------------------------------------------

    async def push_shipment(self, shipment: base.ShipmentPush) -> str | None:
        order_path = f"{rules.ORDERS_PATH}/{_seg(shipment.external_id)}"
        fulfillments = _json(await self.http.request("GET", f"{order_path}/shipping_fulfillment"))
        existing = rules.fulfillment_with_tracking(fulfillments, shipment.tracking_number)
        if existing is not None:
            log.info(
                "%s: eBay order %s already has the fulfillment of parcel %s (%s)",
                self.account,
                shipment.external_id,
                shipment.key,
                existing,
            )
            return existing
        order = await self._order(shipment.external_id)
        assigned = assign_to_channel_lines(
            [line for line in shipment.lines if line.quantity > 0],
            rules.open_lines(order, fulfillments),
        )
        body = rules.fulfillment_request(
            assigned,
            shipped_at=shipment.shipped_at,
            carrier=rules.carrier_code(shipment.carrier, self.carrier_codes),
            tracking_number=shipment.tracking_number,
        )
        response = await self.http.request("POST", f"{order_path}/shipping_fulfillment", json=body)
        return rules.fulfillment_id_from_location(response.headers.get("location")) or (
            shipment.tracking_number
        )

    # --- stock -------------------------------------------------------------------------------

    async def push_stock(self, levels: Sequence[base.StockPush]) -> None:
        refused: dict[str, str] = {}
        retryable = False
        for start in range(0, len(levels), rules.STOCK_BATCH):
            batch = levels[start : start + rules.STOCK_BATCH]
            response = await self.http.request(
                "POST",
                "/sell/inventory/v1/bulk_update_price_quantity",
                json=rules.stock_request((level.sku, level.quantity) for level in batch),
            )
            rejected = rules.stock_rejections(_json(response), [level.sku for level in batch])
            refused.update({r.sku: r.message for r in rejected})
            retryable = retryable or any(r.retryable for r in rejected)
        if refused:
            raise base.StockRefused(refused, retryable=retryable)

    # --- cancellations -----------------------------------------------------------------------

    async def cancel_order(self, cancellation: base.CancellationPush) -> str | None:
        order = await self._order(cancellation.external_id)
        existing = rules.existing_cancellation(order)
        if existing is not None:
            return existing
        response = await self.post_order.request(
            "POST",
            "/post-order/v2/cancellation",
            json=rules.cancellation_request(order),
            headers={"X-EBAY-C-MARKETPLACE-ID": rules.marketplace_of(order, self.marketplace)},
            accept=(400, 409),  # read below: "a cancellation exists" is the one sent before
        )
        body = _json(response)
        if rules.already_cancelled_answer(body):
            return "cancelled"
        cancel_id = body.get("cancelId") if isinstance(body, dict) else None
        if response.status_code >= 300 or not cancel_id:
            raise ChannelApiError(
                f"eBay did not cancel order {cancellation.external_id}:"
                f" {rules.error_text(body) or str(body)[:300]}",
                retryable=False,
                status=response.status_code,
            )
        return str(cancel_id)

    # --- refunds -----------------------------------------------------------------------------

    async def refund_order(self, refund: base.RefundPush) -> str | None:
        order = await self._order(refund.external_id)
        existing = rules.existing_refund(order, refund.amount, refund.currency)
        if existing is not None:
            log.warning(
                "%s: eBay order %s already has a refund of %s %s (%s): taken as refund %s",
                self.account,
                refund.external_id,
                refund.amount,
                refund.currency,
                existing,
                refund.key,
            )
            return existing
        response = await self.http.request(
            "POST",
            f"{rules.ORDERS_PATH}/{_seg(refund.external_id)}/issue_refund",
            json=rules.refund_request(
                refund.amount, refund.currency, refund.reason, refund.return_id, refund.key
            ),
        )
        body = _json(response)
        if isinstance(body, dict) and body.get("refundStatus") == "FAILED":
            raise ChannelApiError(
                f"eBay refused the refund of order {refund.external_id}:"
                f" {rules.error_text(body) or 'FAILED'}",
                retryable=False,
                status=response.status_code,
            )
        refund_id = body.get("refundId") if isinstance(body, dict) else None
        return str(refund_id) if refund_id else None


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        raise rules.EbayAnswerError("(body)", "is not JSON") from None


def _page_size(option: str | None) -> int:
    if not option:
        return rules.PAGE_LIMIT
    try:
        size = int(option)
    except ValueError:
        size = 0
    if not 1 <= size <= rules.PAGE_LIMIT:
        raise ValueError(f"options.page_size: {option!r} is not 1 to {rules.PAGE_LIMIT}")
    return size


def _seg(value: str) -> str:
    return quote(value, safe="")


def create(account: AccountSettings, settings: ChannelConnectorSettings) -> EbayClient:
    return EbayClient(account, settings)
