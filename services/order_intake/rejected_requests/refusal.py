"""A refused request: kept for an operator, then answered with the error naming the kept row."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from fastapi import Request

from services.order_intake.rejected_requests import store
from shared.platform.errors import ApiError

_KEPT_HEADERS = frozenset({"content-type", "user-agent", "idempotency-key", "x-request-id"})

BODY_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed JSON"},
    413: {"description": "body too large"},
}
"""The OpenAPI answers of a route that reads its body with `Refusals.read_body` and parses it."""


class IntakeRefused(Exception):
    """Input that cannot become an order; `status` is the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


@dataclass(frozen=True)
class Refusals:
    """Refusals of one request: each is kept in `rejected_requests` (body cut to
    `max_body_bytes`) and becomes the ApiError to raise."""

    pool: asyncpg.Pool
    request: Request
    max_body_bytes: int

    async def error(
        self, refused: IntakeRefused, raw: bytes, headers: Mapping[str, str] | None = None
    ) -> ApiError:
        """Keep the refused input (with `headers`, by default the request's few kept ones), then
        build the error to raise."""
        if headers is None:
            headers = {k: v for k, v in self.request.headers.items() if k.lower() in _KEPT_HEADERS}
        async with self.pool.acquire() as conn:
            rejected_id = await store.record_rejected_request(
                conn,
                self.request.url.path,
                refused.code,
                refused.message,
                raw,
                dict(headers),
                max_bytes=self.max_body_bytes,
            )
        return ApiError(
            refused.status,
            refused.code,
            refused.message,
            rejected_request_id=rejected_id,
            **refused.details,
        )

    async def read_body(self, limit: int) -> bytes:
        """The request body; refused with 413 as soon as it exceeds `limit` bytes."""
        too_large = IntakeRefused(413, "payload_too_large", f"request body exceeds {limit} bytes")
        declared = self.request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise await self.error(too_large, b"")
        body = b""
        async for chunk in self.request.stream():
            body += chunk
            if len(body) > limit:
                raise await self.error(too_large, body[:limit])
        return body
