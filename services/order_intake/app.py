"""Wires the order_intake service: broker, subscribers, HTTP routes, background tasks.

The service is organised by capability: `orders/` (the native order API, the order saga's
service and runner), `channels/` (channel adapters, webhook and Kafka ingress), `exchanges/`
(replacement orders, the returns view), `notifications/` (customer e-mails), `operators/`
(operator endpoints, admission control), `rejected_requests/` (refused requests kept for an
operator); `domain/` is the pure order model and saga.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from services.order_intake.channels import webhook_routes
from services.order_intake.channels.edits import edit_answer_handlers
from services.order_intake.channels.kafka_ingress import channel_order_handlers
from services.order_intake.domain.saga import SagaPolicy
from services.order_intake.exchanges.consumers import exchange_handlers
from services.order_intake.notifications.service import notification_handlers, notification_sender
from services.order_intake.operators import routes as operator_routes
from services.order_intake.operators.admission import admission_counter
from services.order_intake.operators.stock_alerts import stock_alert_handlers
from services.order_intake.orders import routes as order_routes
from services.order_intake.orders.background import refresh_order_gauges
from services.order_intake.orders.saga_runner import saga_event_handlers, write_pending_sagas
from services.order_intake.orders.service import deadlines, policy_from
from services.order_intake.orders.warehouse_progress import warehouse_progress_handlers
from services.order_intake.rejected_requests.store import prune_rejected_requests
from services.order_intake.risk.store import prune_risk_signals
from services.order_intake.settings import OrderIntakeSettings
from shared.platform.handlers import HandlerRegistry
from shared.platform.housekeeping import PRUNE_BATCH, retention_job
from shared.platform.service import ServiceSpec, create_app
from shared.topics import (
    CHANNEL_ORDERS,
    FULFILMENT_EVENTS,
    INVENTORY_EVENTS,
    NOTIFICATIONS,
    ORDERS_COMMANDS,
    PAYMENT_EVENTS,
    RETURNS_EVENTS,
)

MIGRATIONS = Path(__file__).with_name("migrations")


def handlers(settings: OrderIntakeSettings, policy: SagaPolicy) -> HandlerRegistry:
    registry = saga_event_handlers(policy)
    # These read or write orders themselves: the saga steps the batch deferred are written first.
    for found in (
        channel_order_handlers(settings, policy),
        notification_handlers(),
        exchange_handlers(policy),
        warehouse_progress_handlers(),
        edit_answer_handlers(),
    ):
        registry.include(found, after=write_pending_sagas)
    registry.include(stock_alert_handlers())
    return registry


def build(settings: OrderIntakeSettings | None = None) -> ServiceSpec:
    settings = settings or OrderIntakeSettings()
    policy = policy_from(settings)
    return ServiceSpec(
        settings=settings,
        title="Order intake",
        description="Receives orders from every channel and orchestrates the order saga.",
        migrations=MIGRATIONS,
        topics=(
            INVENTORY_EVENTS,
            PAYMENT_EVENTS,
            FULFILMENT_EVENTS,
            CHANNEL_ORDERS,
            NOTIFICATIONS,
            ORDERS_COMMANDS,
            RETURNS_EVENTS,
        ),
        handlers=handlers(settings, policy),
        routers=[order_routes.router, operator_routes.router, webhook_routes.router],
        background=[
            deadlines(policy).scheduler(
                interval_s=settings.deadline_poll_interval_s, name="order deadline"
            ),
            refresh_order_gauges,
            notification_sender(settings),
            retention_job(
                "rejected request retention",
                functools.partial(
                    prune_rejected_requests,
                    max_rows=settings.rejected_request_max_rows,
                    batch=PRUNE_BATCH,
                ),
                timedelta(days=settings.rejected_request_retention_days),
                settings.housekeeping_interval_s,
            ),
            retention_job(
                "fraud signal retention",
                functools.partial(prune_risk_signals, batch=PRUNE_BATCH),
                timedelta(days=settings.fraud_signal_retention_days),
                settings.housekeeping_interval_s,
            ),
            *(
                [admission_counter(settings.max_orders_in_flight, settings.admission_refresh_s)]
                if settings.max_orders_in_flight
                else []
            ),
        ],
    )


def build_app(settings: OrderIntakeSettings | None = None) -> FastAPI:
    return create_app(build(settings))
