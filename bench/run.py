"""`python -m bench.run` (`make bench`): one benchmark run, end to end.

Options: bench/config.py (`python -m bench.run --help`). `python -m bench.run --compare
bench-results/*.json` prints earlier runs side by side. The run: a dedicated environment
(system.py), stock seeded and orders fed (feeder.py) while the samplers measure (monitor.py) and
py-spy records (profiles.py), then the verdict (verdict.py) and the result (results.py,
report.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench import report
from bench.chaos import Chaos
from bench.config import Config, config_from, parse_args
from bench.feeder import Feeder, seed_stock
from bench.monitor import (
    LagSampler,
    MetricsSampler,
    OutboxSampler,
    ProcessSampler,
    by_cmdline,
    by_pid,
    periodically,
)
from bench.observer import Observer
from bench.profiles import start_profiles, summarise_profiles
from bench.restocker import Restocker
from bench.results import load_average, read_json, result_document
from bench.system import (
    REPO,
    bring_up_infra,
    consumed_topics,
    provision,
    remove_leftovers,
    start_services,
    start_warehouse,
    tear_down,
)
from bench.verdict import correctness, fail, order_ids_by_reference, quiesce
from bench.workload import generate
from shared.topics import ORDERS_EVENTS, SERVICES

RESULTS = REPO / "bench-results"
TERMINAL = ("COMPLETED", "REJECTED", "CANCELLED", "NEEDS_ATTENTION")
FAILED_END = ("REJECTED", "CANCELLED", "NEEDS_ATTENTION")


async def run(config: Config, infra: Any, console: Console) -> dict[str, Any]:
    out = RESULTS / config.label
    out.mkdir(parents=True, exist_ok=True)
    if config.ingress in ("kafka", "both"):
        from bench.channel import available

        if not available():
            raise SystemExit(
                "the Kafka channel ingress is not there yet (shared/contracts/channels.py);"
                " run with --ingress http"
            )
    workload = generate(
        orders=config.orders,
        skus=config.skus,
        max_lines=config.max_lines,
        stock_factor=config.stock_factor,
        seed=config.seed,
        run_tag=config.label,
        backorder_skus=config.backorder_skus,
    )
    env = await provision(infra)
    console.print(f"environment: database {env.database}, topic prefix {env.prefix}")
    services = start_services(
        env,
        replicas=config.replicas,
        log_dir=out / "logs",
        extra_env=config.service_env,
        code=Path(config.code),
    )
    warehouse_proc: subprocess.Popen[bytes] | None = None
    observer = Observer(env.kafka_bootstrap, env.topic(ORDERS_EVENTS))
    lag = LagSampler(
        env.kafka_bootstrap,
        {env.group(s): [env.topic(t) for t in consumed_topics(s)] for s in SERVICES},
    )
    metrics = MetricsSampler({s: services.urls(s) for s in SERVICES})
    outboxes = OutboxSampler(env.admin_url, SERVICES)
    feeder: Feeder | None = None
    samplers: asyncio.Task[None] | None = None
    chaos: Chaos | None = None
    chaos_task: asyncio.Task[None] | None = None
    restocking: asyncio.Task[None] | None = None
    try:
        await services.wait_ready()
        await seed_stock(services, workload)
        restocker = Restocker(services, workload, config.restock_every_s)
        restocking = asyncio.create_task(restocker.run())
        await observer.start()
        await lag.start()
        if config.warehouse:
            warehouse_proc = start_warehouse(
                env,
                services,
                out,
                lookup=config.warehouse_lookup,
                chaos=config.chaos,
                skus=config.skus,
            )
        groups: dict[str, Any] = {p.name: by_pid(p.pid) for p in services.processes}
        if warehouse_proc is not None:
            groups["warehouse"] = by_pid(warehouse_proc.pid)
        groups["bench (load, observer)"] = by_pid(os.getpid())
        groups["postgres (this run's backends)"] = by_cmdline(env.database, name="postgres")
        groups["postgres (all, shared)"] = by_cmdline(name="postgres")
        groups["kafka (shared)"] = by_cmdline("kafka.Kafka")
        processes = ProcessSampler(groups)
        await asyncio.sleep(1)  # let the observer's and warehouse's consumers settle

        load_before = load_average()
        progress = observer.progress
        feeder = Feeder(
            config,
            env,
            services,
            workload,
            lambda: progress.count("FULFILLING", *FAILED_END),
        )
        processes.start()
        started = time.time()
        samplers = asyncio.create_task(
            periodically(1.0, processes.sample, lag.sample, metrics.sample, outboxes.sample)
        )
        profilers = start_profiles(config, services, out, config.profile_seconds)
        feeding = asyncio.create_task(feeder.run())
        if config.chaos:
            chaos = Chaos(
                services,
                progress=lambda: progress.count(*TERMINAL) / max(config.orders, 1),
                kill_every_s=config.kill_every_s,
                seed=config.seed,
            )
            chaos_task = asyncio.create_task(chaos.run())
        settled = await _watch(config, feeder, feeding, observer, console)
        restocker.stop()
        await restocking
        if chaos is not None and chaos_task is not None:
            chaos.stop()
            await chaos_task
            await services.wait_ready()
        fed_until = max((s.sent for s in feeder.submissions), default=started)
        processes.stop()
        finished = time.time()
        samplers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await samplers
        for profiler in profilers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                profiler.wait(90)
        load_after = load_average()
        await metrics.sample()
        lag_end = await lag.sample()
        quiet = await quiesce(env, lag)
        await metrics.sample()
        if warehouse_proc is not None:
            warehouse_proc.send_signal(signal.SIGTERM)
            warehouse_proc.wait(30)
        await feeder.stop()
        await observer.stop()

        reference_ids = {s.reference: s.order_id for s in feeder.submissions if s.order_id}
        if any(s.ingress == "kafka" for s in feeder.submissions):
            reference_ids.update(await order_ids_by_reference(env))
        submitted_ids = {
            reference_ids[s.reference]
            for s in feeder.submissions
            if s.refused is None and s.reference in reference_ids
        }
        unmatched = [
            s.reference
            for s in feeder.submissions
            if s.refused is None and s.reference not in reference_ids
        ]
        verdict = await correctness(
            env,
            services,
            workload,
            submitted_ids,
            observer.progress.messages,
            warehouse=config.warehouse,
            chaos=config.chaos,
            restocked=restocker.received,
            reached=observer.progress.reached,
        )
        if chaos is not None:
            verdict["chaos"] = chaos.summary()
            for failure in chaos.failures:
                fail(verdict, "chaos invariants", failure)
        if unmatched:
            fail(
                verdict,
                "orders settled",
                f"{len(unmatched)} orders sent on Kafka never became orders"
                f" (e.g. {', '.join(unmatched[:5])})",
            )
        refused = [s for s in feeder.submissions if s.refused is not None]
        if refused:
            fail(
                verdict,
                "orders settled",
                f"{len(refused)} orders refused by order-intake (e.g. {refused[0].refused})",
            )
        if not settled:
            fail(
                verdict,
                "orders settled",
                f"not every order settled within {config.settle_timeout_s:.0f}s",
            )
        if not quiet:
            fail(
                verdict,
                "orders settled",
                "outboxes or consumer groups still busy 120s after the last order settled",
            )

        result = result_document(
            config,
            feeder,
            observer,
            reference_ids,
            started=started,
            fed_until=fed_until,
            finished=finished,
            processes=processes.results(),
            outbox={
                service: {
                    **summary,
                    "outbox_rows_peak": outboxes.peak_rows.get(service),
                    "outbox_oldest_row_peak_ms": round(
                        1000 * outboxes.peak_age_s.get(service, 0.0), 1
                    ),
                }
                for service, summary in metrics.summary().items()
            },
            lag_peak=lag.peak(),
            lag_end=lag_end,
            verdict=verdict,
            load=(load_before, load_after),
            warehouse_stats=read_json(out / "warehouse.json"),
            profiles=summarise_profiles(config, out),
        )
        report.write_json(result, RESULTS)
        return result
    finally:
        if samplers is not None:
            samplers.cancel()
        if restocking is not None:
            restocking.cancel()
        if chaos_task is not None:
            chaos_task.cancel()
        if warehouse_proc is not None and warehouse_proc.poll() is None:
            warehouse_proc.kill()
        services.stop()
        await metrics.close()
        await outboxes.close()
        with contextlib.suppress(Exception):
            await lag.stop()
        with contextlib.suppress(Exception):
            await observer.stop()
        if not config.keep:
            await tear_down(env)


async def _watch(
    config: Config,
    feeder: Feeder,
    feeding: asyncio.Task[None],
    observer: Observer,
    console: Console,
) -> bool:
    """Show progress until every submitted order settled; False on timeout or a stall."""
    target_state = "COMPLETED" if config.warehouse else "FULFILLING"
    progress = observer.progress
    columns = (
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        sent = bar.add_task("sent", total=config.orders, rate="")
        confirmed = bar.add_task("CONFIRMED (FULFILLING)", total=config.orders, rate="")
        completed = bar.add_task(
            "COMPLETED",
            total=config.orders if config.warehouse else 0,
            rate="",
            visible=config.warehouse,
        )
        failed = bar.add_task("rejected/cancelled", total=config.orders, rate="")
        last_change, last_settled = time.monotonic(), -1
        started = time.monotonic()
        while True:
            if feeding.done() and feeding.exception() is not None:
                raise feeding.exception()  # type: ignore[misc]
            elapsed = max(time.monotonic() - started, 1e-6)
            n_sent = len(feeder.submissions)
            n_confirmed = progress.count("FULFILLING")
            n_completed = progress.count("COMPLETED")
            n_failed = progress.count(*FAILED_END)
            bar.update(sent, completed=n_sent, rate=f"{n_sent / elapsed:,.0f}/s")
            bar.update(confirmed, completed=n_confirmed, rate=f"{n_confirmed / elapsed:,.0f}/s")
            bar.update(completed, completed=n_completed, rate=f"{n_completed / elapsed:,.0f}/s")
            bar.update(failed, completed=n_failed)
            accepted = sum(1 for s in feeder.submissions if s.refused is None)
            settled = progress.count(target_state, *FAILED_END)
            if feeder.done and settled >= accepted:
                return True
            if settled != last_settled:
                last_settled, last_change = settled, time.monotonic()
            stalled = time.monotonic() - last_change > 120
            if feeder.done and (stalled or time.monotonic() - started > config.settle_timeout_s):
                return False
            await asyncio.sleep(0.25)


def wait_until_quiet(threshold: float, console: Console, max_wait_s: float = 900) -> None:
    deadline = time.monotonic() + max_wait_s
    while os.getloadavg()[0] > threshold and time.monotonic() < deadline:
        console.print(f"load average {os.getloadavg()[0]:.2f} > {threshold}: waiting")
        time.sleep(30)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.compare:
        report.compare_files(args.compare)
        return
    if args.cleanup:
        removed = asyncio.run(remove_leftovers(bring_up_infra()))
        Console().print(f"removed: {', '.join(removed) or 'nothing'}")
        return
    config = config_from(args)
    console = Console(width=None if sys.stdout.isatty() else 140)
    if config.wait_quiet:
        wait_until_quiet(config.wait_quiet, console)
    infra = bring_up_infra()
    import uvloop

    result = uvloop.run(run(config, infra, console))
    report.print_result(result, console)
    console.print(f"JSON: {RESULTS / (result['label'] + '.json')}")
    sys.exit(0 if result["correctness"]["passed"] else 1)


if __name__ == "__main__":
    main()
