"""The topics in the manifests, the topic registry (shared/topics.py) and the services'
subscriptions (their ServiceSpec) agree; autoscaling is bounded by the partitions."""

from __future__ import annotations

from typing import Any

import yaml

from shared.ops.topics import DEFAULT_CLUSTER, render_strimzi_yaml, strimzi_topics
from shared.topics import TOPIC_NAMES, TOPICS, dead_letter_topic, topic
from tests.deploy import support

PROD_TOPICS_FILE = support.K8S / "overlays" / "prod" / "kafka-topics.yaml"


def _prefix(objects: list[dict[str, Any]]) -> str:
    return support.config_map_data(objects, "oms-config").get("OMS_TOPIC_PREFIX", "")


def test_checked_in_kafka_topics_are_the_registry_rendering(
    overlays: dict[str, list[dict[str, Any]]],
) -> None:
    (kafka,) = support.find(overlays["prod"], "Kafka")
    expected = render_strimzi_yaml(
        cluster=kafka["metadata"]["name"], prefix=_prefix(overlays["prod"])
    )
    assert PROD_TOPICS_FILE.read_text() == expected, (
        "deploy/k8s/overlays/prod/kafka-topics.yaml is stale: regenerate it with\n"
        "  .venv/bin/python -m shared.ops.topics --strimzi > "
        "deploy/k8s/overlays/prod/kafka-topics.yaml"
    )


def test_prod_kafka_topics_equal_the_registry(overlays: dict[str, list[dict[str, Any]]]) -> None:
    objects = overlays["prod"]
    prefix = _prefix(objects)
    (kafka,) = support.find(objects, "Kafka")
    rendered = {t["spec"]["topicName"]: t for t in support.find(objects, "KafkaTopic")}
    assert set(rendered) == {prefix + t.name for t in TOPICS}
    brokers = sum(
        pool["spec"]["replicas"]
        for pool in support.find(objects, "KafkaNodePool")
        if "broker" in pool["spec"]["roles"]
    )
    min_isr = int(kafka["spec"]["kafka"]["config"]["min.insync.replicas"])
    for spec in TOPICS:
        resource = rendered[prefix + spec.name]
        assert resource["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        assert resource["spec"]["partitions"] == spec.partitions
        assert resource["spec"].get("config", {}) == spec.config
        # Writes with acks=all survive one broker down.
        assert min_isr < resource["spec"]["replicas"] <= brokers
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False


def test_strimzi_rendering_is_one_valid_resource_per_topic() -> None:
    resources = strimzi_topics(cluster=DEFAULT_CLUSTER)
    assert [r["spec"]["topicName"] for r in resources] == [t.name for t in TOPICS]
    # Topic names may hold "_", Kubernetes names may not.
    dlq = next(r for r in resources if r["spec"]["topicName"] == dead_letter_topic("order_intake"))
    assert dlq["metadata"]["name"] == "oms.dlq.order-intake.v1"
    document = yaml.safe_load_all(render_strimzi_yaml(cluster="c", prefix="staging."))
    names = [d["spec"]["topicName"] for d in document if d]
    assert names == ["staging." + t.name for t in TOPICS]


def test_subscriptions_and_dead_letter_topics_are_registered(code: dict[str, Any]) -> None:
    for service in support.SERVICES:
        consumed = set(code[service]["topics"])
        assert consumed, f"{service} consumes nothing?"
        assert consumed <= TOPIC_NAMES, f"{service} consumes unregistered {consumed - TOPIC_NAMES}"
        assert dead_letter_topic(code[service]["consumer_group"]) in TOPIC_NAMES


def test_autoscaling_is_bounded_by_the_partitions_consumed(
    overlays: dict[str, list[dict[str, Any]]], code: dict[str, Any]
) -> None:
    for overlay, objects in overlays.items():
        for service in support.SERVICES:
            name = support.k8s_name(service)
            if service in support.SINGLE_REPLICA:
                # No autoscaler: one replica, set on the Deployment.
                assert not support.find(objects, "HorizontalPodAutoscaler", name), name
                assert support.one(objects, "Deployment", name)["spec"]["replicas"] == 1, name
                continue
            hpa = support.one(objects, "HorizontalPodAutoscaler", name)
            assert hpa["spec"]["scaleTargetRef"] == {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": name,
            }
            assert code[service]["topics"], f"{service} consumes nothing: what bounds its HPA?"
            ceiling = min(topic(t).partitions for t in code[service]["topics"])
            assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= ceiling, (
                f"{overlay}: {name} may scale past the {ceiling} partitions it consumes"
            )
            # The HPA owns the replica count.
            assert "replicas" not in support.one(objects, "Deployment", name)["spec"]


def test_dev_topic_job_creates_the_registry_on_the_dev_kafka(
    overlays: dict[str, list[dict[str, Any]]],
) -> None:
    objects = overlays["dev"]
    job = support.one(objects, "Job", "kafka-topics")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "shared.ops.topics"
    assert "--strimzi" not in container["args"]
    assert any("oms-config" in e["configMapRef"]["name"] for e in container["envFrom"])
    assert job["spec"]["template"]["metadata"]["labels"]["oms/kafka-client"] == "true"
    bootstrap = support.config_map_data(objects, "oms-config")["OMS_KAFKA_BOOTSTRAP"]
    host, port = bootstrap.split(":")
    service = support.one(objects, "Service", host)
    assert int(port) in [p["port"] for p in service["spec"]["ports"]]
    kafka = support.one(objects, "StatefulSet", "kafka")
    env = {
        e["name"]: e.get("value") for e in kafka["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
