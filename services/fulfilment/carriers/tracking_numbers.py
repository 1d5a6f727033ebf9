"""UPU S10 tracking numbers (pure): `CC123456785GB` is a 2-letter service indicator, an 8-digit
serial, a mod-11 check digit and the 2-letter ISO country of the issuer.

The check digit: the serial's digits weighted 8 6 4 2 3 5 9 7 and summed (S), then
C = 11 - (S mod 11), where 10 becomes 0 and 11 becomes 5.

A `TrackingNumberRange` is the block of serials we were given; the n-th allocation (an index kept
by the caller's storage through a `TrackingNumberAllocator`) takes serial `first + n`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from services.fulfilment.carriers.base import CarrierError

S10_WEIGHTS: tuple[int, ...] = (8, 6, 4, 2, 3, 5, 9, 7)
SERIAL_MAX = 99_999_999

_LETTERS2 = re.compile(r"^[A-Z]{2}$")
_S10 = re.compile(r"^(?P<service>[A-Z]{2})(?P<serial>\d{8})(?P<check>\d)(?P<country>[A-Z]{2})$")


class TrackingRefusal(StrEnum):
    RANGE_EXHAUSTED = "tracking_range_exhausted"


class TrackingRangeExhausted(CarrierError):
    """Every serial of the range is issued; configure the next range."""

    def __init__(self, range_key: str, index: int, size: int) -> None:
        super().__init__(
            TrackingRefusal.RANGE_EXHAUSTED,
            f"tracking number range {range_key} is exhausted: allocation {index} of {size}",
        )
        self.range_key = range_key


class InvalidTrackingNumber(ValueError):
    pass


def s10_check_digit(serial: int | str) -> int:
    """The S10 check digit of an 8-digit serial (an int in 0..99999999 or its 8 digits)."""
    digits = f"{serial:08d}" if isinstance(serial, int) else serial
    if len(digits) != 8 or not digits.isascii() or not digits.isdigit():
        raise InvalidTrackingNumber(f"an S10 serial is 8 digits, not {serial!r}")
    check = 11 - sum(int(d) * w for d, w in zip(digits, S10_WEIGHTS, strict=True)) % 11
    return {10: 0, 11: 5}.get(check, check)


@dataclass(frozen=True)
class S10Number:
    service_indicator: str
    serial: int
    check_digit: int
    country: str

    def __str__(self) -> str:
        return f"{self.service_indicator}{self.serial:08d}{self.check_digit}{self.country}"


def format_s10(service_indicator: str, serial: int, country: str) -> str:
    """The full 13-character number, check digit computed."""
    _require_letters("service indicator", service_indicator)
    _require_letters("country", country)
    if not 0 <= serial <= SERIAL_MAX:
        raise InvalidTrackingNumber(f"an S10 serial is 0..{SERIAL_MAX}, not {serial}")
    return str(S10Number(service_indicator, serial, s10_check_digit(serial), country))


def parse_s10(number: str) -> S10Number:
    """The parts of a valid S10 number; InvalidTrackingNumber for a bad format or check digit.
    Spaces (as printed under barcodes: `RR 473 124 829 GB`) are ignored."""
    match = _S10.match(number.replace(" ", ""))
    if match is None:
        raise InvalidTrackingNumber(f"{number!r} is not an S10 number (AA12345678 9 BB)")
    check = int(match["check"])
    if s10_check_digit(match["serial"]) != check:
        raise InvalidTrackingNumber(f"{number!r} has a wrong check digit")
    return S10Number(match["service"], int(match["serial"]), check, match["country"])


def is_valid_s10(number: str) -> bool:
    try:
        parse_s10(number)
    except InvalidTrackingNumber:
        return False
    return True


@dataclass(frozen=True)
class TrackingNumberRange:
    """Serials `first`..`last` (inclusive) under one service indicator (`prefix`) and country."""

    prefix: str
    country: str
    first: int
    last: int

    def __post_init__(self) -> None:
        _require_letters("prefix", self.prefix)
        _require_letters("country", self.country)
        if not 0 <= self.first <= self.last <= SERIAL_MAX:
            raise ValueError(
                f"a tracking range needs 0 <= first <= last <= {SERIAL_MAX}:"
                f" {self.first}..{self.last}"
            )

    @property
    def key(self) -> str:
        """Names the allocation counter. `last` is not part of it, so extending a range keeps
        counting where it was; a new `first` (a new block) starts a new counter at 0."""
        return f"s10:{self.prefix}:{self.country}:{self.first:08d}"

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def serial_for(self, index: int) -> int:
        if index < 0:
            raise ValueError(f"an allocation index is >= 0, not {index}")
        if index >= self.size:
            raise TrackingRangeExhausted(self.key, index, self.size)
        return self.first + index

    def tracking_number_for(self, index: int) -> str:
        """The number of the `index`-th allocation; TrackingRangeExhausted past the end."""
        return format_s10(self.prefix, self.serial_for(index), self.country)

    def contains(self, number: str) -> bool:
        """Whether `number` is a valid S10 number issued from this range."""
        try:
            parsed = parse_s10(number)
        except InvalidTrackingNumber:
            return False
        return (
            parsed.service_indicator == self.prefix
            and parsed.country == self.country
            and self.first <= parsed.serial <= self.last
        )


def _require_letters(what: str, value: str) -> None:
    if not _LETTERS2.match(value):
        raise InvalidTrackingNumber(f"an S10 {what} is 2 capital letters, not {value!r}")


class TrackingNumberAllocator(Protocol):
    """Hands out allocation indices within a range; the caller's storage keeps them.

    Contract of `next_index(range_key, parcel_reference)`:
    - The first call for a (range_key, parcel_reference) returns an index no other parcel
      reference ever got in that range: 0 for the first, then counting up. Gaps are allowed (a
      rolled-back transaction may burn one); reuse never is, also between concurrent callers
      and across restarts.
    - Every later call for the same pair returns that same index, so a retried buy prints the
      same tracking number (the buy is idempotent per parcel reference; buying again after a
      void reprints the same number too: give the parcel a new reference for a new one).
    - Ranges (keys) count independently.
    In Postgres: a row per (range_key, parcel_reference) with a unique key, and a counter row
    per range_key taken `FOR UPDATE` (or a sequence per range) when the pair is new.
    """

    async def next_index(self, range_key: str, parcel_reference: str) -> int: ...


class InMemoryTrackingNumberAllocator:
    """The allocator contract in a dict, for tests (nothing survives the process)."""

    def __init__(self) -> None:
        self._indices: dict[str, dict[str, int]] = {}

    async def next_index(self, range_key: str, parcel_reference: str) -> int:
        issued = self._indices.setdefault(range_key, {})
        return issued.setdefault(parcel_reference, len(issued))
