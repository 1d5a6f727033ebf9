"""The built-in table-rate carrier: prices from a table (destination zone x weight band, per
service level), labels we print ourselves (`labels`), UPU S10 tracking numbers from our own range
(`tracking_numbers`), and tracking updates posted to us as signed JSON.

Configuration is a `TableRateConfig`, loadable from a JSON or YAML seed (`load_table_rate_config`);
`default_table_rate_config()` is a sensible starting table. The carrier keeps no state: which
index of the tracking range a parcel got lives in the caller's storage (a
`TrackingNumberAllocator`), and voided labels are the caller's to record.

Tracking webhook: a POST whose raw body is a JSON list of
`{"tracking_number", "status", "at", "description"}` (`status` a `TrackingStatus` value, `at` an
ISO 8601 time with offset, `at` and `description` may be null or left out), signed with
`X-OMS-Signature: sha256=<hex HMAC-SHA256 of the raw body under the configured secret>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from services.fulfilment.carriers.base import (
    Carrier,
    CarrierError,
    InvalidWebhookSignature,
    Label,
    ParcelSpec,
    Rate,
    TrackingUpdate,
)
from services.fulfilment.carriers.labels import LabelContent, render_pdf, render_zpl
from services.fulfilment.carriers.tracking_numbers import (
    InvalidTrackingNumber,
    TrackingNumberAllocator,
    TrackingNumberRange,
    parse_s10,
)
from services.fulfilment.domain import TrackingStatus

SIGNATURE_HEADER = "X-OMS-Signature"
_SIGNATURE_PREFIX = "sha256="
_CENT = Decimal("0.01")


class TableRateRefusal(StrEnum):
    """Stable `CarrierError` codes of the table-rate carrier (and `tracking_range_exhausted`)."""

    INVALID_PARCEL = "invalid_parcel"
    FOREIGN_RATE = "foreign_rate"
    RATE_NOT_AVAILABLE = "rate_not_available"
    NOT_OUR_LABEL = "not_our_label"
    INVALID_WEBHOOK_PAYLOAD = "invalid_webhook_payload"


# --- configuration --------------------------------------------------------------------------

Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Price = Annotated[Decimal, Field(ge=0, decimal_places=2)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WeightBand(_Frozen):
    """Parcels up to `up_to_g` grams (and over the previous band's) cost `prices[zone]`; a zone
    without a price is not served in this band."""

    up_to_g: int = Field(gt=0)
    prices: dict[Name, Price]


class ServiceLevel(_Frozen):
    """One service: its promise in business days (per zone where it differs) and its price,
    from its own `bands` or else the carrier's, times `multiplier` (rounded to the cent)."""

    code: Name
    delivery_days: int = Field(ge=0)
    delivery_days_by_zone: dict[Name, Annotated[int, Field(ge=0)]] = {}
    multiplier: Decimal = Field(default=Decimal(1), gt=0)
    bands: tuple[WeightBand, ...] | None = None
    zones: frozenset[Name] | None = None  # served only there; None: wherever a band has a price


class TrackingRangeConfig(_Frozen):
    prefix: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
    country: Country
    first: int = Field(ge=0)
    last: int = Field(le=99_999_999)

    def to_range(self) -> TrackingNumberRange:
        return TrackingNumberRange(self.prefix, self.country, self.first, self.last)


class TableRateConfig(_Frozen):
    name: Name = "table_rate"  # Carrier.name, Rate.carrier
    display_name: str = "OMS Post"  # printed on labels
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    zones: dict[Name, frozenset[Country]]  # zone -> destination countries
    default_zone: Name | None = None  # countries in no zone; None: not served
    bands: tuple[WeightBand, ...]
    services: tuple[ServiceLevel, ...]
    # Chargeable weight is max(actual, volume / divisor) with the divisor in cm3 per kg
    # (5000 is common); None: the actual weight only.
    volumetric_divisor: int | None = Field(default=None, gt=0)
    tracking: TrackingRangeConfig
    tracking_url: str | None = None  # "{tracking_number}" is replaced

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        zones = set(self.zones)
        if self.default_zone is not None and self.default_zone not in zones:
            raise ValueError(f"default_zone {self.default_zone!r} is not one of the zones")
        seen: dict[str, str] = {}
        for zone, countries in sorted(self.zones.items()):
            for country in countries:
                if country in seen:
                    raise ValueError(f"{country} is in zones {seen[country]} and {zone}")
                seen[country] = zone
        codes = [s.code for s in self.services]
        if not codes or len(codes) != len(set(codes)):
            raise ValueError(f"services need distinct codes, got {codes}")
        _check_bands("bands", self.bands, zones)
        for service in self.services:
            if service.bands is not None:
                _check_bands(f"service {service.code} bands", service.bands, zones)
            for zone in {*service.delivery_days_by_zone, *(service.zones or ())} - zones:
                raise ValueError(f"service {service.code} names an unknown zone {zone!r}")
        self.tracking.to_range()  # first <= last
        return self

    def zone_for(self, country: str) -> str | None:
        country = country.strip().upper()
        for zone, countries in self.zones.items():
            if country in countries:
                return zone
        return self.default_zone


def _check_bands(what: str, bands: Sequence[WeightBand], zones: set[str]) -> None:
    if not bands:
        raise ValueError(f"{what}: at least one weight band")
    limits = [band.up_to_g for band in bands]
    if limits != sorted(set(limits)):
        raise ValueError(f"{what}: up_to_g must increase strictly, got {limits}")
    for band in bands:
        for zone in set(band.prices) - zones:
            raise ValueError(f"{what}: the {band.up_to_g} g band prices an unknown zone {zone!r}")


def load_table_rate_config(path: Path | None = None) -> TableRateConfig:
    """The configuration from a `.json`, `.yaml` or `.yml` seed file; None: the default."""
    if path is None:
        return default_table_rate_config()
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        return TableRateConfig.model_validate(yaml.safe_load(text))
    return TableRateConfig.model_validate_json(text)


# The 27 member states (ISO codes; Greece is GR).
_EU = "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()  # noqa: SIM905


def default_table_rate_config() -> TableRateConfig:
    """A starting table in EUR: EU, UK, US and the rest of the world; up to 31.5 kg; economy,
    standard and express. Replace the tracking range with the block you were given."""
    zones = ("eu", "uk", "us", "world")
    prices = {  # per band: 500 g, 1 kg, 2 kg, 5 kg, 10 kg, 20 kg, 31.5 kg
        "eu": ("4.50", "5.90", "7.90", "11.90", "16.90", "24.90", "34.90"),
        "uk": ("7.90", "9.90", "12.90", "17.90", "26.90", "39.90", "54.90"),
        "us": ("12.90", "15.90", "21.90", "34.90", "54.90", "89.90", "119.90"),
        "world": ("14.90", "18.90", "25.90", "39.90", "64.90", "99.90", "139.90"),
    }
    limits = (500, 1000, 2000, 5000, 10_000, 20_000, 31_500)
    return TableRateConfig.model_validate(
        {
            "currency": "EUR",
            "zones": {"eu": _EU, "uk": ["GB"], "us": ["US"], "world": []},
            "default_zone": "world",
            "bands": [
                {"up_to_g": limit, "prices": {zone: prices[zone][i] for zone in zones}}
                for i, limit in enumerate(limits)
            ],
            "services": [
                {
                    "code": "economy",
                    "delivery_days": 5,
                    "delivery_days_by_zone": {"uk": 6, "us": 10, "world": 15},
                    "multiplier": "0.8",
                },
                {
                    "code": "standard",
                    "delivery_days": 3,
                    "delivery_days_by_zone": {"uk": 4, "us": 7, "world": 10},
                },
                {
                    "code": "express",
                    "delivery_days": 1,
                    "delivery_days_by_zone": {"us": 2, "world": 3},
                    "multiplier": "2.2",
                },
            ],
            "volumetric_divisor": 5000,
            "tracking": {"prefix": "ZZ", "country": "DE", "first": 0, "last": 99_999_999},
        }
    )


# --- the carrier ----------------------------------------------------------------------------


class _WebhookUpdate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    tracking_number: str
    status: TrackingStatus
    at: AwareDatetime | None = None
    description: str | None = None


_WEBHOOK_BODY: TypeAdapter[list[_WebhookUpdate]] = TypeAdapter(list[_WebhookUpdate])


class TableRateCarrier:
    """`Carrier` over a `TableRateConfig`. `webhook_secret` signs tracking webhooks; without
    one every webhook is refused."""

    def __init__(
        self,
        config: TableRateConfig,
        allocator: TrackingNumberAllocator,
        *,
        webhook_secret: str | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.tracking_range = config.tracking.to_range()
        self._allocator = allocator
        self._secret = webhook_secret.encode() if webhook_secret else None

    def chargeable_weight_g(self, parcel: ParcelSpec) -> int:
        divisor = self.config.volumetric_divisor
        if divisor is None:
            return parcel.weight_g
        return max(parcel.weight_g, math.ceil(parcel.dimensions.volume_mm3 / divisor))

    def quote(self, parcel: ParcelSpec) -> list[Rate]:
        """The rates, one per service serving the destination and weight (pure, in config
        order); `rates` is this for the `Carrier` protocol."""
        if parcel.weight_g <= 0:
            raise CarrierError(
                TableRateRefusal.INVALID_PARCEL,
                f"parcel {parcel.reference} weighs {parcel.weight_g} g",
            )
        zone = self.config.zone_for(parcel.to_address.country)
        if zone is None:
            return []
        weight = self.chargeable_weight_g(parcel)
        rates: list[Rate] = []
        for service in self.config.services:
            if service.zones is not None and zone not in service.zones:
                continue
            band = next(
                (b for b in service.bands or self.config.bands if b.up_to_g >= weight), None
            )
            if band is None or zone not in band.prices:
                continue
            amount = (band.prices[zone] * service.multiplier).quantize(_CENT, ROUND_HALF_UP)
            rates.append(
                Rate(
                    carrier=self.name,
                    service=service.code,
                    amount=amount,
                    currency=self.config.currency,
                    delivery_days=service.delivery_days_by_zone.get(zone, service.delivery_days),
                    rate_id=f"{self.name}/{service.code}/{zone}/{band.up_to_g}/{amount}",
                )
            )
        return rates

    async def rates(self, parcel: ParcelSpec) -> Sequence[Rate]:
        return self.quote(parcel)

    async def buy(self, parcel: ParcelSpec, rate: Rate) -> Label:
        """The label for `rate`, which must still be what `rates` offers for this parcel. The
        tracking number is the range's number at the allocator's index for the parcel reference,
        so buying again returns the same label (same number, same bytes)."""
        if rate.carrier != self.name:
            raise CarrierError(
                TableRateRefusal.FOREIGN_RATE, f"{self.name} cannot buy a {rate.carrier} rate"
            )
        current = next((r for r in self.quote(parcel) if r.rate_id == rate.rate_id), None)
        if current is None:
            raise CarrierError(
                TableRateRefusal.RATE_NOT_AVAILABLE,
                f"rate {rate.rate_id} is not offered for parcel {parcel.reference}: rate it again",
            )
        index = await self._allocator.next_index(self.tracking_range.key, parcel.reference)
        tracking_number = self.tracking_range.tracking_number_for(index)
        content = LabelContent(self.config.display_name, current.service, tracking_number, parcel)
        url = self.config.tracking_url
        return Label(
            carrier=self.name,
            service=current.service,
            tracking_number=tracking_number,
            label_id=self._label_id(tracking_number),
            amount=current.amount,
            currency=current.currency,
            pdf=render_pdf(content),
            zpl=render_zpl(content),
            tracking_url=url.replace("{tracking_number}", tracking_number) if url else None,
        )

    async def void(self, label: Label) -> None:
        """Accepts any label this carrier issued (nothing to tell anyone: the caller records the
        void); refuses others with `not_our_label`."""
        if not self._is_ours(label):
            raise CarrierError(
                TableRateRefusal.NOT_OUR_LABEL,
                f"label {label.label_id} ({label.carrier}) was not issued by {self.name}",
            )

    def tracking_updates(self, headers: Mapping[str, str], body: bytes) -> Sequence[TrackingUpdate]:
        self.verify_signature(headers, body)
        try:
            updates = _WEBHOOK_BODY.validate_json(body)
        except ValidationError as e:
            raise CarrierError(
                TableRateRefusal.INVALID_WEBHOOK_PAYLOAD,
                f"tracking webhook body: {e.error_count()} errors: {_errors(e)}",
            ) from e
        for update in updates:
            try:
                parse_s10(update.tracking_number)
            except InvalidTrackingNumber as e:
                raise CarrierError(TableRateRefusal.INVALID_WEBHOOK_PAYLOAD, str(e)) from e
        return [
            TrackingUpdate(
                carrier=self.name,
                tracking_number=update.tracking_number.replace(" ", ""),
                status=update.status,
                at=update.at,
                description=update.description,
            )
            for update in updates
        ]

    def verify_signature(self, headers: Mapping[str, str], body: bytes) -> None:
        """InvalidWebhookSignature unless `X-OMS-Signature` is the body's HMAC (any header
        case); compared in constant time."""
        if self._secret is None:
            raise InvalidWebhookSignature(f"{self.name}: no webhook secret is configured")
        given = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower()), None)
        if given is None:
            raise InvalidWebhookSignature(f"no {SIGNATURE_HEADER} header")
        expected = _SIGNATURE_PREFIX + sign_webhook_body(self._secret, body)
        if not hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
            raise InvalidWebhookSignature(f"{SIGNATURE_HEADER} does not match the body")

    def _label_id(self, tracking_number: str) -> str:
        return f"{self.name}:{tracking_number}"

    def _is_ours(self, label: Label) -> bool:
        if label.carrier != self.name or label.label_id != self._label_id(label.tracking_number):
            return False
        try:
            number = parse_s10(label.tracking_number)
        except InvalidTrackingNumber:
            return False
        # Any block of ours, not only the current one: labels outlive a range change.
        return (number.service_indicator, number.country) == (
            self.tracking_range.prefix,
            self.tracking_range.country,
        )


def sign_webhook_body(secret: str | bytes, body: bytes) -> str:
    """The hex HMAC-SHA256 that goes after `sha256=` in `X-OMS-Signature`."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def webhook_headers(secret: str | bytes, body: bytes) -> dict[str, str]:
    """Headers that sign `body` (for senders and tests)."""
    return {SIGNATURE_HEADER: _SIGNATURE_PREFIX + sign_webhook_body(secret, body)}


def webhook_body(updates: Sequence[Mapping[str, Any]]) -> bytes:
    """A webhook body from update mappings (times as ISO 8601), for senders and tests."""

    def encode(value: object) -> str:
        if isinstance(value, datetime):
            return value.isoformat()
        raise TypeError(f"cannot encode {type(value).__name__}")

    return json.dumps(list(updates), default=encode).encode()


def _errors(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()[:5]
    )


if TYPE_CHECKING:  # mypy checks the carrier against the protocol here
    _CONFORMS: type[Carrier] = TableRateCarrier
