"""The carrier plug-in interface and the values that cross it (pure: no I/O here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from services.fulfilment.domain import TrackingStatus
from services.fulfilment.warehouse.model import Dimensions


@dataclass(frozen=True)
class PostalAddress:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str  # ISO 3166-1 alpha-2
    line2: str | None = None
    region: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class ParcelSpec:
    """What is rated and labelled: one packed box."""

    reference: str  # our parcel id; carriers echo it, and it is the idempotency key of a buy
    from_address: PostalAddress
    to_address: PostalAddress
    dimensions: Dimensions
    weight_g: int


@dataclass(frozen=True)
class Rate:
    carrier: str
    service: str  # e.g. "standard", "express"
    amount: Decimal
    currency: str
    delivery_days: int | None  # business days promised, when the carrier says
    rate_id: str  # the carrier's handle for buying this rate


@dataclass(frozen=True)
class Label:
    carrier: str
    service: str
    tracking_number: str
    label_id: str  # the carrier's handle for voiding it
    amount: Decimal
    currency: str
    pdf: bytes
    zpl: str | None = None
    tracking_url: str | None = None


@dataclass(frozen=True)
class TrackingUpdate:
    carrier: str
    tracking_number: str
    status: TrackingStatus
    at: datetime | None
    description: str | None


class CarrierError(Exception):
    """The carrier refused or failed; `code` is stable, `retryable` says if trying again helps."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class InvalidWebhookSignature(Exception):
    pass


class Carrier(Protocol):
    """A carrier or an aggregator. Implementations may do network I/O; the methods are async."""

    name: str

    async def rates(self, parcel: ParcelSpec) -> Sequence[Rate]: ...

    async def buy(self, parcel: ParcelSpec, rate: Rate) -> Label:
        """Buy the label for `rate`. Buying again for the same parcel reference and rate must not
        buy a second label (the carrier's idempotency, or ours)."""
        ...

    async def void(self, label: Label) -> None: ...

    def tracking_updates(self, headers: Mapping[str, str], body: bytes) -> Sequence[TrackingUpdate]:
        """Parse a tracking webhook after verifying its signature (InvalidWebhookSignature)."""
        ...
