"""Typed settings shared by every service; each service subclasses ServiceSettings.

This is the only place that reads the environment (through pydantic-settings).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

CrashPoint = Literal["before_db_commit", "after_db_commit", "relay_after_publish"]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMS_", extra="ignore")

    service_name: str
    db_schema: str
    http_host: str = "127.0.0.1"
    http_port: int

    kafka_bootstrap: str = "127.0.0.1:9092"
    # Prepended to every topic name, so several OMS environments can share one Kafka cluster.
    topic_prefix: str = ""
    database_url: str = "postgresql://postgres@127.0.0.1:5433/oms"
    db_pool_min: int = 1
    db_pool_max: int = 4

    consumer_group: str | None = None
    consumer_batch_max: int = 200
    consumer_batch_timeout_ms: int = 50
    consumer_max_attempts: int = 5
    consumer_backoff_initial_s: float = 0.2
    consumer_backoff_max_s: float = 5.0

    # Inbox rows are kept this long (the dedupe window: longer than any topic's retention,
    # the dead-letter topics' 30 days included), then pruned every housekeeping interval.
    inbox_retention_days: float = Field(default=35, gt=0)
    housekeeping_interval_s: float = Field(default=3600, gt=0)

    relay_batch_size: int = 500
    relay_poll_interval_s: float = 1.0

    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OMS_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )
    # Share of orders (root traces) recorded when exporting; later hops follow the root.
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    log_level: str = "INFO"
    log_json: bool = True

    # Failure injection for the crash tests: the process kills itself (SIGKILL) at this point
    # the first time it is reached. Never set in production.
    fault_crash_point: CrashPoint | None = None

    @property
    def group_id(self) -> str:
        return self.topic_prefix + (self.consumer_group or self.service_name)


class OpsSettings(BaseSettings):
    """Settings of the `oms` operator command and the local runner."""

    model_config = SettingsConfigDict(env_prefix="OMS_", extra="ignore")

    kafka_bootstrap: str | None = None
    topic_prefix: str = ""
    database_url: str | None = None
    kafka_port: int = 9092
    pg_port: int = 5433
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OMS_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )

    # Where the `oms` command finds each service's HTTP API (DESIGN.md §9) and the Jaeger UI.
    order_intake_url: str = "http://127.0.0.1:8001"
    inventory_url: str = "http://127.0.0.1:8002"
    payment_url: str = "http://127.0.0.1:8003"
    fulfilment_url: str = "http://127.0.0.1:8004"
    returns_url: str = "http://127.0.0.1:8005"
    jaeger_ui_url: str = "http://127.0.0.1:16686"
    http_timeout_s: float = 10.0
