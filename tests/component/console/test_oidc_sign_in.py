"""Signing in to the console through an OpenID Connect provider (authorization code with PKCE):
the whole flow with real redirects to a local provider double, and what the console refuses —
a state it did not issue, a code exchanged with the wrong verifier, ID tokens for someone else,
an access token the services would not accept — and the session ending with its token."""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from services.console.app import build
from services.console.settings import ConsoleSettings
from shared.platform.service import create_app
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra
from tests.support.oidc_double import CLIENT_ID, OidcDouble, OidcUser, running_oidc_double, s256

pytestmark = pytest.mark.component
HTML = {"Accept": "text/html"}
CONSOLE = "http://console.test"


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcDouble]:
    with running_oidc_double() as double:
        yield double


@pytest.fixture
async def console(infra: Infra, provider: OidcDouble) -> AsyncIterator[ComponentHarness]:
    provider.reset()
    settings = ConsoleSettings(oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID)
    async for harness in start_harness(infra, build(settings)):
        yield harness


def browser(console: ComponentHarness) -> httpx.AsyncClient:
    """A client like a browser: the console in-process at http://console.test, the provider over
    real HTTP, cookies kept, redirects followed."""
    app = create_app(console.spec)
    return httpx.AsyncClient(
        mounts={CONSOLE: httpx.ASGITransport(app=app)},
        base_url=CONSOLE,
        headers=HTML,
        follow_redirects=True,
        timeout=10,
    )


def csrf_of(page: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert found, page
    return found.group(1)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query=urlencode({**query, **changes})))


async def signed_in(client: httpx.AsyncClient) -> bool:
    home = await client.get("/", follow_redirects=False)
    return home.status_code == 200


async def test_the_code_flow_signs_in_with_pkce_and_keeps_the_access_token(
    console: ComponentHarness, provider: OidcDouble
) -> None:
    async with browser(console) as client:
        sign_in = await client.get("/?page=2")
        assert sign_in.url.path == "/sign-in"
        assert "Sign in with your identity provider" in sign_in.text
        assert 'id="token"' not in sign_in.text, "no pasted tokens beside a provider"

        home = await client.get("/auth/login", params={"next": "/?page=2"})
        assert home.status_code == 200, home.text
        assert (home.url.path, home.url.query) == ("/", b"page=2")
        assert "Signed in as oidc:ada" in home.text and "operator" in home.text
        hops = [str(r.url) for r in home.history]
        assert hops[1].startswith(f"{provider.issuer}/authorize?")
        assert hops[2].startswith(f"{CONSOLE}/auth/callback?code=")

        asked = provider.authorizations[-1]
        assert asked["client_id"] == CLIENT_ID
        assert asked["redirect_uri"] == f"{CONSOLE}/auth/callback"
        assert asked["code_challenge_method"] == "S256"
        assert asked["state"] and asked["nonce"] and "openid" in asked["scope"].split()
        exchanged = provider.token_requests[-1]
        assert s256(exchanged["code_verifier"]) == asked["code_challenge"]
        assert exchanged["redirect_uri"] == asked["redirect_uri"]

        # The session carries the provider's access token: pages that need orders:read open.
        assert await signed_in(client)

        out = await client.post("/sign-out", data={"csrf": csrf_of(home.text)})
        assert out.url.path == "/sign-in"
        assert provider.logouts[-1] == {
            "client_id": CLIENT_ID,
            "post_logout_redirect_uri": f"{CONSOLE}/sign-in",
        }
        assert not await signed_in(client)


async def test_a_callback_with_a_state_the_console_did_not_issue_is_refused(
    console: ComponentHarness, provider: OidcDouble
) -> None:
    async with browser(console) as client:
        to_provider = await client.get("/auth/login", follow_redirects=False)
        assert to_provider.status_code == 302
        back = await client.get(to_provider.headers["location"], follow_redirects=False)
        callback = back.headers["location"]

        forged = await client.get(with_query(callback, state="forged-state"))
        assert forged.status_code == 400
        assert "was not started here" in forged.text and 'role="alert"' in forged.text
        assert not await signed_in(client)

    # The same callback in another browser (whose session never started this sign-in).
    async with browser(console) as other:
        stolen = await other.get(callback)
        assert stolen.status_code == 400 and "was not started here" in stolen.text
        assert not await signed_in(other)


