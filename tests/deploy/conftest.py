from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy import support

# Paths every service is asked for in-process; the last one must not exist (control). The
# console's pages are not in its OpenAPI document: a few are probed to know they exist.
CONSOLE_PAGES = ["/", "/sign-in", "/static/console.css"]
PROBED_PATHS = [
    "/health/live",
    "/health/ready",
    "/metrics",
    "/openapi.json",
    *CONSOLE_PAGES,
    "/no-such-path",
]


@pytest.fixture(scope="session")
def overlays() -> dict[str, list[dict[str, Any]]]:
    return {overlay: support.render(overlay) for overlay in support.OVERLAYS}


@pytest.fixture(scope="session")
def code(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Per service: consumed topics, OpenAPI operations, status of GET on PROBED_PATHS."""
    out: Path = tmp_path_factory.mktemp("introspect") / "services.json"
    return support.introspect(PROBED_PATHS, out)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What the manifests were validated against, and what was not validated."""
    if not support.REPORTS:
        return
    write = terminalreporter.write_line
    terminalreporter.write_sep("-", "deploy manifests: offline schema validation")
    not_validated: dict[str, dict[tuple[str, str], list[str]]] = {}
    for (overlay, version), report in sorted(support.REPORTS.items()):
        kinds = ", ".join(f"{kind} x{n}" for kind, n in sorted(report.validated.items()))
        write(
            f"{overlay} @ Kubernetes {version}: {sum(report.validated.values())} of "
            f"{report.objects} objects validated (strict, built-in kinds): {kinds}"
        )
        for obj in report.not_validated:
            names = not_validated.setdefault(overlay, {}).setdefault(
                (obj["apiVersion"], obj["kind"]), []
            )
            if obj["metadata"]["name"] not in names:
                names.append(obj["metadata"]["name"])
    write(f"NOT VALIDATED ({support.NOT_VALIDATED_REASON}):")
    if not not_validated:
        write("  (none)")
    for overlay, by_kind in sorted(not_validated.items()):
        for (api_version, kind), names in sorted(by_kind.items()):
            shown = ", ".join(names) if len(names) <= 3 else f"{names[0]}, ... ({len(names)})"
            write(f"  {overlay}: {kind} ({api_version}) x{len(names)}: {shown}")
