"""Wiring shared by all five services: one FastAPI app per process that owns the database pool,
the Kafka broker (FastStream), the consumer, the outbox relay and the health/metrics endpoints.

A service describes itself with a ServiceSpec; `create_app` turns it into an ASGI app and `run`
serves it with uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from faststream.kafka import KafkaBroker, Topic
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.middlewares import AckPolicy
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tenacity import AsyncRetrying, stop_after_delay, wait_exponential

import shared.contracts  # noqa: F401  (registers every message type)
from shared.envelope import Envelope
from shared.platform import metrics
from shared.platform.auth import token_verifier
from shared.platform.consumer import Consumer
from shared.platform.db import create_pool
from shared.platform.errors import BodyLimit, install_error_handlers
from shared.platform.handlers import HandlerRegistry
from shared.platform.housekeeping import prune_inbox, retention_job
from shared.platform.kafka_security import aiokafka_options, faststream_security
from shared.platform.logs import setup_logging
from shared.platform.migrations import migrate, pending
from shared.platform.openapi import install_error_responses
from shared.platform.outbox import OutboxRelay, UnitOfWork, unit_of_work
from shared.platform.ratelimit import RateLimiter
from shared.platform.settings import ServiceSettings
from shared.platform.telemetry import setup_tracing, shutdown_tracing
from shared.topics import dead_letter_topic

log = logging.getLogger(__name__)


BackgroundJob = Callable[["Runtime"], Coroutine[Any, Any, None]]
"""A task that runs while the service runs (cancelled at shutdown)."""


@dataclass
class ServiceSpec:
    settings: ServiceSettings
    title: str
    description: str
    migrations: Path
    topics: Sequence[str] = ()
    handlers: HandlerRegistry = field(default_factory=HandlerRegistry)
    routers: Sequence[APIRouter] = ()
    background: Sequence[BackgroundJob] = ()
    on_start: Sequence[Callable[[Runtime], Awaitable[None]]] = ()
    # What a service adds to its app beyond routes (the console: its session middleware, its
    # static files, sign-in redirects), applied after the routes.
    configure_app: Sequence[Callable[[FastAPI], None]] = ()

    def settings_as(self, kind: type[SettingsT]) -> SettingsT:
        """The spec's settings as the service's own settings class."""
        return settings_as(kind, self.settings)


@dataclass
class Runtime:
    """What routes and background tasks of a running service reach for."""

    settings: ServiceSettings
    pool: asyncpg.Pool
    broker: KafkaBroker
    relay: OutboxRelay
    consumer: Consumer | None
    migrations: Path
    state: dict[str, Any] = field(default_factory=dict)

    def uow(
        self, cause: Envelope | None = None
    ) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        return unit_of_work(
            self.pool, self.settings.service_name, cause, topic_prefix=self.settings.topic_prefix
        )


async def get_runtime(request: Request) -> Runtime:
    """The running service (a FastAPI dependency: `RuntimeDep`). Every dependency is async:
    FastAPI runs a sync one in its thread pool, a thread hop per request."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def settings_as(kind: type[SettingsT], settings: ServiceSettings) -> SettingsT:
    if not isinstance(settings, kind):
        raise TypeError(f"the service runs with {type(settings).__name__}, not {kind.__name__}")
    return settings


def service_settings(
    kind: type[SettingsT],
) -> Callable[[Runtime], Coroutine[Any, Any, SettingsT]]:
    """A FastAPI dependency: the running service's settings, typed as its own settings class.
    A service declares it once, e.g.
    `Settings = Annotated[ReturnsSettings, Depends(service_settings(ReturnsSettings))]`."""

    async def provide(runtime: RuntimeDep) -> SettingsT:
        return settings_as(kind, runtime.settings)

    return provide


def _build_broker(settings: ServiceSettings) -> KafkaBroker:
    provider = setup_tracing(
        settings.service_name, settings.otlp_endpoint, sample_ratio=settings.trace_sample_ratio
    )
    return KafkaBroker(
        settings.kafka_bootstrap,
        security=faststream_security(settings),
        client_id=settings.service_name,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        middlewares=[KafkaTelemetryMiddleware(tracer_provider=provider)],
        logger=logging.getLogger(f"faststream.{settings.service_name}"),
        log_level=logging.DEBUG,  # one line per message is too much at INFO
    )


