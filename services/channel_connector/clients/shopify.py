"""Shopify: stock, shipments, cancellations and refunds through the Admin GraphQL API.

Orders come in by webhook to order-intake (`orders/create`), so nothing is polled. Every call
is a POST to `{api_base}/admin/api/{api_version}/graphql.json` with the app's Admin API access
token in `X-Shopify-Access-Token`.

Account settings: `api_base` the shop (`https://<shop>.myshopify.com`); `credentials`:
`access_token` (an Admin API token: it does not expire, so a 401 is final); `options`:
`location_id` (the Location, numeric or gid, whose `available` quantity the OMS sets; needed
when stock is pushed), `api_version` (default 2025-01), `notify_customer` ("true": Shopify mails
the customer about fulfilments and refunds), `refund_on_cancel` ("true": a cancellation of an
order nothing of which was fulfilled refunds it on Shopify).

- Stock: `inventorySetQuantities` (`available`, reason `correction`, no compare-and-swap: the
  OMS is the source of truth), up to 250 quantities a call; each SKU's inventory item found by
  `productVariants(query: "sku:...")` and remembered. A SKU Shopify does not know (or refuses)
  is reported with `StockRefused`, the others are set.
- Shipments: the order's fulfillment orders (OPEN / IN_PROGRESS lines with their remaining
  quantity and SKU) → `fulfillmentCreate` with the lines by fulfillment order, the tracking
  info, `notifyCustomer`. Repeated safely: a fulfillment with the parcel's tracking number
  already on the order, or nothing of the shipped SKUs left open, is "already done".
- Cancellations: `orderCancel` (restock false: the OMS pushes stock itself); an order already
  cancelled is done.
- Refunds: `refundCreate` of an amount, as REFUND transactions against the order's successful
  SALE / CAPTURE transactions (parentId + gateway, what is left of each after earlier refunds);
  the refund's note carries the push's key, so a repeated push finds the refund made. From API
  2026-01 the push key also goes as `@idempotent(key:)`.

Errors: `userErrors` → a ChannelApiError (not retryable) naming the field; a THROTTLED answer
(cost-based limits, HTTP 200) waits for the cost bucket (`extensions.cost.throttleStatus`) in
place when short, else is retryable after that wait; HTTP 429 / 5xx / 401 as ChannelHttp does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from services.channel_connector.clients import base
from services.channel_connector.domain import assign_to_channel_lines
from services.channel_connector.http import ChannelApiError, ChannelHttp
from services.channel_connector.rules import shopify as rules
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings

log = logging.getLogger(__name__)

DEFAULT_API_VERSION = "2025-01"
DEFAULT_REQUESTS_PER_SECOND = 4.0
MAX_SET_QUANTITIES = 250
SKUS_PER_SEARCH = 50
INLINE_THROTTLE_RETRIES = 3

VARIANTS_BY_SKU = """
query VariantsBySku($query: String!, $first: Int!, $after: String) {
  productVariants(first: $first, after: $after, query: $query) {
    nodes { id sku inventoryItem { id } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

SET_QUANTITIES = """
mutation SetAvailable($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input)%s {
    inventoryAdjustmentGroup { id }
    userErrors { field message code }
  }
}
"""

ORDER_FULFILLMENT = """
query OrderFulfillment($id: ID!) {
  order(id: $id) {
    id
    cancelledAt
    fulfillments(first: 250) { id status trackingInfo(first: 10) { number } }
    fulfillmentOrders(first: 50) {
      nodes {
        id
        status
        lineItems(first: 250) { nodes { id remainingQuantity lineItem { sku } } }
      }
    }
  }
}
"""

FULFILLMENT_CREATE = """
mutation CreateFulfillment($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status }
    userErrors { field message }
  }
}
"""

ORDER_STATE = """
query OrderState($id: ID!) {
  order(id: $id) { id cancelledAt displayFulfillmentStatus }
}
"""

ORDER_CANCEL = """
mutation CancelOrder(
  $orderId: ID!, $reason: OrderCancelReason!, $refund: Boolean!, $restock: Boolean!,
  $notifyCustomer: Boolean, $staffNote: String
) {
  orderCancel(
    orderId: $orderId, reason: $reason, refund: $refund, restock: $restock,
    notifyCustomer: $notifyCustomer, staffNote: $staffNote
  ) {
    job { id done }
    orderCancelUserErrors { field message code }
  }
}
"""

ORDER_PAYMENTS = """
query OrderPayments($id: ID!) {
  order(id: $id) {
    id
    refunds(first: 250) { id note }
    transactions(first: 250) {
      id kind status gateway
      amountSet {
        shopMoney { amount currencyCode }
        presentmentMoney { amount currencyCode }
      }
      parentTransaction { id }
    }
  }
}
"""

REFUND_CREATE = """
mutation CreateRefund($input: RefundInput!) {
  refundCreate(input: $input)%s {
    refund { id }
    userErrors { field message }
  }
}
"""


def _flag(options: Mapping[str, str], name: str, default: bool) -> bool:
    value = options.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ValueError(f"options.{name} must be true or false, not {value!r}")


class ShopifyClient(base.BaseClient):
    channel = "shopify"
    capabilities = frozenset(
        {
            base.Capability.STOCK,
            base.Capability.SHIPMENTS,
            base.Capability.CANCELLATIONS,
            base.Capability.REFUNDS,
        }
    )
    stock_batch_size = MAX_SET_QUANTITIES

    def __init__(self, account: AccountSettings, settings: ChannelConnectorSettings) -> None:
        self.account = account.name
        token = account.credential("access_token")
        if not token:
            raise ValueError(f"account {account.name}: credentials.access_token is required")
        if not account.api_base:
            raise ValueError(
                f"account {account.name}: api_base (https://<shop>.myshopify.com) is required"
            )
        options = account.options
        self.api_version = options.get("api_version", DEFAULT_API_VERSION)
        if not rules.API_VERSION.match(self.api_version):
            raise ValueError(
                f"account {account.name}: options.api_version must look like 2025-01,"
                f" not {self.api_version!r}"
            )
        location = options.get("location_id")
        if location is None and account.push_stock:
            raise ValueError(
                f"account {account.name}: options.location_id is required to push stock"
            )
        try:
            self.location_id = rules.gid("Location", location) if location else None
        except rules.ShopifyInputError as exc:
            raise ValueError(f"account {account.name}: options.location_id: {exc}") from exc
        self.notify_customer = _flag(options, "notify_customer", True)
        self.refund_on_cancel = _flag(options, "refund_on_cancel", True)
        self.path = f"/admin/api/{self.api_version}/graphql.json"
        self.max_inline_wait_s = settings.connector_max_inline_wait_s
        rate = account.requests_per_second or DEFAULT_REQUESTS_PER_SECOND
        self.http = ChannelHttp(
            account.name,
            account.api_base,
            timeout_s=settings.connector_http_timeout_s,
            rate=rate,
            burst=max(1.0, rate),
            headers={"X-Shopify-Access-Token": token, "Accept": "application/json"},
            max_inline_wait_s=settings.connector_max_inline_wait_s,
        )
        self._inventory_items: dict[str, tuple[str, ...]] = {}

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- the wire -----------------------------------------------------------------------------

    async def graphql(
        self, operation: str, query: str, variables: Mapping[str, Any]
    ) -> dict[str, Any]:
        """One GraphQL operation; its `data`. A THROTTLED answer is waited out in place when
        the cost bucket refills soon enough (a few times), else raised as retryable."""
        throttled = 0
        while True:
            response = await self.http.request(
                "POST",
                self.path,
                json={"query": query, "variables": dict(variables), "operationName": operation},
            )
            try:
                body = response.json()
            except ValueError as exc:
                raise ChannelApiError(
                    f"{operation}: Shopify answered {response.status_code} with no JSON",
                    retryable=True,
                    status=response.status_code,
                ) from exc
            errors = body.get("errors") if isinstance(body, dict) else None
            if not errors:
                data = body.get("data") if isinstance(body, dict) else None
                if not isinstance(data, dict):
                    raise ChannelApiError(f"{operation}: Shopify sent no data", retryable=True)
                return data
            if not isinstance(errors, list):
                errors = [{"message": str(errors)}]
            if rules.is_throttled(errors):
                wait = rules.throttle_wait_s(body.get("extensions"))
                if wait <= self.max_inline_wait_s and throttled < INLINE_THROTTLE_RETRIES:
                    throttled += 1
                    log.info("%s: %s throttled, waiting %.2fs", self.account, operation, wait)
                    await asyncio.sleep(wait)
                    continue
                raise ChannelApiError(
                    f"{operation}: throttled by Shopify's cost limit",
                    retryable=True,
                    status=429,
                    retry_after_s=wait,
                )
            raise ChannelApiError(
                f"{operation}: {rules.graphql_error_text(errors)}",
                retryable="INTERNAL_SERVER_ERROR" in rules.error_codes(errors),
            )

    def _idempotent(self, key: str) -> str:
        if not rules.uses_concurrency_protection(self.api_version):
            return ""
        return f" @idempotent(key: {json.dumps(key)})"

    def _order_gid(self, external_id: str) -> str:
        try:
            return rules.gid("Order", external_id)
        except rules.ShopifyInputError as exc:
            raise ChannelApiError(f"external_id: {exc}", retryable=False) from exc

    async def _order(self, operation: str, query: str, order_id: str) -> dict[str, Any]:
        data = await self.graphql(operation, query, {"id": order_id})
        order = data.get("order")
        if not isinstance(order, dict):
            raise ChannelApiError(f"order {order_id} is not on Shopify", retryable=False)
        return order

    # --- stock --------------------------------------------------------------------------------

    async def inventory_items(self, skus: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """The inventory items of these SKUs' variants (SKUs Shopify does not know absent),
        looked up once and remembered."""
        missing = [sku for sku in dict.fromkeys(skus) if sku not in self._inventory_items]
        for start in range(0, len(missing), SKUS_PER_SEARCH):
            chunk = missing[start : start + SKUS_PER_SEARCH]
            nodes: list[Mapping[str, Any]] = []
            after: str | None = None
            while True:
                data = await self.graphql(
                    "VariantsBySku",
                    VARIANTS_BY_SKU,
                    {"query": rules.sku_search(chunk), "first": 250, "after": after},
                )
                page = data.get("productVariants") or {}
                nodes.extend(rules.nodes(page))
                info = page.get("pageInfo") or {}
                if not info.get("hasNextPage") or not info.get("endCursor"):
                    break
                after = str(info["endCursor"])
            for sku, items in rules.inventory_items_by_sku(nodes, chunk).items():
                self._inventory_items[sku] = tuple(items)
        return {sku: self._inventory_items[sku] for sku in skus if sku in self._inventory_items}

    async def push_stock(self, levels: Sequence[base.StockPush]) -> None:
        if self.location_id is None:
            raise ChannelApiError("options.location_id is not set", retryable=False)
        items = await self.inventory_items([level.sku for level in levels])
        refused = {
            level.sku: "Shopify has no product variant with this SKU"
            for level in levels
            if level.sku not in items
        }
        rows = [
            (level.sku, item, level.quantity)
            for level in levels
            if level.sku in items
            for item in items[level.sku]
        ]
        while rows:
            mutation = SET_QUANTITIES % self._idempotent(_stock_key())
            data = await self.graphql(
                "SetAvailable",
                mutation,
                {
                    "input": rules.set_quantities_input(
                        [(item, quantity) for _, item, quantity in rows],
                        self.location_id,
                        self.api_version,
                    )
                },
            )
            errors = (data.get("inventorySetQuantities") or {}).get("userErrors") or []
            if not errors:
                break
            bad = rules.refused_quantities(errors, len(rows))
            if not bad:
                raise ChannelApiError(
                    f"inventorySetQuantities: {rules.user_error_text(errors)}", retryable=False
                )
            for index, message in bad.items():
                sku = rows[index][0]
                refused[sku] = message
                self._inventory_items.pop(sku, None)  # looked up again next time
            rows = [row for i, row in enumerate(rows) if i not in bad and row[0] not in refused]
        if refused:
            raise base.StockRefused(refused)

    # --- shipments ----------------------------------------------------------------------------

    async def push_shipment(self, shipment: base.ShipmentPush) -> str | None:
        order_id = self._order_gid(shipment.external_id)
        order = await self._order("OrderFulfillment", ORDER_FULFILLMENT, order_id)
        done = rules.fulfillment_with_tracking(
            order.get("fulfillments") or [], shipment.tracking_number
        )
        if done is not None:
            log.info("%s: parcel %s is already fulfillment %s", self.account, shipment.key, done)
            return done
        if order.get("cancelledAt"):
            raise ChannelApiError(
                f"order {order_id} is cancelled on Shopify: parcel {shipment.key} not told",
                retryable=False,
            )
        open_lines = rules.open_lines(rules.nodes(order.get("fulfillmentOrders")))
        waiting = [line.sku for line in shipment.lines if open_lines.held.get(line.sku)]
        if waiting and any(open_lines.open_units(sku) == 0 for sku in waiting):
            raise ChannelApiError(
                f"order {order_id}: the fulfillment orders of {', '.join(sorted(waiting))}"
                " are on hold or scheduled on Shopify",
                retryable=True,
            )
        if all(open_lines.open_units(line.sku) == 0 for line in shipment.lines):
            log.info(
                "%s: nothing of parcel %s is open on order %s any more: already fulfilled",
                self.account,
                shipment.key,
                order_id,
            )
            return None
        assigned = assign_to_channel_lines(shipment.lines, open_lines.lines)
        tracking: dict[str, str] = {"company": shipment.carrier}
        if shipment.tracking_number:
            tracking["number"] = shipment.tracking_number
        if shipment.tracking_url:
            tracking["url"] = shipment.tracking_url
        data = await self.graphql(
            "CreateFulfillment",
            FULFILLMENT_CREATE,
            {
                "fulfillment": {
                    "lineItemsByFulfillmentOrder": rules.line_items_by_fulfillment_order(
                        assigned, open_lines.fulfillment_order_of
                    ),
                    "trackingInfo": tracking,
                    "notifyCustomer": self.notify_customer,
                }
            },
        )
        payload = data.get("fulfillmentCreate") or {}
        errors = payload.get("userErrors") or []
        if errors:
            raise ChannelApiError(
                f"fulfillmentCreate: {rules.user_error_text(errors)}", retryable=False
            )
        fulfillment = payload.get("fulfillment") or {}
        return str(fulfillment["id"]) if fulfillment.get("id") else None

    # --- cancellations ------------------------------------------------------------------------

    async def cancel_order(self, cancellation: base.CancellationPush) -> str | None:
        order_id = self._order_gid(cancellation.external_id)
        order = await self._order("OrderState", ORDER_STATE, order_id)
        if order.get("cancelledAt"):
            return order_id
        refund = self.refund_on_cancel and order.get("displayFulfillmentStatus") == "UNFULFILLED"
        data = await self.graphql(
            "CancelOrder",
            ORDER_CANCEL,
            {
                "orderId": order_id,
                "reason": rules.cancel_reason(cancellation.reason),
                "refund": refund,
                "restock": False,
                "notifyCustomer": self.notify_customer,
                "staffNote": f"Cancelled in the OMS: {cancellation.reason}"[:255],
            },
        )
        payload = data.get("orderCancel") or {}
        errors = payload.get("orderCancelUserErrors") or payload.get("userErrors") or []
        if errors:
            again = await self._order("OrderState", ORDER_STATE, order_id)
            if again.get("cancelledAt"):
                return order_id
            raise ChannelApiError(
                f"orderCancel: {rules.user_error_text(errors)}",
                retryable=any(e.get("code") == "INTERNAL_ERROR" for e in errors),
            )
        job = payload.get("job") or {}
        return str(job.get("id") or order_id)

    # --- refunds ------------------------------------------------------------------------------

    async def refund_order(self, refund: base.RefundPush) -> str | None:
        order_id = self._order_gid(refund.external_id)
        order = await self._order("OrderPayments", ORDER_PAYMENTS, order_id)
        made = rules.refund_with_marker(order.get("refunds") or [], refund.key)
        if made is not None:
            return made
        try:
            plan = rules.refund_transactions(
                order.get("transactions") or [], refund.amount, refund.currency
            )
        except rules.ShopifyInputError as exc:
            raise ChannelApiError(f"refund {refund.key}: {exc}", retryable=False) from exc
        note = f"{refund.reason} (OMS return {refund.return_id}) {rules.note_marker(refund.key)}"
        data = await self.graphql(
            "CreateRefund",
            REFUND_CREATE % self._idempotent(f"oms-{refund.key}"),
            {
                "input": {
                    "orderId": order_id,
                    "currency": refund.currency,
                    "note": note,
                    "notify": self.notify_customer,
                    "transactions": [
                        {"orderId": order_id, "kind": "REFUND", **transaction}
                        for transaction in plan
                    ],
                }
            },
        )
        payload = data.get("refundCreate") or {}
        errors = payload.get("userErrors") or []
        if errors:
            raise ChannelApiError(f"refundCreate: {rules.user_error_text(errors)}", retryable=False)
        created = payload.get("refund") or {}
        return str(created["id"]) if created.get("id") else None


def _stock_key() -> str:
    """A stock push's idempotency key (API 2026-01 on): each call its own, since setting an
    absolute quantity again is harmless and a later call with the same values must act."""
    return f"oms-stock-{uuid.uuid4()}"


def create(account: AccountSettings, settings: ChannelConnectorSettings) -> ShopifyClient:
    return ShopifyClient(account, settings)
