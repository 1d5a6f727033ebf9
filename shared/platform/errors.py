"""HTTP errors: JSON with a stable code and a clear message, never a bare 500 for bad input."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5
"""What a 503 for a dependency outage tells the caller to wait (DESIGN.md §5)."""

DEPENDENCY_DOWN: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,  # "connection is closed", pool closing
    asyncpg.AdminShutdownError,
    ConnectionError,
    asyncio.TimeoutError,  # the pool had no connection in time
)


class ApiError(Exception):
    """An expected refusal: becomes an HTTP 4xx with a stable code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.details = details


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return body


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, **exc.details),
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                "message": err.get("msg", ""),
            }
            for err in exc.errors()
        ]
        first = problems[0] if problems else {"field": "", "message": "invalid request"}
        return JSONResponse(
            error_body(
                "validation_failed",
                f"{first['field'] or 'request'}: {first['message']}",
                problems=problems,
            ),
            status_code=422,
        )

    @app.exception_handler(asyncpg.DataError)
    async def data_error(request: Request, exc: asyncpg.DataError) -> JSONResponse:
        # Last line of defence: input the request models let through but Postgres refuses
        # (a value out of a column's range, a character text cannot hold).
        log.warning("refused by the database on %s: %s", request.url.path, exc.sqlstate)
        return JSONResponse(
            error_body("invalid_value", f"a value in the request cannot be stored: {exc}"),
            status_code=422,
        )

    for down in DEPENDENCY_DOWN:
        app.add_exception_handler(down, _dependency_down)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        return JSONResponse(
            error_body(codes.get(exc.status_code, f"http_{exc.status_code}"), str(exc.detail)),
            status_code=exc.status_code,
        )


async def _dependency_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("dependency unavailable on %s: %s", request.url.path, type(exc).__name__)
    return JSONResponse(
        error_body("dependency_unavailable", "a dependency is unavailable: retry later"),
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


class BodyLimit:
    """ASGI middleware: no route reads more than `limit` bytes of body — 413
    `payload_too_large` (a route may keep a lower limit of its own)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"request body exceeds {self.limit} bytes"
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            response = JSONResponse(error_body("payload_too_large", message), status_code=413)
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            received = await receive()
            if received["type"] == "http.request":
                seen += len(received.get("body", b""))
                if seen > self.limit:
                    raise StarletteHTTPException(413, message)
            return received

        await self.app(scope, limited, send)
