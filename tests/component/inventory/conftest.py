from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.inventory.app import build
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra


@pytest.fixture
async def inventory(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness
