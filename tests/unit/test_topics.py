from __future__ import annotations

from shared.topics import SERVICES, TOPIC_NAMES, TOPICS, dead_letter_topic


def test_topic_names_are_unique_and_versioned():
    names = [t.name for t in TOPICS]
    assert len(names) == len(set(names))
    assert all(name.startswith("oms.") and name.endswith(".v1") for name in names)


def test_every_service_has_a_dead_letter_topic():
    for service in SERVICES:
        assert dead_letter_topic(service) in TOPIC_NAMES


def test_design_topics_are_registered():
    for name in [
        "oms.channel.orders.v1",
        "oms.orders.events.v1",
        "oms.inventory.commands.v1",
        "oms.inventory.events.v1",
        "oms.payment.commands.v1",
        "oms.payment.events.v1",
        "oms.fulfilment.commands.v1",
        "oms.fulfilment.events.v1",
        "oms.returns.events.v1",
        "oms.notifications.v1",
    ]:
        assert name in TOPIC_NAMES
