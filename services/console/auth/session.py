"""What the console's session keeps of a signed-in user, and its end when the token expires.

The session is the signed cookie of Starlette's SessionMiddleware (`web/pages.py`): the user's
access token (`SESSION_TOKEN`, read by `requires(...)` like a bearer header), when it expires,
how the user signed in (OIDC or a pasted token), and the CSRF token.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

import jwt
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.platform.auth import SESSION_TOKEN

SIGNED_IN_WITH = "signed_in_with"
EXPIRES_AT = "access_token_expires_at"
SIGNED_OUT_REASON = "signed_out_reason"
EXPIRED = "Your sign-in has expired: sign in again."


def token_expiry(token: str) -> float | None:
    """The `exp` of a token already verified (None if it has none or is not a JWT)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) else None


def new_session(session: MutableMapping[str, Any], token: str, signed_in_with: str) -> None:
    """A fresh session (whatever was in it dropped: the CSRF token, an OIDC state) with the
    user's token and its expiry."""
    session.clear()
    session[SESSION_TOKEN] = token
    session[SIGNED_IN_WITH] = signed_in_with
    expires_at = token_expiry(token)
    if expires_at is not None:
        session[EXPIRES_AT] = expires_at


def session_expired(session: MutableMapping[str, Any], now: float) -> bool:
    """A signed-in session whose access token's expiry has passed."""
    expires_at = session.get(EXPIRES_AT)
    return (
        session.get(SESSION_TOKEN) is not None
        and isinstance(expires_at, int | float)
        and now >= expires_at
    )


def end_expired_session(session: MutableMapping[str, Any], now: float) -> bool:
    """Clears an expired session, leaving the reason for the sign-in page; True if it did."""
    if not session_expired(session, now):
        return False
    session.clear()
    session[SIGNED_OUT_REASON] = EXPIRED
    return True


class SessionExpiry:
    """Ends the session once its access token has expired: the next page sends the browser to
    sign in, which says why (the services would refuse the token too, after their leeway).
    Must sit inside the session middleware (it reads `scope["session"]`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            session = scope.get("session")
            if isinstance(session, dict):
                end_expired_session(session, time.time())
        await self.app(scope, receive, send)
