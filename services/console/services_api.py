"""The services' public APIs as the signed-in user: every call carries the user's own token, so
the services decide what the user may see and do; their refusals come back as the same
ApiError (status, code, message) for the page to show."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import Request

from services.console.settings import ConsoleSettings
from shared.platform.auth import session_token
from shared.platform.errors import ApiError
from shared.topics import SERVICES as ALL_SERVICES

SERVICES = tuple(name for name in ALL_SERVICES if name != "console")
"""What the console calls (every service but itself)."""


class ServicesApi:
    def __init__(self, settings: ConsoleSettings, token: str, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.token = token
        self.client = client

    def url(self, service: str, path: str) -> str:
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}")
        base: str = getattr(self.settings, f"{service}_url")
        return base.rstrip("/") + path

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The service's JSON answer; its refusal (4xx/5xx) as an ApiError with its code."""
        try:
            response = await self.client.request(
                method,
                self.url(service, path),
                params={k: v for k, v in (params or {}).items() if v not in (None, "")},
                json=json,
                headers={"Authorization": f"Bearer {self.token}", **(headers or {})},
            )
        except httpx.HTTPError as exc:
            raise ApiError(
                503,
                "service_unavailable",
                f"{service} did not answer: {type(exc).__name__}",
                headers={"Retry-After": "5"},
            ) from exc
        if response.status_code >= 400:
            raise _refusal(service, response)
        if not response.content:
            return None
        return response.json()

    async def get(self, service: str, path: str, **params: Any) -> Any:
        return await self.call(service, "GET", path, params=params)

    async def post(self, service: str, path: str, body: Any = None, **headers: str) -> Any:
        return await self.call(service, "POST", path, json=body, headers=headers)


def _refusal(service: str, response: httpx.Response) -> ApiError:
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    code = str(error.get("code") or f"{service}_error")
    message = str(error.get("message") or response.text[:300] or response.reason_phrase)
    status = response.status_code if response.status_code < 500 else 502
    return ApiError(status, code, f"{service}: {message}")


async def services_api(request: Request) -> ServicesApi:
    """The APIs as the user of this request (their session's token, or the bearer header): a
    dependency, `api: ServicesApi = Depends(services_api)`."""
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else session_token(request)
    if not token:
        raise ApiError(401, "unauthenticated", "sign in first")
    settings: ConsoleSettings = request.app.state.console_settings
    client: httpx.AsyncClient = request.app.state.console_http
    return ServicesApi(settings, token, client)
