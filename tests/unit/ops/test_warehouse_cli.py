"""`oms warehouse …` against canned fulfilment answers (no network), at 80 columns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from shared.ops import cli, warehouse_cli
from shared.ops.client import OpsClient
from shared.platform.settings import OpsSettings

ENV = {"COLUMNS": "80", "OMS_FULFILMENT_URL": "http://fulfilment.test", "OMS_TOKEN": "t"}
PICK_LIST = {
    "pick_list_id": "pl-1",
    "location": "berlin",
    "strategy": "batch",
    "wave": None,
    "zone": None,
    "status": "released",
    "picker": None,
    "walk_m": 24.0,
    "created_at": "2026-12-01T10:00:00+00:00",
    "claimed_at": None,
    "finished_at": None,
    "stops": [
        {
            "stop": 0,
            "bin": "A-01",
            "zone": "A",
            "sku": "MUG-1",
            "quantity": 3,
            "picked": 0,
            "short": 0,
            "puts": [
                {"fulfilment_id": "f-1", "order_id": "o-1", "quantity": 2, "tote": 1},
                {"fulfilment_id": "f-2", "order_id": "o-2", "quantity": 1, "tote": 2},
            ],
        }
    ],
}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    calls: list[tuple[str, str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        calls.append((request.method, request.url.path, body))
        path = request.url.path
        if path == "/v1/locations/berlin/pick-lists":
            return httpx.Response(200, json={"pick_lists": [PICK_LIST], "short": [], "skipped": []})
        if path == "/v1/pick-lists/pl-1/picks":
            return httpx.Response(
                409,
                json={
                    "error": {"code": "wrong_barcode", "message": "scanned 123, stop 0 is MUG-1"}
                },
            )
        if path == "/v1/pick-lists":
            return httpx.Response(200, json={"pick_lists": []})
        if path == "/v1/parcels/p-1/label.zpl":
            return httpx.Response(200, content=b"^XA^FDRR000000015DE^FS^XZ")
        raise httpx.ConnectError("connection refused", request=request)

    def make(settings: OpsSettings | None = None) -> OpsClient:
        return OpsClient(settings, transport=httpx.MockTransport(handler))

    monkeypatch.setattr(warehouse_cli, "OpsClient", make)
    return calls


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli.app, ["warehouse", *args], env=ENV)


def test_release_sends_the_strategy_and_prints_the_stops_in_80_columns(sent):
    result = invoke("release", "berlin", "--strategy", "zone", "--batch", "4")
    assert result.exit_code == 0, result.output
    assert sent == [
        (
            "POST",
            "/v1/locations/berlin/pick-lists",
            {"strategy": "zone", "orders_per_batch": 4, "max_fulfilments": 200},
        )
    ]
    assert "pick list pl-1: released (batch)" in result.output
    assert "tote 1:2, tote 2:1" in result.output
    assert all(len(line) <= 80 for line in result.output.splitlines())


def test_a_refused_pick_is_one_line_and_exit_code_1(sent):
    result = invoke("pick", "pl-1", "0", "123")
    assert result.exit_code == 1
    assert "fulfilment refused (409 wrong_barcode)" in result.output
    assert sent[0][2] == {"stop": 0, "barcode": "123", "quantity": 1}


def test_no_pick_lists_says_so(sent):
    result = invoke("lists")
    assert result.exit_code == 0 and "no pick lists" in result.output


def test_reprint_writes_the_label_as_served(sent, tmp_path: Path):
    target = tmp_path / "label.zpl"
    result = invoke("reprint", "p-1", "--kind", "zpl", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == b"^XA^FDRR000000015DE^FS^XZ"
