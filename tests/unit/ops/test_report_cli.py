"""`oms report` against a canned console answer (no network): it asks the console's
/v1/kpis with the period and channel, and prints every KPI within 80 columns."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from shared.ops import cli, report_cli
from shared.ops.client import OpsClient
from shared.platform.settings import OpsSettings

ENV = {"COLUMNS": "80", "OMS_CONSOLE_URL": "http://console.test"}
LONG_SKU = "SKU-WITH-A-VERY-LONG-NAME-THAT-WOULD-NOT-FIT-ON-ONE-LINE-OF-EIGHTY-COLUMNS"
KPIS: dict[str, Any] = {
    "filter": {"from": "2026-03-02", "to": "2026-03-15", "channel": None, "bucket": "day"},
    "channels": ["amazon", "web"],
    "ship_promise": {"default_hours": 48.0, "by_channel": {"amazon": 24.0}},
    "volume": {
        "totals": [
            {"channel": "amazon", "currency": "EUR", "orders": 1200, "revenue": "123456.7800"},
            {"channel": "web", "currency": "USD", "orders": 3, "revenue": "30"},
        ],
        "series": [],
    },
    "shipping": {
        "to_ship": {"count": 4419, "p50_hours": 22.83, "p90_hours": 62.86},
        "to_deliver": {"count": 3900, "p50_hours": 80.1, "p90_hours": 130.55},
        "on_time": 3443,
        "on_time_rate": 0.779136,
        "by_channel": [
            {
                "channel": "amazon",
                "promise_hours": 24.0,
                "to_ship": {"count": 1000, "p50_hours": 20.0, "p90_hours": 70.0},
                "on_time": 500,
                "on_time_rate": 0.5,
            }
        ],
        "series": [],
    },
    "cancellations": {
        "placed": 4800,
        "cancelled": 398,
        "rejected": 190,
        "rate": 0.082917,
        "by_channel": [],
        "reasons": [{"reason": "customer_request", "orders": 120, "share": 0.301508}],
    },
    "returns": {
        "returns": 466,
        "units_shipped": 12000,
        "units_returned": 1000,
        "rate": 0.083333,
        "by_sku": [
            {"sku": LONG_SKU, "units_shipped": 300, "units_returned": 30, "rate": 0.1},
            {"sku": "SKU-002", "units_shipped": 10, "units_returned": 0, "rate": 0.0},
        ],
        "by_reason": [{"reason": "damaged", "units": 400, "share": 0.4}],
    },
    "refunds": {
        "totals": [],
        "by_kind": [{"kind": "payment", "currency": "EUR", "count": 300, "amount": "12345.5"}],
    },
    "backorders": {
        "orders": 253,
        "units": 700,
        "by_sku": [{"sku": "SKU-003", "orders": 9, "units": 20}],
    },
    "stock_outs": {
        "stock_outs": 40,
        "skus": 20,
        "out_now": 5,
        "by_sku": [{"sku": "SKU-004", "stock_outs": 3, "out_now": True}],
        "low_stock_alerts": 60,
        "low_stock": [],
    },
}


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        assert (request.url.host, request.url.path) == ("console.test", "/v1/kpis")
        return httpx.Response(200, json=KPIS)

    def make_client(settings: OpsSettings | None = None) -> OpsClient:
        return OpsClient(settings, transport=httpx.MockTransport(handler))

    monkeypatch.setattr(report_cli, "OpsClient", make_client)
    return requests


def test_the_report_prints_every_kpi_within_80_columns(seen: list[httpx.Request]) -> None:
    result = CliRunner().invoke(
        cli.app, ["report", "--from", "2026-03-02", "--to", "2026-03-15"], env=ENV
    )
    assert result.exit_code == 0, result.output
    assert dict(seen[0].url.params) == {"from": "2026-03-02", "to": "2026-03-15"}
    out = result.stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "KPIs 2026-03-02 to 2026-03-15 (UTC), all channels" in out
    assert "ship promise 48 h from confirmation (amazon 24 h)" in out
    assert "123,456.78" in out and "EUR" in out and "USD" in out
    assert "22.8 h" in out and "62.9 h" in out and "77.9 %" in out
    assert "4,800 placed, 398 cancelled (8.3 %), 190 rejected" in out
    assert "466 returns, 1,000 of 12,000 units (8.3 %)" in out
    assert "SKU-WITH-A-VERY-LONG" in out and "…" in out, "a long SKU is cut, not wrapped"
    assert "SKU-002" not in out, "SKUs without returns are left out of the return table"
    assert "12,345.50" in out
    assert "Backorders: 253 orders, 700 units" in out
    assert "Stock-outs: 40 on 20 SKUs, 5 still out; 60 low-stock alerts" in out


def test_the_channel_goes_to_the_console_and_json_prints_the_answer(
    seen: list[httpx.Request],
) -> None:
    result = CliRunner().invoke(cli.app, ["report", "--channel", "amazon", "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    assert dict(seen[0].url.params) == {"channel": "amazon"}
    assert '"on_time": 3443' in result.stdout


def test_a_refusal_is_one_line_and_exit_code_1(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            422,
            json={"error": {"code": "invalid_filter", "message": "from: not a date"}},
        )

    monkeypatch.setattr(
        report_cli,
        "OpsClient",
        lambda settings=None: OpsClient(settings, transport=httpx.MockTransport(handler)),
    )
    result = CliRunner().invoke(cli.app, ["report", "--from", "x"], env=ENV)
    assert result.exit_code == 1
    assert "invalid_filter" in result.output and "from: not a date" in result.output
