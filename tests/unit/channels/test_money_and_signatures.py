"""Exact money from channel JSON, line totals split into unit prices, webhook signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
from decimal import Decimal

import pytest

from services.order_intake.channels.adapters.base import (
    ChannelPayloadError,
    parse_json,
    sign,
    split_line_total,
    verify_signature,
)
from shared.money import quantum


def test_json_numbers_are_parsed_as_exact_decimals():
    parsed = parse_json(b'{"price": 0.1, "total": 19.99, "quantity": 3, "big": 1e2}')
    assert parsed["price"] == Decimal("0.1") and isinstance(parsed["price"], Decimal)
    assert parsed["total"] == Decimal("19.99")
    assert parsed["quantity"] == 3 and isinstance(parsed["quantity"], int)
    assert parsed["big"] == Decimal("100")


@pytest.mark.parametrize("raw", [b"{", b"NaN", b'{"a": Infinity}', b"\xff\xfe\x00", b"[" * 100_000])
def test_non_json_is_refused_as_value_error(raw: bytes):
    with pytest.raises(ValueError):
        parse_json(raw)


@pytest.mark.parametrize(
    ("currency", "total", "quantity", "expected"),
    [
        ("EUR", "10.00", 3, [(2, "3.33"), (1, "3.34")]),
        ("EUR", "29.99", 3, [(1, "9.99"), (2, "10.00")]),
        ("EUR", "25.00", 2, [(2, "12.50")]),
        ("EUR", "0.01", 3, [(2, "0.00"), (1, "0.01")]),
        ("JPY", "1000", 3, [(2, "333"), (1, "334")]),
        ("KWD", "1.000", 3, [(2, "0.333"), (1, "0.334")]),
        ("EUR", "0", 4, [(4, "0.00")]),
    ],
)
def test_line_totals_divide_to_the_minor_unit_and_add_up_exactly(
    currency: str, total: str, quantity: int, expected: list[tuple[int, str]]
):
    lines = split_line_total("SKU", quantity, Decimal(total), currency, "f")
    assert [(li.quantity, str(li.unit_price)) for li in lines] == expected
    assert sum(li.unit_price * li.quantity for li in lines) == Decimal(total)


def test_every_split_adds_up_and_differs_by_at_most_one_minor_unit():
    for cents in range(0, 2000, 7):
        total = Decimal(cents) / 100
        for quantity in range(1, 12):
            lines = split_line_total("SKU", quantity, total, "EUR", "f")
            assert sum(li.unit_price * li.quantity for li in lines) == total
            assert sum(li.quantity for li in lines) == quantity
            prices = [li.unit_price for li in lines]
            assert max(prices) - min(prices) <= quantum("EUR")


def test_split_refuses_what_is_not_a_whole_minor_amount():
    with pytest.raises(ChannelPayloadError, match=r"^items\.0: "):
        split_line_total("SKU", 2, Decimal("1.005"), "EUR", "items.0")
    with pytest.raises(ChannelPayloadError):
        split_line_total("SKU", 2, Decimal("-1.00"), "EUR", "items.0")


def test_signature_is_base64_hmac_sha256_of_the_raw_body():
    secret, raw = b"s3cret", b'{"id": 1}'
    expected = base64.b64encode(hmac.new(secret, raw, hashlib.sha256).digest()).decode()
    assert sign(secret, raw) == expected
    assert verify_signature(secret, raw, expected)
    assert verify_signature(secret, raw, f"  {expected}\n")


@pytest.mark.parametrize(
    "given",
    [
        None,
        "",
        "not base64!",
        sign(b"other-secret", b'{"id": 1}'),  # wrong secret
        sign(b"s3cret", b'{"id": 2}'),  # tampered body
        base64.b64encode(b"short").decode(),
    ],
)
def test_wrong_signatures_are_refused(given: str | None):
    assert not verify_signature(b"s3cret", b'{"id": 1}', given)
