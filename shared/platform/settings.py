"""Typed settings shared by every service; each service subclasses ServiceSettings.

This is the only place that reads the environment (through pydantic-settings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

CrashPoint = Literal["before_db_commit", "after_db_commit", "relay_after_publish"]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMS_", extra="ignore")

    service_name: str
    db_schema: str
    http_host: str = "127.0.0.1"
    http_port: int

    kafka_bootstrap: str = "127.0.0.1:9092"
    # How the service proves itself to Kafka (shared/platform/kafka_security.py): plaintext on
    # loopback locally; in production TLS with SCRAM, one user per service (the prod overlay's
    # KafkaUsers), its password from the Secret the operator made, the cluster CA to verify.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    kafka_ca_file: Path | None = None
    # Prepended to every topic name, so several OMS environments can share one Kafka cluster.
    topic_prefix: str = ""
    # The service's own login role (make run and the manifests set it); no default, so a
    # service never falls back to a passwordless superuser.
    database_url: str | None = None
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

    # Where the service runs: "production" forbids what is only for development (the test
    # payment gateway, unless allowed explicitly).
    env: Literal["development", "test", "production"] = "development"

    # Bearer tokens (shared/platform/auth.py): exactly one of a JWKS file or an identity
    # provider's JWKS URL; the issuer and audience every token must carry.
    auth_jwks_file: Path | None = None
    auth_jwks_url: str | None = None
    auth_issuer: str = "oms-local"
    auth_audience: str = "oms"
    # The largest request body any route reads (413 `payload_too_large` beyond); a route may
    # set a lower one of its own (order-intake's OMS_MAX_BODY_BYTES).
    max_request_bytes: int = Field(default=1024 * 1024, ge=0)
    # Requests per second one caller (token subject; client address without a token) may make
    # to one replica, with bursts up to rate_limit_burst; beyond: 429 with Retry-After. 0: off.
    rate_limit_per_second: float = Field(default=200, ge=0)
    rate_limit_burst: float = Field(default=400, ge=1)

    # Failure injection for the crash tests: the process kills itself (SIGKILL) at this point
    # the first time it is reached. Never set in production.
    fault_crash_point: CrashPoint | None = None

    @property
    def database_dsn(self) -> str:
        if not self.database_url:
            raise ValueError("OMS_DATABASE_URL is not set: the service's own database role URL")
        return self.database_url

    @property
    def group_id(self) -> str:
        return self.topic_prefix + (self.consumer_group or self.service_name)


class ServiceUrls(BaseModel):
    """Where each service's HTTP API answers (OMS_<SERVICE>_URL): the ones the `oms` command and
    the console call. A settings class inherits it next to BaseSettings."""

    order_intake_url: str = "http://127.0.0.1:8001"
    inventory_url: str = "http://127.0.0.1:8002"
    payment_url: str = "http://127.0.0.1:8003"
    fulfilment_url: str = "http://127.0.0.1:8004"
    returns_url: str = "http://127.0.0.1:8005"
    channel_connector_url: str = "http://127.0.0.1:8006"


class OpsSettings(BaseSettings, ServiceUrls):
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

    # Where the `oms` command finds each service's HTTP API (DESIGN.md §9; the services' in
    # ServiceUrls), the console and the Jaeger UI.
    console_url: str = "http://127.0.0.1:8007"
    jaeger_ui_url: str = "http://127.0.0.1:16686"
    http_timeout_s: float = 10.0
    # The bearer token the `oms` command sends (default: the operator token `make run` wrote
    # to .local/auth/operator.token).
    token: str | None = None
