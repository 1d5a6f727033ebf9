"""An HTTP client for the services' public and operator APIs, for the `oms` command.

Base URLs come from `OpsSettings` (OMS_ORDER_INTAKE_URL, OMS_INVENTORY_URL, ...). Failures are
two exceptions with what an operator needs to act on: `ServiceUnreachable` names the service and
its URL; `ServiceRefused` carries the service's stable error code and message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from shared.ops.tokens import operator_token_file
from shared.platform.settings import OpsSettings

JsonObject = dict[str, Any]

MAX_PAGE = 500  # the largest page GET /v1/orders serves


class OpsClientError(Exception):
    """Base of the errors the `oms` command reports (and exits non-zero on)."""


class ServiceUnreachable(OpsClientError):
    def __init__(self, service: str, url: str, cause: str) -> None:
        super().__init__(f"{service} is unreachable at {url}: {cause}")
        self.service = service
        self.url = url
        self.cause = cause


class ServiceRefused(OpsClientError):
    """The service answered with an error (4xx or 5xx)."""

    def __init__(
        self, service: str, status: int, code: str, message: str, details: JsonObject
    ) -> None:
        super().__init__(f"{service} answered {status} {code}: {message}")
        self.service = service
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def service_urls(settings: OpsSettings) -> dict[str, str]:
    return {
        "order_intake": settings.order_intake_url,
        "inventory": settings.inventory_url,
        "payment": settings.payment_url,
        "fulfilment": settings.fulfilment_url,
        "returns": settings.returns_url,
        "channel_connector": settings.channel_connector_url,
        "console": settings.console_url,
    }


def _segment(value: str) -> str:
    """One path segment, escaped, so an id can never reach another route."""
    return quote(value, safe="")


def _auth_headers(settings: OpsSettings) -> dict[str, str]:
    """OMS_TOKEN, else the operator token `make run` wrote."""
    token = settings.token
    if token is None:
        with contextlib.suppress(OSError):
            token = operator_token_file().read_text().strip() or None
    return {"Authorization": f"Bearer {token}"} if token else {}


class OpsClient:
    def __init__(
        self,
        settings: OpsSettings | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings or OpsSettings()
        self.urls = {name: url.rstrip("/") for name, url in service_urls(self.settings).items()}
        self._http = httpx.Client(
            timeout=self.settings.http_timeout_s,
            transport=transport,
            headers=_auth_headers(self.settings),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OpsClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------------

    def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | float | bool] | None = None,
        json: JsonObject | None = None,
    ) -> JsonObject:
        response = self._send(service, method, path, params=params, json=json)
        body = response.json()
        if not isinstance(body, dict):
            raise ServiceRefused(
                service, response.status_code, "unexpected_body", "not a JSON object", {}
            )
        return body

    def document(self, service: str, path: str) -> bytes:
        """A document a route answers (a label, a packing slip), as bytes."""
        return self._send(service, "GET", path).content

    def _send(
        self,
        service: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | float | bool] | None = None,
        json: JsonObject | None = None,
    ) -> httpx.Response:
        base = self.urls[service]
        url = f"{base}{path}"
        try:
            response = self._http.request(method, url, params=params, json=json)
        except httpx.TimeoutException as exc:
            raise ServiceUnreachable(
                service, base, f"no answer within {self.settings.http_timeout_s:g}s"
            ) from exc
        except httpx.TransportError as exc:
            raise ServiceUnreachable(service, base, str(exc) or type(exc).__name__) from exc
        if response.is_success:
            return response
        raise _refusal(service, response)

    # --- order-intake -------------------------------------------------------------------------

    def orders(
        self,
        *,
        status: str | None = None,
        channel: str | None = None,
        limit: int = 50,
        on_page: Callable[[int], None] | None = None,
    ) -> tuple[list[JsonObject], bool]:
        """Up to `limit` orders, newest first, following the API's cursors; and whether more
        orders match than were fetched."""
        found: list[JsonObject] = []
        cursor: str | None = None
        while len(found) < limit:
            params: dict[str, str | int | float | bool] = {
                "limit": min(MAX_PAGE, limit - len(found))
            }
            if status:
                params["status"] = status
            if channel:
                params["channel"] = channel
            if cursor:
                params["cursor"] = cursor
            page = self.request("order_intake", "GET", "/v1/orders", params=params)
            found.extend(page["orders"])
            if on_page is not None:
                on_page(len(found))
            cursor = page.get("next_cursor")
            if not cursor:
                return found, False
        return found, True

    def order(self, order_id: str) -> JsonObject:
        return self.request("order_intake", "GET", f"/v1/orders/{_segment(order_id)}")

    def stuck_orders(
        self, *, grace_s: float = 0, include_retrying: bool = False, limit: int = 200
    ) -> JsonObject:
        return self.request(
            "order_intake",
            "GET",
            "/v1/ops/orders/stuck",
            params={"grace_s": grace_s, "include_retrying": include_retrying, "limit": limit},
        )

    def operator_action(
        self, order_id: str, action: str, *, by: str | None = None, note: str | None = None
    ) -> JsonObject:
        if action not in {"retry", "compensate"}:
            raise ValueError(f"unknown operator action {action!r}")
        body = {k: v for k, v in {"by": by, "note": note}.items() if v}
        return self.request(
            "order_intake",
            "POST",
            f"/v1/ops/orders/{_segment(order_id)}/{action}",
            json=body or None,
        )

    def hold_action(
        self,
        order_id: str,
        action: str,
        *,
        reason: str | None = None,
        by: str | None = None,
        note: str | None = None,
    ) -> JsonObject:
        """`hold` (needs `reason`), `release` (a review's approval) or `reject` an order."""
        if action not in {"hold", "release", "reject"}:
            raise ValueError(f"unknown hold action {action!r}")
        if (action == "hold") != (reason is not None):
            raise ValueError("a hold, and only a hold, needs a reason")
        fields = {"reason": reason, "by": by, "note": note}
        body = {k: v for k, v in fields.items() if v}
        return self.request(
            "order_intake",
            "POST",
            f"/v1/ops/orders/{_segment(order_id)}/{action}",
            json=body or None,
        )

    # --- other services -----------------------------------------------------------------------

    def payments(self, order_id: str) -> list[JsonObject]:
        body = self.request("payment", "GET", "/v1/payments", params={"order_id": order_id})
        payments: list[JsonObject] = body["payments"]
        return payments

    def fulfilments(self, order_id: str) -> list[JsonObject]:
        body = self.request("fulfilment", "GET", "/v1/fulfilments", params={"order_id": order_id})
        fulfilments: list[JsonObject] = body["fulfilments"]
        return fulfilments

    def stock(self, sku: str) -> JsonObject:
        return self.request("inventory", "GET", f"/v1/stock/{_segment(sku)}")

    def trace_url(self, trace_id: str) -> str:
        return f"{self.settings.jaeger_ui_url.rstrip('/')}/trace/{trace_id}"


def _refusal(service: str, response: httpx.Response) -> ServiceRefused:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "code" in error:
        details = error.get("details")
        return ServiceRefused(
            service,
            response.status_code,
            str(error["code"]),
            str(error.get("message", "")),
            details if isinstance(details, dict) else {},
        )
    text = response.text.strip()[:300] or response.reason_phrase
    return ServiceRefused(service, response.status_code, f"http_{response.status_code}", text, {})
