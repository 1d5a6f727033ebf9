"""What every channel client shares on the wire, against a local ASGI app: the OAuth token is
fetched once, refreshed on 401, a short 429 is waited out, a long one is handed back retryable,
and refusals say whether a retry can help."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.channel_connector.http import (
    ChannelApiError,
    ChannelHttp,
    OAuthToken,
    form_token_grant,
    retry_after_seconds,
)


class Api:
    def __init__(self) -> None:
        self.tokens_issued = 0
        self.valid: set[str] = set()
        self.throttle: list[str] = []
        self.calls = 0

    def app(self) -> Starlette:
        async def token(request: Request) -> JSONResponse:
            form = parse_qs((await request.body()).decode())
            if form.get("client_secret") != ["s3cret"]:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            self.tokens_issued += 1
            issued = f"tok-{self.tokens_issued}"
            self.valid = {issued}
            return JSONResponse({"access_token": issued, "expires_in": 3600})

        async def thing(request: Request) -> JSONResponse:
            self.calls += 1
            given = request.headers.get("authorization", "").removeprefix("Bearer ")
            if given not in self.valid:
                return JSONResponse({"error": "expired"}, status_code=401)
            if self.throttle:
                return JSONResponse(
                    {}, status_code=429, headers={"Retry-After": self.throttle.pop(0)}
                )
            if request.query_params.get("fail"):
                return JSONResponse(
                    {"error": "bad sku"}, status_code=int(request.query_params["fail"])
                )
            return JSONResponse({"ok": True, "token": given})

        return Starlette(routes=[Route("/token", token, methods=["POST"]), Route("/thing", thing)])


def client_for(api: Api, secret: str = "s3cret") -> ChannelHttp:
    async def fetch(client: httpx.AsyncClient) -> tuple[str, float]:
        return await form_token_grant(
            client, "/token", {"grant_type": "client_credentials", "client_secret": secret}
        )

    http = ChannelHttp(
        "acct",
        "http://api.test",
        timeout_s=5,
        rate=1000,
        burst=100,
        token=OAuthToken("acct", fetch),
        max_inline_wait_s=0.05,
    )
    http.client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app()), base_url="http://api.test"
    )
    return http


async def test_the_token_is_fetched_once_and_refreshed_when_refused() -> None:
    api = Api()
    http = client_for(api)
    assert (await http.request("GET", "/thing")).json()["token"] == "tok-1"
    assert (await http.request("GET", "/thing")).json()["token"] == "tok-1"
    api.valid = set()  # the channel expired it early
    assert (await http.request("GET", "/thing")).json()["token"] == "tok-2"
    assert api.tokens_issued == 2


async def test_refused_credentials_are_not_retryable() -> None:
    http = client_for(Api(), secret="wrong")
    with pytest.raises(ChannelApiError) as refused:
        await http.request("GET", "/thing")
    assert not refused.value.retryable and refused.value.status == 401


async def test_a_short_429_is_waited_out_and_a_long_one_handed_back() -> None:
    api = Api()
    http = client_for(api)
    api.throttle = ["0.01"]
    assert (await http.request("GET", "/thing")).status_code == 200
    api.throttle = ["30"]
    with pytest.raises(ChannelApiError) as throttled:
        await http.request("GET", "/thing")
    assert throttled.value.retryable and throttled.value.retry_after_s == 30


async def test_client_errors_are_final_and_server_errors_retryable() -> None:
    http = client_for(Api())
    with pytest.raises(ChannelApiError) as final:
        await http.request("GET", "/thing", params={"fail": "422"})
    assert not final.value.retryable and "bad sku" in str(final.value)
    with pytest.raises(ChannelApiError) as transient:
        await http.request("GET", "/thing", params={"fail": "503"})
    assert transient.value.retryable
    answered = await http.request("GET", "/thing", params={"fail": "404"}, accept={404})
    assert answered.status_code == 404


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds("Tue, 01 Dec 2026 12:00:30 GMT", now) == 30
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
