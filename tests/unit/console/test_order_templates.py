"""The orders templates rendered with the services' answers (no I/O): what a viewer and an
operator see, the waterfall's bars, the actions only for who may act."""

from __future__ import annotations

from typing import Any

from services.console.web.orders import Section, TraceSection
from services.console.web.orders_view import (
    ORDER_STATUSES,
    PAGE_SIZES,
    attention_rows,
    order_search,
)
from services.console.web.pages import templates
from services.console.web.waterfall import waterfall
from shared.platform.auth import Permission, principal_from_claims
from tests.support.jaeger_query_double import Span, jaeger_trace

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def page(template: str, role: str, **context: Any) -> str:
    principal = principal_from_claims({"sub": f"{role}-1", "roles": [role]})
    return templates.get_template(template).render(
        user=principal,
        can=principal.can,
        P=Permission,
        csrf="csrf-token",
        **context,
    )


def order_view(masked: bool) -> dict[str, Any]:
    hidden = "***"
    return {
        "order_id": "ord_1",
        "trace_id": TRACE,
        "channel": "web",
        "external_id": None,
        "status": "FULFILLING",
        "reason": None,
        "customer": {"email": hidden, "name": hidden, "phone": None}
        if masked
        else {"email": "ada@example.com", "name": "Ada Lovelace", "phone": None},
        "shipping_address": {"line1": hidden, "city": hidden, "postal_code": hidden}
        if masked
        else {"line1": "1 Main St", "city": "Berlin", "postal_code": "10115"},
        "billing_address": None,
        "shipping_method": "standard",
        "lines": [
            {
                "line_id": "l1",
                "sku": "SKU-1",
                "quantity": 2,
                "unit_price": "10.00",
                "line_total": "20.00",
            }
        ],
        "totals": {
            "currency": "EUR",
            "subtotal": "20.00",
            "discount": "0.00",
            "shipping": "4.95",
            "tax": "4.74",
            "total": "29.69",
        },
        "payment": {"status": "authorized", "captured_total": "0.00", "capture_target": "29.69"},
        "hold": None,
        "saga": {"step": "create_fulfilment", "attempt": 1, "deadline_at": None},
        "timeline": [
            {
                "at": "2025-03-01T10:00:00.123456+00:00",
                "status": "RECEIVED",
                "event": "order_received",
                "detail": {"lines": 1},
            },
        ],
        "created_at": "2025-03-01T10:00:00+00:00",
        "updated_at": "2025-03-01T10:00:01+00:00",
    }


def order_page(role: str, masked: bool, trace: TraceSection) -> str:
    return page(
        "order.html",
        role,
        order=order_view(masked),
        payments=Section(value={"payments": []}),
        fulfilments=Section(
            value=[
                {
                    "fulfilment_id": "ful_1",
                    "location": "berlin",
                    "status": "shipped",
                    "carrier": "dhl",
                    "tracking_number": "DHL123",
                    "shipped_at": "2025-03-01T12:00:00+00:00",
                    "delivered_at": None,
                    "hold_reason": None,
                    "cancel_reason": None,
                    "tracking_events": [],
                    "parcels": [
                        {
                            "parcel_id": "par_1",
                            "status": "shipped",
                            "carrier": "dhl",
                            "service": "parcel",
                            "tracking_number": "DHL123",
                            "tracking_url": "javascript:alert(1)",
                            "lines": [{"sku": "SKU-1", "quantity": 2}],
                        }
                    ],
                    "parcels_error": None,
                }
            ]
        ),
        returns=Section(error="forbidden: returns: no"),
        trace=trace,
    )


def test_the_order_page_draws_the_trace_and_shows_what_the_services_answered() -> None:
    drawn = waterfall(
        {
            "data": [
                jaeger_trace(
                    TRACE,
                    [
                        Span("a", None, "order-intake", "POST /v1/orders", 0, 10_000),
                        Span("b", "a", "inventory", "ReserveStock", 2_000, 5_000),
                    ],
                )
            ]
        }
    )
    html = order_page("operator", masked=False, trace=TraceSection(TRACE, drawn=drawn))
    assert "Ada Lovelace" in html and "1 Main St" in html
    assert html.count('class="wf-bar') == 2
    assert 'x="20.0" y="1" width="50.0"' in html
    assert 'aria-label="ReserveStock: from 2.0 ms for 5.0 ms"' in html
    assert "DHL123" in html
    assert 'href="javascript' not in html, "a tracking URL that is no web address is not linked"
    assert "Returns unknown: forbidden" in html
    assert "order_received" in html and "2025-03-01 10:00:00.123" in html


def test_a_viewer_sees_what_the_service_masked_and_a_missing_trace_is_a_note() -> None:
    html = order_page(
        "viewer",
        masked=True,
        trace=TraceSection(
            TRACE, note="No trace: Jaeger does not have it (not sampled, or expired)."
        ),
    )
    assert "Ada" not in html and "Main St" not in html and "***" in html
    assert "Jaeger does not have it" in html and "wf-bar" not in html


def test_the_search_form_offers_the_e_mail_only_to_who_may_see_personal_data() -> None:
    context: dict[str, Any] = {
        "search": order_search({}),
        "orders": [],
        "next_cursor": "abc",
        "not_found": None,
        "statuses": ORDER_STATUSES,
        "page_sizes": PAGE_SIZES,
    }
    operator = page("orders.html", "operator", **context)
    viewer = page("orders.html", "viewer", **context)
    assert 'for="email"' in operator and 'name="email"' in operator
    assert 'name="email"' not in viewer
    for html in (operator, viewer):
        assert 'for="order_id"' in html and 'for="date_from"' in html and 'for="status"' in html
        assert 'href="/orders?cursor=abc"' in html


def test_the_queue_shows_actions_only_to_who_may_operate() -> None:
    rows = attention_rows(
        [{"order_id": "ord_a", "status": "NEEDS_ATTENTION", "stuck_because": "needs_attention"}],
        [{"order_id": "ord_b", "status": "ON_HOLD"}],
    )
    operator = page("attention.html", "operator", rows=rows, operator=True)
    viewer = page("attention.html", "viewer", rows=rows, operator=False)
    assert 'hx-post="/attention/ord_a/retry"' in operator
    assert 'hx-post="/attention/ord_a/compensate"' in operator
    assert 'hx-post="/attention/ord_b/release"' in operator
    assert 'hx-post="/attention/ord_b/retry"' not in operator
    assert 'name="csrf" value="csrf-token"' in operator
    assert "ord_a" in viewer and "ord_b" in viewer
    assert "<button" not in viewer.split("<main")[1] and "hx-post" not in viewer
