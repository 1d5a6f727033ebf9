"""OTTO Market (api.otto.market): orders polled, shipments, cancellations and stock pushed.

Settings (an `AccountSettings` with `channel: "otto"`):

- `api_base`: default `https://api.otto.market` (the sandbox is `https://sandbox.api.otto.market`).
- `credentials`: `client_id` and `client_secret` of the seller's API app (OTTO Partner Connect,
  "API-Zugriff"): an OAuth 2 client-credentials grant, `POST /v1/token` (form
  `grant_type=client_credentials`, `client_id`, `client_secret`, `scope`). Older API users
  with `username` and `password` get a password grant instead (`client_id` defaults to
  `token-otto-api` there). Access tokens live 30 minutes (`expires_in`); they are fetched again
  shortly before they expire and when the API answers 401.
- `options`: `scope` (default `orders shipments availability`); `ship_from_city`,
  `ship_from_zip_code`, `ship_from_country_code` (ISO 3166-1 alpha-3, default `DEU`): the
  shipments' `shipFromAddress`, required to push shipments; `carriers`: how the OMS's carrier
  names map to OTTO's (`dhl=DHL,dhl-express=DHL_EXPRESS`), else the name upper-cased with `-`
  and spaces as `_` (`ups` -> `UPS`).
- `requests_per_second`: default 10 (OTTO allows 1200 requests a minute per partner; 429 above).

What it does:

- POLL_ORDERS: `GET /v4/orders?fromDate=<since>&limit=128` (orders changed since then, every
  fulfilment state), following the `links` `next` href (its `nextcursor`) to the last page.
  Each order is handed on as OTTO sent it (amounts kept exact), `updated_at` its
  `lastModifiedDate`.
- SHIPMENTS: one `POST /v1/shipments` per parcel: `trackingKey` {carrier, trackingNumber},
  `shipDate`, `shipFromAddress`, and one `positionItems` entry {positionItemId, salesOrderId}
  per unit shipped, chosen among the order's PROCESSABLE position items of the shipped SKUs
  (`GET /v4/orders/{salesOrderId}` first). Repeat-safe: position items already SENT under the
  parcel's tracking number (or, without tracking info, more SENT items than earlier parcels
  account for) count as done; a parcel with nothing left to send succeeds without a request; a
  parcel partly sent is completed with `POST /v1/shipments/carriers/{carrier}/trackingnumbers/
  {trackingNumber}/positionitems`. OTTO takes no idempotency key.
- CANCELLATIONS: `POST /v4/orders/{salesOrderId}/positionItems/{ids}/cancellation` for
  PROCESSABLE position items of the unshipped SKUs (OTTO cancels only PROCESSABLE items).
  Items already cancelled count as done; units OTTO no longer lets cancel (sent) fail the push
  for good (an operator alert).
- STOCK: `POST /v1/availability/quantities` with [{sku, quantity}], up to 200 per request. A
  207 naming SKUs OTTO does not know is logged, not retried.
- REFUNDS: not pushed. OTTO holds the money and refunds the customer itself when the seller
  accepts a return (Returns interface); there is no refund call for partners.

The choices (which position items a parcel or a cancellation names) are the pure functions
`position_items`, `plan_shipment` and `plan_cancellation` below.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from services.channel_connector.clients import base
from services.channel_connector.domain import (
    PolledOrder,
)
from services.channel_connector.http import (
    ChannelApiError,
    ChannelHttp,
    OAuthToken,
    form_token_grant,
)
from services.channel_connector.rules.otto import (
    CHANNEL,
    DEFAULT_API_BASE,
    DEFAULT_RATE,
    DEFAULT_SCOPE,
    MAX_PAGES,
    ORDERS_PAGE,
    PASSWORD_GRANT_CLIENT_ID,
    STOCK_BATCH,
    TOKEN_PATH,
    dumps,
    loads,
    next_link,
    otto_carrier,
    otto_time,
    parse_mapping,
    parse_time,
    plan_cancellation,
    plan_shipment,
    position_items,
)
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings

log = logging.getLogger(__name__)

# --- the client ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShipFrom:
    city: str
    zip_code: str
    country_code: str

    def json(self) -> dict[str, str]:
        return {"city": self.city, "zipCode": self.zip_code, "countryCode": self.country_code}


class OttoClient(base.BaseClient):
    channel = CHANNEL
    capabilities = frozenset(
        {
            base.Capability.POLL_ORDERS,
            base.Capability.SHIPMENTS,
            base.Capability.CANCELLATIONS,
            base.Capability.STOCK,
        }
    )
    stock_batch_size = STOCK_BATCH

    def __init__(self, account: AccountSettings, settings: ChannelConnectorSettings) -> None:
        self.account = account.name
        self._client_id = account.credential("client_id")
        self._client_secret = account.credential("client_secret")
        self._username = account.credential("username")
        self._password = account.credential("password")
        if self._username or self._password:
            if not (self._username and self._password):
                raise ValueError(
                    f"account {account.name}: credentials.username and credentials.password"
                    " go together (OTTO's password grant)"
                )
        elif not (self._client_id and self._client_secret):
            raise ValueError(
                f"account {account.name}: credentials.client_id and credentials.client_secret"
                " are required (the seller's OTTO API app)"
            )
        options = account.options
        self.scope = options.get("scope", DEFAULT_SCOPE).strip()
        self.carriers = parse_mapping(options.get("carriers"), "carriers")
        city = options.get("ship_from_city", "").strip()
        zip_code = options.get("ship_from_zip_code", "").strip()
        country = options.get("ship_from_country_code", "DEU").strip().upper()
        if account.push_shipments and not (city and zip_code):
            raise ValueError(
                f"account {account.name}: options.ship_from_city and options.ship_from_zip_code"
                " are required to push shipments to OTTO (their shipFromAddress)"
            )
        if len(country) != 3 or not country.isalpha():
            raise ValueError(
                f"account {account.name}: options.ship_from_country_code must be ISO 3166-1"
                f" alpha-3 (DEU), not {country!r}"
            )
        self.ship_from = ShipFrom(city, zip_code, country)
        self.http = ChannelHttp(
            account.name,
            account.api_base or DEFAULT_API_BASE,
            timeout_s=settings.connector_http_timeout_s,
            rate=account.requests_per_second or DEFAULT_RATE,
            burst=5,
            token=OAuthToken(account.name, self._fetch_token),
            max_inline_wait_s=settings.connector_max_inline_wait_s,
            headers={"Accept": "application/json"},
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _fetch_token(self, client: httpx.AsyncClient) -> tuple[str, float]:
        if self._username and self._password:
            form = {
                "grant_type": "password",
                "client_id": self._client_id or PASSWORD_GRANT_CLIENT_ID,
                "username": self._username,
                "password": self._password,
            }
        else:
            assert self._client_id and self._client_secret
            form = {
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "scope": self.scope,
            }
        return await form_token_grant(client, TOKEN_PATH, form)

    # --- orders ------------------------------------------------------------------------------

    async def poll_orders(self, since: datetime) -> list[PolledOrder]:
        path = "/v4/orders"
        params: dict[str, str] = {"fromDate": otto_time(since), "limit": str(ORDERS_PAGE)}
        polled: list[PolledOrder] = []
        cursors: set[str] = set()
        for _ in range(MAX_PAGES):
            response = await self.http.request("GET", path, params=params)
            page = self._json(response, path)
            resources = page.get("resources") or []
            if not isinstance(resources, list):
                raise ValueError(f"GET {path}: resources is not a list")
            for order in resources:
                found = self._polled(order)
                if found is not None:
                    polled.append(found)
            following = next_link(page)
            if following is None:
                return polled
            path, params = following
            cursor = params.get("nextcursor", path + repr(sorted(params.items())))
            if cursor in cursors:
                raise ValueError(f"GET {path}: OTTO sent the same next cursor twice")
            cursors.add(cursor)
        raise ValueError(f"GET /v4/orders: more than {MAX_PAGES} pages")

    def _polled(self, order: Any) -> PolledOrder | None:
        if not isinstance(order, Mapping) or not isinstance(order.get("salesOrderId"), str):
            log.error("%s: an OTTO order without a salesOrderId is skipped", self.account)
            return None
        external_id = order["salesOrderId"]
        changed = order.get("lastModifiedDate") or order.get("orderDate")
        try:
            updated_at = parse_time(changed)
        except ValueError:
            log.error("%s: OTTO order %s has no valid lastModifiedDate", self.account, external_id)
            return None
        return PolledOrder(external_id, updated_at, dumps(order))

    async def fetch_order(self, external_id: str) -> PolledOrder:
        order = await self._order(external_id)
        found = self._polled(order)
        if found is None:
            raise ValueError(f"OTTO order {external_id} is malformed")
        return found

    async def _order(self, sales_order_id: str) -> dict[str, Any]:
        path = f"/v4/orders/{quote(sales_order_id, safe='')}"
        response = await self.http.request("GET", path)
        return self._json(response, path)

    @staticmethod
    def _json(response: httpx.Response, path: str) -> dict[str, Any]:
        try:
            body = loads(response.content)
        except ValueError as exc:
            raise ChannelApiError(
                f"{path}: OTTO answered with no JSON ({exc})", retryable=True
            ) from exc
        if not isinstance(body, dict):
            raise ChannelApiError(f"{path}: OTTO answered with no JSON object", retryable=True)
        return body

    # --- shipments ---------------------------------------------------------------------------

    async def push_shipment(self, shipment: base.ShipmentPush) -> str | None:
        carrier = otto_carrier(shipment.carrier, self.carriers)
        for attempt in range(2):
            order = await self._order(shipment.external_id)
            plan = plan_shipment(
                position_items(order), shipment.lines, shipment.earlier, shipment.tracking_number
            )
            if not plan.send:
                log.info(
                    "%s: parcel %s of OTTO order %s is already sent (%d unit(s))",
                    self.account,
                    shipment.key,
                    shipment.external_id,
                    plan.already_sent,
                )
                return None
            entries = [
                {"positionItemId": item_id, "salesOrderId": shipment.external_id}
                for item_id in plan.send
            ]
            if plan.under_tracking_number:
                path = (
                    f"/v1/shipments/carriers/{quote(carrier, safe='')}"
                    f"/trackingnumbers/{quote(shipment.tracking_number, safe='')}/positionitems"
                )
                response = await self.http.request("POST", path, json=entries, accept=(409,))
            else:
                path = "/v1/shipments"
                body = {
                    "trackingKey": {
                        "carrier": carrier,
                        "trackingNumber": shipment.tracking_number,
                    },
                    "shipDate": otto_time(shipment.shipped_at),
                    "shipFromAddress": self.ship_from.json(),
                    "positionItems": entries,
                }
                response = await self.http.request("POST", path, json=body, accept=(409,))
            if response.status_code != 409:
                return _shipment_id(response)
            # A conflict: the items changed state meanwhile (another push, the OTTO portal).
            # Look again; what is sent now counts as done.
            log.warning(
                "%s: OTTO refused parcel %s as a conflict (%s); looking at the order again",
                self.account,
                shipment.key,
                response.text[:300],
            )
            if attempt:
                raise ChannelApiError(
                    f"POST {path}: 409 {response.text[:500]}", retryable=False, status=409
                )
        raise AssertionError("unreachable")

    # --- cancellations -----------------------------------------------------------------------

    async def cancel_order(self, cancellation: base.CancellationPush) -> str | None:
        sales_order_id = cancellation.external_id
        for attempt in range(2):
            order = await self._order(sales_order_id)
            plan = plan_cancellation(position_items(order), cancellation.lines)
            if plan.cancel:
                ids = ",".join(quote(item_id, safe="") for item_id in plan.cancel)
                path = (
                    f"/v4/orders/{quote(sales_order_id, safe='')}/positionItems/{ids}/cancellation"
                )
                response = await self.http.request("POST", path, accept=(409,))
                if response.status_code == 409:
                    log.warning(
                        "%s: OTTO refused the cancellation of %s as a conflict (%s)",
                        self.account,
                        sales_order_id,
                        response.text[:300],
                    )
                    if attempt:
                        raise ChannelApiError(
                            f"POST {path}: 409 {response.text[:500]}", retryable=False, status=409
                        )
                    continue
            if plan.not_cancellable:
                missing = ", ".join(f"{q.quantity} x {q.sku}" for q in plan.not_cancellable)
                raise ChannelApiError(
                    f"OTTO order {sales_order_id}: {missing} can no longer be cancelled on OTTO"
                    " (not PROCESSABLE there: sent or returned)",
                    retryable=False,
                )
            return None
        raise AssertionError("unreachable")

    async def refund_order(self, refund: base.RefundPush) -> str | None:
        raise base.NotSupported(
            "OTTO Market refunds the customer itself when a return is accepted; partners have"
            " no refund call"
        )

    # --- stock -------------------------------------------------------------------------------

    async def push_stock(self, levels: Sequence[base.StockPush]) -> None:
        for start in range(0, len(levels), STOCK_BATCH):
            batch = levels[start : start + STOCK_BATCH]
            body = [{"sku": level.sku, "quantity": max(0, level.quantity)} for level in batch]
            path = "/v1/availability/quantities"
            response = await self.http.request("POST", path, json=body)
            if response.status_code == 207:
                self._multi_status(path, response)

    def _multi_status(self, path: str, response: httpx.Response) -> None:
        """A 207: some SKUs were refused. Unknown SKUs (not listed on OTTO) are logged; a
        server-side failure of some is retried."""
        body = self._json(response, path)
        errors = body.get("errors") or []
        if not isinstance(errors, list):
            return
        for error in errors:
            if not isinstance(error, Mapping):
                continue
            code = error.get("code")
            detail = str(error.get("detail") or error.get("title") or "")[:300]
            if isinstance(code, int) and code >= 500:
                raise ChannelApiError(
                    f"POST {path}: some quantities failed at OTTO ({code}: {detail})",
                    retryable=True,
                    status=code,
                )
            log.warning("%s: OTTO refused a quantity: %s %s", self.account, code, detail)


def _shipment_id(response: httpx.Response) -> str | None:
    try:
        body = loads(response.content) if response.content else None
    except ValueError:
        return None
    if isinstance(body, Mapping) and isinstance(body.get("shipmentId"), str):
        return str(body["shipmentId"])
    return None


def create(account: AccountSettings, settings: ChannelConnectorSettings) -> OttoClient:
    return OttoClient(account, settings)
