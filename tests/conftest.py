from __future__ import annotations

import asyncio
import contextlib
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


# With pytest-xdist (`make test` runs `-n 2`), the controller owns Kafka and Postgres for the whole
# run: it brings them up (or finds them) before any worker starts, removes earlier sessions'
# leftovers while no worker can have created anything yet, and hands them to the workers in
# these variables (not OMS_KAFKA_BOOTSTRAP / OMS_DATABASE_URL, which the services' own settings
# would read). Each worker removes the topics and databases it created.
HANDED_KAFKA = "OMS_TEST_KAFKA_BOOTSTRAP"
HANDED_ADMIN_URL = "OMS_TEST_ADMIN_URL"
_CONTROLLER_INFRA = contextlib.ExitStack()


def _is_xdist_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", 0))


def pytest_sessionstart(session: pytest.Session) -> None:
    if not _is_xdist_controller(session.config):
        return
    try:
        alone = _CONTROLLER_INFRA.enter_context(test_session_lock())
        found = _CONTROLLER_INFRA.enter_context(provide_infra())
        if alone:
            asyncio.run(remove_test_leftovers(found, only_this_session=False))
    except BaseException:
        _CONTROLLER_INFRA.close()  # what it started is stopped even when the run ends here
        raise
    os.environ[HANDED_KAFKA] = found.kafka_bootstrap
    os.environ[HANDED_ADMIN_URL] = found.admin_url


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _is_xdist_controller(session.config):
        _CONTROLLER_INFRA.close()


@pytest.fixture(scope="session")
async def infra() -> AsyncIterator[Infra]:
    kafka, admin_url = os.environ.get(HANDED_KAFKA), os.environ.get(HANDED_ADMIN_URL)
    with contextlib.ExitStack() as owned:
        if kafka and admin_url:
            found = Infra(kafka, admin_url)
        else:
            alone = owned.enter_context(test_session_lock())
            found = owned.enter_context(provide_infra())
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
