"""The topic registry: every Kafka topic the OMS uses, in one place.

Local infrastructure, the Kubernetes manifests and the services' subscriptions are all derived
from this list, and a test checks that they agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_PARTITIONS = 6


@dataclass(frozen=True)
class TopicSpec:
    name: str
    owner: str
    description: str
    key: str
    partitions: int = DEFAULT_PARTITIONS
    config: dict[str, str] = field(default_factory=dict)
    # Services that also write to it though another owns it (returns' operator alerts go out on
    # order-intake's notifications topic).
    also_written_by: tuple[str, ...] = ()


CHANNEL_ORDERS = "oms.channel.orders.v1"
CHANNEL_AVAILABILITY = "oms.channel.availability.v1"
ORDERS_EVENTS = "oms.orders.events.v1"
ORDERS_COMMANDS = "oms.orders.commands.v1"
INVENTORY_COMMANDS = "oms.inventory.commands.v1"
INVENTORY_EVENTS = "oms.inventory.events.v1"
PAYMENT_COMMANDS = "oms.payment.commands.v1"
PAYMENT_EVENTS = "oms.payment.events.v1"
FULFILMENT_COMMANDS = "oms.fulfilment.commands.v1"
FULFILMENT_EVENTS = "oms.fulfilment.events.v1"
FULFILMENT_PARTNERS = "oms.fulfilment.partners.v1"
RETURNS_EVENTS = "oms.returns.events.v1"
NOTIFICATIONS = "oms.notifications.v1"

SERVICES: tuple[str, ...] = (
    "order_intake",
    "inventory",
    "payment",
    "fulfilment",
    "returns",
    "channel_connector",
    "console",
)


def dead_letter_topic(consumer_group: str) -> str:
    """Each consumer group has its own dead-letter topic."""
    return f"oms.dlq.{consumer_group}.v1"


_WEEK_MS = str(7 * 24 * 3600 * 1000)

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        CHANNEL_ORDERS,
        "channels",
        "orders emitted by sales channels (and polled by the channel connector)",
        "channel order id",
        also_written_by=("channel_connector",),
    ),
    TopicSpec(CHANNEL_AVAILABILITY, "inventory", "available stock per channel for channels", "sku"),
    TopicSpec(ORDERS_EVENTS, "order_intake", "order lifecycle events", "order id"),
    TopicSpec(
        ORDERS_COMMANDS, "returns", "commands to order-intake (replacement orders)", "return id"
    ),
    TopicSpec(INVENTORY_COMMANDS, "order_intake", "commands to inventory", "order id"),
    TopicSpec(
        INVENTORY_EVENTS, "inventory", "stock reservations and availability", "order id / sku"
    ),
    TopicSpec(PAYMENT_COMMANDS, "order_intake", "commands to payment", "order id"),
    TopicSpec(PAYMENT_EVENTS, "payment", "authorisations, captures, voids, refunds", "order id"),
    TopicSpec(FULFILMENT_COMMANDS, "order_intake", "commands to fulfilment", "order id"),
    TopicSpec(FULFILMENT_EVENTS, "fulfilment", "fulfilment progress", "order id"),
    TopicSpec(
        FULFILMENT_PARTNERS,
        "fulfilment",
        "fulfilment requests, purchase orders and their cancellations for 3PLs and dropship"
        " suppliers",
        "location",
    ),
    TopicSpec(RETURNS_EVENTS, "returns", "returns lifecycle events", "return id"),
    TopicSpec(
        NOTIFICATIONS,
        "order_intake",
        "customer notifications to send",
        "order id",
        also_written_by=("returns", "channel_connector"),
    ),
    *(
        TopicSpec(
            dead_letter_topic(service),
            service,
            f"messages {service} could not process, with the reason",
            "original key",
            partitions=1,
            config={"retention.ms": str(30 * 24 * 3600 * 1000)},
        )
        for service in SERVICES
    ),
)

TOPIC_NAMES: frozenset[str] = frozenset(t.name for t in TOPICS)


def topic(name: str) -> TopicSpec:
    for spec in TOPICS:
        if spec.name == name:
            return spec
    raise KeyError(name)
