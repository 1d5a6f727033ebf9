"""Both overlays render, and every rendered object of a built-in kind validates offline with
strict checking against the Kubernetes schemas. The custom resources (Strimzi, CloudNativePG)
are not validated against CRD schemas (none obtainable here): they must be exactly the ones
listed in support.NOT_VALIDATED, so a new unvalidated kind cannot slip in silently. The list is
printed at the end of the session."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy import support

Objects = dict[str, list[dict[str, Any]]]


@pytest.mark.parametrize("overlay", support.OVERLAYS)
@pytest.mark.parametrize("version", support.K8S_VERSIONS)
def test_every_built_in_object_validates_strictly(
    overlays: Objects, overlay: str, version: str
) -> None:
    objects = overlays[overlay]
    assert objects, f"{overlay} rendered nothing"
    report = support.validate_all(objects, version)
    support.REPORTS[(overlay, version)] = report
    assert not report.errors, "\n".join(report.errors)
    assert report.not_validated_kinds() == support.NOT_VALIDATED[overlay], (
        "the kinds without a schema changed: list them in support.NOT_VALIDATED "
        "(and deploy/README.md) or validate them"
    )
    assert sum(report.validated.values()) + len(report.not_validated) == len(objects)


def test_custom_resources_have_no_schema_and_an_unlisted_kind_is_caught(
    overlays: Objects,
) -> None:
    version = support.K8S_VERSIONS[0]
    for obj in support.find(overlays["prod"], "KafkaTopic")[:1] + support.find(
        overlays["prod"], "Cluster"
    ):
        with pytest.raises(support.NotValidated):
            support.validate(obj, version)
    # A custom resource of a kind nobody listed shows up in the comparison.
    extra = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    report = support.validate_all([*overlays["prod"], extra], version)
    assert report.not_validated_kinds() - support.NOT_VALIDATED["prod"] == {
        ("example.com/v1", "Widget")
    }


def test_strict_validation_rejects_unknown_fields_and_wrong_types(overlays: Objects) -> None:
    deployment = copy.deepcopy(support.one(overlays["dev"], "Deployment", "payment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        support.validate(deployment, support.K8S_VERSIONS[0])

    hpa = copy.deepcopy(support.one(overlays["prod"], "HorizontalPodAutoscaler", "payment"))
    hpa["spec"]["maxReplicas"] = "six"
    report = support.validate_all([hpa], support.K8S_VERSIONS[-1])
    assert len(report.errors) == 1 and "maxReplicas" in report.errors[0]


def test_every_namespaced_object_lands_in_the_overlay_namespace(overlays: Objects) -> None:
    for objects in overlays.values():
        (namespace,) = support.find(objects, "Namespace")
        name = namespace["metadata"]["name"]
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        for obj in objects:
            if obj["kind"] != "Namespace":
                assert obj["metadata"].get("namespace") == name, support.describe(obj)
