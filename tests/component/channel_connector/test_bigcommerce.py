"""The BigCommerce client against the BigCommerce double (a real HTTP server): an order fetched
and composed for order-intake, a shipment created once, stock set in one request, a cancelled
order, the API's errors (401, 429 with its reset, 5xx); and the connector's webhook route with
that client on real Postgres: a wrong secret refused, a good delivery queued, fetched and handed
on, the same delivery twice fetched at most twice and made into one order by order-intake."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from services.channel_connector.clients import client_for
from services.channel_connector.clients.base import (
    CancellationPush,
    NotSupported,
    ShipmentPush,
    StockPush,
)
from services.channel_connector.clients.bigcommerce import BigCommerceClient
from services.channel_connector.domain import Quantity
from services.channel_connector.http import ChannelApiError
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings
from services.order_intake.app import build as build_order_intake
from services.order_intake.channels.adapters import bigcommerce as adapter
from services.order_intake.channels.adapters.base import NewOrder, parse_json
from services.order_intake.settings import OrderIntakeSettings
from tests.support.bigcommerce_double import (
    TEST_TOKEN,
    BigCommerceDouble,
    delivery_headers,
    webhook_body,
)
from tests.support.component import start_harness
from tests.support.connector import start_connector
from tests.support.env import Infra
from tests.unit.channels.bigcommerce_payloads import STORE_HASH, Item

pytestmark = pytest.mark.component

SECRET = "the-subscriptions-header-secret"
CLIENT_SECRET = "the-apps-client-secret"


def account_settings(double: BigCommerceDouble, **options: str) -> AccountSettings:
    return AccountSettings(
        name="bc",
        channel="bigcommerce",
        api_base=double.base_url,
        credentials={
            "access_token": SecretStr(options.pop("token", TEST_TOKEN)),
            "webhook_secret": SecretStr(SECRET),
            "client_secret": SecretStr(CLIENT_SECRET),
        },
        options={"store_hash": STORE_HASH, **options},
        stock_push_interval_s=0,
    )


@pytest.fixture
def double() -> Iterator[BigCommerceDouble]:
    with BigCommerceDouble().serving() as served:
        yield served


@pytest.fixture
async def client(double: BigCommerceDouble) -> AsyncIterator[BigCommerceClient]:
    made = client_for(
        account_settings(double), ChannelConnectorSettings(connector_max_inline_wait_s=2)
    )
    assert isinstance(made, BigCommerceClient)
    yield made
    await made.aclose()


def shipment(key: str, *lines: tuple[str, int], tracking: str = "1Z999AA10123456784"):
    return ShipmentPush(
        key=key,
        order_id="ord_1",
        external_id="250",
        carrier="ups",
        tracking_number=tracking,
        tracking_url=None,
        shipped_at=datetime(2026, 12, 1, tzinfo=UTC),
        lines=tuple(Quantity(sku, quantity) for sku, quantity in lines),
    )


def calls(double: BigCommerceDouble, method: str, suffix: str) -> int:
    return sum(1 for m, path in double.requests if m == method and path.endswith(suffix))


# --- the client --------------------------------------------------------------------------------


async def test_an_order_is_fetched_with_its_products_and_addresses_as_the_adapter_reads_it(
    double: BigCommerceDouble, client: BigCommerceClient
):
    double.add_order(250)
    fetched = await client.fetch_order("250")
    assert fetched.external_id == "250"
    assert fetched.updated_at == datetime(2026, 12, 1, 11, 41, 25, tzinfo=UTC)
    document = json.loads(fetched.payload)
    assert [p["id"] for p in document["products"]] == [2501, 2502]
    assert [a["id"] for a in document["shipping_addresses"]] == [2501]
    result = adapter.parse(parse_json(fetched.payload.encode()), {})
    assert isinstance(result, NewOrder)
    assert [(line.sku, line.quantity, line.unit_price) for line in result.order.lines] == [
        ("BC-MUG", 2, Decimal("12.50")),
        ("BC-TEE", 1, Decimal("15.00")),
    ]


async def test_every_page_of_an_orders_products_is_fetched(
    double: BigCommerceDouble, client: BigCommerceClient
):
    items = tuple(Item(f"BULK-{i:03}", 1, Decimal("1.00")) for i in range(260))
    double.add_order(300, items=items, shipping=Decimal(0))
    document = json.loads((await client.fetch_order("300")).payload)
    assert len(document["products"]) == 260
    assert len({p["id"] for p in document["products"]}) == 260
    assert calls(double, "GET", "/v2/orders/300/products") == 2


async def test_a_shipment_is_created_once_on_the_orders_products(
    double: BigCommerceDouble, client: BigCommerceClient
):
    double.add_order(250)
    first = await client.push_shipment(shipment("parcel-1", ("BC-MUG", 1)))
    again = await client.push_shipment(shipment("parcel-1", ("BC-MUG", 1)))  # a re-send
    assert first == again == "1"
    rest = await client.push_shipment(
        shipment("parcel-2", ("BC-MUG", 1), ("BC-TEE", 1), tracking="1Z999AA10123456785")
    )
    assert rest == "2"
    made = double.shipments[250]
    assert [(s["order_address_id"], s["tracking_carrier"]) for s in made] == [
        (2501, "ups"),
        (2501, "ups"),
    ]
    assert [[(i["order_product_id"], i["quantity"]) for i in s["items"]] for s in made] == [
        [(2501, 1)],
        [(2501, 1), (2502, 1)],
    ]
    assert calls(double, "POST", "/v2/orders/250/shipments") == 2
    assert double.orders[250]["status_id"] == 2  # Shipped


async def test_stock_levels_are_set_at_the_location_in_one_request(double: BigCommerceDouble):
    made = client_for(account_settings(double, location_id="3"), ChannelConnectorSettings())
    try:
        await made.push_stock([StockPush("BC-MUG", 7), StockPush("BC-TEE", 0)])
    finally:
        await made.aclose()
    assert double.adjustments == [
        [
            {"location_id": 3, "sku": "BC-MUG", "quantity": 7},
            {"location_id": 3, "sku": "BC-TEE", "quantity": 0},
        ]
    ]
    assert double.inventory == {(3, "BC-MUG"): 7, (3, "BC-TEE"): 0}


async def test_a_cancelled_order_is_cancelled_once_and_a_shipped_one_not_at_all(
    double: BigCommerceDouble, client: BigCommerceClient
):
    double.add_order(250)
    double.add_order(251, status_id=2, status="Shipped")
    cancel = CancellationPush(
        key="ord_1", order_id="ord_1", external_id="250", reason="out of stock", lines=()
    )
    assert await client.cancel_order(cancel) == "250"
    assert await client.cancel_order(cancel) == "250"
    assert double.orders[250]["status_id"] == 5
    assert calls(double, "PUT", "/v2/orders/250") == 1
    with pytest.raises(NotSupported, match="whole orders"):
        await client.cancel_order(
            CancellationPush(key="o2", order_id="o2", external_id="251", reason="x", lines=())
        )


async def test_a_short_429_is_waited_out_for_its_reset(
    double: BigCommerceDouble, client: BigCommerceClient
):
    double.add_order(250)
    double.fail_next("/v2/orders/250", 429, method="GET", reset_ms=300)
    started = time.monotonic()
    fetched = await client.fetch_order("250")
    assert fetched.external_id == "250"
    assert time.monotonic() - started >= 0.3
    assert double.order_fetches(250) == 2


async def test_a_long_429_is_retryable_after_the_reset(
    double: BigCommerceDouble, client: BigCommerceClient
):
    double.add_order(250)
    double.fail_next("/v2/orders/250", 429, method="GET", reset_ms=15000)
    with pytest.raises(ChannelApiError) as error:
        await client.fetch_order("250")
    assert (error.value.retryable, error.value.status, error.value.retry_after_s) == (
        True,
        429,
        15.0,
    )


async def test_a_refused_token_is_final_and_a_server_error_is_retryable(
    double: BigCommerceDouble, client: BigCommerceClient
):
    double.add_order(250)
    wrong = client_for(account_settings(double, token="expired"), ChannelConnectorSettings())
    try:
        with pytest.raises(ChannelApiError) as refused:
            await wrong.fetch_order("250")
    finally:
        await wrong.aclose()
    assert (refused.value.status, refused.value.retryable) == (401, False)
    double.fail_next("/shipments", 503, method="POST")
    with pytest.raises(ChannelApiError) as failed:
        await client.push_shipment(shipment("parcel-1", ("BC-MUG", 2)))
    assert (failed.value.status, failed.value.retryable) == (503, True)
    assert await client.push_shipment(shipment("parcel-1", ("BC-MUG", 2))) == "1"
    assert len(double.shipments[250]) == 1


# --- the connector's webhook route -------------------------------------------------------------


async def post_webhook(h: Any, body: bytes, headers: dict[str, str]) -> Any:
    async with h.harness.anonymous() as api:
        return await api.post("/v1/connectors/bc/webhooks", content=body, headers=headers)


async def test_the_webhook_route_refuses_a_wrong_secret_and_queues_a_verified_order(
    infra: Infra, double: BigCommerceDouble
):
    double.add_order(250)
    settings = account_settings(double)
    client = client_for(settings, ChannelConnectorSettings())
    async with start_connector(infra, [(settings, client)]) as h:
        body = webhook_body("store/order/created", 250)
        refused = await post_webhook(h, body, delivery_headers(body, secret="guess"))
        assert refused.status_code == 401, refused.text
        unsigned = await post_webhook(h, body, delivery_headers(body, secret=SECRET))
        assert unsigned.status_code == 401, unsigned.text
        other = webhook_body("store/product/updated", 250)
        malformed = await post_webhook(
            h, other, delivery_headers(other, secret=SECRET, client_secret=CLIENT_SECRET)
        )
        assert malformed.status_code == 400, malformed.text
        assert await h.pushes() == []

        good = delivery_headers(body, secret=SECRET, client_secret=CLIENT_SECRET)
        accepted = await post_webhook(h, body, good)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json() == {"account": "bc", "queued": ["250"]}
        [push] = await h.pushes(kind="fetch_order")
        assert push["payload"] == {"external_id": "250"}
        await h.run_pushes()
        [sent] = await h.harness.emitted_contracts("ChannelOrderReceived")
        assert sent.channel == "bigcommerce"
        assert [p["sku"] for p in json.loads(sent.payload)["products"]] == ["BC-MUG", "BC-TEE"]
    await client.aclose()


async def test_a_webhook_delivered_twice_is_fetched_at_most_twice_and_makes_one_order(
    infra: Infra, double: BigCommerceDouble
):
    double.add_order(250)
    settings = account_settings(double)
    client = client_for(settings, ChannelConnectorSettings())
    async with start_connector(infra, [(settings, client)]) as h:
        created = webhook_body("store/order/created", 250)
        status = webhook_body("store/order/statusUpdated", 250)
        for body in (created, created, status):  # BigCommerce retried one, then a status change
            headers = delivery_headers(body, secret=SECRET, client_secret=CLIENT_SECRET)
            answer = await post_webhook(h, body, headers)
            assert answer.status_code == 200, answer.text
        await h.run_pushes()
        handed_on = await h.harness.emitted_contracts("ChannelOrderReceived")
    await client.aclose()
    assert 1 <= double.order_fetches(250) <= 2
    assert len(handed_on) == double.order_fetches(250)

    async for intake in start_harness(infra, build_order_intake(OrderIntakeSettings())):
        for message in handed_on:
            await intake.deliver(message, correlation_id="bigcommerce:250")
        orders = await intake.fetch("SELECT channel, external_id FROM orders")
        assert [(o["channel"], o["external_id"]) for o in orders] == [("bigcommerce", "250")]


async def test_a_fetch_the_store_fails_is_tried_again_and_a_refused_token_goes_dead(
    infra: Infra, double: BigCommerceDouble
):
    double.add_order(250)
    double.add_order(251)
    settings = account_settings(double)
    client = client_for(settings, ChannelConnectorSettings())
    timings = {"connector_retry_initial_s": 0.3, "connector_retry_max_s": 0.3}
    async with start_connector(infra, [(settings, client)], **timings) as h:
        double.fail_next("/v2/orders/250/products", 500, method="GET")
        body = webhook_body("store/order/created", 250)
        headers = delivery_headers(body, secret=SECRET, client_secret=CLIENT_SECRET)
        assert (await post_webhook(h, body, headers)).status_code == 200
        await h.run_pushes()
        [push] = await h.pushes(kind="fetch_order")
        assert (push["status"], push["attempts"]) == ("pending", 1)
        await asyncio.sleep(0.4)  # past the backoff
        await h.run_pushes()
        [push] = await h.pushes(kind="fetch_order")
        assert (push["status"], push["attempts"]) == ("done", 2)
        assert calls(double, "GET", "/v2/orders/250/products") == 2
        assert len(await h.harness.emitted_contracts("ChannelOrderReceived")) == 1

        double.token = "rotated"  # the store revoked the connector's token
        other = webhook_body("store/order/created", 251)
        headers = delivery_headers(other, secret=SECRET, client_secret=CLIENT_SECRET)
        assert (await post_webhook(h, other, headers)).status_code == 200
        await h.run_pushes()
        [dead] = [p for p in await h.pushes(kind="fetch_order") if p["key"].startswith("251:")]
        assert dead["status"] == "dead" and "401" in dead["last_error"]
        [alert] = await h.harness.emitted_contracts("OperatorAlert")
        assert alert.kind == "channel_push_failed"
    await client.aclose()
