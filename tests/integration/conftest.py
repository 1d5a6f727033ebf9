from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.env import Infra, TestEnv, new_env
from tests.support.probe_service import PROBE_TOPICS
from tests.support.services import ServiceProcess

pytestmark = pytest.mark.integration


@pytest.fixture
async def probe_env(infra: Infra) -> TestEnv:
    return await new_env(infra, services=["probe"], extra_topics=PROBE_TOPICS)


@pytest.fixture
async def probe(probe_env: TestEnv) -> AsyncIterator[ServiceProcess]:
    process = ServiceProcess("probe", "tests.support.probe_service", probe_env.service_env("probe"))
    yield process
    process.kill()
