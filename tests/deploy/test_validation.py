"""Both overlays render, and every rendered object validates offline with strict checking:
built-in kinds against the Kubernetes schemas, custom resources against their CRDs."""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.deploy import support

CUSTOM_KINDS = {
    "prod": {"Kafka", "KafkaNodePool", "KafkaTopic", "Cluster", "Database"},
    "dev": set(),
}


@pytest.mark.parametrize("overlay", support.OVERLAYS)
@pytest.mark.parametrize("version", support.K8S_VERSIONS)
def test_every_rendered_object_validates_strictly(
    overlays: dict[str, list[dict[str, Any]]], overlay: str, version: str
) -> None:
    objects = overlays[overlay]
    assert objects, f"{overlay} rendered nothing"
    validated_by: dict[str, int] = {}
    custom_kinds: set[str] = set()
    errors: list[str] = []
    not_validated: list[str] = []
    for obj in objects:
        try:
            against = support.validate(obj, version)
        except support.NotValidated as exc:
            not_validated.append(f"{support.describe(obj)} ({exc})")
            continue
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
            errors.append(f"{support.describe(obj)}: {'.'.join(map(str, exc.path))}: {exc.message}")
            continue
        validated_by[against] = validated_by.get(against, 0) + 1
        if against.startswith("CRD"):
            custom_kinds.add(obj["kind"])
    summary = ", ".join(f"{count} x {against}" for against, count in sorted(validated_by.items()))
    print(f"\n{overlay} @ Kubernetes {version}: {len(objects)} objects: {summary}")
    assert not errors, "\n".join(errors)
    assert not not_validated, "objects without a schema: " + ", ".join(not_validated)
    assert custom_kinds == CUSTOM_KINDS[overlay]


def test_strict_validation_rejects_unknown_fields(
    overlays: dict[str, list[dict[str, Any]]],
) -> None:
    deployment = copy.deepcopy(support.one(overlays["dev"], "Deployment", "payment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        support.validate(deployment, support.K8S_VERSIONS[0])

    topic = copy.deepcopy(support.find(overlays["prod"], "KafkaTopic")[0])
    topic["spec"]["partition"] = 3
    with pytest.raises(jsonschema.ValidationError):
        support.validate(topic, support.K8S_VERSIONS[0])

    cluster = copy.deepcopy(support.one(overlays["prod"], "Cluster", "oms-pg"))
    cluster["spec"]["instances"] = "three"
    with pytest.raises(jsonschema.ValidationError):
        support.validate(cluster, support.K8S_VERSIONS[0])


def test_every_namespaced_object_lands_in_the_overlay_namespace(
    overlays: dict[str, list[dict[str, Any]]],
) -> None:
    for objects in overlays.values():
        (namespace,) = support.find(objects, "Namespace")
        name = namespace["metadata"]["name"]
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        for obj in objects:
            if obj["kind"] != "Namespace":
                assert obj["metadata"].get("namespace") == name, support.describe(obj)


def test_vendored_crds_are_the_recorded_upstream_files() -> None:
    """deploy/k8s/crds/README.md records each file's origin and sha256; keep them honest."""
    readme = (support.CRDS / "README.md").read_text()
    by_file = {path: digest for digest, path in re.findall(r"`([0-9a-f]{64})`\s+`([^`]+)`", readme)}
    files = sorted(p.relative_to(support.CRDS).as_posix() for p in support.CRDS.rglob("*.yaml"))
    assert files, "no vendored CRDs"
    for path in files:
        digest = hashlib.sha256((support.CRDS / path).read_bytes()).hexdigest()
        assert by_file.get(path) == digest, f"{path} is not the file recorded in crds/README.md"
