"""The BigCommerce client's pure parts: webhook verification (the subscription's secret header,
the Standard Webhooks signature), the order a webhook names, the shipment body, the 429 wait."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from services.channel_connector.clients import bigcommerce, client_for
from services.channel_connector.clients.base import Capability, ShipmentPush, WebhookRefused
from services.channel_connector.domain import Quantity, UnmatchedShipment
from services.channel_connector.rules import bigcommerce as rules
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings
from tests.support.bigcommerce_double import delivery_headers, signature_headers, webhook_body
from tests.unit.channels.bigcommerce_payloads import STORE_HASH, order_parts

SECRET = "shared-header-secret"
CLIENT_SECRET = "app-client-secret"


def account(**credentials: str) -> AccountSettings:
    return AccountSettings(
        name="bc",
        channel="bigcommerce",
        api_base="http://127.0.0.1:9",
        credentials={k: SecretStr(v) for k, v in {"access_token": "t", **credentials}.items()},
        options={"store_hash": STORE_HASH},
    )


def client(**credentials: str) -> bigcommerce.BigCommerceClient:
    made = client_for(account(**credentials), ChannelConnectorSettings())
    assert isinstance(made, bigcommerce.BigCommerceClient)
    return made


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def test_the_client_is_found_by_its_channel_and_says_what_it_does():
    made = client(webhook_secret=SECRET)
    assert made.capabilities == {
        Capability.WEBHOOK_ORDERS,
        Capability.STOCK,
        Capability.SHIPMENTS,
        Capability.CANCELLATIONS,
    }
    assert str(made.http.client.base_url) == f"http://127.0.0.1:9/stores/{STORE_HASH}/"
    assert made.http.client.headers["x-auth-token"] == "t"


@pytest.mark.parametrize(
    ("options", "credentials", "named"),
    [
        ({}, {"access_token": SecretStr("t")}, "options.store_hash"),
        ({"store_hash": "../x"}, {"access_token": SecretStr("t")}, "options.store_hash"),
        ({"store_hash": "abc"}, {}, "credentials.access_token"),
        (
            {"store_hash": "abc", "location_id": "main"},
            {"access_token": SecretStr("t")},
            "location_id",
        ),
    ],
)
def test_missing_settings_are_named(options: dict[str, str], credentials: Any, named: str):
    settings = AccountSettings(
        name="bc", channel="bigcommerce", credentials=credentials, options=options
    )
    with pytest.raises(ValueError, match=named):
        client_for(settings, ChannelConnectorSettings())


def test_a_delivery_with_the_subscriptions_secret_header_names_its_order():
    body = webhook_body("store/order/created", 250)
    assert client(webhook_secret=SECRET).webhook_order_ids(
        lower(delivery_headers(body, secret=SECRET)), body
    ) == ["250"]


@pytest.mark.parametrize("given", [None, "wrong", SECRET + "x", ""])
def test_a_wrong_or_missing_secret_header_is_refused(given: str | None):
    body = webhook_body("store/order/created", 250)
    with pytest.raises(WebhookRefused, match="x-oms-webhook-secret"):
        client(webhook_secret=SECRET).webhook_order_ids(
            lower(delivery_headers(body, secret=given)), body
        )


def test_without_any_secret_configured_every_delivery_is_refused():
    body = webhook_body("store/order/created", 250)
    with pytest.raises(WebhookRefused, match="no webhook_secret"):
        client().webhook_order_ids(lower(delivery_headers(body, secret=SECRET)), body)


def test_with_a_client_secret_the_standard_webhooks_signature_is_required_too():
    made = client(webhook_secret=SECRET, client_secret=CLIENT_SECRET)
    body = webhook_body("store/order/statusUpdated", 251)
    signed = lower(delivery_headers(body, secret=SECRET, client_secret=CLIENT_SECRET))
    assert made.webhook_order_ids(signed, body) == ["251"]
    unsigned = lower(delivery_headers(body, secret=SECRET))
    with pytest.raises(WebhookRefused, match="webhook-signature"):
        made.webhook_order_ids(unsigned, body)
    tampered = body.replace(b'"id": 251', b'"id": 252')
    with pytest.raises(WebhookRefused):
        made.webhook_order_ids(signed, tampered)
    other_key = lower(delivery_headers(body, secret=SECRET, client_secret="another"))
    with pytest.raises(WebhookRefused):
        made.webhook_order_ids(other_key, body)


def test_a_signature_is_checked_in_any_of_its_versions_and_only_when_fresh():
    body = webhook_body("store/order/created", 250)
    headers = lower(signature_headers(CLIENT_SECRET, body, msg_id="msg_1"))
    key = CLIENT_SECRET.encode()
    now = float(headers["webhook-timestamp"])
    rotated = dict(headers, **{"webhook-signature": "v1,AAAA " + headers["webhook-signature"]})
    assert rules.standard_webhook_matches(rotated, body, key, now)
    assert not rules.standard_webhook_matches(headers, body, key, now + 301)
    assert not rules.standard_webhook_matches(headers, body, key, now - 301)
    v2 = dict(headers, **{"webhook-signature": headers["webhook-signature"].replace("v1,", "v2,")})
    assert not rules.standard_webhook_matches(v2, body, key, now)
    other_id = dict(headers, **{"webhook-id": "msg_2"})
    assert not rules.standard_webhook_matches(other_id, body, key, now)
    assert rules.standard_webhook_matches(headers, body, key, time.time())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (webhook_body("store/product/updated", 250), "scope"),
        (webhook_body("store/order/archived", 250), "scope"),
        (webhook_body("store/order/created", 250, store_hash="otherstore"), "producer"),
        (b"not json", "not JSON"),
        (b"[]", "JSON object"),
        (json.dumps({"scope": "store/order/created", "data": {"id": "1;2"}}).encode(), "data.id"),
        (json.dumps({"scope": "store/order/created"}).encode(), "data"),
    ],
)
def test_deliveries_naming_no_order_of_this_store_are_malformed(body: bytes, message: str):
    with pytest.raises(ValueError, match=message):
        rules.webhook_order_ids(body, STORE_HASH)


def push(key: str, *lines: tuple[str, int], tracking: str = "1Z999") -> ShipmentPush:
    return ShipmentPush(
        key=key,
        order_id="ord_1",
        external_id="250",
        carrier="UPS",
        tracking_number=tracking,
        tracking_url="https://track.example.com/1Z999",
        shipped_at=datetime(2026, 12, 1, tzinfo=UTC),
        lines=tuple(Quantity(sku, quantity) for sku, quantity in lines),
    )


def test_a_parcel_becomes_a_shipment_of_the_orders_products_at_its_address():
    _, products, addresses = order_parts(250)
    body = rules.shipment_body(push("p1", ("BC-MUG", 2), ("BC-TEE", 1)), products, addresses)
    assert body == {
        "order_address_id": 2501,
        "tracking_number": "1Z999",
        "tracking_carrier": "ups",
        "comments": "OMS shipment p1",
        "items": [
            {"order_product_id": 2501, "quantity": 2},
            {"order_product_id": 2502, "quantity": 1},
        ],
        "tracking_link": "https://track.example.com/1Z999",
    }


def test_only_what_is_left_to_ship_can_be_shipped():
    _, products, addresses = order_parts(250)
    products[0]["quantity_shipped"] = 1
    body = rules.shipment_body(push("p2", ("BC-MUG", 1)), products, addresses)
    assert body["items"] == [{"order_product_id": 2501, "quantity": 1}]
    with pytest.raises(UnmatchedShipment):
        rules.shipment_body(push("p3", ("BC-MUG", 2)), products, addresses)


def test_a_shipment_already_on_the_order_is_found_by_key_or_tracking_number():
    shipments = [
        {"id": 7, "tracking_number": "OTHER", "comments": "OMS shipment p1"},
        {"id": 8, "tracking_number": "1Z999", "comments": ""},
    ]
    assert rules.existing_shipment(shipments, push("p1", tracking="NEW")) == "7"
    assert rules.existing_shipment(shipments, push("p9")) == "8"
    assert rules.existing_shipment(shipments, push("p9", tracking="")) is None
    assert rules.existing_shipment([], push("p1")) is None


@pytest.mark.parametrize(
    ("carrier", "slug"), [("UPS", "ups"), ("DHL Express", "dhl"), ("dpd", "dpd"), ("Acme", "")]
)
def test_carriers_become_tracking_carriers(carrier: str, slug: str):
    assert rules.tracking_carrier(carrier) == slug


def test_the_rate_limit_reset_is_the_wait_in_seconds():
    assert rules.reset_wait_s("15000") == 15.0
    assert rules.reset_wait_s("250") == 0.25
    assert rules.reset_wait_s(None) is None
    assert rules.reset_wait_s("soon") is None


def test_the_orders_last_change_is_its_date_modified():
    order, _, _ = order_parts(250)
    fallback = datetime(2000, 1, 1, tzinfo=UTC)
    assert rules.modified_at(order, fallback) == datetime(2026, 12, 1, 11, 41, 25, tzinfo=UTC)
    assert rules.modified_at({"date_modified": "garbage"}, fallback) == fallback
