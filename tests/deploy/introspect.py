"""Prints, as JSON, what each service declares in code: the topics it consumes (its
ServiceSpec, or what it reads once configured: the channel connector reads nothing without
accounts), the operations of its HTTP API (its OpenAPI document) and the status code each of
the given paths answers to a GET, called in-process without starting the service (no
database, no Kafka). Run in a child process by the deploy tests, because building an app
installs process-wide logging and tracing.

    .venv/bin/python -m tests.deploy.introspect OUT.json /health/live /health/ready

(The JSON goes to a file: the services log to stdout.)
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from typing import Any

import httpx

from shared.topics import SERVICES

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


async def _get_statuses(app: Any, paths: list[str]) -> dict[str, int]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return {path: (await client.get(path)).status_code for path in paths}


def describe(service: str, probe_paths: list[str]) -> dict[str, Any]:
    app_module = importlib.import_module(f"services.{service}.app")
    spec = app_module.build()
    app = app_module.build_app()
    operations = {
        path: sorted(method.upper() for method in item if method in HTTP_METHODS)
        for path, item in app.openapi().get("paths", {}).items()
    }
    return {
        "service_name": spec.settings.service_name,
        "consumer_group": spec.settings.consumer_group or spec.settings.service_name,
        "topics": list(getattr(app_module, "SUBSCRIBES_WHEN_CONFIGURED", spec.topics)),
        "operations": operations,
        "get_status": asyncio.run(_get_statuses(app, probe_paths)),
    }


def main(argv: list[str]) -> None:
    out, paths = argv[0], argv[1:]
    found = {service: describe(service, paths) for service in SERVICES}
    with open(out, "w") as f:
        json.dump(found, f)


if __name__ == "__main__":
    main(sys.argv[1:])
