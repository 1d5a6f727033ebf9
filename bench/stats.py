"""Pure statistics of a run: percentiles, throughput, Prometheus histograms, consumer lag."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between closest ranks."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return float(ordered[low] + (ordered[high] - ordered[low]) * fraction)


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "mean_ms": self.mean_ms,
        }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def summarise_latencies(seconds: Sequence[float]) -> LatencySummary:
    """p50/p95/p99/max/mean in milliseconds of latencies given in seconds."""
    if not seconds:
        return LatencySummary(0, None, None, None, None, None)
    return LatencySummary(
        count=len(seconds),
        p50_ms=_ms(percentile(seconds, 50)),
        p95_ms=_ms(percentile(seconds, 95)),
        p99_ms=_ms(percentile(seconds, 99)),
        max_ms=_ms(max(seconds)),
        mean_ms=_ms(sum(seconds) / len(seconds)),
    )


@dataclass(frozen=True)
class Throughput:
    count: int
    overall_per_s: float | None
    """count / (last completion - first submission): includes ramp-up and drain."""
    sustained_per_s: float | None
    """Completions per second between the 10th and the 90th percentile of completion times:
    the steady middle of the run, without the ramp-up and the tail."""

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "overall_per_s": self.overall_per_s,
            "sustained_per_s": self.sustained_per_s,
        }


def throughput(started_at: float, completions: Iterable[float]) -> Throughput:
    """Orders per second reaching a state, from the first submission's time and each order's
    time of reaching it (same clock, seconds)."""
    times = sorted(completions)
    if not times:
        return Throughput(0, None, None)
    span = times[-1] - started_at
    overall = round(len(times) / span, 1) if span > 0 else None
    sustained = None
    if len(times) >= 20:
        low = int(len(times) * 0.1)
        high = int(len(times) * 0.9)
        window = times[high] - times[low]
        if window > 0:
            sustained = round((high - low) / window, 1)
    return Throughput(len(times), overall, sustained)


def histogram_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """A quantile (0..1) from cumulative Prometheus buckets [(upper bound, count)], the way
    PromQL's histogram_quantile interpolates within a bucket. None when nothing was observed;
    the highest finite bound when the quantile falls into the +Inf bucket."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    total = ordered[-1][1]
    target = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= target:
            if math.isinf(bound):
                return previous_bound
            in_bucket = count - previous_count
            if in_bucket <= 0:
                return bound
            return previous_bound + (bound - previous_bound) * (target - previous_count) / in_bucket
        previous_bound, previous_count = bound, count
    return previous_bound


def merge_buckets(
    histograms: Iterable[Sequence[tuple[float, float]]],
) -> list[tuple[float, float]]:
    """Add up cumulative histograms with the same bounds (e.g. from several replicas)."""
    merged: dict[float, float] = {}
    for histogram in histograms:
        for bound, count in histogram:
            merged[bound] = merged.get(bound, 0.0) + count
    return sorted(merged.items())


def consumer_lag(
    end_offsets: Mapping[tuple[str, int], int],
    committed: Mapping[tuple[str, int], int | None],
) -> int:
    """Messages not yet consumed by a group over the partitions it reads: end offset minus the
    committed offset; a partition without a committed offset lags by everything on it."""
    lag = 0
    for partition, end in end_offsets.items():
        done = committed.get(partition)
        lag += max(0, end - (done if done is not None and done >= 0 else 0))
    return lag


def rate_series(times: Iterable[float], started_at: float, bucket_s: float = 1.0) -> list[int]:
    """How many completions fell into each bucket_s-second slot after started_at."""
    counts: list[int] = []
    for t in times:
        slot = int(max(0.0, t - started_at) // bucket_s)
        while len(counts) <= slot:
            counts.append(0)
        counts[slot] += 1
    return counts