async def test_a_used_callback_does_not_sign_in_twice(
    console: ComponentHarness, provider: OidcDouble
) -> None:
    async with browser(console) as client:
        home = await client.get("/auth/login")
        assert home.status_code == 200 and home.url.path == "/"
        callback = str(home.history[-1].url)
        await client.post("/sign-out", data={"csrf": csrf_of(home.text)})
        again = await client.get(callback)
        assert again.status_code == 400
        assert not await signed_in(client)


async def test_a_code_exchanged_with_the_wrong_verifier_is_refused(
    console: ComponentHarness, provider: OidcDouble
) -> None:
    """Someone swaps the challenge on the way to the provider: the console's verifier then does
    not match it, and the provider refuses the code."""
    async with browser(console) as client:
        to_provider = await client.get("/auth/login", follow_redirects=False)
        swapped = with_query(
            to_provider.headers["location"], code_challenge=s256("the attacker's verifier")
        )
        refused = await client.get(swapped)
        assert refused.url.path == "/auth/callback"
        assert refused.status_code == 401
        assert "invalid_grant" in refused.text and "code_verifier" in refused.text
        assert not await signed_in(client)


FOREIGN_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize(
    ("id_token", "access_token", "why"),
    [
        (
            {"aud": "another-client"},
            {},
            "ID token was refused: invalid_claim: Invalid claim: 'aud'",
        ),
        ({"iss": "https://impostor.example"}, {}, "Invalid claim: 'iss'"),
        ({"nonce": "not-the-one-sent"}, {}, "Invalid claim: 'nonce'"),
        ({"exp": 1_000_000_000}, {}, "ID token was refused: expired_token"),
        ({"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}, {}, "Invalid claim: 'at_hash'"),
        ("foreign key", {}, "ID token was refused: bad_signature"),
        ({}, {"aud": "another-api"}, "not one the services accept"),
    ],
    ids=["audience", "issuer", "nonce", "expired", "at_hash", "signature", "access-token"],
)
async def test_tokens_the_console_must_not_trust_are_refused(
    console: ComponentHarness,
    provider: OidcDouble,
    id_token: dict[str, Any] | str,
    access_token: dict[str, Any],
    why: str,
) -> None:
    if id_token == "foreign key":
        provider.id_token_key = FOREIGN_KEY
    else:
        assert isinstance(id_token, dict)
        provider.id_token_claims = id_token
    provider.access_token_claims = access_token
    async with browser(console) as client:
        refused = await client.get("/auth/login")
        assert refused.url.path == "/auth/callback"
        assert refused.status_code == 401, refused.text
        alert = re.search(r'role="alert">([^<]*)<', refused.text)
        assert alert is not None, refused.text
        assert why in html.unescape(alert.group(1))
        assert not await signed_in(client)


async def test_the_session_ends_when_the_access_token_expires(
    console: ComponentHarness, provider: OidcDouble
) -> None:
    # Long enough for the sign-in to finish on a loaded machine; then wait until it is over.
    ttl_s = 6
    provider.user = OidcUser("oidc:brief", ["viewer"], access_ttl_s=ttl_s)
    issued_by = time.monotonic()
    async with browser(console) as client:
        home = await client.get("/auth/login")
        assert home.url.path == "/" and "oidc:brief" in home.text
        await asyncio.sleep(max(0.0, issued_by + ttl_s + 1.1 - time.monotonic()))
        # The services would still take the token within their 30 s leeway: the console does not.
        expired = await client.get("/", follow_redirects=False)
        assert expired.status_code == 303
        assert expired.headers["location"].startswith("/sign-in")
        page = await client.get(expired.headers["location"])
        assert "Your sign-in has expired" in page.text
        assert not await signed_in(client)
        again = await client.get("/sign-in")
        assert "expired" not in again.text, "said once"


async def test_token_sign_in_is_refused_beside_a_provider(
    console: ComponentHarness, provider: OidcDouble
) -> None:
    from tests.support import auth

    async with browser(console) as client:
        form = await client.get("/sign-in")
        refused = await client.post(
            "/sign-in", data={"token": auth.token("admin"), "csrf": csrf_of(form.text)}
        )
        assert refused.status_code == 403
        assert "identity provider" in refused.text
        assert not await signed_in(client)


async def test_a_provider_that_does_not_answer_is_a_clear_page(infra: Infra) -> None:
    settings = ConsoleSettings(oidc_issuer="http://127.0.0.1:9", oidc_client_id=CLIENT_ID)
    async for harness in start_harness(infra, build(settings)):
        async with browser(harness) as client:
            page = await client.get("/auth/login")
            assert page.status_code == 502
            assert "did not answer" in page.text and 'role="alert"' in page.text
