"""What every channel client shares on the wire: one `ChannelHttp` per account that keeps to the
API's rate limit, adds the account's credentials, refreshes an OAuth access token when it
expires or the API answers 401, waits out a short 429 Retry-After, and turns every failure into
a `ChannelApiError` that says whether trying again can help.

Retrying is not done here beyond that: a failed push stays in the connector's queue and is tried
again with backoff (domain.after_failure), so a retry survives a restart.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from prometheus_client import Counter

log = logging.getLogger(__name__)

REQUESTS = Counter(
    "oms_connector_requests_total",
    "Requests a channel connector made to a channel's API, by account and HTTP status",
    ["account", "status"],
)
TOKEN_REFRESHES = Counter(
    "oms_connector_token_refreshes_total", "OAuth access tokens fetched, by account", ["account"]
)
INLINE_429_RETRIES = 3


class ChannelApiError(Exception):
    """A channel API call failed. `retryable`: a later try may succeed (throttled, 5xx, network);
    `retry_after_s`: the channel said when."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after_s = retry_after_s


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header's wait: seconds, or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RateLimiter:
    """A token bucket: `rate` requests per second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self._tokens = self.burst
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


TokenFetcher = Callable[[httpx.AsyncClient], Awaitable[tuple[str, float]]]
"""Fetches a new access token: (token, lifetime in seconds)."""


class OAuthToken:
    """An access token fetched by `fetch` (an OAuth client-credentials or refresh-token grant:
    Amazon LWA, eBay, OTTO), kept until shortly before it expires, fetched again when the API
    refuses it (401). Concurrent callers share one fetch."""

    def __init__(self, account: str, fetch: TokenFetcher, *, margin_s: float = 60.0) -> None:
        self.account = account
        self._fetch = fetch
        self._margin_s = margin_s
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, client: httpx.AsyncClient) -> str:
        async with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                token, lifetime = await self._fetch(client)
                TOKEN_REFRESHES.labels(self.account).inc()
                self._token = token
                self._expires_at = time.monotonic() + max(0.0, lifetime - self._margin_s)
            return self._token

    def invalidate(self, token: str) -> None:
        """The API refused `token`: the next call fetches a new one (unless another caller
        already did)."""
        if self._token == token:
            self._token = None


async def form_token_grant(
    client: httpx.AsyncClient,
    url: str,
    form: Mapping[str, str],
    *,
    auth: tuple[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[str, float]:
    """POST an OAuth 2 token request (form-encoded) and read `access_token` / `expires_in`."""
    try:
        response = await client.post(
            url, data=dict(form), auth=auth or httpx.USE_CLIENT_DEFAULT, headers=dict(headers or {})
        )
    except httpx.HTTPError as exc:
        raise ChannelApiError(f"token endpoint unreachable: {exc}", retryable=True) from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise ChannelApiError(
            f"token endpoint answered {response.status_code}",
            retryable=True,
            status=response.status_code,
            retry_after_s=retry_after_seconds(response.headers.get("retry-after")),
        )
    if response.status_code != 200:
        raise ChannelApiError(
            f"the token endpoint refused the credentials ({response.status_code}):"
            f" {response.text[:300]}",
            retryable=False,
            status=response.status_code,
        )
    body = response.json()
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise ChannelApiError("the token endpoint sent no access_token", retryable=False)
    return token, float(body.get("expires_in") or 3600)


class ChannelHttp:
    """An account's HTTP client for its channel's API.

    `headers`: sent with every request (static keys); `token` with `token_header` /
    `token_prefix`: an OAuth access token added to each request and refreshed on 401 (once per
    call). `rate`: requests per second the API allows."""

    def __init__(
        self,
        account: str,
        base_url: str,
        *,
        timeout_s: float,
        rate: float,
        burst: float = 1.0,
        headers: Mapping[str, str] | None = None,
        token: OAuthToken | None = None,
        token_header: str = "Authorization",
        token_prefix: str = "Bearer ",
        max_inline_wait_s: float = 5.0,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.account = account
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout_s, headers=dict(headers or {}), auth=auth
        )
        self.limiter = RateLimiter(rate, burst)
        self.token = token
        self.token_header = token_header
        self.token_prefix = token_prefix
        self.max_inline_wait_s = max_inline_wait_s

    async def aclose(self) -> None:
        await self.client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        accept: Collection[int] = (),
    ) -> httpx.Response:
        """Send one request; a 2xx (or a status in `accept`) is returned, anything else raises
        ChannelApiError. A 401 with an OAuth token fetches a new token and tries once more; a
        429 whose Retry-After is short is waited out (a few times)."""
        refreshed = False
        throttled = 0
        while True:
            await self.limiter.acquire()
            sent_headers = dict(headers or {})
            token = None
            if self.token is not None:
                token = await self.token.get(self.client)
                sent_headers[self.token_header] = f"{self.token_prefix}{token}"
            try:
                response = await self.client.request(
                    method, path, json=json, params=params, headers=sent_headers
                )
            except httpx.HTTPError as exc:
                REQUESTS.labels(self.account, "error").inc()
                raise ChannelApiError(
                    f"{method} {path}: {type(exc).__name__}: {exc}", retryable=True
                ) from exc
            status = response.status_code
            REQUESTS.labels(self.account, str(status)).inc()
            if 200 <= status < 300 or status in accept:
                return response
            if status == 401 and token is not None and not refreshed:
                assert self.token is not None
                self.token.invalidate(token)
                refreshed = True
                continue
            if status == 429:
                wait = retry_after_seconds(response.headers.get("retry-after"))
                if (
                    wait is not None
                    and wait <= self.max_inline_wait_s
                    and throttled < (INLINE_429_RETRIES)
                ):
                    throttled += 1
                    log.info("%s: throttled by the channel, waiting %.1fs", self.account, wait)
                    await asyncio.sleep(wait)
                    continue
                raise ChannelApiError(
                    f"{method} {path}: throttled (429)",
                    retryable=True,
                    status=status,
                    retry_after_s=wait,
                )
            raise ChannelApiError(
                f"{method} {path}: {status} {response.text[:500]}",
                retryable=status >= 500 or status in (408, 425),
                status=status,
            )
