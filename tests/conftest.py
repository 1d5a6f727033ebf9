from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.support import auth
from tests.support.env import Infra, provide_infra, remove_test_leftovers, test_session_lock

# Every service of the session, in-process or a process, verifies the session's test tokens.
auth.configure_environment()
# The tests place many orders from one e-mail, card and address within minutes: the fraud
# rules would hold them for review. They are off unless a test turns them on (its settings,
# or OMS_FRAUD_ENABLED=true in a service's overrides).
os.environ.setdefault("OMS_FRAUD_ENABLED", "false")


@pytest.fixture(scope="session")
async def infra() -> AsyncIterator[Infra]:
    with test_session_lock() as alone, provide_infra() as found:
        if alone:
            await remove_test_leftovers(found, only_this_session=False)
        yield found
        await remove_test_leftovers(found, only_this_session=True)
