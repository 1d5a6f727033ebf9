"""Every service's OpenAPI document states the error answers it really gives: the JSON error
body (`{"error": {"code", "message", "details"}}`, see errors.py) for every 4xx and 5xx, and the
answers any route may give — 400 unreadable request, 422 invalid request, 503 dependency
unavailable (with Retry-After), 404 for routes with path parameters, 413 for routes with a body.
A route declares the rest itself (409, 429, ...). Schemathesis checks the services against it.
A route that reads its JSON body itself (a webhook, a signed payload) states it with
`json_body`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "stable, machine-readable"},
                "message": {"type": "string", "description": "names the field when one is wrong"},
                "details": {"type": "object"},
            },
        }
    },
}

_ANY_ROUTE = {
    "400": "malformed request: a body or parameter that cannot be read",
    "422": "invalid request: the error names the field",
    "503": "a dependency (database, broker) is unavailable: retry after Retry-After seconds",
}
_PROTECTED = {
    "401": "unauthenticated: no bearer token, or one that does not verify",
    "403": "forbidden: the token lacks the permission (or is for another channel/carrier)",
    "429": "rate limited (or too many orders in flight): retry after Retry-After seconds",
}
_METHODS = {"get", "put", "post", "delete", "patch"}


def with_error_responses(spec: dict[str, Any]) -> dict[str, Any]:
    spec.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            common = dict(_ANY_ROUTE)
            if path.startswith("/v1/"):
                common.update(_PROTECTED)
            if "{" in path:
                common["404"] = "not found"
            if "requestBody" in operation:
                common["413"] = "request body too large"
            for status, description in common.items():
                responses.setdefault(status, {"description": description})
            for status, response in responses.items():
                if status[0] in "45":
                    response["content"] = error_content
            responses["503"].setdefault(
                "headers",
                {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
            )
    return spec


def json_body(
    description: str | None = None, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The `openapi_extra` of a route that reads its JSON body itself: a required body, any
    JSON object unless `schema` says more."""
    body: dict[str, Any] = {"required": True}
    if description is not None:
        body["description"] = description
    body["content"] = {"application/json": {"schema": schema or {"type": "object"}}}
    return {"requestBody": body}


def install_error_responses(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_error_responses(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
