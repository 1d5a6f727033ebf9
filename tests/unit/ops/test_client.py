"""The operator HTTP client: cursors, clear errors, escaped ids (no network: a mock transport)."""

from __future__ import annotations

import json

import httpx
import pytest

from shared.ops.client import OpsClient, ServiceRefused, ServiceUnreachable
from shared.platform.settings import OpsSettings

SETTINGS = OpsSettings(
    order_intake_url="http://intake.test:8001/",
    payment_url="http://payment.test:8003",
    jaeger_ui_url="http://jaeger.test:16686/",
)


def client_for(handler) -> OpsClient:  # type: ignore[no-untyped-def]
    return OpsClient(SETTINGS, transport=httpx.MockTransport(handler))


def test_orders_follow_cursors_up_to_the_limit():
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        seen.append(params)
        page = int(params.get("cursor", "0"))
        orders = [{"order_id": f"o{page}-{i}"} for i in range(int(params["limit"]))]
        return httpx.Response(200, json={"orders": orders, "next_cursor": str(page + 1)})

    with client_for(handler) as client:
        orders, more = client.orders(status="CANCELLED", limit=1200)
    assert len(orders) == 1200 and more
    assert [p["limit"] for p in seen] == ["500", "500", "200"]
    assert [p.get("cursor") for p in seen] == [None, "1", "2"]
    assert all(p["status"] == "CANCELLED" for p in seen)


def test_orders_stop_at_the_last_page():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"orders": [{"order_id": "o1"}], "next_cursor": None})

    with client_for(handler) as client:
        assert client.orders(limit=50) == ([{"order_id": "o1"}], False)


def test_an_unreachable_service_is_named_with_its_url():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with client_for(handler) as client, pytest.raises(ServiceUnreachable) as caught:
        client.payments("ord_1")
    assert caught.value.service == "payment"
    assert caught.value.url == "http://payment.test:8003"
    assert "payment is unreachable at http://payment.test:8003" in str(caught.value)


def test_a_refusal_carries_the_services_code_and_message():
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": "nothing_to_retry", "message": "waits on nothing"}}
        return httpx.Response(409, json=body)

    with client_for(handler) as client, pytest.raises(ServiceRefused) as caught:
        client.operator_action("ord_1", "retry")
    assert (caught.value.status, caught.value.code) == (409, "nothing_to_retry")
    assert caught.value.message == "waits on nothing"


def test_a_refusal_without_an_error_body_still_says_what_happened():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="Bad Gateway from the proxy")

    with client_for(handler) as client, pytest.raises(ServiceRefused) as caught:
        client.order("ord_1")
    assert caught.value.code == "http_502"
    assert "Bad Gateway from the proxy" in caught.value.message


def test_ids_are_one_escaped_path_segment_and_actions_send_the_audit_fields():
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"ok": True})

    with client_for(handler) as client:
        client.order("a/../b")
        client.stock("SKU 1")
        client.operator_action("ord_1", "compensate", by="ada", note=None)
        client.operator_action("ord_1", "retry")
    assert requests[0].url.raw_path == b"/v1/orders/a%2F..%2Fb"
    assert requests[1].url.raw_path == b"/v1/stock/SKU%201"
    assert requests[2].url.path == "/v1/ops/orders/ord_1/compensate"
    assert json.loads(requests[2].content) == {"by": "ada"}
    assert requests[3].content == b""
    with pytest.raises(ValueError):
        client.operator_action("ord_1", "delete")


def test_trace_links_point_at_the_jaeger_ui():
    with OpsClient(SETTINGS) as client:
        assert client.trace_url("abc123") == "http://jaeger.test:16686/trace/abc123"
        assert client.urls["order_intake"] == "http://intake.test:8001"


def test_the_cli_sends_its_bearer_token():
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"orders": [], "next_cursor": None})

    settings = SETTINGS.model_copy(update={"token": "t0k3n"})
    with OpsClient(settings, transport=httpx.MockTransport(handler)) as client:
        client.request("order_intake", "GET", "/v1/orders")
    assert seen == ["Bearer t0k3n"]