async def _ignore_body(_: Any) -> None:
    # Records are decoded by the Consumer itself, so malformed ones become dead letters.
    return None


def create_app(spec: ServiceSpec) -> FastAPI:
    settings = spec.settings
    setup_logging(settings.service_name, settings.log_level, json=settings.log_json)
    broker = _build_broker(settings)
    holder: dict[str, Consumer] = {}
    holder_subscriber: dict[str, Any] = {}

    if spec.topics:
        subscriber = broker.subscriber(
            # Topics come from the registry (oms topics / Strimzi KafkaTopics), never from a
            # service: its KafkaUser may not create them, and FastStream's would get 1 partition.
            *(Topic(settings.topic_prefix + name, declare=False) for name in spec.topics),
            group_id=settings.group_id,
            batch=True,
            max_records=settings.consumer_batch_max,
            batch_timeout_ms=settings.consumer_batch_timeout_ms,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,
            decoder=_ignore_body,
            title=f"{settings.service_name}-consumer",
        )

        holder_subscriber["subscriber"] = subscriber

        @subscriber
        async def on_batch(body: Any, msg: KafkaMessage) -> None:
            records = msg.raw_message
            if not isinstance(records, tuple):
                records = (records,)
            try:
                await holder["consumer"].handle_records(records)
            except BaseException:
                # Rewind so nothing is skipped; the batch is fetched again.
                await msg.nack()
                raise
            await msg.ack()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await _connect_database(settings)
        async with pool.acquire() as conn:
            applied = await migrate(conn, settings.db_schema, spec.migrations)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))

        async def publish_dead_letter(
            value: bytes, topic: str, key: bytes | None, headers: dict[str, str]
        ) -> None:
            await broker.publish(value, topic=topic, key=key, headers=headers)

        consumer = None
        consumer_pool: asyncpg.Pool | None = None
        if spec.topics:
            # The consumer applies its batches one after the other on a connection of its own:
            # from the shared pool, a burst of HTTP requests queued ahead of it starved the saga
            # (orders accepted, none progressing, deadlines expiring).
            consumer_pool = await _connect_database(settings, size=1)
            consumer = Consumer(
                service=settings.service_name,
                group_id=settings.group_id,
                pool=consumer_pool,
                handlers=spec.handlers,
                dead_letter_topic=settings.topic_prefix
                + dead_letter_topic(settings.consumer_group or settings.service_name),
                publish_dead_letter=publish_dead_letter,
                max_attempts=settings.consumer_max_attempts,
                backoff_initial_s=settings.consumer_backoff_initial_s,
                backoff_max_s=settings.consumer_backoff_max_s,
                crash_point=settings.fault_crash_point,
                topic_prefix=settings.topic_prefix,
            )
            holder["consumer"] = consumer

        # The relay has its own producer: a row goes straight into aiokafka's batches, without
        # the broker's per-message publish middleware (the relay traces every row itself).
        relay_producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=f"{settings.service_name}-relay",
            **aiokafka_options(settings),
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
        )

        async def publish(
            value: bytes, topic: str, key: str | None, headers: dict[str, str]
        ) -> Awaitable[Any]:
            delivered: Awaitable[Any] = await relay_producer.send(
                topic,
                value,
                key=key.encode() if key is not None else None,
                headers=[(name, text.encode()) for name, text in headers.items()],
            )
            return delivered

        relay = OutboxRelay(
            dsn=settings.database_dsn,
            schema=settings.db_schema,
            service=settings.service_name,
            publish=publish,
            batch_size=settings.relay_batch_size,
            poll_interval_s=settings.relay_poll_interval_s,
            crash_after_publish=settings.fault_crash_point == "relay_after_publish",
        )
        runtime = Runtime(settings, pool, broker, relay, consumer, spec.migrations)
        app.state.runtime = runtime

        async for attempt in AsyncRetrying(
            stop=stop_after_delay(120), wait=wait_exponential(max=5), reraise=True
        ):
            with attempt:
                await broker.start()
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(120), wait=wait_exponential(max=5), reraise=True
        ):
            with attempt:
                await relay_producer.start()
        for hook in spec.on_start:
            await hook(runtime)
        tasks = [asyncio.create_task(relay.run(), name="outbox-relay")]
        if "subscriber" in holder_subscriber:
            tasks.append(
                asyncio.create_task(
                    _watch_consumer_lag(settings.service_name, holder_subscriber["subscriber"]),
                    name="consumer-lag",
                )
            )
        jobs = list(spec.background)
        if spec.topics:
            jobs.append(
                retention_job(
                    "inbox retention",
                    prune_inbox,
                    timedelta(days=settings.inbox_retention_days),
                    settings.housekeeping_interval_s,
                )
            )
        tasks += [asyncio.create_task(job(runtime), name=job.__name__) for job in jobs]
        log.info(
            "%s ready on http://%s:%d",
            settings.service_name,
            settings.http_host,
            settings.http_port,
        )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await relay_producer.stop()
            await broker.stop()
            await pool.close()
            if consumer_pool is not None:
                await consumer_pool.close()
            shutdown_tracing()

    app = FastAPI(
        title=spec.title, description=spec.description, version="1.0.0", lifespan=lifespan
    )
    install_error_handlers(app)
    install_error_responses(app)
    app.state.token_verifier = token_verifier(settings)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    app.include_router(_platform_router())
    for router in spec.routers:
        app.include_router(router)
    for configure in spec.configure_app:
        configure(app)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="health/.*,metrics")
    return app


