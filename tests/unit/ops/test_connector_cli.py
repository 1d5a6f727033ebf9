"""`oms connectors …` against canned connector answers (no network): pushes read one block
each on 80 columns, dead ones are sent again, an empty connector says how to configure one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from shared.ops import cli, connector_cli
from shared.ops.client import OpsClient
from shared.platform.settings import OpsSettings

ENV = {"COLUMNS": "80", "OMS_CHANNEL_CONNECTOR_URL": "http://connector.test"}
PUSH = {
    "push_id": 7,
    "account": "amazon-eu",
    "kind": "shipment",
    "key": "parcel-1",
    "order_id": "ord_0123456789abcdef0123456789abcdef",
    "status": "dead",
    "attempts": 8,
    "last_error": "ChannelApiError: 400 InvalidInput: orderItemId",
    "channel_reference": None,
    "created_at": "2026-12-01T10:00:00+00:00",
    "updated_at": "2026-12-01T11:00:00+00:00",
    "next_attempt_at": "2026-12-01T11:00:00+00:00",
    "payload": {},
}


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    requests: list[httpx.Request] = []
    answers: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]] = {
        ("GET", "/v1/connectors/pushes"): lambda _: httpx.Response(200, json={"pushes": [PUSH]}),
        ("POST", "/v1/connectors/pushes/7/retry"): lambda _: httpx.Response(
            200, json={**PUSH, "status": "pending", "attempts": 0}
        ),
        ("GET", "/v1/connectors"): lambda _: httpx.Response(200, json={"accounts": []}),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        assert request.url.host == "connector.test"
        return answers[(request.method, request.url.path)](request)

    def make_client(settings: OpsSettings | None = None) -> OpsClient:
        return OpsClient(settings, transport=httpx.MockTransport(handler))

    monkeypatch.setattr(connector_cli, "OpsClient", make_client)
    return requests


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli.app, ["connectors", *args], env=ENV)


def test_dead_pushes_print_one_block_each_within_80_columns(seen: list[httpx.Request]) -> None:
    result = invoke("pushes", "--status", "dead")
    assert result.exit_code == 0, result.output
    assert seen[0].url.params["status"] == "dead"
    assert "#7 shipment dead (amazon-eu)" in result.stdout
    assert "400 InvalidInput: orderItemId" in result.stdout
    assert "ord_0123456789abcdef0123456789abcdef" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_a_dead_push_is_sent_again(seen: list[httpx.Request]) -> None:
    result = invoke("retry", "7")
    assert result.exit_code == 0, result.output
    assert [(r.method, r.url.path) for r in seen] == [("POST", "/v1/connectors/pushes/7/retry")]
    assert "pending again" in result.stdout


def test_no_accounts_says_how_to_configure_them(seen: list[httpx.Request]) -> None:
    result = invoke("list")
    assert result.exit_code == 0, result.output
    assert "OMS_CONNECTOR_ACCOUNTS" in result.stdout
