"""Signatures between the OMS and its partners (pure): HMAC-SHA256 with the location's secret
over `timestamp + "." + body`, sent as `X-OMS-Signature: sha256=<hex>` next to
`X-OMS-Timestamp` (Unix seconds). The same scheme both ways: our requests to a partner's
webhook, and the partner's confirmations to us. The timestamp bounds a replay to the tolerance."""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

SIGNATURE_HEADER = "X-OMS-Signature"
TIMESTAMP_HEADER = "X-OMS-Timestamp"
PREFIX = "sha256="


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The header value: `sha256=` and the hex HMAC-SHA256 of `timestamp.body`."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return PREFIX + digest


def signed_headers(secret: bytes, body: bytes, now: float) -> dict[str, str]:
    timestamp = str(int(now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}


class SignatureRefusal(StrEnum):
    """Stable codes (the HTTP error codes, all 401)."""

    INVALID = "invalid_signature"
    STALE = "stale_signature"


class SignatureRefused(Exception):
    def __init__(self, code: SignatureRefusal, message: str) -> None:
        super().__init__(message)
        self.code = code


def verify(
    secret: bytes,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float,
    tolerance_s: float,
) -> None:
    """Raises SignatureRefused unless `signature` signs `timestamp.body` with `secret` and the
    timestamp is within `tolerance_s` of `now` (either way: a clock ahead is no excuse). The
    signature is checked first, so only a holder of the secret learns that one was stale."""
    if not signature or not timestamp:
        missing = SIGNATURE_HEADER if not signature else TIMESTAMP_HEADER
        raise SignatureRefused(SignatureRefusal.INVALID, f"the {missing} header is missing")
    if not signature.startswith(PREFIX):
        raise SignatureRefused(
            SignatureRefusal.INVALID, f"the {SIGNATURE_HEADER} header must be sha256=<hex>"
        )
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise SignatureRefused(
            SignatureRefusal.INVALID,
            f"the {SIGNATURE_HEADER} signature does not match the timestamp and body",
        )
    try:
        signed_at = int(timestamp)
    except ValueError as exc:
        raise SignatureRefused(
            SignatureRefusal.INVALID, f"the {TIMESTAMP_HEADER} header is not Unix seconds"
        ) from exc
    if abs(now - signed_at) > tolerance_s:
        raise SignatureRefused(
            SignatureRefusal.STALE,
            f"the request was signed at {signed_at}, more than {tolerance_s:.0f} seconds from"
            " now: sign it again",
        )
