"""Wires the channel connector: its accounts and their clients, subscribers, routes, jobs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from services.channel_connector import routes, store
from services.channel_connector.accounts import Accounts
from services.channel_connector.handlers import connector_handlers
from services.channel_connector.settings import ChannelConnectorSettings
from services.channel_connector.workers import background_jobs
from shared.platform.housekeeping import retention_job
from shared.platform.service import ServiceSpec, create_app
from shared.topics import CHANNEL_AVAILABILITY, FULFILMENT_EVENTS, ORDERS_EVENTS, RETURNS_EVENTS

MIGRATIONS = Path(__file__).with_name("migrations")
SUBSCRIBES_WHEN_CONFIGURED = (
    CHANNEL_AVAILABILITY,
    ORDERS_EVENTS,
    FULFILMENT_EVENTS,
    RETURNS_EVENTS,
)
"""What the consumer reads once an account is configured (the Kafka ACLs grant it)."""
PARKED_SHIPMENT_RETENTION = timedelta(days=7)
POLLED_VERSION_RETENTION = timedelta(days=14)


def build(
    settings: ChannelConnectorSettings | None = None, accounts: Accounts | None = None
) -> ServiceSpec:
    settings = settings or ChannelConnectorSettings()
    accounts = accounts if accounts is not None else Accounts.from_settings(settings)
    return ServiceSpec(
        settings=settings,
        title="Channel connector",
        description=(
            "Pushes stock, shipments, cancellations and refunds to the sales channels' APIs and"
            " polls the channels that do not push orders."
        ),
        migrations=MIGRATIONS,
        # No account, nothing to listen to: the process only serves its (empty) API.
        topics=SUBSCRIBES_WHEN_CONFIGURED if len(accounts) else (),
        handlers=connector_handlers(accounts),
        routers=[routes.router_for(accounts, settings)],
        background=[
            *background_jobs(settings, accounts),
            retention_job(
                "parked shipment retention",
                store.prune_parked_shipments,
                PARKED_SHIPMENT_RETENTION,
                settings.housekeeping_interval_s,
            ),
            retention_job(
                "polled version retention",
                store.prune_polled_versions,
                POLLED_VERSION_RETENTION + timedelta(seconds=settings.connector_poll_overlap_s),
                settings.housekeeping_interval_s,
            ),
        ],
    )


def build_app(settings: ChannelConnectorSettings | None = None) -> FastAPI:
    return create_app(build(settings))
