from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy import support

# Paths every service is asked for in-process; the last one must not exist (control).
PROBED_PATHS = ["/health/live", "/health/ready", "/metrics", "/openapi.json", "/no-such-path"]


@pytest.fixture(scope="session")
def overlays() -> dict[str, list[dict[str, Any]]]:
    return {overlay: support.render(overlay) for overlay in support.OVERLAYS}


@pytest.fixture(scope="session")
def code(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Per service: consumed topics, OpenAPI operations, status of GET on PROBED_PATHS."""
    out: Path = tmp_path_factory.mktemp("introspect") / "services.json"
    return support.introspect(PROBED_PATHS, out)
