"""The `oms` command's order and stock views against canned API answers (no network)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from shared.ops import cli
from shared.ops.client import OpsClient
from shared.platform.settings import OpsSettings

ORDER_ID = "ord_0123456789abcdef0123456789abcdef"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
ENV = {
    "COLUMNS": "220",
    "OMS_ORDER_INTAKE_URL": "http://intake.test",
    "OMS_INVENTORY_URL": "http://inventory.test",
    "OMS_PAYMENT_URL": "http://payment.test",
    "OMS_FULFILMENT_URL": "http://fulfilment.test",
    "OMS_JAEGER_UI_URL": "http://jaeger.test:16686",
}


def order_view(**changes: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "order_id": ORDER_ID,
        "trace_id": TRACE_ID,
        "channel": "web",
        "external_id": None,
        "status": "COMPLETED",
        "reason": None,
        "cancel_requested": None,
        "lines": [
            {
                "line_id": "l1",
                "sku": "MUG-[RED]",
                "quantity": 2,
                "unit_price": "12.50",
                "line_total": "25.00",
            }
        ],
        "totals": {
            "currency": "EUR",
            "subtotal": "25.00",
            "discount": "0.00",
            "shipping": "4.95",
            "tax": "5.69",
            "total": "35.64",
        },
        "payment": {"status": "captured", "authorized": True, "captured_total": "35.64"},
        "saga": {"step": None, "attempt": 0, "deadline_at": None},
        "timeline": [
            {
                "at": "2025-01-02T10:00:00.123456+00:00",
                "status": "RESERVING_STOCK",
                "event": "order_received",
                "detail": {"total": "35.64", "currency": "EUR"},
            },
            {
                "at": "2025-01-02T10:00:01+00:00",
                "status": "AUTHORIZING_PAYMENT",
                "event": "stock_reserved",
                "detail": {"allocations": 1},
            },
            {
                "at": "2025-01-02T12:00:00+02:00",
                "status": "COMPLETED",
                "event": "fulfilment_delivered",
                "detail": {"fulfilment_id": "ful_1"},
            },
        ],
        "created_at": "2025-01-02T10:00:00+00:00",
        "updated_at": "2025-01-02T10:00:05+00:00",
    }
    view.update(changes)
    return view


PAYMENTS = {
    "order_id": ORDER_ID,
    "payments": [
        {
            "payment_id": "pay_1",
            "status": "captured",
            "amount": "35.64",
            "currency": "EUR",
            "captured_total": "35.64",
            "refunded_total": "0",
            "operations": [
                {"kind": "authorize", "amount": "35.64", "outcome": "succeeded"},
                {"kind": "capture", "amount": "35.64", "outcome": "succeeded"},
            ],
        }
    ],
}
FULFILMENTS = {
    "order_id": ORDER_ID,
    "fulfilments": [
        {
            "fulfilment_id": "ful_1",
            "location": "berlin",
            "status": "delivered",
            "carrier": "dhl",
            "tracking_number": "T-1",
            "lines": [{"sku": "MUG-[RED]", "quantity": 2}],
            "updated_at": "2025-01-02T10:00:04+00:00",
        }
    ],
}

Route = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str, str], Route]:
    """Canned answers by (method, host, path); the CLI's client goes through them."""
    routes: dict[tuple[str, str, str], Route] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        route = routes.get((request.method, request.url.host, request.url.path))
        if route is None:
            raise httpx.ConnectError("connection refused", request=request)
        return route(request)

    def make_client(settings: OpsSettings | None = None) -> OpsClient:
        return OpsClient(settings, transport=httpx.MockTransport(handler))

    monkeypatch.setattr(cli, "OpsClient", make_client)
    return routes


def answer(body: Any, status: int = 200) -> Route:
    return lambda _: httpx.Response(status, json=body)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli.app, list(args), env=ENV)


def test_show_prints_status_lines_the_full_timeline_payments_fulfilments_and_the_trace(api):
    api["GET", "intake.test", f"/v1/orders/{ORDER_ID}"] = answer(order_view())
    api["GET", "payment.test", "/v1/payments"] = answer(PAYMENTS)
    api["GET", "fulfilment.test", "/v1/fulfilments"] = answer(FULFILMENTS)
    result = invoke("orders", "show", ORDER_ID)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert ORDER_ID in out and "COMPLETED" in out
    assert "MUG-[RED]" in out, "values are printed literally, never read as markup"
    for event in ("order_received", "stock_reserved", "fulfilment_delivered"):
        assert event in out
    assert "timeline (3 entries)" in out
    assert "2025-01-02 10:00:00.123" in out and "2025-01-02 10:00:00.000" in out, "UTC"
    assert "allocations=1" in out
    assert "pay_1" in out and "capture 35.64 succeeded" in out
    assert "ful_1" in out and "T-1" in out and "delivered" in out
    assert f"trace id: {TRACE_ID}" in out
    assert f"http://jaeger.test:16686/trace/{TRACE_ID}" in out


