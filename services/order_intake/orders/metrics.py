"""Order-intake's own metrics: orders by state, saga transitions and step durations."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ORDERS_BY_STATE = Gauge("oms_orders_by_state", "Orders per saga state", ["status"])
ORDER_TRANSITIONS = Counter(
    "oms_order_transitions_total", "Saga state changes", ["from_status", "to_status"]
)
SAGA_STEP_DURATION = Histogram(
    "oms_saga_step_duration_seconds",
    "Time a machine-paced saga step took, from sending its command to its end",
    ["step", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


def record_transition(previous: str, status: str) -> None:
    ORDER_TRANSITIONS.labels(previous, status).inc()


def set_orders_by_state(counts: dict[str, int], all_states: list[str]) -> None:
    for status in all_states:
        ORDERS_BY_STATE.labels(status).set(counts.get(status, 0))
