import math

import pytest

from bench.stats import (
    consumer_lag,
    histogram_quantile,
    merge_buckets,
    percentile,
    rate_series,
    summarise_latencies,
    throughput,
)


def test_percentile_interpolates_between_closest_ranks():
    values = [10, 20, 30, 40, 50]
    assert percentile(values, 0) == 10
    assert percentile(values, 50) == 30
    assert percentile(values, 100) == 50
    assert percentile(values, 25) == 20
    assert percentile(values, 90) == pytest.approx(46)


def test_percentile_ignores_input_order_and_handles_edge_cases():
    assert percentile([3, 1, 2], 50) == 2
    assert percentile([], 99) is None
    assert percentile([7], 99) == 7
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_latency_summary_in_milliseconds():
    summary = summarise_latencies([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert summary.count == 100
    assert summary.p50_ms == pytest.approx(50.5)
    assert summary.p99_ms == pytest.approx(99.0, abs=0.1)
    assert summary.max_ms == 100.0
    assert summary.mean_ms == pytest.approx(50.5)
    assert summarise_latencies([]).as_dict()["p99_ms"] is None


def test_throughput_overall_and_sustained_middle_of_the_run():
    # 1,000 completions at exactly 100/s, starting 2 s after the first submission.
    completions = [2 + i / 100 for i in range(1000)]
    result = throughput(0.0, completions)
    assert result.count == 1000
    assert result.overall_per_s == pytest.approx(1000 / 11.99, rel=1e-3)
    assert result.sustained_per_s == pytest.approx(100, rel=1e-2), "ramp-up excluded"


def test_throughput_of_nothing_and_of_too_few():
    assert throughput(0.0, []).overall_per_s is None
    few = throughput(0.0, [1.0, 2.0])
    assert few.count == 2 and few.sustained_per_s is None


def test_histogram_quantile_interpolates_like_promql():
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (math.inf, 100.0)]
    assert histogram_quantile(buckets, 0.5) == pytest.approx(0.1)
    assert histogram_quantile(buckets, 0.7) == pytest.approx(0.3)
    assert histogram_quantile(buckets, 0.99) == pytest.approx(0.95)
    assert histogram_quantile([(1.0, 0.0), (math.inf, 0.0)], 0.5) is None


def test_histogram_quantile_in_the_inf_bucket_answers_the_highest_bound():
    assert histogram_quantile([(1.0, 10.0), (math.inf, 20.0)], 0.99) == 1.0


def test_merge_buckets_adds_replicas():
    merged = merge_buckets([[(0.1, 1.0), (math.inf, 2.0)], [(0.1, 3.0), (math.inf, 5.0)]])
    assert merged == [(0.1, 4.0), (math.inf, 7.0)]


def test_consumer_lag_is_end_minus_committed_and_everything_when_never_committed():
    ends = {("t", 0): 100, ("t", 1): 50, ("t", 2): 7}
    committed = {("t", 0): 90, ("t", 1): 50}
    assert consumer_lag(ends, committed) == 10 + 0 + 7
    assert consumer_lag(ends, {("t", 0): -1, ("t", 1): 60, ("t", 2): 7}) == 100


def test_rate_series_counts_per_second():
    assert rate_series([0.1, 0.2, 1.5, 3.9], 0.0) == [2, 1, 0, 1]