def test_show_without_a_trace_id_says_so(api):
    api["GET", "intake.test", f"/v1/orders/{ORDER_ID}"] = answer(order_view(trace_id=None))
    api["GET", "payment.test", "/v1/payments"] = answer({"payments": []})
    api["GET", "fulfilment.test", "/v1/fulfilments"] = answer({"fulfilments": []})
    result = invoke("orders", "show", ORDER_ID)
    assert result.exit_code == 0, result.output
    assert "trace id: unknown" in result.stdout
    assert "jaeger.test" not in result.stdout
    assert "payments: none" in result.stdout


def test_show_with_payment_down_still_shows_the_order_names_the_gap_and_fails(api):
    api["GET", "intake.test", f"/v1/orders/{ORDER_ID}"] = answer(order_view())
    api["GET", "fulfilment.test", "/v1/fulfilments"] = answer(FULFILMENTS)
    result = invoke("orders", "show", ORDER_ID)
    assert result.exit_code == 1
    assert "fulfilment_delivered" in result.stdout and "ful_1" in result.stdout
    assert "payments unknown: payment is unreachable at http://payment.test" in result.stderr


def test_an_unknown_order_shows_the_services_error_code_and_message(api):
    api["GET", "intake.test", "/v1/orders/ord_x"] = answer(
        {"error": {"code": "order_not_found", "message": "no order ord_x"}}, 404
    )
    result = invoke("orders", "show", "ord_x")
    assert result.exit_code == 1
    assert "order_intake refused (404 order_not_found): no order ord_x" in result.stderr


def test_order_intake_down_names_its_url():
    result = CliRunner().invoke(
        cli.app, ["orders", "list"], env={**ENV, "OMS_ORDER_INTAKE_URL": "http://127.0.0.1:9"}
    )
    assert result.exit_code == 1
    assert "order_intake is unreachable at http://127.0.0.1:9" in result.stderr


