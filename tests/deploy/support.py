"""Rendering the kustomize overlays and validating what they render, offline.

Built-in kinds are validated with the `kubernetes-validate` package (it ships the Kubernetes
JSON schemas: no network), in strict mode (unknown fields are errors). The custom resources
(Strimzi, CloudNativePG) are NOT validated against CRD schemas: see NOT_VALIDATED.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
# The oldest Kubernetes minor these manifests support, and the newest the package knows.
_LATEST_SCHEMAS = kubernetes_validate.utils.latest_version()  # e.g. "1.37.0"
K8S_VERSIONS = ("1.33", kubernetes_validate.utils.major_minor(_LATEST_SCHEMAS))

SERVICES = (
    "order_intake",
    "inventory",
    "payment",
    "fulfilment",
    "returns",
    "channel_connector",
    "console",
)

# Services that run exactly one replica per Deployment, without an autoscaler: the channel
# connector (per-account pollers, stock pusher and rate limiters live in its process; several
# accounts are several Deployments, see deploy/README.md).
SINGLE_REPLICA = frozenset({"channel_connector"})


def k8s_name(service: str) -> str:
    return service.replace("_", "-")


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not installed: cannot render the kustomize overlays")
    return path


@functools.cache
def _render(overlay: str) -> str:
    result = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {overlay} failed:\n{result.stderr}")
    return result.stdout


def render(overlay: str) -> list[dict[str, Any]]:
    """The overlay's objects (a fresh copy each call)."""
    return [doc for doc in yaml.safe_load_all(_render(overlay)) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def config_map_data(objects: list[dict[str, Any]], prefix: str) -> dict[str, str]:
    """Data of the generated ConfigMap whose name starts with `prefix-` (hash suffix)."""
    found = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].rsplit("-", 1)[0] == prefix
    ]
    assert len(found) == 1, f"expected one ConfigMap {prefix}-<hash>, found {len(found)}"
    data: dict[str, str] = found[0].get("data", {})
    return data


# ----------------------------------------------------------------- schema validation

# The custom resources of the prod overlay, by (apiVersion, kind), that no schema here covers.
# Their operators publish the CRDs on GitHub and in Helm charts only; none of the package
# registries this project can reach ships them (Strimzi's Maven `io.strimzi:api` jar holds the
# model classes but no CRD; CloudNativePG's Go module was refused by the module proxy). So these
# are listed as not validated, and checked only structurally, for what the deployment relies on
# (test_custom_resources.py). A kind missing from this list fails the validation test.
NOT_VALIDATED: dict[str, set[tuple[str, str]]] = {
    "dev": set(),
    "prod": {
        ("kafka.strimzi.io/v1", "Kafka"),
        ("kafka.strimzi.io/v1", "KafkaNodePool"),
        ("kafka.strimzi.io/v1", "KafkaTopic"),
        ("kafka.strimzi.io/v1", "KafkaUser"),
        ("postgresql.cnpg.io/v1", "Cluster"),
        ("postgresql.cnpg.io/v1", "Database"),
    },
}
NOT_VALIDATED_REASON = "no CRD schema: not obtainable from a package registry reachable here"


class NotValidated(Exception):
    """No schema for this kind: not a built-in kind of the Kubernetes version."""


def validate(obj: dict[str, Any], version: str) -> str:
    """Validate one object strictly; return what it was validated against. Raises on errors,
    NotValidated when there is no schema for its kind."""
    try:
        validated = kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise NotValidated(f"{obj['apiVersion']} {obj['kind']}") from exc
    return f"Kubernetes {validated} (strict)"


@dataclass
class ValidationReport:
    """What validating one overlay's objects against one Kubernetes version found."""

    objects: int = 0
    validated: dict[str, int] = field(default_factory=dict)  # kind -> count
    not_validated: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def not_validated_kinds(self) -> set[tuple[str, str]]:
        return {(o["apiVersion"], o["kind"]) for o in self.not_validated}


def validate_all(objects: list[dict[str, Any]], version: str) -> ValidationReport:
    report = ValidationReport(objects=len(objects))
    for obj in objects:
        try:
            validate(obj, version)
        except NotValidated:
            report.not_validated.append(obj)
            continue
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(map(str, exc.path))
            report.errors.append(f"{describe(obj)}: {where}: {exc.message}")
            continue
        report.validated[obj["kind"]] = report.validated.get(obj["kind"], 0) + 1
    return report


# Filled by the validation test, printed at the end of the session (conftest.py).
REPORTS: dict[tuple[str, str], ValidationReport] = {}


def describe(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def introspect(paths: list[str], out: Path) -> dict[str, Any]:
    """What the services declare in code (see tests/deploy/introspect.py)."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.deploy.introspect", str(out), *paths],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    found: dict[str, Any] = json.loads(out.read_text())
    return found
