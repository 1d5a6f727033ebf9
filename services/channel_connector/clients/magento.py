"""Magento 2 (Adobe Commerce): the REST web API (`{api_base}/V1/...`) of one store.

Settings of the account:
- `api_base`: the store's REST root with its store code, `https://shop.example.com/rest/default`
  (or `/rest/all`); required.
- credentials `access_token`: an integration's access token (System > Extensions >
  Integrations), sent as `Authorization: Bearer`. Since Magento 2.4.4 that needs Stores >
  Configuration > Services > OAuth > Consumer Settings > "Allow OAuth Access Tokens to be used
  as standalone Bearer tokens". Integration tokens do not expire; a 401 is a refusal for good.
  The integration needs the resources Sales (orders, shipments, credit memos) and Inventory
  sources.
- options `source_code` (default `default`): the Multi-Source Inventory source whose quantities
  the OMS sets and which shipments are taken from; `notify` (default `false`): let Magento send
  its own shipment e-mail (the OMS already mails the customer).

What it does:
- Orders are polled: `GET /V1/orders` with `searchCriteria` `updated_at gteq <since>`, sorted by
  `updated_at` then `entity_id`, every page (Magento answers a page past the last with the last
  page again, so `total_count` decides when to stop). Each order goes to order-intake as the
  order's JSON, numbers written exactly as Magento sent them, its `updated_at` (UTC) the
  cursor.
- Stock: `POST /V1/inventory/source-items` with `sourceItems: [{sku, source_code, quantity,
  status}]` (status 1 in stock when the quantity is above 0). Magento refuses a whole batch for
  one SKU it does not know: the batch is then sent SKU by SKU and unknown SKUs are skipped
  (logged).
- Shipments: `POST /V1/order/{entity_id}/ship` with `items: [{order_item_id, qty}]` — the
  parcel's SKUs put on the order's open lines (`qty_ordered - qty_shipped - qty_canceled` of
  the lines order-intake mapped: the configurable parent, not its child) — and `tracks:
  [{track_number, title, carrier_code}]` (`ups`, `usps`, `fedex`, `dhl`, else `custom` with the
  carrier's name as title), from the `source_code` source. A shipment of the order that already
  carries the tracking number (`GET /V1/shipments`) is this push done before; an order whose
  lines for these SKUs are all shipped already is success too.
- Cancellations: `POST /V1/orders/{entity_id}/cancel` (it answers `true`/`false`). An order
  already `canceled` is success; Magento does not cancel an order it has invoiced in full (that
  takes a credit memo): the push is then refused for good, with an operator alert.
- Refunds: an offline credit memo, `POST /V1/order/{entity_id}/refund`: the amount as an
  adjustment refund (`arguments.adjustment_positive`, every item at quantity 0, no shipping, no
  return to Magento's stock), `notify: false`, and a comment ending `(OMS refund <key>)` by
  which a repeated push finds its credit memo (`GET /V1/creditmemos` of the order). Offline:
  Magento records the refund and moves no money (the OMS's payment side or the merchant does).

Limits: Magento itself sets no request quota (a CDN or WAF in front may answer 429): by default
4 requests per second; a 429's Retry-After is respected, 5xx are tried again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.channel_connector.clients import base
from services.channel_connector.domain import (
    PolledOrder,
    UnmatchedShipment,
    assign_to_channel_lines,
)
from services.channel_connector.http import ChannelApiError, ChannelHttp
from services.channel_connector.rules.magento import (
    channel_lines,
    creditmemo_with_key,
    dump_json,
    magento_time,
    more_pages,
    nothing_open,
    parse_magento_time,
    refund_body,
    search_criteria,
    ship_body,
    shipment_with_track,
)
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings

log = logging.getLogger(__name__)

DEFAULT_RATE = 4.0
PAGE_SIZE = 50
MAX_PAGES = 200
NOT_SHIPPABLE = "does not allow a shipment"


class MagentoClient(base.BaseClient):
    channel = "magento"
    capabilities = frozenset(
        {
            base.Capability.POLL_ORDERS,
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
        self.source_code = account.options.get("source_code") or "default"
        self.notify = account.option_on("notify")

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call; the answer parsed with every fraction an exact Decimal."""
        response = await self.http.request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return json.loads(response.text, parse_float=Decimal)
        except ValueError as exc:
            raise ChannelApiError(
                f"{method} {path}: the answer is not JSON",
                retryable=True,
                status=response.status_code,
            ) from exc

    async def _order(self, entity_id: str) -> Mapping[str, Any]:
        order = await self._call("GET", f"/V1/orders/{entity_id}")
        if not isinstance(order, Mapping):
            raise ChannelApiError(f"GET /V1/orders/{entity_id}: not an order", retryable=True)
        return order

    async def _search(self, path: str, field: str, value: str) -> list[Mapping[str, Any]]:
        found = await self._call("GET", path, params=search_criteria([(field, value, "eq")]))
        items = found.get("items") if isinstance(found, Mapping) else None
        return list(items or [])

    # --- orders ----------------------------------------------------------------------------------

    async def poll_orders(self, since: datetime) -> list[PolledOrder]:
        polled: list[PolledOrder] = []
        page = 1
        while True:
            params = search_criteria(
                [("updated_at", magento_time(since), "gteq")],
                page=page,
                page_size=PAGE_SIZE,
                sort=[("updated_at", "ASC"), ("entity_id", "ASC")],
            )
            answer = await self._call("GET", "/V1/orders", params=params)
            if not isinstance(answer, Mapping):
                raise ChannelApiError("GET /V1/orders: not a search result", retryable=True)
            items = answer.get("items") or []
            for order in items:
                entity_id = order.get("entity_id")
                if entity_id is None:
                    raise ValueError("GET /V1/orders: an order without entity_id")
                polled.append(
                    PolledOrder(
                        external_id=str(entity_id),
                        updated_at=parse_magento_time(
                            order.get("updated_at"), f"order {entity_id} updated_at"
                        ),
                        payload=dump_json(order),
                    )
                )
            total = int(answer.get("total_count") or 0)
            if page >= MAX_PAGES or not more_pages(page, PAGE_SIZE, total, len(items)):
                return polled
            page += 1

    # --- stock -----------------------------------------------------------------------------------

    def _source_item(self, level: base.StockPush) -> dict[str, Any]:
        quantity = max(0, level.quantity)
        return {
            "sku": level.sku,
            "source_code": self.source_code,
            "quantity": quantity,
            "status": 1 if quantity > 0 else 0,
        }

    def _skipped(self, item: Mapping[str, Any], exc: ChannelApiError) -> None:
        log.warning("%s: Magento refused the stock of %s: %s", self.account.name, item["sku"], exc)

    async def push_stock(self, levels: Sequence[base.StockPush]) -> None:
        items = [self._source_item(level) for level in levels]
        try:
            await self._call("POST", "/V1/inventory/source-items", json={"sourceItems": items})
            return
        except ChannelApiError as exc:
            if exc.status != 400:
                raise
            if len(items) == 1:
                self._skipped(items[0], exc)
                return
        for item in items:  # one SKU Magento does not know refuses the batch: one by one
            try:
                await self._call("POST", "/V1/inventory/source-items", json={"sourceItems": [item]})
            except ChannelApiError as exc:
                if exc.status != 400:
                    raise
                self._skipped(item, exc)

    # --- shipments -------------------------------------------------------------------------------

    async def push_shipment(self, shipment: base.ShipmentPush) -> str | None:
        entity_id = shipment.external_id
        done = shipment_with_track(
            await self._search("/V1/shipments", "order_id", entity_id), shipment.tracking_number
        )
        if done is not None:
            return str(done)
        order = await self._order(entity_id)
        lines = channel_lines(order.get("items") or [])
        try:
            assigned = assign_to_channel_lines(shipment.lines, lines)
        except UnmatchedShipment:
            if nothing_open(lines, shipment.lines):
                return None  # already shipped in Magento
            raise
        body = ship_body(
            assigned,
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            source_code=self.source_code,
            notify=self.notify,
        )
        try:
            created = await self._call("POST", f"/V1/order/{entity_id}/ship", json=body)
        except ChannelApiError as exc:
            if exc.status == 400 and NOT_SHIPPABLE in str(exc):
                again = await self._order(entity_id)
                if nothing_open(channel_lines(again.get("items") or []), shipment.lines):
                    return None
            raise
        return str(created)

    # --- cancellations ---------------------------------------------------------------------------

    async def cancel_order(self, cancellation: base.CancellationPush) -> str | None:
        entity_id = cancellation.external_id
        order = await self._order(entity_id)
        if order.get("state") == "canceled":
            return None
        if await self._call("POST", f"/V1/orders/{entity_id}/cancel") is True:
            return None
        order = await self._order(entity_id)
        if order.get("state") == "canceled":
            return None
        raise ChannelApiError(
            f"Magento did not cancel order {entity_id} (state {order.get('state')}): an order"
            " invoiced in full is closed with a credit memo, not cancelled",
            retryable=False,
        )

    # --- refunds ---------------------------------------------------------------------------------

    async def refund_order(self, refund: base.RefundPush) -> str | None:
        entity_id = refund.external_id
        order = await self._order(entity_id)
        currency = str(order.get("order_currency_code") or "").upper()
        if currency and currency != refund.currency.upper():
            raise ChannelApiError(
                f"the refund is in {refund.currency}, Magento order {entity_id} in {currency}",
                retryable=False,
            )
        made = creditmemo_with_key(
            await self._search("/V1/creditmemos", "order_id", entity_id), refund.key
        )
        if made is not None:
            return str(made)
        body = refund_body(order.get("items") or [], refund.amount, refund.key, refund.reason)
        created = await self._call("POST", f"/V1/order/{entity_id}/refund", json=body)
        return str(created)


def create(account: AccountSettings, settings: ChannelConnectorSettings) -> MagentoClient:
    if not account.api_base:
        raise ValueError(
            f"account {account.name}: api_base (the store's REST root, …/rest/default) is required"
        )
    token = account.credential("access_token")
    if not token:
        raise ValueError(f"account {account.name}: credentials access_token is required")
    http = ChannelHttp(
        account.name,
        account.api_base,
        timeout_s=settings.connector_http_timeout_s,
        rate=account.requests_per_second or DEFAULT_RATE,
        burst=2,
        max_inline_wait_s=settings.connector_max_inline_wait_s,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    return MagentoClient(account, http)
