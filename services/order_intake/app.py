"""Wires the order_intake service: broker, subscribers, HTTP routes, lifespan."""

from __future__ import annotations

import functools
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from services.order_intake import api, channel_api, ops_api, store
from services.order_intake.admission import admission_counter
from services.order_intake.channel_handlers import channel_handlers
from services.order_intake.handlers import (
    after_pending_sagas,
    deadline_scheduler,
    handlers,
    policy_from,
    refresh_order_gauges,
)
from services.order_intake.notifications.service import notification_handlers, notification_sender
from services.order_intake.replacement_orders import replacement_handlers
from services.order_intake.returns_view import returns_handlers
from services.order_intake.settings import OrderIntakeSettings
from shared.platform.housekeeping import PRUNE_BATCH, retention_job
from shared.platform.service import ServiceSpec, create_app, run
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
        handlers={
            **handlers(policy),
            **after_pending_sagas(
                {
                    **channel_handlers(settings),
                    **notification_handlers(),
                    **replacement_handlers(policy),
                    **returns_handlers(),
                }
            ),
        },
        routers=[api.router, ops_api.router, channel_api.router],
        background=[
            deadline_scheduler(settings),
            refresh_order_gauges,
            notification_sender(settings),
            retention_job(
                "rejected request retention",
                functools.partial(
                    store.prune_rejected_requests,
                    max_rows=settings.rejected_request_max_rows,
                    batch=PRUNE_BATCH,
                ),
                timedelta(days=settings.rejected_request_retention_days),
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


def main() -> None:
    run(build())
