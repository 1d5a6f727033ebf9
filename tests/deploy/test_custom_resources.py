"""What the deployment relies on in the prod overlay's custom resources (Strimzi Kafka,
KafkaNodePool, KafkaTopic; CloudNativePG Cluster, Database). These are our own structural
checks, NOT a validation against the CRD schemas: no CRD could be obtained here, so these kinds
are listed as not validated (support.NOT_VALIDATED, printed at the end of the session)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy import support

Objects = dict[str, list[dict[str, Any]]]

# The API versions deploy/README.md names (and the operator releases it requires serve).
API_VERSIONS = {
    "Kafka": "kafka.strimzi.io/v1",
    "KafkaNodePool": "kafka.strimzi.io/v1",
    "KafkaTopic": "kafka.strimzi.io/v1",
    "KafkaUser": "kafka.strimzi.io/v1",
    "Cluster": "postgresql.cnpg.io/v1",
    "Database": "postgresql.cnpg.io/v1",
}
# Kubernetes object names (DNS-1123 subdomain): the API server refuses any other.
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@pytest.fixture(scope="module")
def prod(overlays: Objects) -> list[dict[str, Any]]:
    return overlays["prod"]


def _custom_resources(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in API_VERSIONS]


def test_custom_resources_are_the_not_validated_kinds_at_the_documented_api_versions(
    prod: list[dict[str, Any]],
) -> None:
    found = {(o["apiVersion"], o["kind"]) for o in _custom_resources(prod)}
    assert found == {(v, k) for k, v in API_VERSIONS.items()} == support.NOT_VALIDATED["prod"]
    readme = (support.REPO / "deploy" / "README.md").read_text()
    for api_version in set(API_VERSIONS.values()):
        assert f"`{api_version}`" in readme, f"deploy/README.md does not name {api_version}"
    for obj in _custom_resources(prod):
        assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}, support.describe(obj)
        name = obj["metadata"]["name"]
        assert len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name), support.describe(obj)


# ------------------------------------------------------------------------- Strimzi


def test_node_pools_and_topics_belong_to_the_kafka_cluster(prod: list[dict[str, Any]]) -> None:
    (kafka,) = support.find(prod, "Kafka")
    cluster = kafka["metadata"]["name"]
    for obj in (
        support.find(prod, "KafkaNodePool")
        + support.find(prod, "KafkaTopic")
        + support.find(prod, "KafkaUser")
    ):
        assert obj["metadata"]["labels"]["strimzi.io/cluster"] == cluster, support.describe(obj)
    # The topic operator reconciles the KafkaTopics; without it they would stay unapplied.
    assert "topicOperator" in kafka["spec"]["entityOperator"]
    # (Topic names, partitions, replicas and config against the registry: test_topics_agree.)


def test_kafka_runs_in_kraft_mode_with_a_controller_quorum_and_enough_brokers(
    prod: list[dict[str, Any]],
) -> None:
    (kafka,) = support.find(prod, "Kafka")
    assert "zookeeper" not in kafka["spec"]
    pools = support.find(prod, "KafkaNodePool")
    for pool in pools:
        assert set(pool["spec"]["roles"]) <= {"controller", "broker"}, support.describe(pool)
    controllers = sum(p["spec"]["replicas"] for p in pools if "controller" in p["spec"]["roles"])
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    assert controllers >= 3 and controllers % 2 == 1, "a KRaft quorum needs an odd number >= 3"
    config = kafka["spec"]["kafka"]["config"]
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
    ):
        assert int(config[key]) <= brokers, key
    assert int(config["min.insync.replicas"]) < int(config["default.replication.factor"])


def test_services_bootstrap_from_the_kafka_listener(prod: list[dict[str, Any]]) -> None:
    (kafka,) = support.find(prod, "Kafka")
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["type"] == "internal" and listener["tls"] is True
    bootstrap = support.config_map_data(prod, "oms-config")["OMS_KAFKA_BOOTSTRAP"]
    # Strimzi names the bootstrap Service <cluster>-kafka-bootstrap.
    assert bootstrap == f"{kafka['metadata']['name']}-kafka-bootstrap:{listener['port']}"


# -------------------------------------------------------------------- CloudNativePG


def test_cluster_manages_one_login_role_per_service_from_its_secret(
    prod: list[dict[str, Any]],
) -> None:
    (cluster,) = support.find(prod, "Cluster")
    roles = {role["name"]: role for role in cluster["spec"]["managed"]["roles"]}
    assert set(roles) == set(support.SERVICES)
    granted = cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQL"]
    for service in support.SERVICES:
        role = roles[service]
        assert role["ensure"] == "present" and role["login"] is True, service
        # The role may connect only through a group granted CONNECT at bootstrap.
        assert any(
            f"GRANT CONNECT ON DATABASE oms TO {group}" in granted for group in role["inRoles"]
        ), service
        # The Secret holding the role's password is the one the service logs in with.
        deployment = support.one(prod, "Deployment", support.k8s_name(service))
        (container,) = [
            c
            for c in deployment["spec"]["template"]["spec"]["containers"]
            if c["name"] == support.k8s_name(service)
        ]
        env = {e["name"]: e for e in container["env"]}
        for variable in ("DATABASE_USER", "DATABASE_PASSWORD"):
            ref = env[variable]["valueFrom"]["secretKeyRef"]
            assert ref["name"] == role["passwordSecret"]["name"], (service, variable)


def test_database_gives_each_service_its_own_schema_in_the_database_the_services_use(
    prod: list[dict[str, Any]],
) -> None:
    from shared.ops.migrate import load_settings

    (cluster,) = support.find(prod, "Cluster")
    (database,) = support.find(prod, "Database")
    initdb = cluster["spec"]["bootstrap"]["initdb"]
    assert database["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
    assert database["spec"]["name"] == initdb["database"]
    assert database["spec"]["owner"] == initdb["owner"]
    assert support.config_map_data(prod, "oms-config")["DATABASE_NAME"] == initdb["database"]
    schemas = {s["name"]: s["owner"] for s in database["spec"]["schemas"]}
    assert schemas == {load_settings(s).db_schema: s for s in support.SERVICES}


def test_services_trust_the_cluster_ca_and_fit_in_its_connections(
    prod: list[dict[str, Any]],
) -> None:
    (cluster,) = support.find(prod, "Cluster")
    name = cluster["metadata"]["name"]
    config = support.config_map_data(prod, "oms-config")
    pool_max = int(config["OMS_DB_POOL_MAX"])
    connections = 0
    for service in support.SERVICES:
        k8s = support.k8s_name(service)
        pod = support.one(prod, "Deployment", k8s)["spec"]["template"]["spec"]
        secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        assert f"{name}-ca" in secrets, f"{k8s} does not mount CloudNativePG's CA"
        # Every replica plus the rollout's surge pod: its pool, and its migrate init container.
        if service in support.SINGLE_REPLICA:
            replicas = support.one(prod, "Deployment", k8s)["spec"]["replicas"]
        else:
            replicas = support.one(prod, "HorizontalPodAutoscaler", k8s)["spec"]["maxReplicas"]
        pods = replicas + 1
        connections += pods * (pool_max + 1)
    max_connections = int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
    assert connections <= max_connections - 10, (connections, max_connections)
