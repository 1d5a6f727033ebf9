"""The table-rate carrier: rating by zone and weight band, buying (idempotent per parcel
reference), voiding, signed tracking webhooks, and its configuration."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from services.fulfilment.carriers.base import (
    CarrierError,
    InvalidWebhookSignature,
    ParcelSpec,
    PostalAddress,
    Rate,
)
from services.fulfilment.carriers.labels import zpl_field_values
from services.fulfilment.carriers.table_rate import (
    SIGNATURE_HEADER,
    TableRateCarrier,
    TableRateConfig,
    TableRateRefusal,
    default_table_rate_config,
    load_table_rate_config,
    sign_webhook_body,
    webhook_body,
    webhook_headers,
)
from services.fulfilment.carriers.tracking_numbers import (
    InMemoryTrackingNumberAllocator,
    TrackingRefusal,
    is_valid_s10,
)
from services.fulfilment.domain import TrackingStatus
from services.fulfilment.warehouse.model import Dimensions

SECRET = "webhook-secret"
SENDER = PostalAddress("OMS Warehouse", "Lagerstrasse 1", "Berlin", "10115", "DE")
SMALL_BOX = Dimensions(100, 100, 50)  # 100 g volumetric: the actual weight decides


def parcel(
    country: str = "FR",
    weight_g: int = 800,
    reference: str = "parcel-1",
    dimensions: Dimensions = SMALL_BOX,
) -> ParcelSpec:
    to = PostalAddress("Ada Lovelace", "1 Rue de Rivoli", "Paris", "75001", country)
    return ParcelSpec(reference, SENDER, to, dimensions, weight_g)


def carrier(config: TableRateConfig | None = None, secret: str | None = SECRET) -> TableRateCarrier:
    return TableRateCarrier(
        config or default_table_rate_config(),
        InMemoryTrackingNumberAllocator(),
        webhook_secret=secret,
    )


def config_with(**changes: Any) -> TableRateConfig:
    data = default_table_rate_config().model_dump(mode="json")
    data.update(changes)
    return TableRateConfig.model_validate(data)


def by_service(rates: list[Rate]) -> dict[str, Rate]:
    return {r.service: r for r in rates}


# --- rates ----------------------------------------------------------------------------------


async def test_rates_per_service_for_a_zone_and_band() -> None:
    rates = await carrier().rates(parcel("FR", 800))
    assert [(r.service, r.amount, r.delivery_days) for r in rates] == [
        ("economy", Decimal("4.72"), 5),  # 5.90 x 0.8
        ("standard", Decimal("5.90"), 3),
        ("express", Decimal("12.98"), 1),  # 5.90 x 2.2
    ]
    assert {(r.carrier, r.currency) for r in rates} == {("table_rate", "EUR")}
    assert len({r.rate_id for r in rates}) == 3


async def test_delivery_days_per_zone() -> None:
    rates = by_service(list(await carrier().rates(parcel("US", 800))))
    assert rates["standard"].amount == Decimal("15.90")
    assert (rates["standard"].delivery_days, rates["express"].delivery_days) == (7, 2)


async def test_unknown_country_takes_the_default_zone_or_gets_no_rate() -> None:
    world = by_service(list(await carrier().rates(parcel("JP", 400))))
    assert world["standard"].amount == Decimal("14.90")
    unserved = carrier(config_with(default_zone=None))
    assert await unserved.rates(parcel("JP", 400)) == []
    assert await unserved.rates(parcel("de", 400))  # countries compare in capitals


@pytest.mark.parametrize(
    ("weight_g", "standard"),
    [(1, "4.50"), (500, "4.50"), (501, "5.90"), (20_000, "24.90"), (31_500, "34.90")],
)
async def test_band_limits_are_inclusive(weight_g: int, standard: str) -> None:
    rates = by_service(list(await carrier().rates(parcel("DE", weight_g))))
    assert rates["standard"].amount == Decimal(standard)


async def test_over_the_heaviest_band_has_no_rate() -> None:
    assert await carrier().rates(parcel("DE", 31_501)) == []


async def test_volumetric_weight_when_the_box_is_bulky() -> None:
    bulky = parcel("DE", 900, dimensions=Dimensions(400, 300, 300))  # 36 l / 5000 = 7200 g
    assert carrier().chargeable_weight_g(bulky) == 7200
    assert by_service(list(await carrier().rates(bulky)))["standard"].amount == Decimal("16.90")
    actual_only = carrier(config_with(volumetric_divisor=None))
    assert by_service(list(await actual_only.rates(bulky)))["standard"].amount == Decimal("5.90")


async def test_a_service_with_its_own_table_and_zones() -> None:
    data = default_table_rate_config().model_dump(mode="json")
    data["services"].append(
        {
            "code": "pallet_eu",
            "delivery_days": 4,
            "zones": ["eu"],
            "bands": [{"up_to_g": 100_000, "prices": {"eu": "99.00", "uk": "150.00"}}],
        }
    )
    custom = carrier(TableRateConfig.model_validate(data))
    heavy_eu = by_service(list(await custom.rates(parcel("FR", 50_000))))
    assert list(heavy_eu) == ["pallet_eu"]
    assert heavy_eu["pallet_eu"].amount == Decimal("99.00")
    assert await custom.rates(parcel("GB", 50_000)) == []  # priced, but the service skips uk


async def test_a_band_without_a_price_for_the_zone_does_not_serve_it() -> None:
    data = default_table_rate_config().model_dump(mode="json")
    del data["bands"][-1]["prices"]["world"]
    limited = carrier(TableRateConfig.model_validate(data))
    assert await limited.rates(parcel("JP", 25_000)) == []
    assert await limited.rates(parcel("JP", 15_000))


@pytest.mark.parametrize("weight_g", [0, -5])
async def test_a_parcel_without_weight_is_refused(weight_g: int) -> None:
    with pytest.raises(CarrierError) as refused:
        await carrier().rates(parcel(weight_g=weight_g))
    assert refused.value.code == TableRateRefusal.INVALID_PARCEL


# --- buy ------------------------------------------------------------------------------------


async def test_buy_issues_a_label_with_an_s10_number_from_the_range() -> None:
    table = carrier()
    box = parcel("GB", 1200)
    rate = by_service(list(await table.rates(box)))["express"]
    label = await table.buy(box, rate)
    assert label.tracking_number == "ZZ000000005DE"  # index 0: serial 0, check digit 5
    assert is_valid_s10(label.tracking_number)
    assert table.tracking_range.contains(label.tracking_number)
    assert (label.carrier, label.service) == ("table_rate", "express")
    assert (label.amount, label.currency) == (rate.amount, "EUR")
    assert label.label_id == f"table_rate:{label.tracking_number}"
    assert label.pdf.startswith(b"%PDF-")
    assert label.zpl is not None
    assert f"^FD{label.tracking_number}^FS" in label.zpl
    assert "EXPRESS" in zpl_field_values(label.zpl)


async def test_buy_is_idempotent_per_parcel_reference() -> None:
    storage = InMemoryTrackingNumberAllocator()
    table = TableRateCarrier(default_table_rate_config(), storage)
    first_box, second_box = parcel(reference="p-1"), parcel(reference="p-2")
    first_rate = (await table.rates(first_box))[1]
    first = await table.buy(first_box, first_rate)
    again = await table.buy(first_box, first_rate)
    assert again == first  # same number, same PDF and ZPL bytes
    second = await table.buy(second_box, (await table.rates(second_box))[1])
    assert second.tracking_number == "ZZ000000014DE"  # serial 1: 1 x 7 = 7, 11 - 7 = 4
    assert await table.buy(first_box, first_rate) == first
    # Another process with the same storage (allocator) prints the very same label.
    restarted = TableRateCarrier(default_table_rate_config(), storage)
    assert await restarted.buy(first_box, first_rate) == first


async def test_buy_uses_the_range_configured() -> None:
    config = config_with(
        tracking={"prefix": "CC", "country": "GB", "first": 47312482, "last": 47312490}
    )
    table = carrier(config)
    box = parcel()
    label = await table.buy(box, (await table.rates(box))[0])
    assert label.tracking_number == "CC473124829GB"


async def test_buy_refuses_when_the_range_is_exhausted() -> None:
    config = config_with(tracking={"prefix": "CC", "country": "GB", "first": 7, "last": 7})
    table = carrier(config)
    one, two = parcel(reference="one"), parcel(reference="two")
    await table.buy(one, (await table.rates(one))[0])
    with pytest.raises(CarrierError) as refused:
        await table.buy(two, (await table.rates(two))[0])
    assert refused.value.code == TrackingRefusal.RANGE_EXHAUSTED == "tracking_range_exhausted"
    assert await table.buy(one, (await table.rates(one))[0])  # the one issued is still there


async def test_buy_refuses_a_rate_of_another_carrier() -> None:
    box = parcel()
    rate = dataclasses.replace((await carrier().rates(box))[0], carrier="easypost")
    with pytest.raises(CarrierError) as refused:
        await carrier().buy(box, rate)
    assert refused.value.code == TableRateRefusal.FOREIGN_RATE


async def test_buy_refuses_a_rate_no_longer_offered() -> None:
    table = carrier()
    light, heavy = parcel(weight_g=400), parcel(weight_g=4000)
    stale = (await table.rates(light))[0]
    with pytest.raises(CarrierError) as refused:
        await table.buy(heavy, stale)  # the parcel got heavier after rating
    assert refused.value.code == TableRateRefusal.RATE_NOT_AVAILABLE
    cheaper = dataclasses.replace(stale, rate_id=stale.rate_id.replace(str(stale.amount), "0.01"))
    with pytest.raises(CarrierError):
        await table.buy(light, cheaper)


# --- void -----------------------------------------------------------------------------------


async def test_void_accepts_own_labels_and_refuses_others() -> None:
    table = carrier()
    box = parcel()
    label = await table.buy(box, (await table.rates(box))[0])
    await table.void(label)
    await table.void(label)  # nothing recorded here: voiding again is fine too
    others = [
        dataclasses.replace(label, carrier="easypost"),
        dataclasses.replace(label, tracking_number="ZZ000000006DE"),  # bad check digit
        dataclasses.replace(label, tracking_number="ZZ000000014DE"),  # label_id disagrees
        dataclasses.replace(
            label, tracking_number="AB000000005DE", label_id="table_rate:AB000000005DE"
        ),
    ]
    for other in others:
        with pytest.raises(CarrierError) as refused:
            await table.void(other)
        assert refused.value.code == TableRateRefusal.NOT_OUR_LABEL


# --- tracking webhooks ----------------------------------------------------------------------

UPDATES = [
    {
        "tracking_number": "ZZ000000005DE",
        "status": "in_transit",
        "at": "2026-03-02T09:15:00+01:00",
        "description": "Arrived at hub",
    },
    {"tracking_number": "ZZ000000005DE", "status": "delivered", "at": "2026-03-03T14:00:00Z"},
]


def test_signed_webhook_is_parsed() -> None:
    body = webhook_body(UPDATES)
    updates = carrier().tracking_updates(webhook_headers(SECRET, body), body)
    assert [(u.carrier, u.tracking_number, u.status) for u in updates] == [
        ("table_rate", "ZZ000000005DE", TrackingStatus.IN_TRANSIT),
        ("table_rate", "ZZ000000005DE", TrackingStatus.DELIVERED),
    ]
    assert updates[0].at == datetime(2026, 3, 2, 8, 15, tzinfo=UTC)
    assert updates[0].description == "Arrived at hub"
    assert updates[1].description is None


def test_signature_header_in_any_case_and_hex_case() -> None:
    body = webhook_body(UPDATES)
    signature = "SHA256=" + sign_webhook_body(SECRET, body).upper()
    assert carrier().tracking_updates({SIGNATURE_HEADER.lower(): signature}, body)


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    # Independent of the helpers: `printf '[]' | openssl dgst -sha256 -hmac webhook-secret`.
    body = b"[]"
    import hashlib
    import hmac

    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert carrier().tracking_updates({"X-OMS-Signature": f"sha256={digest}"}, body) == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {SIGNATURE_HEADER: ""},
        {SIGNATURE_HEADER: "sha256="},
        {SIGNATURE_HEADER: "sha256=" + "0" * 64},
        {SIGNATURE_HEADER: sign_webhook_body(SECRET, webhook_body(UPDATES))},  # no "sha256="
        webhook_headers("another-secret", webhook_body(UPDATES)),
        {SIGNATURE_HEADER: "sha256=é"},  # not ASCII: refused, not a crash
    ],
)
def test_wrong_signatures_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidWebhookSignature):
        carrier().tracking_updates(headers, webhook_body(UPDATES))


def test_a_body_changed_after_signing_is_refused() -> None:
    body = webhook_body(UPDATES)
    headers = webhook_headers(SECRET, body)
    with pytest.raises(InvalidWebhookSignature):
        carrier().tracking_updates(headers, body.replace(b"in_transit", b"delivered!"))


def test_without_a_secret_every_webhook_is_refused() -> None:
    body = webhook_body(UPDATES)
    for secret in (None, ""):
        with pytest.raises(InvalidWebhookSignature):
            carrier(secret=secret).tracking_updates(webhook_headers("", body), body)


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"tracking_number": "ZZ000000005DE", "status": "delivered"}',  # not a list
        json.dumps([{"tracking_number": "ZZ000000005DE", "status": "lost"}]).encode(),
        json.dumps([{"status": "delivered"}]).encode(),
        json.dumps(
            [
                {
                    "tracking_number": "ZZ000000005DE",
                    "status": "delivered",
                    "at": "2026-03-03T14:00:00",
                }
            ]
        ).encode(),  # no offset
        json.dumps([{"tracking_number": "ZZ000000006DE", "status": "delivered"}]).encode(),
    ],
)
def test_a_signed_but_invalid_payload_is_refused(payload: bytes) -> None:
    with pytest.raises(CarrierError) as refused:
        carrier().tracking_updates(webhook_headers(SECRET, payload), payload)
    assert refused.value.code == TableRateRefusal.INVALID_WEBHOOK_PAYLOAD


# --- configuration --------------------------------------------------------------------------


def test_default_table() -> None:
    config = default_table_rate_config()
    assert [b.up_to_g for b in config.bands] == [500, 1000, 2000, 5000, 10_000, 20_000, 31_500]
    assert set(config.zones) == {"eu", "uk", "us", "world"}
    assert len(config.zones["eu"]) == 27
    assert [s.code for s in config.services] == ["economy", "standard", "express"]
    assert all(set(b.prices) == set(config.zones) for b in config.bands)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_config_loads_from_a_seed_file(tmp_path: Path, suffix: str) -> None:
    data = default_table_rate_config().model_dump(mode="json")
    data["tracking"] = {"prefix": "CC", "country": "GB", "first": 1000, "last": 1999}
    path = tmp_path / f"table{suffix}"
    path.write_text(json.dumps(data) if suffix == ".json" else yaml.safe_dump(data))
    loaded = load_table_rate_config(path)
    assert loaded == TableRateConfig.model_validate(data)
    assert loaded.tracking.to_range().key == "s10:CC:GB:00001000"
    assert load_table_rate_config(None) == default_table_rate_config()


def test_a_yaml_seed_with_plain_numbers() -> None:
    seed = """
