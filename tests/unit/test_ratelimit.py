"""Per-client token buckets: a burst passes, the rest waits; clients do not share a bucket."""

from __future__ import annotations

from shared.platform.ratelimit import RateLimiter, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_rate_holds_per_client():
    clock = Clock()
    limiter = RateLimiter(per_second=2, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("a")
    assert wait == 0.5 and retry_after_header(wait) == {"Retry-After": "1"}
    assert limiter.take("b") == 0.0, "another client has its own bucket"
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0


def test_zero_means_no_limit_and_the_table_stays_bounded():
    assert RateLimiter(per_second=0, burst=1).take("a") == 0.0
    limiter = RateLimiter(per_second=1, burst=1, max_clients=2)
    for client in ("a", "b", "c"):
        limiter.take(client)
    assert list(limiter._buckets) == ["b", "c"]
