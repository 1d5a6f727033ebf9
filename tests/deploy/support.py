"""Rendering the kustomize overlays and validating what they render, offline.

Built-in kinds are validated with the `kubernetes-validate` package (it ships the Kubernetes
JSON schemas: no network), in strict mode (unknown fields are errors). Custom resources are
validated against the openAPIV3Schema of their CRDs, vendored in deploy/k8s/crds/ (see the
README there for where each came from), made strict the same way.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
CRDS = K8S / "crds"
OVERLAYS = ("dev", "prod")
# The oldest Kubernetes minor these manifests support, and the newest the package knows.
_LATEST_SCHEMAS = kubernetes_validate.utils.latest_version()  # e.g. "1.37.0"
K8S_VERSIONS = ("1.33", kubernetes_validate.utils.major_minor(_LATEST_SCHEMAS))

SERVICES = ("order_intake", "inventory", "payment", "fulfilment", "returns")


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


def strict(schema: Any) -> Any:
    """Like the API server's strict field validation: objects with declared properties
    accept no other field, unless the schema preserves unknown fields or declares a map."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


@dataclass(frozen=True)
class CustomResourceSchema:
    crd_file: Path
    validator: jsonschema.protocols.Validator


@functools.cache
def custom_resource_schemas() -> dict[tuple[str, str], CustomResourceSchema]:
    """{(apiVersion, kind): schema} for every served version of every vendored CRD."""
    object_meta = _object_meta_schema()
    schemas: dict[tuple[str, str], CustomResourceSchema] = {}
    for path in sorted(CRDS.rglob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served", True):
                    continue
                schema = strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                schema.setdefault("properties", {})["metadata"] = object_meta
                schema["required"] = sorted({*schema.get("required", []), "metadata"})
                validator_class = jsonschema.validators.validator_for(
                    {"$schema": "http://json-schema.org/draft-07/schema#"}
                )
                schemas[(f"{group}/{version['name']}", kind)] = CustomResourceSchema(
                    path, validator_class(schema)
                )
    return schemas


def _object_meta_schema() -> dict[str, Any]:
    """ObjectMeta from the Kubernetes schemas (strict), self-contained."""
    definitions = kubernetes_validate.utils.schema_contents(
        f"kubernetes-json-schema/v{_LATEST_SCHEMAS}-local-strict/_definitions.json",
        _LATEST_SCHEMAS,
    )["$defs"]

    def inline(node: Any, depth: int = 0) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/") and depth < 8:
                return inline(definitions[ref.rsplit("/", 1)[1]], depth + 1)
            return {key: inline(value, depth) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item, depth) for item in node]
        return node

    meta: dict[str, Any] = inline(definitions["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"])
    return meta


class NotValidated(Exception):
    """No schema for this kind: neither a built-in kind nor a vendored CRD."""


def validate(obj: dict[str, Any], version: str) -> str:
    """Validate one object; return what it was validated against. Raises on errors."""
    custom = custom_resource_schemas().get((obj["apiVersion"], obj["kind"]))
    if custom is not None:
        errors = sorted(custom.validator.iter_errors(obj), key=lambda e: list(e.path))
        if errors:
            raise jsonschema.ValidationError(
                "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors[:5])
            )
        return f"CRD {custom.crd_file.relative_to(REPO)}"
    try:
        validated = kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise NotValidated(f"{obj['apiVersion']} {obj['kind']}") from exc
    return f"Kubernetes {validated} (strict)"


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
