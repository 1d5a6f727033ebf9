"""One order is one trace across all five services; metrics and logs tell the rest."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.support.env import Infra
from tests.support.otlp import otlp_receiver
from tests.support.services import eventually
from tests.support.system import CORE_SERVICES as SERVICES
from tests.support.system import order_body, start_system

pytestmark = pytest.mark.integration


@pytest.mark.timeout(240)
async def test_one_order_is_one_trace_across_all_five_services_and_metrics_and_logs_follow(
    infra: Infra,
):
    async with otlp_receiver() as receiver:
        tracing = {"OMS_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
        system = await start_system(
            infra,
            {name: {**tracing, "OMS_DEADLINE_POLL_INTERVAL_S": "0.2"} for name in SERVICES},
        )
        try:
            await system.stock_up("TRACE-1", ("berlin", 5))
            order_id = await system.place(order_body([("TRACE-1", 1, "10.00")]))
            await system.wait_status(order_id, "FULFILLING")
            [fulfilment] = await system.fulfilments(order_id)
            assert (await system.ship(fulfilment["fulfilment_id"])).status_code == 200
            assert (await system.deliver(fulfilment["fulfilment_id"])).status_code == 200
            view = await system.wait_status(order_id, "COMPLETED")
            trace_id = view["trace_id"]
            assert trace_id and re.fullmatch(r"[0-9a-f]{32}", trace_id)

            expected_types = {
                "ReserveStock",
                "StockReserved",
                "AuthorizePayment",
                "PaymentAuthorized",
                "CreateFulfilment",
                "FulfilmentShipped",
                "CapturePayment",
                "FulfilmentDelivered",
            }

            def handled_types() -> set[object]:
                return {
                    s.attributes.get("oms.message_type")
                    for s in receiver.of_trace(trace_id)
                    if " handle " in s.name
                }

            async def whole_trace_exported() -> bool:
                # Each service exports its spans on its own schedule: wait for all of them.
                services = {s.service for s in receiver.of_trace(trace_id)}
                return services >= set(SERVICES) and handled_types() >= expected_types

            try:
                await eventually(whole_trace_exported, timeout_s=30, message="whole trace")
            except AssertionError:
                raise AssertionError(
                    f"trace {trace_id} has spans of "
                    f"{sorted({s.service for s in receiver.of_trace(trace_id)})}, handled "
                    f"{sorted(map(str, handled_types()))}; all traces: "
                    f"{sorted({(s.service, s.trace_id[:8]) for s in receiver.spans})[:40]}"
                ) from None
            spans = receiver.of_trace(trace_id)
            names = {s.name for s in spans}
            assert any(n.startswith("outbox publish") for n in names), "the relay hop is traced"
            assert {s.service for s in spans if s.name.startswith("outbox publish")} >= {
                "order_intake",
                "inventory",
                "payment",
                "fulfilment",
            }
            handled = [s for s in spans if " handle " in s.name]
            assert {s.attributes.get("oms.message_type") for s in handled} >= expected_types
            assert all(s.attributes.get("oms.correlation_id") == order_id for s in handled)
            assert any(s.attributes.get("oms.saga_step") for s in spans), "saga step on spans"

            # Metrics: the series operators need, with values after one order.
            for name in SERVICES:
                text = (await system.client.get(f"{system.url(name)}/metrics")).text
                if name != "returns":
                    assert _value(text, "oms_outbox_published_total") > 0, name
                    assert "oms_outbox_publish_lag_seconds_bucket" in text
                    assert "oms_outbox_backlog" in text
            intake = (await system.client.get(f"{system.url('order_intake')}/metrics")).text
            assert _value(intake, 'oms_messages_handled_total{message_type="PaymentAuthorized"') > 0
            assert "oms_message_handler_duration_seconds_bucket" in intake
            assert _value(intake, "oms_saga_step_duration_seconds_count") > 0
            await asyncio.sleep(5.5)  # orders-by-state is refreshed every 5 s
            intake = (await system.client.get(f"{system.url('order_intake')}/metrics")).text
            assert _value(intake, 'oms_orders_by_state{status="COMPLETED"}') == 1
            for name in SERVICES:
                text = (await system.client.get(f"{system.url(name)}/metrics")).text
                assert "oms_consumer_lag_messages{" in text, name
                assert "oms_dead_letters_total{" in text, name
            payment = (await system.client.get(f"{system.url('payment')}/metrics")).text
            assert _value(payment, 'oms_messages_handled_total{message_type="AuthorizePayment"') > 0

            # Logs: JSON lines with service and trace ids; the customer's e-mail never appears.
            for process in system.processes.values():
                log = process.log_path.read_text() if process.log_path else ""
                assert "ada@example.com" not in log
                assert "1 Main St" not in log
        finally:
            await system.close()


def _value(metrics_text: str, prefix: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(prefix) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total
