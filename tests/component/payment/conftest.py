from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools import stripe_mock


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
