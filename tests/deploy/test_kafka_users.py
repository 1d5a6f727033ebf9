"""Kafka in the prod overlay is locked down (DESIGN.md §9): TLS with SCRAM on every listener,
simple authorization, and one KafkaUser per service whose ACLs are exactly the topics it
produces (registry owner, its dead-letter topic included) and consumes (its ServiceSpec), plus
its consumer group; each service's Deployment talks to Kafka as that user."""

from __future__ import annotations

from typing import Any

from shared.ops.topics import consumers_from_code, kafka_user_name, render_strimzi_users_yaml
from shared.topics import TOPICS
from tests.deploy import support

PROD_USERS_FILE = support.K8S / "overlays" / "prod" / "kafka-users.yaml"


def test_checked_in_kafka_users_are_the_rendering() -> None:
    assert PROD_USERS_FILE.read_text() == render_strimzi_users_yaml(), (
        "deploy/k8s/overlays/prod/kafka-users.yaml is stale: regenerate it with\n"
        "  .venv/bin/python -m shared.ops.topics --strimzi-users > "
        "deploy/k8s/overlays/prod/kafka-users.yaml"
    )


def test_every_listener_needs_tls_and_scram_and_acls_apply(
    overlays: dict[str, list[dict[str, Any]]],
) -> None:
    kafka = support.one(overlays["prod"], "Kafka", "oms-kafka")["spec"]["kafka"]
    assert kafka["authorization"] == {"type": "simple"}
    for listener in kafka["listeners"]:
        assert listener["tls"] is True, listener["name"]
        assert listener["authentication"] == {"type": "scram-sha-512"}, listener["name"]


def test_each_service_may_do_exactly_what_it_produces_and_consumes(
    overlays: dict[str, list[dict[str, Any]]],
) -> None:
    objects = overlays["prod"]
    consumers = consumers_from_code()
    for service in support.SERVICES:
        user = support.one(objects, "KafkaUser", kafka_user_name(service))
        acls = user["spec"]["authorization"]["acls"]
        topics: dict[str, set[str]] = {}
        groups: dict[str, set[str]] = {}
        for acl in acls:
            resource = acl["resource"]
            assert resource["patternType"] == "literal", "no wildcards"
            target = topics if resource["type"] == "topic" else groups
            target[resource["name"]] = set(acl["operations"])
        writes = {name for name, ops in topics.items() if "Write" in ops}
        reads = {name for name, ops in topics.items() if "Read" in ops}
        assert writes == {
            t.name for t in TOPICS if t.owner == service or service in t.also_written_by
        }, service
        assert reads == set(consumers[service]), service
        assert all(ops <= {"Read", "Write", "Describe"} for ops in topics.values())
        assert groups == {service: {"Read"}}, service


def test_each_deployment_authenticates_as_its_own_user(
    overlays: dict[str, list[dict[str, Any]]],
) -> None:
    objects = overlays["prod"]
    config = support.config_map_data(objects, "oms-config")
    assert config["OMS_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["OMS_KAFKA_CA_FILE"].startswith("/etc/oms/kafka-ca/")
    for service in support.SERVICES:
        deployment = support.one(objects, "Deployment", support.k8s_name(service))
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        user = kafka_user_name(service)
        assert env["OMS_KAFKA_USERNAME"]["value"] == user
        assert env["OMS_KAFKA_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": user,
            "key": "password",
        }
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["kafka-ca"] == "/etc/oms/kafka-ca"
