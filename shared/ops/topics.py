"""Kafka topics from the registry (shared/topics.py), for Kubernetes.

`python -m shared.ops.topics` creates the registry's topics (with OMS_TOPIC_PREFIX) on
OMS_KAFKA_BOOTSTRAP and exits: the dev overlay's topic Job. Existing topics are left alone.

`python -m shared.ops.topics --strimzi` prints the registry as Strimzi `KafkaTopic` resources:
the prod overlay's `kafka-topics.yaml` is this output, and a test checks that they agree.
`--strimzi-users` prints one `KafkaUser` per service with ACLs for exactly what it produces and
consumes: the prod overlay's `kafka-users.yaml`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shared.platform.settings import OpsSettings
from shared.topics import TOPICS, TopicSpec

DEFAULT_CLUSTER = "oms-kafka"
DEFAULT_REPLICAS = 3
_RESOURCE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class TopicsError(RuntimeError):
    """Kafka refused to create a topic, or a created topic got no leader in time."""


def prefixed(topics: Iterable[TopicSpec], prefix: str) -> list[TopicSpec]:
    return [
        TopicSpec(prefix + t.name, t.owner, t.description, t.key, t.partitions, dict(t.config))
        for t in topics
    ]


def resource_name(topic_name: str) -> str:
    """A Kubernetes object name for a topic: topic names may hold `_`, object names may not."""
    name = topic_name.lower().replace("_", "-")
    if len(name) > 253 or not _RESOURCE_NAME.fullmatch(name):
        raise ValueError(f"topic {topic_name!r} has no valid Kubernetes resource name")
    return name


def strimzi_topics(
    topics: Iterable[TopicSpec] = TOPICS,
    *,
    cluster: str = DEFAULT_CLUSTER,
    prefix: str = "",
    replicas: int = DEFAULT_REPLICAS,
) -> list[dict[str, Any]]:
    """One Strimzi `KafkaTopic` (kafka.strimzi.io/v1) per registry topic."""
    resources: list[dict[str, Any]] = []
    for spec in prefixed(topics, prefix):
        topic_spec: dict[str, Any] = {
            "topicName": spec.name,
            "partitions": spec.partitions,
            "replicas": replicas,
        }
        if spec.config:
            topic_spec["config"] = dict(sorted(spec.config.items()))
        resources.append(
            {
                "apiVersion": "kafka.strimzi.io/v1",
                "kind": "KafkaTopic",
                "metadata": {
                    "name": resource_name(spec.name),
                    "labels": {
                        "strimzi.io/cluster": cluster,
                        "app.kubernetes.io/part-of": "oms",
                    },
                    "annotations": {
                        "oms/owner": spec.owner,
                        "oms/key": spec.key,
                        "oms/description": spec.description,
                    },
                },
                "spec": topic_spec,
            }
        )
    names = [r["metadata"]["name"] for r in resources]
    if len(names) != len(set(names)):
        raise ValueError("two topics map to the same Kubernetes resource name")
    return resources


def render_strimzi_yaml(
    *, cluster: str = DEFAULT_CLUSTER, prefix: str = "", replicas: int = DEFAULT_REPLICAS
) -> str:
    import yaml

    header = (
        "# Generated from shared/topics.py by\n"
        f"#   python -m shared.ops.topics --strimzi --cluster {cluster} --replicas {replicas}"
        + (f" --prefix {prefix}" if prefix else "")
        + "\n# Do not edit: change the registry and regenerate (a test compares the two).\n"
    )
    body = yaml.safe_dump_all(
        strimzi_topics(cluster=cluster, prefix=prefix, replicas=replicas),
        sort_keys=False,
        default_flow_style=False,
        explicit_start=True,
    )
    return header + str(body)


def kafka_user_name(service: str) -> str:
    """The Strimzi KafkaUser (and the Secret with its password) of one service."""
    return f"oms-{service.replace('_', '-')}"


def service_acls(service: str, consumed: Iterable[str], prefix: str = "") -> list[dict[str, Any]]:
    """What one service may do on Kafka: write (and describe) the topics it produces — its
    dead-letter topic included —, read (and describe) the topics it consumes, read its
    consumer group. Nothing else."""
    operations: dict[str, set[str]] = {}
    for spec in TOPICS:
        if spec.owner == service or service in spec.also_written_by:
            operations.setdefault(spec.name, set()).update({"Write", "Describe"})
    for name in consumed:
        operations.setdefault(name, set()).update({"Read", "Describe"})
    acls: list[dict[str, Any]] = [
        {
            "resource": {"type": "topic", "name": prefix + name, "patternType": "literal"},
            "operations": sorted(ops),
        }
        for name, ops in sorted(operations.items())
    ]
    acls.append(
        {
            "resource": {"type": "group", "name": prefix + service, "patternType": "literal"},
            "operations": ["Read"],
        }
    )
    return acls


def strimzi_users(
    consumers: Mapping[str, Iterable[str]],
    *,
    cluster: str = DEFAULT_CLUSTER,
    prefix: str = "",
) -> list[dict[str, Any]]:
    """One Strimzi `KafkaUser` per service: SCRAM-SHA-512, simple authorization, its ACLs."""
    return [
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "KafkaUser",
            "metadata": {
                "name": kafka_user_name(service),
                "labels": {"strimzi.io/cluster": cluster, "app.kubernetes.io/part-of": "oms"},
            },
            "spec": {
                "authentication": {"type": "scram-sha-512"},
                "authorization": {
                    "type": "simple",
                    "acls": service_acls(service, consumed, prefix),
                },
            },
        }
        for service, consumed in sorted(consumers.items())
    ]


def consumers_from_code() -> dict[str, list[str]]:
    """The topics each service's consumer reads, from its own wiring (its ServiceSpec, or
    what it reads once configured: the channel connector reads nothing without accounts)."""
    import importlib

    from shared.topics import SERVICES

    consumed = {}
    for service in SERVICES:
        app = importlib.import_module(f"services.{service}.app")
        consumed[service] = list(getattr(app, "SUBSCRIBES_WHEN_CONFIGURED", app.build().topics))
    return consumed


def render_strimzi_users_yaml(*, cluster: str = DEFAULT_CLUSTER, prefix: str = "") -> str:
    import yaml

    header = (
        "# Generated from shared/topics.py and the services' subscriptions by\n"
        f"#   python -m shared.ops.topics --strimzi-users --cluster {cluster}"
        + (f" --prefix {prefix}" if prefix else "")
        + "\n# Do not edit: change the registry or the services and regenerate (a test compares"
        " the two).\n"
    )
    body = yaml.safe_dump_all(
        strimzi_users(consumers_from_code(), cluster=cluster, prefix=prefix),
        sort_keys=False,
        default_flow_style=False,
        explicit_start=True,
    )
    return header + str(body)


async def ensure_topics(
    bootstrap: str, topics: Iterable[Any], replication_factor: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    ``topics`` is any iterable of objects with ``.name``, ``.partitions`` and ``.config``
    (a mapping of topic configs, may be None/empty).  Existing topics are left alone,
    even if their partition count or config differ.  Waits until created topics show
    up in the metadata with leaders for all partitions.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    wanted: dict[str, Any] = {}
    for t in topics:
        wanted.setdefault(t.name, t)
    if not wanted:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name=name,
                num_partitions=int(t.partitions),
                replication_factor=replication_factor,
                topic_configs={
                    str(k): _config_value(v) for k, v in (getattr(t, "config", None) or {}).items()
                },
            )
            for name, t in wanted.items()
            if name not in existing
        ]
        if not new:
            return []
        response = await admin.create_topics(new, timeout_ms=30000)
        created: list[str] = []
        errors: list[str] = []
        for entry in response.topic_errors:
            name, code = entry[0], entry[1]
            message = entry[2] if len(entry) > 2 else None
            if code == 0:
                created.append(name)
            elif code == 36:  # TOPIC_ALREADY_EXISTS: someone else was faster
                continue
            else:
                errors.append(f"{name}: error {code} {message or ''}".strip())
        if errors:
            raise TopicsError("creating Kafka topics failed: " + "; ".join(errors))
        await _wait_topics_ready(admin, created)
        return created
    finally:
        await admin.close()


def _config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _wait_topics_ready(admin: Any, names: list[str], timeout: float = 30.0) -> None:
    if not names:
        return
    deadline = time.monotonic() + timeout
    while True:
        described = await admin.describe_topics(names)
        ok = {
            d["topic"]
            for d in described
            if d.get("error_code", 0) == 0
            and d.get("partitions")
            and all(p.get("leader", -1) >= 0 for p in d["partitions"])
        }
        if ok >= set(names):
            return
        if time.monotonic() > deadline:
            raise TopicsError(f"topics not ready after {timeout:.0f}s: {sorted(set(names) - ok)}")
        await asyncio.sleep(0.2)


async def create_topics(bootstrap: str, prefix: str, replication_factor: int) -> list[str]:
    return await ensure_topics(bootstrap, prefixed(TOPICS, prefix), replication_factor)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.ops.topics",
        description="Create the registry's Kafka topics, or print them as Strimzi KafkaTopics.",
    )
    parser.add_argument(
        "--strimzi", action="store_true", help="print KafkaTopic resources instead of creating"
    )
    parser.add_argument(
        "--strimzi-users",
        action="store_true",
        help="print one KafkaUser per service with its ACLs instead of creating topics",
    )
    parser.add_argument("--cluster", default=DEFAULT_CLUSTER, help="Strimzi Kafka cluster name")
    parser.add_argument(
        "--replicas", type=int, default=DEFAULT_REPLICAS, help="replicas per KafkaTopic"
    )
    parser.add_argument(
        "--replication-factor",
        type=int,
        default=1,
        help="replication factor of topics created on OMS_KAFKA_BOOTSTRAP (default 1)",
    )
    parser.add_argument("--prefix", default=None, help="topic prefix (default OMS_TOPIC_PREFIX)")
    args = parser.parse_args(argv)
    settings = OpsSettings()
    prefix = settings.topic_prefix if args.prefix is None else args.prefix

    if args.strimzi_users:
        sys.stdout.write(render_strimzi_users_yaml(cluster=args.cluster, prefix=prefix))
        return 0
    if args.strimzi:
        sys.stdout.write(
            render_strimzi_yaml(cluster=args.cluster, prefix=prefix, replicas=args.replicas)
        )
        return 0

    if not settings.kafka_bootstrap:
        print("OMS_KAFKA_BOOTSTRAP is not set", file=sys.stderr)
        return 2
    try:
        created = asyncio.run(
            create_topics(settings.kafka_bootstrap, prefix, args.replication_factor)
        )
    except Exception as exc:
        print(f"creating topics on {settings.kafka_bootstrap} failed: {exc}", file=sys.stderr)
        return 1
    existing = len(TOPICS) - len(created)
    print(f"created {len(created)} topic(s) {sorted(created)}; {existing} already existed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
