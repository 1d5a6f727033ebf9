"""The console's sign-in rules without I/O: what it refuses to start with, and when a session
ends."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from services.console.app import build_app
from services.console.auth.oidc import configuration_problems
from services.console.auth.session import (
    EXPIRED,
    EXPIRES_AT,
    SIGNED_OUT_REASON,
    end_expired_session,
    new_session,
    session_expired,
    token_expiry,
)
from services.console.settings import ConsoleSettings
from shared.platform.auth import SESSION_TOKEN

SECRET = SecretStr("s" * 40)
PROVIDER: dict[str, Any] = {
    "oidc_issuer": "https://id.example.com/realms/shop",
    "oidc_client_id": "oms-console",
    "session_secret": SECRET,
}


def settings(**values: Any) -> ConsoleSettings:
    return ConsoleSettings(**values)


def test_production_needs_the_provider_and_a_session_secret() -> None:
    problems = configuration_problems(settings(env="production"))
    assert problems == [
        "OMS_OIDC_ISSUER must be set in production (sign-in through OIDC)",
        "OMS_SESSION_SECRET must be set in production (at least 32 characters)",
    ]
    assert configuration_problems(settings(env="production", **PROVIDER)) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"session_secret": SecretStr("short")}, "OMS_SESSION_SECRET must be set in production"),
        ({"oidc_client_id": None}, "OMS_OIDC_CLIENT_ID must be set with OMS_OIDC_ISSUER"),
        ({"oidc_scopes": "profile email"}, "OMS_OIDC_SCOPES must include openid"),
        ({"oidc_issuer": "http://id.example.com"}, "OMS_OIDC_ISSUER must be an https:// URL"),
        ({"oidc_redirect_url": "http://console/auth/callback"}, "OMS_OIDC_REDIRECT_URL must be"),
    ],
)
def test_each_missing_production_setting_is_named(change: dict[str, Any], problem: str) -> None:
    problems = configuration_problems(settings(env="production", **{**PROVIDER, **change}))
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_development_signs_in_with_tokens_without_a_provider() -> None:
    assert configuration_problems(settings()) == []
    assert configuration_problems(settings(oidc_issuer="http://127.0.0.1:9000")) == [
        "OMS_OIDC_CLIENT_ID must be set with OMS_OIDC_ISSUER"
    ]


def test_the_console_refuses_to_start_in_production_without_them() -> None:
    with pytest.raises(ValueError, match="OMS_OIDC_ISSUER must be set in production"):
        build_app(settings(env="production", session_secret=SECRET))
    with pytest.raises(ValueError, match="OMS_SESSION_SECRET"):
        build_app(settings(env="production", **{**PROVIDER, "session_secret": None}))
    assert build_app(settings(env="production", **PROVIDER)).state.oidc is not None


def token(**claims: Any) -> str:
    return jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")


def test_a_session_keeps_the_token_and_its_expiry_and_nothing_before_it() -> None:
    session: dict[str, Any] = {"csrf": "old", "_state_oidc_x": {"data": {}}}
    new_session(session, token(sub="a", exp=2_000_000_000), "oidc")
    assert session == {
        SESSION_TOKEN: session[SESSION_TOKEN],
        "signed_in_with": "oidc",
        EXPIRES_AT: 2_000_000_000.0,
    }
    assert token_expiry("not a token") is None
    assert token_expiry(token(sub="a")) is None


def test_a_session_ends_when_its_token_expires() -> None:
    now = time.time()
    session: dict[str, Any] = {SESSION_TOKEN: "t", EXPIRES_AT: now + 10, "csrf": "c"}
    assert not session_expired(session, now)
    assert not end_expired_session(session, now + 9.9)
    assert session[SESSION_TOKEN] == "t"
    assert end_expired_session(session, now + 10)
    assert session == {SIGNED_OUT_REASON: EXPIRED}
    assert not session_expired({EXPIRES_AT: now - 1}, now), "nobody signed in: nothing ends"
    assert not session_expired({SESSION_TOKEN: "t"}, now), "a token without exp: the services say"
