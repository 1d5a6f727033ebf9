import orjson
from rich.console import Console

from bench.profiles import self_by_package, top_frames
from bench.report import comparison, headline_rows, render, write_json


def result(passed: bool = True) -> dict:
    latency = {
        "count": 10,
        "p50_ms": 120.0,
        "p95_ms": 300.0,
        "p99_ms": 450.5,
        "max_ms": 480.0,
        "mean_ms": 150.0,
    }
    return {
        "label": "unit-run",
        "config": {
            "orders": 10_000,
            "rate": 200.0,
            "ingress": "http",
            "replicas": 1,
            "warehouse": True,
        },
        "environment": {"load_before": [0.5, 0.7, 0.9], "load_after": [1.5, 1.0, 0.9]},
        "submitted": 10_000,
        "refused": 0,
        "feed_rate_per_s": 199.9,
        "cpu_ms_per_order": 12.5,
        "throughput": {
            "confirmed": {"count": 10_000, "overall_per_s": 190.0, "sustained_per_s": 199.5},
            "completed": {"count": 10_000, "overall_per_s": 180.0, "sustained_per_s": 199.0},
        },
        "latency": {
            "confirmed": {"event_time": latency, "consume_time": latency},
            "completed": {"event_time": latency, "consume_time": latency},
        },
        "accept_latency": latency,
        "processes": {"order_intake#0": {"cpu_s": 10.0, "cpu_cores": 0.5, "peak_rss_mb": 90.0}},
        "outbox": {
            "order_intake": {
                "outbox_backlog_peak": 3,
                "outbox_lag_p50_ms": 5.0,
                "outbox_lag_p99_ms": 40.0,
                "consumer_batch_mean": 12.0,
            }
        },
        "consumer_lag": {"peak": {"order_intake": 40}, "end": {"order_intake": 0}},
        "correctness": {
            "passed": passed,
            "checks": {
                "stock conserved": {
                    "passed": passed,
                    "problems": [] if passed else ["lost 1"],
                    "facts": {},
                }
            },
        },
    }


def test_headline_has_the_numbers_the_issue_asks_for():
    rows = dict(headline_rows(result()))
    assert rows["orders/s to CONFIRMED (sustained | overall)"].startswith("199.5 | 190.0")
    assert "p99 450.5" in rows["latency to CONFIRMED (event time)"]
    assert rows["correctness"] == "PASSED"
    assert "10,000 orders, rate 200.0" in rows["run"]


def test_a_failed_check_is_listed_under_correctness():
    rows = headline_rows(result(passed=False))
    assert ("correctness", "FAILED") in rows
    assert ("  stock conserved", "lost 1") in rows


def test_render_and_comparison_print(tmp_path):
    console = Console(record=True, width=160)
    console.print(render(result()))
    console.print(comparison([result(), result(passed=False)]))
    text = console.export_text()
    assert "OMS benchmark — unit-run" in text
    assert "order_intake#0" in text
    assert "NO" in text
    path = write_json(result(), tmp_path)
    assert orjson.loads(path.read_bytes())["label"] == "unit-run"


def test_top_frames_inclusive_and_self_shares():
    collapsed = [
        "main (a.py:1);handle (b.py:2);execute (asyncpg/connection.py:3) 6",
        "main (a.py:1);handle (b.py:2) 2",
        "main (a.py:1);relay (c.py:9) 2",
        "",
    ]
    frames = top_frames(collapsed)
    assert frames["inclusive"][0] == ("main (a.py:1)", 100.0)
    assert ("handle (b.py:2)", 80.0) in frames["inclusive"]
    assert frames["self"][0] == ("execute (asyncpg/connection.py:3)", 60.0)


def test_self_time_by_package():
    collapsed = [
        "x (services/order_intake/store.py:1);execute (asyncpg/connection.py:3) 3",
        "x (services/order_intake/store.py:1) 1",
    ]
    assert self_by_package(collapsed) == [("asyncpg", 75.0), ("services/order_intake", 25.0)]
