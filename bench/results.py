"""The result document of a run, from what the feeder sent, the observer saw and the samplers
measured.

"event time" latency ends at the `at` of the order's OrderStatusChanged (when the saga decided,
inside its transaction); "consume time" latency ends when the bench consumed that event from
Kafka (adds the commit, order-intake's outbox relay and Kafka). All clocks are this machine's.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psutil

from bench.config import Config
from bench.feeder import Feeder
from bench.observer import Observer
from bench.stats import rate_series, summarise_latencies, throughput
from bench.system import REPO


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _git() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain")),
    }


def read_json(path: Path) -> Any:
    with contextlib.suppress(OSError, orjson.JSONDecodeError):
        return orjson.loads(path.read_bytes())
    return None


def result_document(
    config: Config,
    feeder: Feeder,
    observer: Observer,
    reference_ids: dict[str, str],
    *,
    started: float,
    fed_until: float,
    finished: float,
    processes: dict[str, Any],
    outbox: dict[str, Any],
    lag_peak: dict[str, int],
    lag_end: dict[str, int],
    verdict: dict[str, Any],
    load: tuple[list[float], list[float]],
    warehouse_stats: Any,
    profiles: dict[str, Any],
) -> dict[str, Any]:
    reached = observer.progress.reached
    sent_at = {}
    accept_latencies = []
    for s in feeder.submissions:
        order_id = reference_ids.get(s.reference)
        if order_id is not None and s.refused is None:
            sent_at[order_id] = s.sent
        if s.accepted is not None:
            accept_latencies.append(s.accepted - s.sent)

    def latencies(status: str) -> dict[str, Any]:
        event, consume = [], []
        for order_id, t0 in sent_at.items():
            hit = reached.get(order_id, {}).get(status)
            if hit is not None:
                event.append(hit[0] - t0)
                consume.append(hit[1] - t0)
        return {
            "event_time": summarise_latencies(event).as_dict(),
            "consume_time": summarise_latencies(consume).as_dict(),
        }

    def completions(status: str) -> list[float]:
        return [reached[o][status][0] for o in sent_at if o in reached and status in reached[o]]

    refused = [s for s in feeder.submissions if s.refused is not None]
    confirmed = sum(1 for o in sent_at if "FULFILLING" in reached.get(o, {}))
    ours = [p["cpu_s"] for name, p in processes.items() if "shared" not in name]
    feed_span = fed_until - started
    return {
        "label": config.label,
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(),
        "config": config.describe(),
        "environment": {
            "cpus": psutil.cpu_count(),
            "load_before": load[0],
            "load_after": load[1],
            **_git(),
        },
        "submitted": len(feeder.submissions),
        "refused": len(refused),
        "refused_examples": [s.refused for s in refused[:5]],
        "throttled": {
            "orders": sum(1 for s in feeder.submissions if s.throttled),
            "retries": sum(s.throttled for s in feeder.submissions),
        },
        "feed_seconds": round(feed_span, 2),
        "feed_rate_per_s": round(len(feeder.submissions) / feed_span, 1) if feed_span > 0 else None,
        "measured_seconds": round(finished - started, 2),
        "accept_latency": summarise_latencies(accept_latencies).as_dict(),
        "throughput": {
            "confirmed": throughput(started, completions("FULFILLING")).as_dict(),
            "completed": throughput(started, completions("COMPLETED")).as_dict(),
        },
        "latency": {"confirmed": latencies("FULFILLING"), "completed": latencies("COMPLETED")},
        "per_second": {
            "sent": rate_series((s.sent for s in feeder.submissions), started),
            "confirmed": rate_series(completions("FULFILLING"), started),
            "completed": rate_series(completions("COMPLETED"), started),
        },
        "processes": processes,
        "cpu_ms_per_order": round(1000 * sum(ours) / confirmed, 1) if confirmed else None,
        "outbox": outbox,
        "consumer_lag": {
            "peak": {_service_of(g): n for g, n in lag_peak.items()},
            "end": {_service_of(g): n for g, n in lag_end.items()},
        },
        "warehouse": warehouse_stats,
        "profiles": profiles,
        "correctness": verdict,
    }


def _service_of(group: str) -> str:
    return group.rsplit(".", 1)[-1]
