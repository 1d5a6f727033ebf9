"""The trace waterfall: Jaeger's answer (the double's documented shape) into rows of bars."""

from __future__ import annotations

import pytest

from services.console.web.waterfall import MIN_WIDTH_PCT, TraceUnreadable, waterfall
from tests.support.jaeger_query_double import Span, jaeger_trace

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def answer(spans: list[Span]) -> dict:
    return {"data": [jaeger_trace(TRACE, spans)], "total": 0, "limit": 0, "offset": 0}


def test_rows_are_depth_first_with_offsets_and_widths_of_the_whole_trace() -> None:
    # A 10 ms trace: the HTTP request, its insert, then a consumer's work in another service.
    drawn = waterfall(
        answer(
            [
                Span("c", "a", "inventory", "ReserveStock process", 1_004_000, 5_000),
                Span("a", None, "order-intake", "POST /v1/orders", 1_000_000, 10_000),
                Span("b", "a", "order-intake", "INSERT orders", 1_001_000, 2_000),
                Span("d", "c", "inventory", "UPDATE stock", 1_005_000, 1_000, error=True),
            ]
        )
    )
    assert drawn.trace_id == TRACE
    assert drawn.total_ms == 10.0
    assert [(r.span_id, r.depth) for r in drawn.rows] == [("a", 0), ("b", 1), ("c", 1), ("d", 2)]
    a, b, c, d = drawn.rows
    assert (a.offset_pct, a.width_pct) == (0.0, 100.0)
    assert (b.offset_pct, b.width_pct) == (10.0, 20.0)
    assert (c.offset_pct, c.width_pct) == (40.0, 50.0)
    assert (d.start_ms, d.duration_ms, d.error) == (5.0, 1.0, True)
    assert (c.service, c.name) == ("inventory", "ReserveStock process")
    assert drawn.services == ("order-intake", "inventory")
    assert (a.colour, b.colour, c.colour) == (0, 0, 1), "one colour per service"


def test_a_span_whose_parent_is_missing_is_a_root_and_tiny_spans_stay_visible() -> None:
    drawn = waterfall(
        answer(
            [
                Span("a", None, "order-intake", "POST /v1/orders", 0, 1_000_000),
                Span("z", "not-in-trace", "payment", "AuthorizePayment", 999_999, 0),
            ]
        )
    )
    assert [(r.span_id, r.depth) for r in drawn.rows] == [("a", 0), ("z", 0)]
    late = drawn.rows[1]
    assert late.width_pct == MIN_WIDTH_PCT
    assert late.offset_pct + late.width_pct <= 100.0


def test_a_reference_cycle_is_drawn_once_and_rows_are_capped() -> None:
    drawn = waterfall(
        answer(
            [
                Span("x", "y", "a", "one", 0, 10),
                Span("y", "x", "a", "two", 5, 10),
                *[Span(f"s{n}", None, "b", f"s{n}", 20 + n, 1) for n in range(10)],
            ]
        ),
        max_rows=5,
    )
    assert len(drawn.rows) == 5 and drawn.hidden == 7
    full = waterfall(answer([Span("x", "y", "a", "one", 0, 10), Span("y", "x", "a", "two", 5, 10)]))
    assert sorted(r.span_id for r in full.rows) == ["x", "y"]


@pytest.mark.parametrize(
    "bad",
    [
        {"data": None, "errors": [{"code": 404, "msg": "trace not found"}]},
        {"data": []},
        {"data": [{"traceID": TRACE, "spans": []}]},
        {"data": [{"traceID": TRACE, "spans": [{"spanID": "a"}]}]},
        {"data": [{"traceID": TRACE, "spans": ["nonsense"]}]},
    ],
)
def test_answers_that_are_no_trace_are_refused(bad: dict) -> None:
    with pytest.raises(TraceUnreadable):
        waterfall(bad)
