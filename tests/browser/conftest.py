"""Browser tests: Debian's Chromium (/usr/bin/chromium) headless, driven by Playwright for Python
(no browser download), against the whole OMS as processes with the console, signing in through
the local OIDC provider double with real redirects.

Fixtures: `chromium` (the browser, once a session; the tests skip, saying why, where there is
no /usr/bin/chromium), `provider` (the OIDC double), `console` (the system: CORE_SERVICES and
the console, started once a session), `signed_in_page(role)` (a fresh browser context signed in
with that role, on the start page)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.browser.pages import DESKTOP, Viewport
from tests.support.env import Infra
from tests.support.jaeger_query_double import JaegerQueryDouble
from tests.support.oidc_double import CLIENT_ID, OidcDouble, OidcUser, running_oidc_double
from tests.support.system import CORE_SERVICES, System, start_system

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_INSTALLED = os.path.exists(CHROMIUM)  # at import: the fixtures below are async
# Settings of the system's services for the browser tests (a page's test may add its own here
# when it needs, e.g., short saga deadlines: the system is started once for all of them).
SYSTEM_OVERRIDES: dict[str, dict[str, str]] = {
    # Short saga deadlines, so a journey can park an order in NEEDS_ATTENTION (payment stopped).
    "order_intake": {
        "OMS_DEADLINE_POLL_INTERVAL_S": "0.2",
        "OMS_SAGA_PAYMENT_TIMEOUT_S": "2",
        "OMS_SAGA_MAX_ATTEMPTS": "2",
        "OMS_SAGA_COMPENSATION_TIMEOUT_S": "2",
    },
}

SignIn = Callable[..., Awaitable[Page]]


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    if not CHROMIUM_INSTALLED:
        pytest.skip(
            f"{CHROMIUM} is not installed (Debian's chromium package: `make test` installs it "
            "where it runs as root; else `apt-get install chromium`)"
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"], headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(scope="session")
def provider() -> Iterator[OidcDouble]:
    with running_oidc_double() as double:
        yield double


@dataclass
class Console:
    system: System
    base_url: str

    def url(self, path: str = "/") -> str:
        return self.base_url + path


@pytest.fixture(scope="session")
def jaeger() -> Iterator[JaegerQueryDouble]:
    """Jaeger's query API as the console reads an order's trace (a local double)."""
    with JaegerQueryDouble() as double:
        yield double


@pytest.fixture(scope="session")
async def console(
    infra: Infra, provider: OidcDouble, chromium: Browser, jaeger: JaegerQueryDouble
) -> AsyncIterator[Console]:
    """The core services and the console as processes, the console signing in through the
    provider double (started after the browser, so a machine without one skips at once)."""
    overrides = {
        **SYSTEM_OVERRIDES,
        "console": {
            **SYSTEM_OVERRIDES.get("console", {}),
            "OMS_OIDC_ISSUER": provider.issuer,
            "OMS_OIDC_CLIENT_ID": CLIENT_ID,
            "OMS_SESSION_SECRET": "browser-tests-session-secret-0123456789",
            "OMS_JAEGER_QUERY_URL": jaeger.url,
        },
    }
    system = await start_system(infra, overrides, *CORE_SERVICES, "console")
    try:
        yield Console(system, system.url("console"))
    finally:
        await system.close()


@pytest.fixture
async def signed_in_page(
    chromium: Browser, console: Console, provider: OidcDouble
) -> AsyncIterator[SignIn]:
    """`await signed_in_page("viewer")`: a page in a fresh browser context (its own cookies),
    signed in through the provider as `browser:<role>` (or `subject=`), on the start page.
    `viewport=TABLET` for a tablet."""
    contexts: list[BrowserContext] = []

    async def sign_in(
        role: str, *, subject: str | None = None, viewport: Viewport = DESKTOP
    ) -> Page:
        provider.user = OidcUser(subject or f"browser:{role}", [role])
        context = await chromium.new_context(viewport=viewport.size())
        contexts.append(context)
        page = await context.new_page()
        await page.goto(console.url("/sign-in"))
        await page.get_by_role("link", name="Sign in with your identity provider").click()
        await page.wait_for_url(console.url("/"))
        assert await page.get_by_text(f"Signed in as {provider.user.subject}").is_visible()
        return page

    yield sign_in
    for context in contexts:
        await context.close()
    provider.reset()
