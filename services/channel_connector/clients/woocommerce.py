"""WooCommerce: the REST API v3 (`{api_base}/wp-json/wc/v3/...`) of one store.

Settings of the account:
- `api_base`: the store's address (`https://shop.example.com`); required.
- credentials `consumer_key` / `consumer_secret`: a REST API key (WooCommerce > Settings >
  Advanced > REST API, permissions Read/Write), sent as HTTP Basic auth (HTTPS only).
- option `api_refund`: `true` to have WooCommerce refund through the order's payment gateway
  (`api_refund: true`); default `false`: the refund is recorded on the order only, since the
  OMS's own refund already moved the money or the merchant refunds in the gateway's dashboard.

What it does (orders come in by webhook at order-intake, not through the connector):
- Stock: each SKU's product or variation is found once (`GET /products?sku=a,b,c`, which
  returns variations too, with their `parent_id`) and remembered; levels go out as
  `POST /products/batch` and `POST /products/{parent}/variations/batch` with
  `update: [{id, manage_stock: true, stock_quantity}]`. A SKU the store does not have is
  skipped (logged); an entry the batch refuses (a product deleted since) is looked up again on
  the next push.
- Shipments: one customer note per parcel (`POST /orders/{id}/notes`, `customer_note: true`,
  carrier and tracking number), not added again when a note already tells that tracking number;
  then, when this parcel and the earlier ones cover every line item (by SKU, against
  `GET /orders/{id}`), the order is set `completed` (`PUT /orders/{id}`), unless it already is
  (or was cancelled or refunded on the store).
- Cancellations: the order set `cancelled` when the cancellation covers all of it (already
  cancelled, refunded or failed: nothing to do); a partial one (some of it shipped) becomes a
  private order note, since WooCommerce cannot cancel single lines.
- Refunds: `POST /orders/{id}/refunds` with `amount`, `reason`, `api_refund` (see above),
  `api_restock: false` (the OMS owns the stock and pushes it) and the push key as meta data
  `oms_refund_key`, by which a repeated push finds the refund it made instead of refunding twice.

Limits: WooCommerce documents no request quota of its own for `wc/v3` (hosts and security
plugins may add one): by default 5 requests per second, a 429's Retry-After is waited out (or
the push rescheduled), 5xx are tried again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import httpx

from services.channel_connector.clients import base
from services.channel_connector.http import ChannelApiError, ChannelHttp
from services.channel_connector.rules.woocommerce import (
    CANCELLED_ALREADY,
    REFUND_KEY_META,
    ProductRef,
    batch_errors,
    cancellation_note,
    covers_order,
    has_tracking_note,
    product_refs,
    refund_made,
    should_complete,
    stock_batches,
    tracking_note,
)
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings

log = logging.getLogger(__name__)

API_PATH = "/wp-json/wc/v3"
DEFAULT_RATE = 5.0
LOOKUP_CHUNK = 50


def api_root(api_base: str) -> str:
    root = api_base.rstrip("/")
    return root if root.endswith(API_PATH) else f"{root}{API_PATH}"


class WooCommerceClient(base.BaseClient):
    channel = "woocommerce"
    capabilities = frozenset(
        {
            base.Capability.STOCK,
            base.Capability.SHIPMENTS,
            base.Capability.CANCELLATIONS,
            base.Capability.REFUNDS,
        }
    )
    stock_batch_size = 50

    def __init__(self, account: AccountSettings, http: ChannelHttp) -> None:
        self.account = account
        self.http = http
        self.api_refund = account.option_on("api_refund")
        self._products: dict[str, ProductRef] = {}

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, **kwargs)
        return response.json()

    # --- stock -----------------------------------------------------------------------------------

    async def _resolve(self, skus: Sequence[str]) -> None:
        missing = [sku for sku in dict.fromkeys(skus) if sku not in self._products]
        # A comma separates SKUs in the `sku` filter: such a SKU is looked up alone.
        plain = [sku for sku in missing if "," not in sku]
        chunks = [plain[i : i + LOOKUP_CHUNK] for i in range(0, len(plain), LOOKUP_CHUNK)]
        chunks += [[sku] for sku in missing if "," in sku]
        for chunk in chunks:
            found = await self._json(
                "GET", "/products", params={"sku": ",".join(chunk), "per_page": 100}
            )
            if not isinstance(found, list):
                raise ChannelApiError("GET /products: the answer is not a list", retryable=True)
            self._products.update(product_refs(found, chunk))

    async def push_stock(self, levels: Sequence[base.StockPush]) -> None:
        await self._resolve([level.sku for level in levels])
        unknown = [level.sku for level in levels if level.sku not in self._products]
        if unknown:
            log.warning(
                "%s: no WooCommerce product has the SKU(s) %s: their stock is not pushed",
                self.account.name,
                ", ".join(unknown),
            )
        batches = stock_batches(((lv.sku, lv.quantity) for lv in levels), self._products)
        refused: list[tuple[int, str]] = []
        if batches.products:
            answer = await self._json("POST", "/products/batch", json={"update": batches.products})
            refused += batch_errors(answer)
        for parent, updates in batches.variations.items():
            answer = await self._json(
                "POST", f"/products/{parent}/variations/batch", json={"update": updates}
            )
            refused += batch_errors(answer)
        if refused:
            ids = {product_id for product_id, _ in refused}
            for sku in [s for s, ref in self._products.items() if ref.product_id in ids]:
                del self._products[sku]  # looked up again on the next try
            raise ChannelApiError(
                "WooCommerce refused stock updates: "
                + "; ".join(f"{pid} {error}" for pid, error in refused),
                retryable=True,
            )

    # --- shipments -------------------------------------------------------------------------------

    async def push_shipment(self, shipment: base.ShipmentPush) -> str | None:
        order_id = shipment.external_id
        order = await self._json("GET", f"/orders/{order_id}")
        notes = await self._json("GET", f"/orders/{order_id}/notes")
        note_id = has_tracking_note(notes, shipment.tracking_number)
        if note_id is None:
            created = await self._json(
                "POST",
                f"/orders/{order_id}/notes",
                json={
                    "note": tracking_note(
                        shipment.carrier, shipment.tracking_number, shipment.tracking_url
                    ),
                    "customer_note": True,
                },
            )
            note_id = int(created.get("id") or 0)
        shipped = (*shipment.earlier, *shipment.lines)
        if should_complete(str(order.get("status")), order.get("line_items") or [], shipped):
            await self._json("PUT", f"/orders/{order_id}", json={"status": "completed"})
        return str(note_id)

    # --- cancellations ---------------------------------------------------------------------------

    async def cancel_order(self, cancellation: base.CancellationPush) -> str | None:
        order_id = cancellation.external_id
        order = await self._json("GET", f"/orders/{order_id}")
        if str(order.get("status")) in CANCELLED_ALREADY:
            return None
        if covers_order(order.get("line_items") or [], cancellation.lines):
            await self._json("PUT", f"/orders/{order_id}", json={"status": "cancelled"})
            return None
        text = cancellation_note(cancellation.reason, cancellation.lines)
        notes = await self._json("GET", f"/orders/{order_id}/notes")
        if any(str(note.get("note") or "") == text for note in notes):
            return None
        created = await self._json(
            "POST", f"/orders/{order_id}/notes", json={"note": text, "customer_note": False}
        )
        return str(created.get("id") or "")

    # --- refunds ---------------------------------------------------------------------------------

    async def refund_order(self, refund: base.RefundPush) -> str | None:
        order_id = refund.external_id
        order = await self._json("GET", f"/orders/{order_id}")
        currency = str(order.get("currency") or "").upper()
        if currency and currency != refund.currency.upper():
            raise ChannelApiError(
                f"the refund is in {refund.currency}, WooCommerce order {order_id} in {currency}",
                retryable=False,
            )
        made = refund_made(await self._json("GET", f"/orders/{order_id}/refunds"), refund.key)
        if made is not None:
            return str(made)
        created = await self._json(
            "POST",
            f"/orders/{order_id}/refunds",
            json={
                "amount": str(refund.amount),
                "reason": refund.reason,
                "api_refund": self.api_refund,
                "api_restock": False,
                "meta_data": [{"key": REFUND_KEY_META, "value": refund.key}],
            },
        )
        return str(created.get("id") or "")


def create(account: AccountSettings, settings: ChannelConnectorSettings) -> WooCommerceClient:
    if not account.api_base:
        raise ValueError(f"account {account.name}: api_base (the store's address) is required")
    key = account.credential("consumer_key")
    secret = account.credential("consumer_secret")
    if not key or not secret:
        raise ValueError(
            f"account {account.name}: credentials consumer_key and consumer_secret are required"
        )
    http = ChannelHttp(
        account.name,
        api_root(account.api_base),
        timeout_s=settings.connector_http_timeout_s,
        rate=account.requests_per_second or DEFAULT_RATE,
        burst=2,
        max_inline_wait_s=settings.connector_max_inline_wait_s,
        auth=httpx.BasicAuth(key, secret),
        headers={"Accept": "application/json"},
    )
    return WooCommerceClient(account, http)