def test_list_shows_a_table_and_says_when_more_orders_match(api):
    seen: list[dict[str, str]] = []

    def orders(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        row = {
            "order_id": ORDER_ID,
            "channel": "web",
            "external_id": "ext-1",
            "status": "SHIPPED",
            "currency": "EUR",
            "total": "35.64",
            "created_at": "2025-01-02T10:00:00+00:00",
            "updated_at": "2025-01-02T10:00:05+00:00",
        }
        return httpx.Response(200, json={"orders": [row], "next_cursor": "c2"})

    api["GET", "intake.test", "/v1/orders"] = orders
    result = invoke("orders", "list", "--status", "shipped", "--channel", "web", "-n", "1")
    assert result.exit_code == 0, result.output
    assert seen == [{"limit": "1", "status": "SHIPPED", "channel": "web"}]
    assert ORDER_ID in result.stdout and "35.64 EUR" in result.stdout
    assert "1 order(s); more match" in result.stdout


def test_stuck_lists_each_order_with_why_and_how_to_act(api):
    seen: list[dict[str, str]] = []

    def stuck(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        return httpx.Response(
            200,
            json={
                "as_of": "2025-01-02T10:10:00+00:00",
                "grace_s": 30,
                "orders": [
                    {
                        "order_id": ORDER_ID,
                        "channel": "web",
                        "status": "NEEDS_ATTENTION",
                        "stuck_because": "needs_attention",
                        "reason": "compensation not confirmed in time: payment",
                        "step": None,
                        "attempt": 0,
                        "deadline_at": None,
                        "overdue_s": None,
                        "parked_from": "CANCELLING",
                        "parked_step": "compensate",
                        "created_at": "2025-01-02T10:00:00+00:00",
                        "updated_at": "2025-01-02T10:00:09+00:00",
                    }
                ],
            },
        )

    api["GET", "intake.test", "/v1/ops/orders/stuck"] = stuck
    result = invoke("orders", "stuck", "--grace", "30", "--retrying")
    assert result.exit_code == 0, result.output
    assert seen[0]["grace_s"] == "30.0" and seen[0]["include_retrying"] == "true"
    out = result.stdout
    assert ORDER_ID in out and "needs_attention" in out
    assert "compensation not confirmed in time: payment" in out
    assert "compensate (parked)" in out
    assert "oms orders retry ID" in out


def test_stuck_with_nothing_stuck_says_so(api):
    api["GET", "intake.test", "/v1/ops/orders/stuck"] = answer({"orders": []})
    result = invoke("orders", "stuck")
    assert result.exit_code == 0 and "no stuck orders" in result.stdout


def test_retry_reports_what_was_sent_and_a_refusal_exits_non_zero(api):
    bodies: list[bytes] = []

    def retry(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return httpx.Response(
            202,
            json={
                "order_id": ORDER_ID,
                "action": "retry",
                "previous_status": "NEEDS_ATTENTION",
                "status": "CANCELLING",
                "step": "compensate",
                "attempt": 1,
                "deadline_at": "2025-01-02T10:00:30+00:00",
                "sent": ["VoidPayment"],
            },
        )

    api["POST", "intake.test", f"/v1/ops/orders/{ORDER_ID}/retry"] = retry
    result = invoke("orders", "retry", ORDER_ID, "--note", "payment is back")
    assert result.exit_code == 0, result.output
    assert "NEEDS_ATTENTION -> CANCELLING; sent VoidPayment" in result.stdout
    assert json.loads(bodies[0])["note"] == "payment is back"

    api["POST", "intake.test", "/v1/ops/orders/ord_done/retry"] = answer(
        {"error": {"code": "nothing_to_retry", "message": "order ord_done waits on nothing"}}, 409
    )
    refused = invoke("orders", "retry", "ord_done")
    assert refused.exit_code == 1
    assert "409 nothing_to_retry" in refused.stderr and "waits on nothing" in refused.stderr


def test_compensate_asks_first_and_does_nothing_when_declined(api):
    calls: list[str] = []

    def compensate(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(
            202,
            json={
                "order_id": ORDER_ID,
                "action": "compensate",
                "previous_status": "NEEDS_ATTENTION",
                "status": "CANCELLING",
                "step": "compensate",
                "attempt": 1,
                "deadline_at": None,
                "sent": ["VoidPayment", "ReleaseStock"],
            },
        )

    api["POST", "intake.test", f"/v1/ops/orders/{ORDER_ID}/compensate"] = compensate
    declined = CliRunner().invoke(cli.app, ["orders", "compensate", ORDER_ID], input="n\n", env=ENV)
    assert declined.exit_code == 1 and calls == []
    confirmed = CliRunner().invoke(
        cli.app, ["orders", "compensate", ORDER_ID], input="y\n", env=ENV
    )
    assert confirmed.exit_code == 0, confirmed.output
    assert "sent VoidPayment, ReleaseStock" in confirmed.stdout
    assert len(calls) == 1


def test_hold_release_and_reject_send_their_fields_and_report_the_hold(api):
    bodies: dict[str, dict[str, Any]] = {}

    def acted(action: str, status: str, hold: dict[str, Any] | None, sent: list[str]) -> Route:
        def route(request: httpx.Request) -> httpx.Response:
            bodies[action] = json.loads(request.content) if request.content else {}
            return httpx.Response(
                202,
                json={
                    "order_id": ORDER_ID,
                    "action": action,
                    "previous_status": "AUTHORIZING_PAYMENT",
                    "status": status,
                    "hold": hold,
                    "sent": sent,
                },
            )

        return route

    hold = {
        "reason": "address_check",
        "note": None,
        "by": "ada",
        "placed_at": "2025-01-02T10:00:00+00:00",
        "alert_at": "2025-01-03T10:00:00+00:00",
    }
    base = f"/v1/ops/orders/{ORDER_ID}"
    api["POST", "intake.test", f"{base}/hold"] = acted("hold", "AUTHORIZING_PAYMENT", hold, [])
    api["POST", "intake.test", f"{base}/release"] = acted(
        "release", "CONFIRMED", None, ["CreateFulfilment"]
    )
    api["POST", "intake.test", f"{base}/reject"] = acted(
        "reject", "CANCELLING", None, ["VoidPayment", "ReleaseStock"]
    )
    held = invoke("orders", "hold", ORDER_ID, "--reason", "address_check", "--note", "no. 7?")
    assert held.exit_code == 0, held.output
    assert bodies["hold"]["reason"] == "address_check" and bodies["hold"]["note"] == "no. 7?"
    assert "on hold (address_check) by ada" in held.stdout
    released = invoke("orders", "release", ORDER_ID)
    assert released.exit_code == 0 and "sent CreateFulfilment" in released.stdout
    assert "reason" not in bodies["release"]
    declined = CliRunner().invoke(cli.app, ["orders", "reject", ORDER_ID], input="n\n", env=ENV)
    assert declined.exit_code == 1 and "reject" not in bodies
    rejected = invoke("orders", "reject", ORDER_ID, "--yes")
    assert rejected.exit_code == 0 and "sent VoidPayment, ReleaseStock" in rejected.stdout
    no_reason = invoke("orders", "hold", ORDER_ID)
    assert no_reason.exit_code == 2, "--reason is required"


def test_stock_shows_each_location_and_the_total(api):
    api["GET", "inventory.test", "/v1/stock/MUG-1"] = answer(
        {
            "sku": "MUG-1",
            "on_hand": 15,
            "reserved": 4,
            "available": 11,
            "locations": [
                {"location": "berlin", "on_hand": 10, "reserved": 4, "available": 6},
                {"location": "hamburg", "on_hand": 5, "reserved": 0, "available": 5},
            ],
        }
    )
    result = invoke("stock", "MUG-1")
    assert result.exit_code == 0, result.output
    rows = [" ".join(line.replace("│", " ").split()) for line in result.stdout.splitlines()]
    assert "berlin 10 4 6" in rows and "hamburg 5 0 5" in rows and "total 15 4 11" in rows

    api["GET", "inventory.test", "/v1/stock/NOPE"] = answer(
        {"error": {"code": "unknown_sku", "message": "SKU NOPE is not defined"}}, 404
    )
    missing = invoke("stock", "NOPE")
    assert missing.exit_code == 1 and "unknown_sku" in missing.stderr


def test_the_existing_commands_are_still_there():
    result = CliRunner().invoke(cli.app, ["--help"], env=ENV)
    assert result.exit_code == 0
    for command in ("infra", "dlq", "run", "migrate", "orders", "stock"):
        assert command in result.stdout
    orders_help = CliRunner().invoke(cli.app, ["orders", "--help"], env=ENV)
    for command in ("list", "show", "stuck", "retry", "compensate", "hold", "release", "reject"):
        assert command in orders_help.stdout


@pytest.mark.parametrize(
    "args, command",
    [
        (["run"], "run"),
        (["migrate"], "migrate"),
        (["infra", "up"], "infra up"),
        (["infra", "status"], "infra status"),
        (["token", "issue", "--role", "operator"], "token issue"),
    ],
)
def test_development_commands_answer_in_one_line_without_the_dev_tooling(
    args: list[str], command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in the service image, which does not ship devtools/ (tests/deploy/test_image.py runs
    the image's own install)."""
    find_spec = cli.importlib.util.find_spec
    monkeypatch.setattr(
        cli.importlib.util,
        "find_spec",
        lambda name, *rest: None if name == "devtools" else find_spec(name, *rest),
    )
    result = CliRunner().invoke(cli.app, args, env=ENV)
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: `oms {command}` is a development command"), line


def test_stock_tells_what_backorders_wait_for(api):
    api["GET", "inventory.test", "/v1/stock/LAMP"] = answer(
        {
            "sku": "LAMP",
            "on_hand": 0,
            "reserved": 0,
            "available": 0,
            "backordered": 8,
            "incoming": 6,
            "available_to_promise": -2,
            "locations": [],
        }
    )
    result = invoke("stock", "LAMP")
    assert result.exit_code == 0, result.output
    assert "backorders wait for 8, incoming 6, available to promise -2" in result.stdout


# --- an 80-column terminal ---------------------------------------------------------------------

NARROW = {**ENV, "COLUMNS": "80"}
OTHER_ID = "ord_fedcba9876543210fedcba9876543210"


def _listed(status: str, channel: str, external_id: str | None) -> dict[str, Any]:
    return {
        "order_id": ORDER_ID if status == "AUTHORIZING_PAYMENT" else OTHER_ID,
        "channel": channel,
        "external_id": external_id,
        "status": status,
        "currency": "EUR",
        "total": "1234.50",
        "created_at": "2025-01-02T10:00:00+00:00",
        "updated_at": "2025-01-02T10:00:05+00:00",
    }


def _fits_80(output: str) -> list[str]:
    lines = output.splitlines()
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide, too_wide
    assert "…" not in output
    return lines


def test_list_at_80_columns_keeps_order_and_status_whole_and_drops_what_does_not_fit(api):
    rows = [
        _listed("AUTHORIZING_PAYMENT", "woocommerce", "#100234-woo"),
        _listed("SHIPPED", "web", None),
    ]
    api["GET", "intake.test", "/v1/orders"] = answer({"orders": rows, "next_cursor": None})
    result = CliRunner().invoke(cli.app, ["orders", "list"], env=NARROW)
    assert result.exit_code == 0, result.output
    lines = _fits_80(result.stdout)
    row = next(line for line in lines if ORDER_ID in line)
    assert "AUTHORIZING_PAYMENT" in row and "woocommerce" in row
    assert any(OTHER_ID in line and "SHIPPED" in line for line in lines)
    # The columns that did not fit are named, so the operator knows to widen or use --json.
    assert "2025-01-02 10:00:05.000" not in result.stdout
    assert any(line.startswith("(not shown at 80 columns:") and "updated" in line for line in lines)
    # A wide terminal shows every column, as before.
    wide = invoke("orders", "list")
    for header in ("channel", "external id", "total", "created", "updated"):
        assert header in wide.stdout
    assert "1234.50 EUR" in wide.stdout and "not shown" not in wide.stdout


def _stuck_rows(reason: str) -> dict[str, Any]:
    return {
        "orders": [
            {
                "order_id": ORDER_ID,
                "channel": "web",
                "status": "NEEDS_ATTENTION",
                "stuck_because": "needs_attention",
                "reason": reason,
                "step": None,
                "attempt": 0,
                "deadline_at": None,
                "overdue_s": None,
                "parked_step": "compensate",
                "created_at": "2025-01-02T10:00:00+00:00",
                "updated_at": "2025-01-02T10:00:09+00:00",
            },
            {
                "order_id": OTHER_ID,
                "channel": "web",
                "status": "AUTHORIZING_PAYMENT",
                "stuck_because": "overdue",
                "reason": None,
                "step": "authorize_payment",
                "attempt": 2,
                "deadline_at": "2025-01-02T10:05:00+00:00",
                "overdue_s": 312.4,
                "parked_step": None,
                "created_at": "2025-01-02T10:00:00+00:00",
                "updated_at": "2025-01-02T10:00:09+00:00",
            },
        ]
    }


def test_stuck_at_80_columns_prints_one_block_per_order_with_the_reason_whole(api):
    reason = "compensation not confirmed in time: payment"
    api["GET", "intake.test", "/v1/ops/orders/stuck"] = answer(_stuck_rows(reason))
    result = CliRunner().invoke(cli.app, ["orders", "stuck"], env=NARROW)
    assert result.exit_code == 0, result.output
    lines = _fits_80(result.stdout)
    assert f"{ORDER_ID}  NEEDS_ATTENTION" in lines
    assert f"{OTHER_ID}  AUTHORIZING_PAYMENT" in lines
    assert f"  reason    {reason}" in lines
    for field in ("  why       needs_attention", "  step      compensate (parked)"):
        assert field in lines
    assert "  overdue   312s" in lines and "  attempt   2" in lines
    assert "oms orders retry ID" in result.stdout
    # A wide terminal keeps the table.
    wide = invoke("orders", "stuck")
    assert any(ORDER_ID in line and reason in line for line in wide.stdout.splitlines())


def test_stuck_at_80_columns_wraps_a_long_reason_under_itself(api):
    reason = (
        "payment provider answered 502 three times while voiding the authorisation; "
        "compensation not confirmed in time: payment"
    )
    api["GET", "intake.test", "/v1/ops/orders/stuck"] = answer(_stuck_rows(reason))
    result = CliRunner().invoke(cli.app, ["orders", "stuck"], env=NARROW)
    assert result.exit_code == 0, result.output
    lines = _fits_80(result.stdout)
    start = lines.index(next(line for line in lines if line.startswith("  reason    ")))
    end = lines.index("  updated   2025-01-02 10:00:09.000", start)
    assert end - start >= 2, "the reason should have needed two lines at 80 columns"
    assert all(line.startswith(" " * 12) for line in lines[start + 1 : end])
    words = " ".join(line.strip() for line in lines[start:end]).split()
    assert words == ["reason", *reason.split()]
