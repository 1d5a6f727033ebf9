"""The Amazon SP-API client against the local SP-API double: LWA tokens (refreshed before they
expire and when Amazon refuses an expired one), throttling, paging, confirmShipment exactly once
(a repeat is harmless), Listings patches at the documented rate; and, in the connector on real
Postgres, polled orders that order-intake's Amazon adapter reads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.channel_connector.clients.amazon import AmazonClient, create
from services.channel_connector.clients.base import (
    Capability,
    ShipmentPush,
    StockPush,
    StockRefused,
)
from services.channel_connector.domain import Quantity
from services.channel_connector.http import ChannelApiError
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings
from services.order_intake.channels.adapters import amazon as amazon_adapter
from services.order_intake.channels.adapters.base import NewOrder
from shared.contracts.common import SkuQuantity
from shared.contracts.fulfilment import FulfilmentShipped
from shared.contracts.order_intake import OrderLineSummary, OrderStatusChanged
from tests.support.amazon_double import MARKETPLACE_US, AmazonDouble
from tests.support.connector import ConnectorHarness, start_connector
from tests.support.env import Infra
from tests.unit.channels import payloads

pytestmark = pytest.mark.component

SINCE = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def double() -> Iterator[AmazonDouble]:
    with AmazonDouble().serving() as served:
        yield served


def account(double: AmazonDouble, **extra: object) -> AccountSettings:
    return AccountSettings.model_validate(double.account(**extra))


@pytest.fixture
async def client(double: AmazonDouble) -> AsyncIterator[AmazonClient]:
    amazon = AmazonClient(account(double), timeout_s=5, max_inline_wait_s=5)
    yield amazon
    await amazon.aclose()


def order(order_id: str, skus: tuple[str, str] = ("MUG-1", "TSHIRT-M")) -> dict[str, object]:
    return payloads.amazon_order(order_id, skus=skus)


def shipment(order_id: str, key: str, *lines: tuple[str, int], **extra: object) -> ShipmentPush:
    fields: dict[str, object] = {
        "key": key,
        "order_id": f"oms-{order_id}",
        "external_id": order_id,
        "carrier": "ups",
        "tracking_number": f"1Z{key}",
        "tracking_url": None,
        "shipped_at": datetime.now(UTC) - timedelta(minutes=1),
        "lines": tuple(Quantity(sku, quantity) for sku, quantity in lines),
        **extra,
    }
    return ShipmentPush(**fields)  # type: ignore[arg-type]


# --- settings --------------------------------------------------------------------------------


def test_missing_credentials_and_options_are_named() -> None:
    settings = ChannelConnectorSettings()
    base = {"name": "amz", "channel": "amazon", "options": {"marketplace_ids": MARKETPLACE_US}}
    with pytest.raises(ValueError, match=r"credentials\.client_id"):
        create(AccountSettings.model_validate(base), settings)
    creds = {"client_id": "a", "client_secret": "b", "refresh_token": "c"}
    with pytest.raises(ValueError, match=r"options\.marketplace_ids"):
        create(AccountSettings(name="amz", channel="amazon", credentials=creds), settings)  # type: ignore[arg-type]
    no_seller = create(AccountSettings.model_validate({**base, "credentials": creds}), settings)
    assert Capability.STOCK not in no_seller.capabilities
    assert Capability.CANCELLATIONS not in no_seller.capabilities
    assert Capability.REFUNDS not in no_seller.capabilities
    assert {Capability.POLL_ORDERS, Capability.SHIPMENTS} <= no_seller.capabilities


# --- tokens ----------------------------------------------------------------------------------


async def test_an_expired_token_is_refreshed_once_and_the_call_succeeds(
    double: AmazonDouble, client: AmazonClient
) -> None:
    double.add_order(order("111-0000001-0000001"))
    assert len(await client.poll_orders(SINCE)) == 1
    assert double.token_grants == 1
    double.expire_tokens()
    polled = await client.poll_orders(SINCE)
    assert [p.external_id for p in polled] == ["111-0000001-0000001"]
    assert double.token_grants == 2
    assert double.rdt_grants == 2  # the restricted data token had expired with it
    # The refused call, then the same call with the new token.
    assert double.calls("getOrders") == 3


async def test_a_token_is_fetched_again_before_it_expires(double: AmazonDouble) -> None:
    double.token_lifetime_s = 61  # the client renews a minute early: after ~1 s
    amazon = AmazonClient(account(double), timeout_s=5, max_inline_wait_s=5)
    try:
        await amazon.poll_orders(SINCE)
        await asyncio.sleep(1.2)
        await amazon.poll_orders(SINCE)
    finally:
        await amazon.aclose()
    assert double.token_grants == 2
    assert double.calls("getOrders") == 2  # no call was refused


async def test_wrong_credentials_fail_for_good(double: AmazonDouble) -> None:
    settings = double.account()
    settings["credentials"]["refresh_token"] = "Atzr|revoked"
    amazon = AmazonClient(
        AccountSettings.model_validate(settings), timeout_s=5, max_inline_wait_s=5
    )
    try:
        with pytest.raises(ChannelApiError) as refused:
            await amazon.poll_orders(SINCE)
    finally:
        await amazon.aclose()
    assert not refused.value.retryable and refused.value.status == 400
    assert "invalid_grant" in str(refused.value)
    assert double.calls("getOrders") == 0


# --- polling ---------------------------------------------------------------------------------


async def test_orders_are_fetched_with_a_restricted_data_token_for_the_address(
    double: AmazonDouble, client: AmazonClient
) -> None:
    double.add_order(order("111-0000010-0000001"))
    [polled] = await client.poll_orders(SINCE)
    await client.poll_orders(SINCE)
    assert double.rdt_grants == 1  # kept until shortly before it expires
    full = json.loads(polled.payload)
    assert full["ShippingAddress"]["AddressLine1"] == "410 Terry Ave N"
    assert full["BuyerInfo"]["BuyerEmail"].endswith("@marketplace.amazon.com")

    without = AmazonClient(
        account(double, options={"restricted_data": "false"}), timeout_s=5, max_inline_wait_s=5
    )
    try:
        [redacted] = await without.poll_orders(SINCE)
    finally:
        await without.aclose()
    assert double.rdt_grants == 1
    assert json.loads(redacted.payload)["ShippingAddress"] == {
        "City": "Seattle",
        "StateOrRegion": "WA",
        "PostalCode": "98109-5210",
        "CountryCode": "US",
    }


async def test_polling_follows_next_token_for_orders_and_items(
    double: AmazonDouble, client: AmazonClient
) -> None:
    double.orders_page_size = 2
    double.items_page_size = 1
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    for n in range(3):
        double.add_order(order(f"111-0000002-000000{n}"), updated_at=t0 + timedelta(minutes=n))
    double.add_order(order("111-0000002-0000009"), updated_at=t0)
    double.orders["111-0000002-0000009"]["OrderStatus"] = "Pending"
    old = double.add_order(order("111-0000002-0000008"), updated_at=t0 - timedelta(days=2))
    afn = double.add_order(order("111-0000002-0000007"), updated_at=t0)
    double.orders[afn]["FulfillmentChannel"] = "AFN"

    polled = await client.poll_orders(t0 - timedelta(minutes=1))

    assert [p.external_id for p in polled] == [f"111-0000002-000000{n}" for n in range(3)]
    assert old not in {p.external_id for p in polled}
    assert double.calls("getOrders") == 2  # 4 MFN orders, 2 a page
    assert double.calls("getOrderItems") == 6  # 3 orders handed on, 2 items each, 1 a page
    first = json.loads(polled[0].payload)
    assert [i["SellerSKU"] for i in first["OrderItems"]] == ["MUG-1", "TSHIRT-M"]
    assert polled[0].updated_at == t0.replace(microsecond=0)
    # Exactly what order-intake's Amazon adapter reads.
    parsed = amazon_adapter.parse(first, {})
    assert isinstance(parsed, NewOrder)
    assert [(line.sku, line.quantity) for line in parsed.order.lines] == [
        ("MUG-1", 1),
        ("MUG-1", 2),
        ("TSHIRT-M", 2),
    ]
    assert parsed.order.paid_externally


async def test_throttled_calls_back_off_and_long_waits_go_back_to_the_queue(
    double: AmazonDouble, client: AmazonClient
) -> None:
    double.add_order(order("111-0000003-0000001"))
    double.throttle_next("getOrderItems")
    started = asyncio.get_running_loop().time()
    polled = await client.poll_orders(SINCE)
    waited = asyncio.get_running_loop().time() - started
    assert [p.external_id for p in polled] == ["111-0000003-0000001"]
    assert double.throttled == ["getOrderItems"]
    assert double.calls("getOrderItems") == 2
    assert waited >= 1.9  # one token's time at getOrderItems' 0.5 requests per second

    # getOrders earns a token a minute: too long to wait in place.
    double.throttle_next("getOrders")
    with pytest.raises(ChannelApiError) as throttled:
        await client.poll_orders(SINCE)
    assert throttled.value.retryable and throttled.value.status == 429
    assert throttled.value.retry_after_s is not None and throttled.value.retry_after_s > 55


async def test_server_errors_are_retryable(double: AmazonDouble, client: AmazonClient) -> None:
    double.fail_next("getOrders", 503)
    with pytest.raises(ChannelApiError) as failed:
        await client.poll_orders(SINCE)
    assert failed.value.retryable and failed.value.status == 503


# --- shipments -------------------------------------------------------------------------------


async def test_a_parcel_is_confirmed_once_with_its_order_items_and_a_repeat_is_harmless(
    double: AmazonDouble, client: AmazonClient
) -> None:
    order_id = double.add_order(order("111-0000004-0000001"))
    first = shipment(order_id, "parcel-1", ("MUG-1", 2))
    reference = await client.push_shipment(first)
    assert reference is not None and reference.isdigit()
    [(confirmed_order, body)] = double.confirmations
    assert confirmed_order == order_id
    assert body["marketplaceId"] == MARKETPLACE_US
    detail = body["packageDetail"]
    assert detail["packageReferenceId"] == reference
    assert (detail["carrierCode"], detail["trackingNumber"]) == ("UPS", "1Zparcel-1")
    assert detail["orderItems"] == [{"orderItemId": "52852651034158", "quantity": 2}]

    # Sent again (a crash before the connector recorded it): no second package.
    assert await client.push_shipment(first) == reference
    assert len(double.confirmations) == 1
    assert double.shipped(order_id) == {"52852651034158": 2, "52852651034159": 0}

    # The rest of the order in a second parcel, which the first one is "earlier" to.
    rest = shipment(
        order_id,
        "parcel-2",
        ("MUG-1", 1),
        ("TSHIRT-M", 2),
        carrier="Local Courier",
        earlier=(Quantity("MUG-1", 2),),
    )
    second = await client.push_shipment(rest)
    assert second != reference
    assert len(double.confirmations) == 2
    detail = double.confirmations[1][1]["packageDetail"]
    assert (detail["carrierCode"], detail["carrierName"]) == ("Other", "Local Courier")
    assert detail["orderItems"] == [
        {"orderItemId": "52852651034158", "quantity": 1},
        {"orderItemId": "52852651034159", "quantity": 2},
    ]
    assert double.orders[order_id]["OrderStatus"] == "Shipped"
    assert await client.push_shipment(rest) == second
    assert len(double.confirmations) == 2 and double.package_edits == []


async def test_amazons_already_fulfilled_answer_counts_as_done(
    double: AmazonDouble, client: AmazonClient
) -> None:
    order_id = double.add_order(order("111-0000005-0000001"))
    # Amazon's QuantityShipped still says 0, but another package took every mug meanwhile.
    push = shipment(order_id, "parcel-9", ("MUG-1", 3))
    original = double._get_order_items

    def stale(order_id: str, query: dict[str, str]) -> dict[str, object]:
        answer = original(order_id, query)
        for item in answer["payload"]["OrderItems"]:
            item["QuantityShipped"] = 0
        return answer

    double.items[order_id][0]["QuantityShipped"] = 3
    double._get_order_items = stale  # type: ignore[method-assign]
    assert await client.push_shipment(push) is not None
    assert double.calls("confirmShipment") == 1 and double.confirmations == []


async def test_a_parcel_that_does_not_fit_the_order_is_refused_for_good(
    double: AmazonDouble, client: AmazonClient
) -> None:
    order_id = double.add_order(order("111-0000006-0000001"))
    with pytest.raises(ValueError, match="HAT"):
        await client.push_shipment(shipment(order_id, "p1", ("HAT", 1)))
    assert double.calls("confirmShipment") == 0


# --- stock -----------------------------------------------------------------------------------


async def test_stock_patches_each_listing_at_the_documented_rate(
    double: AmazonDouble, client: AmazonClient
) -> None:
    double.enforce_rates = True  # patchListingsItem: 5 per second, bursts of 10
    levels = [StockPush(f"SKU-{n}", n) for n in range(14)]
    started = asyncio.get_running_loop().time()
    await client.push_stock(levels)
    took = asyncio.get_running_loop().time() - started
    assert double.throttled == []
    assert double.quantities == {f"SKU-{n}": n for n in range(14)}
    assert took >= 0.7  # 4 beyond the burst at 5 per second
    sku, body = double.listing_patches[3]
    assert sku == "SKU-3"
    assert body == {
        "productType": "PRODUCT",
        "patches": [
            {
                "op": "replace",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 3}],
            }
        ],
    }


async def test_a_sku_amazon_refuses_is_named_and_holds_up_no_other(
    double: AmazonDouble, client: AmazonClient
) -> None:
    double.unlisted = {"NOT-LISTED"}
    with pytest.raises(StockRefused) as refused:
        await client.push_stock([StockPush("NOT-LISTED", 4), StockPush("LISTED", 2)])
    assert set(refused.value.refused) == {"NOT-LISTED"} and not refused.value.retryable
    assert "does not match any listing" in refused.value.refused["NOT-LISTED"]
    assert double.quantities == {"LISTED": 2}


# --- in the connector ------------------------------------------------------------------------


@pytest.fixture
async def connector(
    infra: Infra, double: AmazonDouble
) -> AsyncIterator[tuple[ConnectorHarness, AmazonClient]]:
    settings = account(double, first_poll_lookback_s=3600)
    amazon = AmazonClient(settings, timeout_s=5, max_inline_wait_s=5)
    async with start_connector(infra, [(settings, amazon)]) as harness:
        yield harness, amazon
    await amazon.aclose()


def status(order_id: str, external_id: str) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order_id,
        channel="amazon",
        status="FULFILLING",
        currency="USD",
        total=Decimal("75.61"),
        lines=(
            OrderLineSummary(
                line_id="l1",
                sku="MUG-1",
                quantity=3,
                unit_price=Decimal(10),
                line_total=Decimal(30),
            ),
            OrderLineSummary(
                line_id="l2",
                sku="TSHIRT-M",
                quantity=2,
                unit_price=Decimal("17.50"),
                line_total=Decimal(35),
            ),
        ),
        at=datetime.now(UTC),
        external_id=external_id,
    )


async def test_the_connector_hands_polled_orders_on_once(
    connector: tuple[ConnectorHarness, AmazonClient], double: AmazonDouble
) -> None:
    h, _amazon = connector
    double.add_order(order("111-0000007-0000001"))
    assert await h.run_poll("amazon-us") == 1
    assert await h.run_poll("amazon-us") == 0
    [received] = await h.harness.emitted_contracts("ChannelOrderReceived")
    assert received.channel == "amazon"
    parsed = amazon_adapter.parse(json.loads(received.payload), received.headers)
    assert isinstance(parsed, NewOrder) and parsed.external_id == "111-0000007-0000001"


async def test_the_connector_confirms_each_parcel_once(
    connector: tuple[ConnectorHarness, AmazonClient], double: AmazonDouble
) -> None:
    h, _amazon = connector
    order_id = double.add_order(order("111-0000008-0000001"))
    await h.harness.deliver(status("o1", order_id), correlation_id="o1")
    parcel = FulfilmentShipped(
        order_id="o1",
        fulfilment_id="o1-f1",
        location="main",
        lines=(SkuQuantity(sku="MUG-1", quantity=3), SkuQuantity(sku="TSHIRT-M", quantity=2)),
        carrier="fedex",
        tracking_number="7712",
        shipped_at=datetime.now(UTC),
        shipment_id="o1-p1",
    )
    double.fail_next("confirmShipment", 503)
    await h.harness.deliver(parcel, correlation_id="o1")
    await h.harness.deliver(parcel, correlation_id="o1")  # redelivered: still one push
    await h.run_pushes()  # the 503: pending again after a (short, in tests) backoff
    await h.harness.pool.execute("UPDATE pushes SET next_attempt_at = now()")
    await h.run_pushes()
    [push] = await h.pushes(kind="shipment")
    assert (push["status"], push["attempts"]) == ("done", 2)
    assert double.calls("confirmShipment") == 2
    [(_order, body)] = double.confirmations
    assert body["packageDetail"]["carrierCode"] == "FedEx"
    assert body["packageDetail"]["orderItems"] == [
        {"orderItemId": "52852651034158", "quantity": 3},
        {"orderItemId": "52852651034159", "quantity": 2},
    ]
    # A crash between Amazon's answer and the commit: the push goes again, harmlessly.
    await h.harness.pool.execute(
        "UPDATE pushes SET status = 'pending', next_attempt_at = now() WHERE push_id = $1",
        push["push_id"],
    )
    await h.run_pushes()
    assert len(double.confirmations) == 1 and double.package_edits == []
    assert [p["status"] for p in await h.pushes(kind="shipment")] == ["done"]
