"""UPU S10 tracking numbers: check digit, validation, and issuing from a range."""

from __future__ import annotations

import pytest

from services.fulfilment.carriers.base import CarrierError
from services.fulfilment.carriers.tracking_numbers import (
    InvalidTrackingNumber,
    TrackingNumberRange,
    TrackingRangeExhausted,
    TrackingRefusal,
    format_s10,
    is_valid_s10,
    parse_s10,
    s10_check_digit,
)

# Published examples: the S10 article's worked example (serial 47312482: S = 200,
# C = 11 - 200 mod 11 = 9) and the registered-mail label pictured with it (India Post,
# serial 28704377, check digit 5: S = 231 = 21 * 11, so C = 11, which becomes 5).
PUBLISHED = ["RR473124829GB", "RR287043775IN"]


@pytest.mark.parametrize("number", PUBLISHED)
def test_published_examples_are_valid(number: str) -> None:
    assert is_valid_s10(number)
    parsed = parse_s10(number)
    assert str(parsed) == number
    assert format_s10(parsed.service_indicator, parsed.serial, parsed.country) == number


@pytest.mark.parametrize(
    ("serial", "check"),
    [
        # 4*8 + 7*6 + 3*4 + 1*2 + 2*3 + 4*5 + 8*9 + 2*7 = 200; 200 mod 11 = 2; 11 - 2 = 9
        ("47312482", 9),
        # 1*8 + 2*6 + 3*4 + 4*2 + 5*3 + 6*5 + 7*9 + 8*7 = 204; 204 mod 11 = 6; 11 - 6 = 5
        ("12345678", 5),
        # 8*7 = 56; 56 mod 11 = 1; 11 - 1 = 10, which becomes 0
        ("00000008", 0),
        # 0; 11 - 0 = 11, which becomes 5
        ("00000000", 5),
        # 2*8 + 8*6 + 7*4 + 0*2 + 4*3 + 3*5 + 7*9 + 7*7 = 231 = 21 * 11; 11, which becomes 5
        ("28704377", 5),
        # 3*7 = 21; 21 mod 11 = 10; 11 - 10 = 1
        ("00000003", 1),
    ],
)
def test_check_digit_by_hand(serial: str, check: int) -> None:
    assert s10_check_digit(serial) == check
    assert s10_check_digit(int(serial)) == check


def test_every_single_digit_change_fails_validation() -> None:
    number = "RR473124829GB"
    for position in range(2, 11):
        for digit in "0123456789":
            if digit == number[position]:
                continue
            changed = number[:position] + digit + number[position + 1 :]
            assert not is_valid_s10(changed), changed


def test_adjacent_transpositions_fail_validation() -> None:
    number = "CC123456785GB"
    assert is_valid_s10(number)
    for position in range(2, 10):
        swapped = (
            number[:position] + number[position + 1] + number[position] + number[position + 2 :]
        )
        if swapped != number:
            assert not is_valid_s10(swapped), swapped


@pytest.mark.parametrize(
    "number",
    ["", "RR47312482GB", "RR4731248299GB", "R1473124829GB", "rr473124829gb", "RR473124829G1"],
)
def test_malformed_numbers_are_invalid(number: str) -> None:
    assert not is_valid_s10(number)
    with pytest.raises(InvalidTrackingNumber):
        parse_s10(number)


def test_spaces_as_printed_are_ignored() -> None:
    assert parse_s10("RR 473 124 829 GB") == parse_s10("RR473124829GB")


@pytest.mark.parametrize("serial", [-1, 100_000_000])
def test_format_refuses_serial_out_of_range(serial: int) -> None:
    with pytest.raises(InvalidTrackingNumber):
        format_s10("CC", serial, "GB")


def test_range_issues_consecutive_serials_with_check_digits() -> None:
    numbers = TrackingNumberRange("CC", "GB", 12_345_678, 12_345_680)
    assert numbers.size == 3
    issued = [numbers.tracking_number_for(i) for i in range(3)]
    # S = 204, 211, 157 (the last two digits weigh 9 and 7): C = 5, 9, 8
    assert issued == ["CC123456785GB", "CC123456799GB", "CC123456808GB"]
    assert all(is_valid_s10(n) and numbers.contains(n) for n in issued)
    assert not numbers.contains("CC123456811GB")  # the next serial, valid but outside
    assert not numbers.contains("EE123456785GB")
    assert not numbers.contains("CC123456786GB")


def test_range_refuses_when_exhausted() -> None:
    numbers = TrackingNumberRange("CC", "GB", 0, 1)
    numbers.tracking_number_for(1)
    with pytest.raises(TrackingRangeExhausted) as refused:
        numbers.tracking_number_for(2)
    assert isinstance(refused.value, CarrierError)
    assert refused.value.code == TrackingRefusal.RANGE_EXHAUSTED == "tracking_range_exhausted"
    assert refused.value.retryable is False
    with pytest.raises(ValueError):
        numbers.tracking_number_for(-1)


def test_range_key_survives_extending_the_range() -> None:
    before = TrackingNumberRange("CC", "GB", 1000, 1999)
    assert before.key == TrackingNumberRange("CC", "GB", 1000, 9999).key
    assert before.key != TrackingNumberRange("CC", "GB", 2000, 9999).key
    assert before.key != TrackingNumberRange("EE", "GB", 1000, 1999).key


@pytest.mark.parametrize(
    ("prefix", "country", "first", "last"),
    [("C", "GB", 0, 1), ("CC", "gb", 0, 1), ("CC", "GB", 5, 4), ("CC", "GB", 0, 100_000_000)],
)
def test_range_refuses_bad_configuration(prefix: str, country: str, first: int, last: int) -> None:
    with pytest.raises(ValueError):
        TrackingNumberRange(prefix, country, first, last)
