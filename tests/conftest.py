from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.env import Infra, provide_infra


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    with provide_infra() as found:
        yield found
