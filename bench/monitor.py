"""What the bench samples while a run goes: CPU and memory per process (psutil), consumer lag
(end offsets minus each service group's committed offsets, from Kafka) and the services'
/metrics (outbox backlog and publish lag, batch sizes, messages handled)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from bench.stats import consumer_lag, histogram_quantile, merge_buckets

# --- processes -------------------------------------------------------------------------------


@dataclass
class _Tracked:
    name: str
    start_cpu: dict[int, float] = field(default_factory=dict)
    last_cpu: dict[int, float] = field(default_factory=dict)
    peak_rss: int = 0


class ProcessSampler:
    """CPU seconds and peak RSS per named group of processes over the measured window.

    A group is found again at every sample (Postgres backends come and go): a process first
    seen during the window counts from zero, one gone keeps its last reading.
    """

    def __init__(self, groups: dict[str, Callable[[], Iterable[psutil.Process]]]) -> None:
        self._groups = groups
        self._tracked = {name: _Tracked(name) for name in groups}
        self._started = 0.0
        self._stopped = 0.0

    def _sample(self, first: bool) -> None:
        for name, finder in self._groups.items():
            tracked = self._tracked[name]
            rss = 0
            for process in finder():
                try:
                    with process.oneshot():
                        times = process.cpu_times()
                        cpu = times.user + times.system
                        rss += process.memory_info().rss
                except psutil.Error:
                    continue
                if first:
                    tracked.start_cpu[process.pid] = cpu
                else:
                    tracked.start_cpu.setdefault(process.pid, 0.0)
                tracked.last_cpu[process.pid] = cpu
            tracked.peak_rss = max(tracked.peak_rss, rss)

    def start(self) -> None:
        self._started = time.monotonic()
        self._sample(first=True)

    def sample(self) -> None:
        self._sample(first=False)

    def stop(self) -> None:
        self._sample(first=False)
        self._stopped = time.monotonic()

    def results(self) -> dict[str, dict[str, float]]:
        window = max(self._stopped - self._started, 1e-9)
        out = {}
        for name, tracked in self._tracked.items():
            cpu = sum(tracked.last_cpu[pid] - tracked.start_cpu[pid] for pid in tracked.last_cpu)
            out[name] = {
                "cpu_s": round(cpu, 1),
                "cpu_cores": round(cpu / window, 2),
                "peak_rss_mb": round(tracked.peak_rss / 2**20, 1),
            }
        return out


def by_pid(pid: int) -> Callable[[], list[psutil.Process]]:
    cache: dict[int, psutil.Process] = {}

    def find() -> list[psutil.Process]:
        if pid not in cache:
            try:
                cache[pid] = psutil.Process(pid)
            except psutil.Error:
                return []
        return [cache[pid]]

    return find


def by_cmdline(*markers: str, name: str | None = None) -> Callable[[], list[psutil.Process]]:
    """Processes whose command line contains every marker (and whose name is `name`)."""
    cache: dict[int, psutil.Process] = {}

    def find() -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter(["name", "cmdline"]):
            if name is not None and process.info["name"] != name:
                continue
            cmdline = " ".join(process.info["cmdline"] or ())
            if all(marker in cmdline for marker in markers):
                found.append(cache.setdefault(process.pid, process))
        return found

    return find


# --- consumer lag ----------------------------------------------------------------------------


class LagSampler:
    def __init__(self, bootstrap: str, groups: dict[str, list[str]]) -> None:
        """groups: consumer group -> the topics it reads."""
        self._bootstrap = bootstrap
        self._groups = groups
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: dict[str, list[TopicPartition]] = {}
        self.samples: list[tuple[float, dict[str, int]]] = []

    async def start(self) -> None:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
        await self._admin.start()
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap)
        await self._consumer.start()
        await self._consumer._client.force_metadata_update()
        for group, topics in self._groups.items():
            self._partitions[group] = [
                TopicPartition(topic, p)
                for topic in topics
                for p in sorted(self._consumer.partitions_for_topic(topic) or ())
            ]

    async def sample(self) -> dict[str, int]:
        assert self._admin is not None and self._consumer is not None
        every = [tp for tps in self._partitions.values() for tp in tps]
        ends = await self._consumer.end_offsets(every)
        lags = {}
        for group, tps in self._partitions.items():
            committed = await self._admin.list_consumer_group_offsets(group)
            lags[group] = consumer_lag(
                {(tp.topic, tp.partition): ends[tp] for tp in tps},
                {
                    (tp.topic, tp.partition): meta.offset
                    for tp, meta in committed.items()
                    if meta is not None
                },
            )
        self.samples.append((time.time(), lags))
        return lags

    def peak(self) -> dict[str, int]:
        peaks: dict[str, int] = defaultdict(int)
        for _, lags in self.samples:
            for group, lag in lags.items():
                peaks[group] = max(peaks[group], lag)
        return dict(peaks)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()


# --- /metrics --------------------------------------------------------------------------------


@dataclass
class ServiceMetrics:
    outbox_backlog: float = 0.0
    outbox_lag_buckets: list[tuple[float, float]] = field(default_factory=list)
    outbox_lag_sum: float = 0.0
    outbox_lag_count: float = 0.0
    batch_buckets: list[tuple[float, float]] = field(default_factory=list)
    batch_sum: float = 0.0
    batch_count: float = 0.0
    handled: dict[str, float] = field(default_factory=dict)


# Prometheus samples summed over a service's series: sample name -> ServiceMetrics field.
_SUMS = {
    "oms_outbox_backlog": "outbox_backlog",
    "oms_outbox_publish_lag_seconds_sum": "outbox_lag_sum",
    "oms_outbox_publish_lag_seconds_count": "outbox_lag_count",
    "oms_consumer_batch_size_sum": "batch_sum",
    "oms_consumer_batch_size_count": "batch_count",
}
# Histogram buckets merged by upper bound: sample name -> ServiceMetrics field.
_BUCKETS = {
    "oms_outbox_publish_lag_seconds_bucket": "outbox_lag_buckets",
    "oms_consumer_batch_size_bucket": "batch_buckets",
}


def parse_metrics(text: str) -> ServiceMetrics:
    found = ServiceMetrics()
    buckets: dict[str, dict[float, float]] = {
        name: defaultdict(float) for name in _BUCKETS.values()
    }
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in _SUMS:
                name = _SUMS[sample.name]
                setattr(found, name, getattr(found, name) + sample.value)
            elif sample.name in _BUCKETS:
                buckets[_BUCKETS[sample.name]][float(sample.labels["le"])] += sample.value
            elif sample.name == "oms_messages_handled_total":
                outcome = sample.labels.get("outcome", "?")
                found.handled[outcome] = found.handled.get(outcome, 0.0) + sample.value
    for name, counts in buckets.items():
        setattr(found, name, sorted(counts.items()))
    return found


class MetricsSampler:
    def __init__(self, replicas: dict[str, list[str]]) -> None:
        """replicas: service -> base URLs of its replicas."""
        self._replicas = replicas
        self._client = httpx.AsyncClient(timeout=5)
        self.peak_backlog: dict[str, float] = defaultdict(float)
        self.last: dict[str, list[ServiceMetrics]] = {}

    async def sample(self) -> None:
        for service, urls in self._replicas.items():
            found = []
            for url in urls:
                with contextlib.suppress(httpx.HTTPError):
                    response = await self._client.get(f"{url}/metrics")
                    found.append(parse_metrics(response.text))
            if found:
                self.last[service] = found
                backlog = sum(m.outbox_backlog for m in found)
                self.peak_backlog[service] = max(self.peak_backlog[service], backlog)

    def summary(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for service, replicas in self.last.items():
            lag = merge_buckets(m.outbox_lag_buckets for m in replicas)
            lag_count = sum(m.outbox_lag_count for m in replicas)
            batch_count = sum(m.batch_count for m in replicas)
            handled: dict[str, float] = defaultdict(float)
            for m in replicas:
                for outcome, n in m.handled.items():
                    handled[outcome] += n
            p50 = histogram_quantile(lag, 0.5)
            p99 = histogram_quantile(lag, 0.99)
            out[service] = {
                "outbox_backlog_peak": int(self.peak_backlog.get(service, 0)),
                "outbox_backlog_end": int(sum(m.outbox_backlog for m in replicas)),
                "outbox_published": int(lag_count),
                "outbox_lag_mean_ms": round(
                    1000 * sum(m.outbox_lag_sum for m in replicas) / lag_count, 1
                )
                if lag_count
                else None,
                "outbox_lag_p50_ms": round(p50 * 1000, 1) if p50 is not None else None,
                "outbox_lag_p99_ms": round(p99 * 1000, 1) if p99 is not None else None,
                "consumer_batches": int(batch_count),
                "consumer_batch_mean": round(sum(m.batch_sum for m in replicas) / batch_count, 1)
                if batch_count
                else None,
                "messages": {k: int(v) for k, v in sorted(handled.items())},
            }
        return out

    async def close(self) -> None:
        await self._client.aclose()


class OutboxSampler:
    """Rows waiting in every service's outbox and the age of the oldest, read from Postgres
    through the bench's own admin connection (the /metrics gauge is only set per relay pass)."""

    def __init__(self, admin_url: str, services: Iterable[str]) -> None:
        self._admin_url = admin_url
        self._sql = " UNION ALL ".join(
            f"SELECT '{s}', count(*), extract(epoch FROM clock_timestamp() - min(created_at))"
            f" FROM {s}.outbox"
            for s in services
        )
        self._conn: Any = None
        self.peak_rows: dict[str, int] = defaultdict(int)
        self.peak_age_s: dict[str, float] = defaultdict(float)

    async def sample(self) -> None:
        import asyncpg

        if self._conn is None:
            self._conn = await asyncpg.connect(self._admin_url)
        for service, rows, age in await self._conn.fetch(self._sql):
            self.peak_rows[service] = max(self.peak_rows[service], int(rows))
            self.peak_age_s[service] = max(self.peak_age_s[service], float(age or 0))

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


async def periodically(interval_s: float, *jobs: Callable[[], Any]) -> None:
    """Run each job every interval_s until cancelled; a failing sample is skipped."""
    while True:
        for job in jobs:
            with contextlib.suppress(Exception):
                result = job()
                if asyncio.iscoroutine(result):
                    await result
        await asyncio.sleep(interval_s)
