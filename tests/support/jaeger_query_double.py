"""A local double of Jaeger's query API (`GET /api/traces/{trace_id}`), answering in the shape
Jaeger's HTTP query service documents and its UI reads:

    200 {"data": [{"traceID", "spans": [{"traceID", "spanID", "operationName",
          "references": [{"refType": "CHILD_OF", "traceID", "spanID"}], "startTime" (µs),
          "duration" (µs), "tags", "logs", "processID", "warnings"}],
          "processes": {"p1": {"serviceName", "tags"}}, "warnings": null}],
         "total": 0, "limit": 0, "offset": 0, "errors": null}
    404 {"data": null, "total": 0, "limit": 0, "offset": 0,
         "errors": [{"code": 404, "msg": "trace not found"}]}

Traces are registered by the test (`add`), built from plain span tuples (`jaeger_trace`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.served_app import ServedApp


@dataclass(frozen=True)
class Span:
    span_id: str
    parent_id: str | None
    service: str
    name: str
    start_us: int
    duration_us: int
    error: bool = False


def jaeger_trace(trace_id: str, spans: list[Span]) -> dict[str, Any]:
    """One trace as Jaeger's query API answers it (processes numbered p1, p2, ... by service)."""
    process_ids: dict[str, str] = {}
    for span in spans:
        process_ids.setdefault(span.service, f"p{len(process_ids) + 1}")
    return {
        "traceID": trace_id,
        "spans": [
            {
                "traceID": trace_id,
                "spanID": span.span_id,
                "flags": 1,
                "operationName": span.name,
                "references": [
                    {"refType": "CHILD_OF", "traceID": trace_id, "spanID": span.parent_id}
                ]
                if span.parent_id
                else [],
                "startTime": span.start_us,
                "duration": span.duration_us,
                "tags": [{"key": "error", "type": "bool", "value": True}] if span.error else [],
                "logs": [],
                "processID": process_ids[span.service],
                "warnings": None,
            }
            for span in spans
        ],
        "processes": {pid: {"serviceName": name, "tags": []} for name, pid in process_ids.items()},
        "warnings": None,
    }


class JaegerQueryDouble:
    def __init__(self) -> None:
        self.traces: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        app = Starlette(routes=[Route("/api/traces/{trace_id}", self._trace)])
        self.served = ServedApp(app, "Jaeger query double")

    @property
    def url(self) -> str:
        return self.served.base_url

    def add(self, trace_id: str, spans: list[Span]) -> None:
        self.traces[trace_id] = jaeger_trace(trace_id, spans)

    async def _trace(self, request: Request) -> JSONResponse:
        trace_id = request.path_params["trace_id"]
        self.requests.append(trace_id)
        trace = self.traces.get(trace_id)
        if trace is None:
            return JSONResponse(
                {
                    "data": None,
                    "total": 0,
                    "limit": 0,
                    "offset": 0,
                    "errors": [{"code": 404, "msg": "trace not found"}],
                },
                status_code=404,
            )
        return JSONResponse({"data": [trace], "total": 0, "limit": 0, "offset": 0, "errors": None})

    def __enter__(self) -> JaegerQueryDouble:
        self.served.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.served.stop()