currency: GBP
zones: {uk: [GB], europe: [FR, DE]}
bands:
  - {up_to_g: 1000, prices: {uk: 3.2, europe: 9.95}}
  - {up_to_g: 2000, prices: {uk: 4.1}}
services:
  - {code: standard, delivery_days: 2}
  - {code: express, delivery_days: 1, multiplier: 1.5}
tracking: {prefix: CC, country: GB, first: 0, last: 999}
"""
    config = TableRateConfig.model_validate(yaml.safe_load(seed))
    table = carrier(config)
    rates = by_service(table.quote(parcel("FR", 900)))
    assert rates["express"].amount == Decimal("14.93")  # 9.95 x 1.5 = 14.925, half up
    assert table.quote(parcel("FR", 1500)) == []
    assert table.quote(parcel("US", 500)) == []  # no default zone


@pytest.mark.parametrize(
    "change",
    [
        {"zones": {"eu": ["FR"], "uk": ["GB", "FR"], "us": ["US"], "world": []}},
        {"default_zone": "mars"},
        {"currency": "euro"},
        {"bands": [{"up_to_g": 1000, "prices": {"eu": "1.00"}}, {"up_to_g": 1000, "prices": {}}]},
        {"bands": [{"up_to_g": 1000, "prices": {"moon": "1.00"}}]},
        {"bands": [{"up_to_g": 1000, "prices": {"eu": "1.005"}}]},
        {"bands": []},
        {"services": []},
        {"services": [{"code": "standard", "delivery_days": 1}] * 2},
        {"services": [{"code": "standard", "delivery_days": 1, "zones": ["moon"]}]},
        {"tracking": {"prefix": "CC", "country": "GB", "first": 10, "last": 9}},
        {"zones": {"eu": ["fr"], "uk": [], "us": [], "world": []}},
        {"surprise": True},
    ],
)
def test_inconsistent_configuration_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        config_with(**change)
