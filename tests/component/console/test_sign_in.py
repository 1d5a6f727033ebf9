"""Signing in to the console with a local token: the session keeps the token, pages need it,
forms need the session's CSRF token, a refused token or a foreign `next` gets nowhere."""

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


@pytest.fixture
async def console(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build(ConsoleSettings())):
        yield harness


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


async def test_a_page_without_a_session_sends_the_browser_to_sign_in(
    console: ComponentHarness,
) -> None:
    async with console.anonymous() as browser:
        page = await browser.get("/?x=1", headers=HTML)
        assert page.status_code == 303
        assert page.headers["location"] == "/sign-in?next=/%3Fx%3D1"
        api = await browser.get("/")
        assert api.status_code == 401, "not a browser: the API's answer"


async def test_sign_in_with_a_token_keeps_it_in_the_session(console: ComponentHarness) -> None:
    token = auth.bearer(auth.ADMIN)["Authorization"].removeprefix("Bearer ")
    async with console.anonymous() as browser:
        form = await browser.get("/sign-in", params={"next": "/"}, headers=HTML)
        assert form.status_code == 200 and 'for="token"' in form.text
        refused = await browser.post(
            "/sign-in", data={"token": "nonsense", "next": "/", "csrf": csrf_of(form.text)}
        )
        assert refused.status_code == 401 and "refused" in refused.text
        form = await browser.get("/sign-in", headers=HTML)
        signed_in = await browser.post(
            "/sign-in",
            data={"token": token, "next": "https://evil.example/", "csrf": csrf_of(form.text)},
        )
        assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/")
        home = await browser.get("/", headers=HTML)
        assert home.status_code == 200 and "Signed in as" in home.text

        stale = await browser.post("/sign-out", data={"csrf": "not-the-token"})
        assert stale.status_code == 403
        out = await browser.post("/sign-out", data={"csrf": csrf_of(home.text)})
        assert out.status_code == 303
        assert (await browser.get("/", headers=HTML)).status_code == 303


async def test_a_role_without_the_permission_is_refused_a_page(
    console: ComponentHarness,
) -> None:
    async with console.http("carrier:dhl") as api:
        assert (await api.get("/")).status_code == 403
    async with console.http("viewer") as api:
        assert (await api.get("/")).status_code == 200
