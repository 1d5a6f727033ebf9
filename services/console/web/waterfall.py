"""An order's trace as a waterfall: Jaeger's query-API answer turned into rows of bars (pure).

Jaeger answers `GET /api/traces/{trace_id}` with `{"data": [trace]}`; a trace has `spans` (each
with `spanID`, `operationName`, `startTime` and `duration` in microseconds, `references` of type
CHILD_OF or FOLLOWS_FROM, and `processID`) and `processes` (`processID` → `serviceName`). Rows
come depth first (a parent, then its children by start time); a span whose parent is not in the
trace is drawn as a root. Offsets and widths are percentages of the trace's span of time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_ROWS = 400
MIN_WIDTH_PCT = 0.4  # a span too short to see still gets a sliver


class TraceUnreadable(ValueError):
    """The answer is not a Jaeger trace this page can draw."""


@dataclass(frozen=True)
class WaterfallRow:
    span_id: str
    depth: int
    service: str
    name: str
    start_ms: float  # from the trace's first span
    duration_ms: float
    offset_pct: float
    width_pct: float
    error: bool
    colour: int  # the service's colour (0..COLOURS-1), by first appearance


@dataclass(frozen=True)
class Waterfall:
    trace_id: str
    total_ms: float
    rows: tuple[WaterfallRow, ...]
    services: tuple[str, ...]
    hidden: int  # spans beyond MAX_ROWS, not drawn


COLOURS = 8


def waterfall(answer: Mapping[str, Any], max_rows: int = MAX_ROWS) -> Waterfall:
    """The rows of the first trace in a Jaeger query-API answer."""
    data = answer.get("data") if isinstance(answer, Mapping) else None
    if not isinstance(data, list) or not data or not isinstance(data[0], Mapping):
        raise TraceUnreadable("no trace in the answer")
    trace = data[0]
    raw_spans = trace.get("spans")
    if not isinstance(raw_spans, list) or not raw_spans:
        raise TraceUnreadable("the trace has no spans")
    processes = trace.get("processes") or {}
    spans: dict[str, dict[str, Any]] = {}
    for raw in raw_spans:
        span = _span(raw, processes)
        spans.setdefault(span["id"], span)
    start = min(s["start"] for s in spans.values())
    end = max(s["start"] + s["duration"] for s in spans.values())
    total = max(end - start, 1)

    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans.values():
        parent = span["parent"] if span["parent"] in spans else None
        children.setdefault(parent, []).append(span)
    for siblings in children.values():
        siblings.sort(key=lambda s: (s["start"], s["id"]))

    ordered: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()
    stack = [(0, s) for s in reversed(children.get(None, []))]
    while stack:
        depth, span = stack.pop()
        if span["id"] in seen:
            continue
        seen.add(span["id"])
        ordered.append((depth, span))
        stack.extend((depth + 1, c) for c in reversed(children.get(span["id"], [])))
    # Spans caught in a reference cycle have no root: drawn as roots after the rest.
    for span in sorted(spans.values(), key=lambda s: (s["start"], s["id"])):
        if span["id"] not in seen:
            seen.add(span["id"])
            ordered.append((0, span))

    colours: dict[str, int] = {}
    rows = []
    for depth, span in ordered[:max_rows]:
        colour = colours.setdefault(span["service"], len(colours) % COLOURS)
        offset = 100.0 * (span["start"] - start) / total
        width = max(100.0 * span["duration"] / total, MIN_WIDTH_PCT)
        rows.append(
            WaterfallRow(
                span_id=span["id"],
                depth=depth,
                service=span["service"],
                name=span["name"],
                start_ms=round((span["start"] - start) / 1000, 3),
                duration_ms=round(span["duration"] / 1000, 3),
                offset_pct=round(min(offset, 100.0 - MIN_WIDTH_PCT), 3),
                width_pct=round(min(width, 100.0 - min(offset, 100.0 - MIN_WIDTH_PCT)), 3),
                error=span["error"],
                colour=colour,
            )
        )
    services = tuple(dict.fromkeys(s["service"] for _, s in ordered))
    return Waterfall(
        trace_id=str(trace.get("traceID") or ""),
        total_ms=round(total / 1000, 3),
        rows=tuple(rows),
        services=services,
        hidden=max(len(ordered) - max_rows, 0),
    )


def _span(raw: Any, processes: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise TraceUnreadable("a span is not an object")
    try:
        span_id = str(raw["spanID"])
        start = int(raw["startTime"])
        duration = max(int(raw.get("duration") or 0), 0)
    except (KeyError, TypeError, ValueError) as exc:
        raise TraceUnreadable(f"a span lacks {exc}") from exc
    references = [r for r in raw.get("references") or [] if isinstance(r, Mapping)]
    parent = next(
        (str(r.get("spanID")) for r in references if r.get("refType") == "CHILD_OF"),
        next(
            (str(r.get("spanID")) for r in references if r.get("refType") == "FOLLOWS_FROM"), None
        ),
    )
    process = processes.get(str(raw.get("processID"))) if isinstance(processes, Mapping) else None
    service = process.get("serviceName") if isinstance(process, Mapping) else None
    tags = [t for t in raw.get("tags") or [] if isinstance(t, Mapping)]
    error = any(t.get("key") == "error" and t.get("value") in (True, "true") for t in tags) or any(
        t.get("key") == "otel.status_code" and t.get("value") == "ERROR" for t in tags
    )
    return {
        "id": span_id,
        "parent": parent if parent != span_id else None,
        "start": start,
        "duration": duration,
        "name": str(raw.get("operationName") or "?"),
        "service": str(service or "?"),
        "error": error,
    }
