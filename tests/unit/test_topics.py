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


def test_returns_may_write_the_operator_alerts_it_sends_on_the_notifications_topic():
    from shared.ops.topics import service_acls
    from shared.topics import NOTIFICATIONS

    def writes(service: str) -> set[str]:
        return {
            acl["resource"]["name"]
            for acl in service_acls(service, consumed=())
            if "Write" in acl.get("operations", ())
        }

    assert NOTIFICATIONS in writes("returns")
    assert NOTIFICATIONS in writes("order_intake")
    assert NOTIFICATIONS not in writes("payment")
