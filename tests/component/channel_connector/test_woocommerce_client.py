"""The WooCommerce client against the WooCommerce double, over real HTTP: stock by SKU to
products and variations, tracking notes and completion once, cancellations, refunds once, and
the API's errors (401, 429 with Retry-After, 5xx)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from services.channel_connector.clients.base import (
    CancellationPush,
    RefundPush,
    ShipmentPush,
    StockPush,
)
from services.channel_connector.clients.woocommerce import WooCommerceClient, create
from services.channel_connector.domain import Quantity
from services.channel_connector.http import ChannelApiError
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings
from tests.support.woocommerce_double import CONSUMER_KEY, CONSUMER_SECRET, WooCommerceDouble
from tests.unit.channels import payloads

pytestmark = pytest.mark.component

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def double() -> Iterator[WooCommerceDouble]:
    with WooCommerceDouble().serving() as served:
        yield served


def account(double: WooCommerceDouble, **options: str) -> AccountSettings:
    return AccountSettings.model_validate(
        {
            "name": "woo",
            "channel": "woocommerce",
            "api_base": double.base_url,
            "credentials": {"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET},
            "options": options,
        }
    )


@pytest.fixture
async def client(double: WooCommerceDouble) -> AsyncIterator[WooCommerceClient]:
    made = create(account(double), ChannelConnectorSettings(connector_max_inline_wait_s=1.0))
    yield made
    await made.aclose()


def parcel(
    key: str, *lines: tuple[str, int], earlier: tuple[tuple[str, int], ...] = ()
) -> ShipmentPush:
    return ShipmentPush(
        key=key,
        order_id="ord_1",
        external_id="727",
        carrier="dhl",
        tracking_number=f"JJD-{key}",
        tracking_url=f"https://track.example.com/JJD-{key}",
        shipped_at=NOW,
        lines=tuple(Quantity(sku, qty) for sku, qty in lines),
        earlier=tuple(Quantity(sku, qty) for sku, qty in earlier),
    )


async def test_stock_goes_to_products_and_variations_found_once_by_sku(
    double: WooCommerceDouble, client: WooCommerceClient
) -> None:
    mug = double.add_product("MUG-1", stock=3)
    sock = double.add_variation("SOCK", "SOCK-3", stock=0)
    await client.push_stock([StockPush("MUG-1", 12), StockPush("SOCK-3", 4), StockPush("NOPE", 1)])
    assert sorted(double.stock_updates) == sorted([(mug, 12), (sock, 4)])
    assert double.products[mug]["manage_stock"] is True
    parent = double.products[sock]["parent_id"]
    assert ("POST", f"/wp-json/wc/v3/products/{parent}/variations/batch") in double.requests
    lookups = [r for r in double.requests if r == ("GET", "/wp-json/wc/v3/products")]
    await client.push_stock([StockPush("MUG-1", 0), StockPush("SOCK-3", 2)])
    assert [r for r in double.requests if r == ("GET", "/wp-json/wc/v3/products")] == lookups
    assert double.products[mug]["stock_quantity"] == 0
    assert double.products[mug]["stock_status"] == "outofstock"
    assert double.products[sock]["stock_quantity"] == 2


async def test_a_product_deleted_since_is_looked_up_again(
    double: WooCommerceDouble, client: WooCommerceClient
) -> None:
    old = double.add_product("MUG-2")
    await client.push_stock([StockPush("MUG-2", 5)])
    del double.products[old]
    new = double.add_product("MUG-2")
    with pytest.raises(ChannelApiError) as refused:
        await client.push_stock([StockPush("MUG-2", 6)])
    assert refused.value.retryable and "woocommerce_rest_product_invalid_id" in str(refused.value)
    await client.push_stock([StockPush("MUG-2", 6)])
    assert double.stock_updates[-1] == (new, 6)


async def test_each_parcel_adds_one_tracking_note_and_the_last_completes_the_order_once(
    double: WooCommerceDouble, client: WooCommerceClient
) -> None:
    double.add_order(payloads.woocommerce_order(727, skus=("SOCK-3", "MUG-1")))
    first = parcel("p1", ("SOCK-3", 3))
    reference = await client.push_shipment(first)
    assert await client.push_shipment(first) == reference  # a repeat finds its note
    assert [(n[0], n[2]) for n in double.notes_added] == [(727, True)]
    assert "dhl" in double.notes_added[0][1] and "JJD-p1" in double.notes_added[0][1]
    assert double.status_changes == []  # the mugs have not shipped

    second = parcel("p2", ("MUG-1", 2), earlier=(("SOCK-3", 3),))
    await client.push_shipment(second)
    await client.push_shipment(second)
    assert len(double.notes_added) == 2 and "JJD-p2" in double.notes_added[1][1]
    assert double.status_changes == [(727, "completed")]


async def test_a_note_whose_tracking_number_only_starts_the_same_is_another_parcel(
    double: WooCommerceDouble, client: WooCommerceClient
) -> None:
    double.add_order(payloads.woocommerce_order(727))
    await client.push_shipment(parcel("p10", ("SOCK-3", 1)))
    await client.push_shipment(parcel("p1", ("SOCK-3", 1)))
    assert len(double.notes_added) == 2


async def test_cancellations_cancel_the_whole_order_once_or_note_a_partial_one(
    double: WooCommerceDouble, client: WooCommerceClient
) -> None:
    double.add_order(payloads.woocommerce_order(727))
    whole = CancellationPush(
        "ord_1", "ord_1", "727", "out of stock", (Quantity("SOCK-3", 3), Quantity("MUG-1", 2))
    )
    await client.cancel_order(whole)
    await client.cancel_order(whole)
    assert double.status_changes == [(727, "cancelled")]

    double.add_order(payloads.woocommerce_order(728))
    part = CancellationPush("ord_2", "ord_2", "728", "short pick", (Quantity("MUG-1", 2),))
    await client.cancel_order(part)
    await client.cancel_order(part)
    assert double.order(728)["status"] == "processing"
    assert [(order, private) for order, _, private in double.notes_added] == [(728, False)]
    assert "2 x MUG-1" in double.notes_added[0][1]


async def test_a_refund_is_made_once_without_the_gateway_unless_configured(
    double: WooCommerceDouble, client: WooCommerceClient
) -> None:
    double.add_order(payloads.woocommerce_order(727))
    refund = RefundPush("refund-r1", "ord_1", "727", "r1", Decimal("10.00"), "EUR", "damaged")
    made = await client.refund_order(refund)
    assert await client.refund_order(refund) == made
    [(order, body)] = double.refunds_made
    assert order == 727 and body["amount"] == "10.00" and body["reason"] == "damaged"
    assert body["api_refund"] is False and body["api_restock"] is False

    too_much = RefundPush("refund-r2", "ord_1", "727", "r2", Decimal("40.00"), "EUR", "all")
    with pytest.raises(ChannelApiError) as refused:
        await client.refund_order(too_much)
    assert refused.value.status == 400 and not refused.value.retryable
    wrong = RefundPush("refund-r3", "ord_1", "727", "r3", Decimal("1.00"), "USD", "x")
    with pytest.raises(ChannelApiError, match="in USD"):
        await client.refund_order(wrong)

    gateway = create(account(double, api_refund="true"), ChannelConnectorSettings())
    try:
        await gateway.refund_order(
            RefundPush("refund-r4", "ord_1", "727", "r4", Decimal("1.00"), "EUR", "x")
        )
    finally:
        await gateway.aclose()
    assert double.refunds_made[-1][1]["api_refund"] is True


async def test_the_apis_errors(double: WooCommerceDouble, client: WooCommerceClient) -> None:
    double.add_order(payloads.woocommerce_order(727))
    bad: dict[str, Any] = account(double).model_dump()
    bad["credentials"] = {"consumer_key": CONSUMER_KEY, "consumer_secret": "cs_wrong"}
    wrong = create(AccountSettings.model_validate(bad), ChannelConnectorSettings())
    try:
        with pytest.raises(ChannelApiError) as refused:
            await wrong.push_shipment(parcel("p1", ("SOCK-3", 1)))
    finally:
        await wrong.aclose()
    assert refused.value.status == 401 and not refused.value.retryable
    assert "Consumer secret is invalid" in str(refused.value)

    double.fail_next("/orders/727", 429, retry_after="0", code="woocommerce_rest_too_many_requests")
    await client.push_shipment(parcel("p1", ("SOCK-3", 1)))  # waited out, then sent
    assert len(double.notes_added) == 1

    double.fail_next("/orders/727", 429, retry_after="120")
    with pytest.raises(ChannelApiError) as throttled:
        await client.push_shipment(parcel("p2", ("SOCK-3", 1)))
    assert throttled.value.retryable and throttled.value.retry_after_s == 120

    double.fail_next("/notes", 500, method="POST")
    with pytest.raises(ChannelApiError) as failed:
        await client.push_shipment(parcel("p3", ("SOCK-3", 1)))
    assert failed.value.retryable and failed.value.status == 500

    with pytest.raises(ChannelApiError) as missing:
        await client.cancel_order(CancellationPush("o", "o", "999", "x", (Quantity("A", 1),)))
    assert missing.value.status == 404 and not missing.value.retryable


def test_an_account_without_credentials_is_refused() -> None:
    settings = AccountSettings(name="woo", channel="woocommerce", api_base="https://shop.example")
    with pytest.raises(ValueError, match="consumer_key and consumer_secret"):
        create(settings, ChannelConnectorSettings())
