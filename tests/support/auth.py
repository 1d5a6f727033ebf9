"""Tokens for the tests: one signing key per test session (a temporary folder), published as the
JWKS every service of the session reads (`OMS_AUTH_JWKS_FILE` is set for in-process apps and
inherited by service processes)."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

from shared.ops.tokens import SigningKeys


@functools.cache
def keys() -> SigningKeys:
    signing = SigningKeys(Path(tempfile.mkdtemp(prefix="oms-test-auth-")))
    signing.ensure()
    return signing


def configure_environment() -> None:
    os.environ["OMS_AUTH_JWKS_FILE"] = str(keys().jwks_file)
    os.environ.pop("OMS_AUTH_JWKS_URL", None)


@functools.cache
def token(*roles: str, subject: str | None = None) -> str:
    return keys().issue(list(roles), subject=subject or f"test:{'+'.join(roles)}", ttl_s=6 * 3600)


def bearer(*roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(*roles)}"}


ADMIN = "admin"
