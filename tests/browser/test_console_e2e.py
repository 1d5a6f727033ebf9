"""The console end to end in Debian's Chromium: the whole OMS as processes, the console signing
in through the OIDC provider double with real browser redirects (PKCE), the start page reached
by keyboard, readable at 1280 px and on a tablet, and a viewer without actions — whose token the
services accept for reading and refuse for acting.

Each page's check is a few lines: `page = await signed_in_page(role)`, `page.goto(...)`,
`await check_page(page, "<name>")` (labels, one h1, tables with <th>, no horizontal scroll; a
screenshot in .local/screenshots/)."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Request

from tests.browser.conftest import Console, SignIn
from tests.browser.pages import (
    DESKTOP,
    TABLET,
    Viewport,
    action_buttons,
    check_page,
    overflow_px,
    problems,
    screenshot,
    tab_order,
    unlabelled_controls,
)
from tests.support.oidc_double import OidcDouble, OidcUser

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

NAV = ["/orders", "/attention", "/stock", "/warehouse", "/returns", "/dead-letters", "/kpis"]


async def test_signing_in_through_the_provider_in_the_browser(
    chromium: Browser, console: Console, provider: OidcDouble
) -> None:
    provider.user = OidcUser("browser:ada", ["operator"])
    context = await chromium.new_context(viewport=DESKTOP.size())
    try:
        page = await context.new_page()
        navigations: list[str] = []

        def record(request: Request) -> None:
            if request.is_navigation_request():
                navigations.append(request.url)

        page.on("request", record)
        await page.goto(console.url("/?from=bookmark"))
        assert page.url == console.url("/sign-in?next=/%3Ffrom%3Dbookmark")
        assert await page.get_by_role("heading", name="Sign in").is_visible()
        assert await page.locator("textarea").count() == 0, "no pasted tokens in production set-up"
        await check_page(page, "sign-in")

        await page.get_by_role("link", name="Sign in with your identity provider").click()
        await page.wait_for_url(console.url("/?from=bookmark"))
        assert await page.get_by_text("Signed in as browser:ada").is_visible()
        authorize = next(u for u in navigations if u.startswith(f"{provider.issuer}/authorize"))
        asked = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
        assert asked["code_challenge_method"] == "S256" and asked["code_challenge"]
        assert asked["redirect_uri"] == console.url("/auth/callback")
        assert any(u.startswith(console.url("/auth/callback?code=")) for u in navigations)
        await check_page(page, "start-page")

        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url(console.url("/sign-in"))
        assert provider.logouts[-1]["post_logout_redirect_uri"] == console.url("/sign-in")
        await page.goto(console.url("/"))
        assert page.url.startswith(console.url("/sign-in")), "signed out"
    finally:
        await context.close()
        provider.reset()


async def test_the_start_page_works_by_keyboard(signed_in_page: SignIn, console: Console) -> None:
    page = await signed_in_page("operator")
    reached = await tab_order(page)
    assert reached[0].startswith("a Skip to content"), reached
    hrefs = [item.rsplit(" ", 1)[-1] for item in reached]
    for path in NAV:
        assert path in hrefs, f"Tab never reaches {path}: {reached}"
    assert [h for h in hrefs if h in NAV][: len(NAV)] == NAV, "the nav links in their order"
    assert any(item.startswith("button Sign out") for item in reached), reached

    # The skip link takes the keyboard past the navigation to the main content.
    await page.goto(console.url("/"))
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    focused = await page.evaluate("() => document.activeElement.id")
    assert focused == "main"


@pytest.mark.parametrize("viewport", [DESKTOP, TABLET], ids=lambda v: v.name)
async def test_the_start_page_fits_the_screen(
    signed_in_page: SignIn, chromium: Browser, console: Console, viewport: Viewport
) -> None:
    size = viewport
    page = await signed_in_page("operator", viewport=size)
    assert await overflow_px(page) == 0
    await check_page(page, f"start-page-{size.name}")

    context = await chromium.new_context(viewport=size.size())
    try:
        sign_in = await context.new_page()
        await sign_in.goto(console.url("/sign-in"))
        await check_page(sign_in, f"sign-in-{size.name}")
    finally:
        await context.close()


async def test_a_viewer_sees_no_actions_and_the_services_refuse_them(
    signed_in_page: SignIn, console: Console, provider: OidcDouble
) -> None:
    page = await signed_in_page("viewer")
    assert await action_buttons(page) == []
    await screenshot(page, "start-page-viewer")

    # The token the provider gave the viewer's session is one the services take: they answer
    # its reads, and refuse its actions themselves.
    token = provider.issued["browser:viewer"]
    orders = f"{console.system.url('order_intake')}/v1/orders"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as api:
        assert (await api.get(orders)).status_code == 200
        refused = await api.post(f"{orders}/{uuid.uuid4()}/cancel", json={"reason": "test"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"


async def test_the_page_checks_find_what_they_look_for(chromium: Browser) -> None:
    """Controls for the checks above: each finds the fault it is there for."""
    context = await chromium.new_context(viewport=TABLET.size())
    try:
        page = await context.new_page()
        await page.set_content(
            "<h1>Orders</h1><main>"
            "<label for=q>Order id</label><input id=q name=q>"
            "<input name=email placeholder=E-mail><select name=s><option>NEW</option></select>"
            "<table><tr><td>no header</td></tr></table>"
            "<form method=post><button>Retry</button></form>"
            "<a hx-post='/x' href='#'>Release</a>"
            "<div style='width: 2000px'>wide</div></main>"
        )
        assert await action_buttons(page) == ["Retry", "Release"]
        unlabelled = await unlabelled_controls(page)
        assert [u.split(" <")[1].split()[0] for u in unlabelled] == ["input", "select"], unlabelled
        assert await overflow_px(page) > 1000
        found = await problems(page)
        assert len(found) == 4 and "table 0 has no <th>" in found, found
    finally:
        await context.close()