async def _watch_consumer_lag(service: str, subscriber: Any, interval_s: float = 5.0) -> None:
    """Consumer lag per topic (high-water mark minus position over this replica's partitions)."""
    while True:
        await asyncio.sleep(interval_s)
        consumer = getattr(subscriber, "consumer", None)
        if consumer is None:
            continue
        try:
            lag: dict[str, int] = {}
            for tp in consumer.assignment():
                highwater = consumer.highwater(tp)
                if highwater is None:
                    continue
                position = await consumer.position(tp)
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, highwater - position)
            for topic, value in lag.items():
                metrics.CONSUMER_LAG.labels(service, topic).set(value)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.debug("consumer lag not available", exc_info=True)


async def _connect_database(settings: ServiceSettings, size: int | None = None) -> asyncpg.Pool:
    async for attempt in AsyncRetrying(
        stop=stop_after_delay(120), wait=wait_exponential(max=5), reraise=True
    ):
        with attempt:
            return await create_pool(
                settings.database_dsn,
                settings.db_schema,
                min_size=size or settings.db_pool_min,
                max_size=size or settings.db_pool_max,
            )
    raise AssertionError("unreachable")


def _platform_router() -> APIRouter:
    router = APIRouter(tags=["platform"])

    @router.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/health/ready")
    async def ready(request: Request) -> JSONResponse:
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        if runtime is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        checks: dict[str, Any] = {}
        try:
            async with asyncio.timeout(2):
                with suppress_instrumentation():  # probes are not traced
                    async with runtime.pool.acquire() as conn:
                        await conn.fetchval("SELECT 1")
                        missing = await pending(conn, runtime.migrations)
            checks["database"] = "ok"
            checks["migrations"] = "ok" if not missing else {"pending": missing}
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
            checks["migrations"] = "unknown"
        try:
            reachable = await runtime.broker.ping(timeout=2.0)
        except Exception:
            reachable = False
        checks["kafka"] = "ok" if reachable else "unreachable"
        checks["auth"] = "ok" if request.app.state.token_verifier else "not configured"
        healthy = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if healthy else "not_ready", "checks": checks},
            status_code=200 if healthy else 503,
        )

    @router.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def run(spec: ServiceSpec) -> None:
    import uvicorn

    app = create_app(spec)
    config = uvicorn.Config(
        app,
        host=spec.settings.http_host,
        port=spec.settings.http_port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        lifespan="on",
    )
    uvicorn.Server(config).run()
