from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from devtools import stripe_mock
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


@pytest.fixture(scope="session")
def stripe_mock_url() -> Iterator[str]:
    """stripe-mock on a free port for the session: built first if Go is here (cached in
    .local/stripe-mock; `make test` builds it before the tests), else the test skips."""
    if not stripe_mock.available():
        reason = stripe_mock.go_missing_reason()
        if reason is not None:
            pytest.skip(f"stripe-mock is not built and cannot be: {reason}")
        try:
            stripe_mock.build()
        except stripe_mock.StripeMockError as exc:
            pytest.skip(f"stripe-mock did not build (see .local/logs/stripe-mock-build.log): {exc}")
    with stripe_mock.running() as url:
        yield url
