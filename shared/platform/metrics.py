"""Prometheus metrics every service exposes on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_HANDLED = Counter(
    "oms_messages_handled_total",
    "Messages a consumer applied, skipped as duplicates, ignored, or dead-lettered",
    ["service", "message_type", "outcome"],
)
HANDLER_FAILURES = Counter(
    "oms_handler_failures_total",
    "Failed attempts to handle a message (each retry counts)",
    ["service", "message_type", "transient"],
)
HANDLER_LATENCY = Histogram(
    "oms_handler_duration_seconds",
    "Time to apply one consumed batch, from decode to commit",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
MESSAGE_HANDLER_DURATION = Histogram(
    "oms_message_handler_duration_seconds",
    "Time one handler took to apply one message inside its batch transaction",
    ["service", "message_type"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
BATCH_SIZE = Histogram(
    "oms_consumer_batch_size",
    "Messages per consumed batch",
    ["service"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
DEAD_LETTERS = Counter(
    "oms_dead_letters_total", "Messages sent to the dead-letter topic", ["service", "reason"]
)
OUTBOX_PUBLISHED = Counter(
    "oms_outbox_published_total", "Outbox messages published to Kafka", ["service", "topic"]
)
OUTBOX_BACKLOG = Gauge(
    "oms_outbox_backlog", "Outbox rows waiting to be published (last relay pass)", ["service"]
)
OUTBOX_LAG = Histogram(
    "oms_outbox_publish_lag_seconds",
    "Time from an outbox row's commit to Kafka's acknowledgement",
    ["service"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONSUMER_LAG = Gauge(
    "oms_consumer_lag_messages",
    "Messages not yet consumed, per topic partition",
    ["service", "topic"],
)
DEAD_LETTER_OVERFLOWS = Counter(
    "oms_dead_letter_overflows_total",
    "Dead letters the dead-letter topic refused: kept whole in Postgres, a truncated copy sent",
    ["service"],
)
