"""The orders pages' refusals that need no other service: bad search fields named, an action
only for who may operate (with the session's CSRF token), only the three actions. The pages
with the services behind them: tests/integration/test_console_orders.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from services.console.app import build
from services.console.settings import ConsoleSettings
from tests.support import auth
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component
HTML = {"Accept": "text/html"}
NOWHERE = "http://127.0.0.1:9"  # nothing answers: a call that got through would be a 503


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


@pytest.fixture
async def console(infra: Infra) -> AsyncIterator[ComponentHarness]:
    settings = ConsoleSettings(order_intake_url=NOWHERE, payment_url=NOWHERE)
    async for harness in start_harness(infra, build(settings)):
        yield harness


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_from": "2025-03-02", "date_to": "2025-03-01"}, "date_to"),
        ({"email": "not-an-address"}, "email"),
        ({"limit": "9999"}, "limit"),
    ],
)
async def test_a_bad_search_field_is_a_422_page_naming_it(
    console: ComponentHarness, query: dict[str, str], field: str
) -> None:
    async with console.http("operator") as browser:
        page = await browser.get("/orders", params=query, headers=HTML)
    assert page.status_code == 422, page.text
    assert f"invalid_{field}" in page.text and f"{field}: " in page.text
    assert "<h1>422" in page.text


async def test_a_viewer_may_not_act_and_the_refusal_is_shown_in_the_row(
    console: ComponentHarness,
) -> None:
    async with console.http("viewer") as browser:
        refused = await browser.post(
            "/attention/ord_1/retry", headers={**HTML, "HX-Request": "true"}
        )
        as_page = await browser.post("/attention/ord_1/compensate", headers=HTML)
    assert refused.status_code == 403
    assert 'role="alert"' in refused.text and "forbidden" in refused.text
    assert "<html" not in refused.text, "a fragment for the row, not a page"
    assert as_page.status_code == 403 and "<h1>403: forbidden</h1>" in as_page.text


async def test_an_action_from_a_session_needs_its_csrf_token_and_is_one_of_three(
    console: ComponentHarness,
) -> None:
    async with console.http("operator") as api:
        unknown = await api.post("/attention/ord_1/reject", headers=HTML)
        reaches_the_service = await api.post("/attention/ord_1/retry", headers=HTML)
    assert unknown.status_code == 422 and "invalid_action" in unknown.text
    assert reaches_the_service.status_code == 503, "allowed: it went on to order-intake"
    assert "order_intake did not answer" in reaches_the_service.text

    token = auth.token("operator")
    async with console.anonymous() as browser:
        form = await browser.get("/sign-in", headers=HTML)
        signed_in = await browser.post(
            "/sign-in", data={"token": token, "next": "/", "csrf": csrf_of(form.text)}
        )
        assert signed_in.status_code == 303, signed_in.text
        csrf = csrf_of((await browser.get("/", headers=HTML)).text)
        stale = await browser.post("/attention/ord_1/retry", data={"csrf": "not-it"})
        fresh = await browser.post(
            "/attention/ord_1/retry", headers={"X-CSRF-Token": csrf, "HX-Request": "true"}
        )
    assert stale.status_code == 403 and "csrf_failed" in stale.text
    assert fresh.status_code == 503, "with the session's token it went on to order-intake"


async def test_progress_parameters_are_checked(console: ComponentHarness) -> None:
    async with console.http("viewer") as api:
        bad = await api.get(
            "/attention/ord_1/progress",
            params={"action": "retry", "watch": "<script>", "since": "1"},
            headers={"HX-Request": "true"},
        )
        missing = await api.get("/attention/ord_1/progress", params={"action": "retry"})
    assert bad.status_code == 422 and "invalid_watch" in bad.text
    assert missing.status_code == 422 and "watch" in missing.text
