"""Partner signatures: HMAC-SHA256 over `timestamp.body`, `sha256=<hex>`, bounded in time."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from services.fulfilment.partners.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureRefusal,
    SignatureRefused,
    sign,
    signed_headers,
    verify,
)

SECRET = b"partner-secret"
BODY = b'{"fulfilment_id":"f-1","parcels":[]}'
NOW = 1_760_000_000.0


def test_the_signature_is_hmac_sha256_hex_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET, b"1760000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, "1760000000", BODY) == f"sha256={expected}"


def test_signed_headers_verify() -> None:
    headers = signed_headers(SECRET, BODY, NOW)
    assert headers[TIMESTAMP_HEADER] == "1760000000"
    verify(
        SECRET,
        headers[TIMESTAMP_HEADER],
        headers[SIGNATURE_HEADER],
        BODY,
        now=NOW + 10,
        tolerance_s=300,
    )


def test_upper_case_hex_is_accepted() -> None:
    signature = sign(SECRET, "1760000000", BODY)
    verify(SECRET, "1760000000", "sha256=" + signature[7:].upper(), BODY, now=NOW, tolerance_s=300)


def _refusal(timestamp: str | None, signature: str | None, body: bytes = BODY, **kw: float) -> str:
    with pytest.raises(SignatureRefused) as refused:
        verify(
            SECRET,
            timestamp,
            signature,
            body,
            now=kw.get("now", NOW),
            tolerance_s=kw.get("tolerance_s", 300),
        )
    return refused.value.code


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        (None, sign(SECRET, "1760000000", BODY)),
        ("1760000000", None),
        ("1760000000", ""),
        ("1760000000", sign(SECRET, "1760000000", BODY)[7:]),  # no sha256= prefix
        ("1760000000", sign(b"another secret", "1760000000", BODY)),
        ("1760000001", sign(SECRET, "1760000000", BODY)),  # timestamp changed
        ("1760000000", "sha256=zz"),
        ("1760000000", "sha256=ünïcode"),
        ("soon", sign(SECRET, "soon", BODY)),  # signed, but not a time
    ],
)
def test_missing_wrong_or_tampered_signatures_are_invalid(
    timestamp: str | None, signature: str | None
) -> None:
    assert _refusal(timestamp, signature) == SignatureRefusal.INVALID


def test_a_changed_body_is_invalid() -> None:
    signature = sign(SECRET, "1760000000", BODY)
    assert _refusal("1760000000", signature, BODY + b" ") == SignatureRefusal.INVALID


def test_older_than_the_tolerance_is_stale_either_way() -> None:
    signature = sign(SECRET, "1760000000", BODY)
    assert _refusal("1760000000", signature, now=NOW + 301) == SignatureRefusal.STALE
    assert _refusal("1760000000", signature, now=NOW - 301) == SignatureRefusal.STALE
    verify(SECRET, "1760000000", signature, BODY, now=NOW + 300, tolerance_s=300)


def test_a_stale_and_wrong_signature_is_invalid_not_stale() -> None:
    """Only a holder of the secret learns that a request was merely stale."""
    wrong = sign(b"guess", "1760000000", BODY)
    assert _refusal("1760000000", wrong, now=NOW + 3600) == SignatureRefusal.INVALID
