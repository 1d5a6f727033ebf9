from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import auth
from tests.support.env import Infra, provide_infra, remove_test_leftovers, test_session_lock

# Every service of the session, in-process or a process, verifies the session's test tokens.
auth.configure_environment()


@pytest.fixture(scope="session")
async def infra() -> AsyncIterator[Infra]:
    with test_session_lock() as alone, provide_infra() as found:
        if alone:
            await remove_test_leftovers(found, only_this_session=False)
        yield found
        await remove_test_leftovers(found, only_this_session=True)
