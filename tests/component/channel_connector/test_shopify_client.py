"""The Shopify client against the local Admin GraphQL double, driven by the connector's real
handlers, store and workers on Postgres: stock in batches (an unknown SKU reported, the rest
set), a shipment told exactly once even when Shopify's answer is lost, partial shipments in
two parcels, the cost-based throttle, cancellations and refunds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from services.channel_connector.clients.base import (
    RefundPush,
    ShipmentPush,
    StockPush,
    StockRefused,
)
from services.channel_connector.clients.shopify import ShopifyClient, create
from services.channel_connector.domain import Quantity
from services.channel_connector.http import ChannelApiError
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings
from shared.contracts.common import SkuQuantity
from shared.contracts.fulfilment import FulfilmentShipped
from shared.contracts.inventory import ChannelAvailabilityChanged
from shared.contracts.order_intake import OrderLineSummary, OrderStatusChanged
from shared.contracts.returns import ChannelRefundRequested
from tests.support.connector import ConnectorHarness, start_connector
from tests.support.env import Infra
from tests.support.shopify_double import LOCATION_ID, TEST_TOKEN, ShopifyDouble

pytestmark = pytest.mark.component

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def double() -> Iterator[ShopifyDouble]:
    with ShopifyDouble().serving() as running:
        yield running


def account_settings(double: ShopifyDouble, **options: str) -> AccountSettings:
    return AccountSettings(
        name="shop",
        channel="shopify",
        api_base=double.base_url,
        credentials={"access_token": options.pop("token", TEST_TOKEN)},
        options={"location_id": LOCATION_ID, **options},
        stock_push_interval_s=3600,
        requests_per_second=50,
    )


def client_for(
    double: ShopifyDouble, *, inline_wait_s: float = 5.0, **options: str
) -> ShopifyClient:
    settings = ChannelConnectorSettings(
        connector_http_timeout_s=5, connector_max_inline_wait_s=inline_wait_s
    )
    return create(account_settings(double, **options), settings)


@pytest.fixture
async def connector(
    infra: Infra, double: ShopifyDouble
) -> AsyncIterator[tuple[ConnectorHarness, ShopifyClient]]:
    client = client_for(double)
    async with start_connector(infra, [(account_settings(double), client)]) as harness:
        yield harness, client
    await client.aclose()


def status(
    order_id: str, state: str, external_id: str, lines: dict[str, int], reason: str | None = None
) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order_id,
        channel="shopify",
        status=state,
        currency="EUR",
        total=Decimal("59.44"),
        lines=tuple(
            OrderLineSummary(
                line_id=f"l{i}",
                sku=sku,
                quantity=quantity,
                unit_price=Decimal(10),
                line_total=Decimal(10 * quantity),
            )
            for i, (sku, quantity) in enumerate(lines.items())
        ),
        at=NOW,
        external_id=external_id,
        reason=reason,
    )


def shipped(order_id: str, parcel: str, lines: dict[str, int]) -> FulfilmentShipped:
    return FulfilmentShipped(
        order_id=order_id,
        fulfilment_id=f"{order_id}-f1",
        location="main",
        lines=tuple(SkuQuantity(sku=sku, quantity=q) for sku, q in lines.items()),
        carrier="dhl",
        tracking_number=f"TRK-{parcel}",
        tracking_url=f"https://track.example.com/TRK-{parcel}",
        shipped_at=NOW,
        shipment_id=parcel,
    )


def availability(sku: str, available: int) -> ChannelAvailabilityChanged:
    return ChannelAvailabilityChanged(
        channel="shopify",
        sku=sku,
        available=available,
        safety_stock=0,
        warehouse_available=available,
    )


async def retry_now(h: ConnectorHarness) -> None:
    await h.harness.pool.execute("UPDATE pushes SET next_attempt_at = now()")
    await h.run_pushes()


# --- stock -----------------------------------------------------------------------------------


async def test_stock_goes_in_batches_of_250_and_an_unknown_sku_is_reported(
    connector: tuple[ConnectorHarness, ShopifyClient], double: ShopifyDouble
) -> None:
    h, _client = connector
    skus = [f"SKU-{n}" for n in range(260)]
    for sku in skus:
        double.add_variant(sku, quantity=999)
    for n, sku in enumerate([*skus, "NOT-ON-SHOPIFY"]):
        await h.harness.deliver(availability(sku, n), correlation_id=sku)
    assert await h.run_stock("shop") == 250
    assert await h.run_stock("shop") == 11
    # The first batch (by SKU) holds NOT-ON-SHOPIFY: 249 set, then the 11 left.
    assert [len(call) for call in double.set_quantity_calls] == [249, 11]
    # SKU-1's search also finds SKU-10.., SKU-100..: only the exact SKU is set.
    assert [double.available(sku) for sku in skus] == list(range(260))
    searches = len(double.calls_of("productVariants"))
    assert searches == 6  # 50 SKUs a search: 250 -> 5, then 11 -> 1

    rows = {r["sku"]: r for r in await h.harness.fetch("SELECT * FROM stock_levels")}
    unknown = rows["NOT-ON-SHOPIFY"]
    assert unknown["pushed_quantity"] is None
    assert "no product variant" in unknown["last_error"]
    assert rows["SKU-7"]["pushed_quantity"] == 7 and rows["SKU-7"]["last_error"] is None

    # A later change: the inventory item is remembered, no search.
    await h.harness.pool.execute("UPDATE stock_levels SET not_before = now() WHERE sku = 'SKU-7'")
    await h.harness.deliver(availability("SKU-7", 70), correlation_id="SKU-7")
    await h.run_stock("shop")
    assert double.available("SKU-7") == 70
    assert len(double.calls_of("productVariants")) == searches
    assert double.set_quantity_calls[-1] == [("SKU-7", 70)]
    [first] = double.calls_of("inventorySetQuantities")[:1]
    sent = first.variables["input"]
    assert (sent["name"], sent["reason"], sent["ignoreCompareQuantity"]) == (
        "available",
        "correction",
        True,
    )
    assert {row["locationId"] for row in sent["quantities"]} == {LOCATION_ID}


async def test_a_wrong_location_is_refused_per_sku_naming_the_field(double: ShopifyDouble) -> None:
    double.add_variant("MUG")
    client = client_for(double, location_id="gid://shopify/Location/999")
    with pytest.raises(StockRefused) as refused:
        await client.push_stock([StockPush("MUG", 4)])
    assert "input.quantities.0.locationId" in refused.value.refused["MUG"]
    assert "location could not be found" in refused.value.refused["MUG"]
    assert double.available("MUG") == 0
    await client.aclose()


async def test_newer_api_versions_use_change_from_quantity_and_idempotency_keys(
    double: ShopifyDouble,
) -> None:
    double.add_variant("MUG")
    order = double.add_order(4242, [("MUG", 1)], paid="12.50")
    client = client_for(double, api_version="2026-04")
    await client.push_stock([StockPush("MUG", 9)])
    assert double.available("MUG") == 9
    [call] = double.calls_of("inventorySetQuantities")
    assert call.variables["input"]["quantities"][0]["changeFromQuantity"] is None
    assert "ignoreCompareQuantity" not in call.variables["input"]
    assert call.idempotency_key is not None

    refund = RefundPush("refund-r9", "o9", "4242", "r9", Decimal("2.50"), "EUR", "damaged")
    first = await client.refund_order(refund)
    assert await client.refund_order(refund) == first
    [made] = double.calls_of("refundCreate")
    assert made.idempotency_key == "oms-refund-r9"
    assert [r["amount"] for r in double.orders[order].refunds] == [Decimal("2.50")]
    await client.aclose()


# --- the wire: throttling, 429, 401 ----------------------------------------------------------


async def test_a_throttled_call_waits_for_the_cost_bucket_then_succeeds(
    double: ShopifyDouble,
) -> None:
    double.add_variant("MUG")
    client = client_for(double)
    double.throttle(available=0, restore_rate=50)  # a search (2 points) fits in 0.04 s
    await client.push_stock([StockPush("MUG", 5)])
    assert double.throttled >= 1
    assert double.available("MUG") == 5
    await client.aclose()


async def test_a_long_throttle_is_retryable_after_the_buckets_refill(
    double: ShopifyDouble,
) -> None:
    double.add_variant("MUG")
    client = client_for(double, inline_wait_s=0.5)
    double.throttle(available=0, restore_rate=1)  # 2 points at 1 a second
    with pytest.raises(ChannelApiError) as failed:
        await client.push_stock([StockPush("MUG", 5)])
    assert failed.value.retryable
    assert failed.value.retry_after_s is not None and 1.5 <= failed.value.retry_after_s <= 2.1
    assert double.available("MUG") == 0
    await client.aclose()


async def test_http_429_is_waited_out_and_401_is_final(double: ShopifyDouble) -> None:
    double.add_variant("MUG")
    client = client_for(double)
    double.fail_next(429, retry_after="0.2")
    await client.push_stock([StockPush("MUG", 3)])
    assert double.available("MUG") == 3
    await client.aclose()

    wrong = client_for(double, token="shpat_revoked")
    with pytest.raises(ChannelApiError) as refused:
        await wrong.push_stock([StockPush("MUG", 1)])
    assert (refused.value.status, refused.value.retryable) == (401, False)
    assert "Invalid API key or access token" in str(refused.value)
    await wrong.aclose()


# --- shipments -------------------------------------------------------------------------------


async def test_a_shipment_is_fulfilled_exactly_once_even_when_the_answer_is_lost(
    connector: tuple[ConnectorHarness, ShopifyClient], double: ShopifyDouble
) -> None:
    h, client = connector
    order = double.add_order(1001, [("MUG", 2), ("TEE", 1)])
    await h.harness.deliver(
        status("o1", "FULFILLING", "1001", {"MUG": 2, "TEE": 1}), correlation_id="o1"
    )
    event = shipped("o1", "p1", {"MUG": 2, "TEE": 1})
    await h.harness.deliver(event, correlation_id="o1")
    double.fail_next(502, root="fulfillmentCreate", after=True)  # done, answer lost
    await h.run_pushes()  # fails, then (the backoff is short here) is tried again
    await retry_now(h)
    await h.harness.deliver(event, correlation_id="o1")  # the event again: nothing new
    await h.run_pushes()
    [push] = await h.pushes(kind="shipment")
    [fulfillment] = double.fulfillments
    assert (push["status"], push["attempts"]) == ("done", 2)
    assert push["channel_reference"] == fulfillment["id"]
    assert len(double.calls_of("fulfillmentCreate")) == 1  # the lost one only
    assert fulfillment["lines"] == [("MUG", 2), ("TEE", 1)]
    assert fulfillment["tracking"] == {
        "company": "dhl",
        "number": "TRK-p1",
        "url": "https://track.example.com/TRK-p1",
    }
    assert fulfillment["notify_customer"] is True
    assert double.remaining(order) == {"MUG": 0, "TEE": 0}

    # Told again by hand (a crash before the commit): harmless.
    again = ShipmentPush(
        "p1", "o1", "1001", "dhl", "TRK-p1", None, NOW, (Quantity("MUG", 2), Quantity("TEE", 1))
    )
    assert await client.push_shipment(again) == fulfillment["id"]
    untracked = ShipmentPush("p1", "o1", "1001", "dhl", "", None, NOW, again.lines)
    assert await client.push_shipment(untracked) is None  # nothing open any more: done
    assert len(double.calls_of("fulfillmentCreate")) == 1


async def test_partial_shipments_in_two_parcels_over_two_fulfillment_orders(
    connector: tuple[ConnectorHarness, ShopifyClient], double: ShopifyDouble
) -> None:
    h, _client = connector
    order = double.add_order(1002, [("MUG", 3), ("TEE", 2)], split=[[("MUG", 3)], [("TEE", 2)]])
    await h.harness.deliver(
        status("o2", "FULFILLING", "1002", {"MUG": 3, "TEE": 2}), correlation_id="o2"
    )
    await h.harness.deliver(shipped("o2", "p1", {"MUG": 2, "TEE": 1}), correlation_id="o2")
    await h.run_pushes()
    assert double.remaining(order) == {"MUG": 1, "TEE": 1}
    await h.harness.deliver(shipped("o2", "p2", {"MUG": 1, "TEE": 1}), correlation_id="o2")
    await h.run_pushes()
    assert double.remaining(order) == {"MUG": 0, "TEE": 0}
    assert [p["status"] for p in await h.pushes(kind="shipment")] == ["done", "done"]
    calls = double.calls_of("fulfillmentCreate")
    assert [len(c.variables["fulfillment"]["lineItemsByFulfillmentOrder"]) for c in calls] == [
        2,
        2,
    ]
    assert [f["lines"] for f in double.fulfillments] == [
        [("MUG", 2), ("TEE", 1)],
        [("MUG", 1), ("TEE", 1)],
    ]
    assert [f["tracking"]["number"] for f in double.fulfillments] == ["TRK-p1", "TRK-p2"]
    fos = double.orders[order].fulfillment_orders
    assert [fo.status for fo in fos] == ["CLOSED", "CLOSED"]


async def test_a_parcel_the_order_cannot_take_is_dead_with_an_alert(
    connector: tuple[ConnectorHarness, ShopifyClient], double: ShopifyDouble
) -> None:
    h, _client = connector
    double.add_order(1003, [("MUG", 1), ("TEE", 1)])
    await h.harness.deliver(
        status("o3", "FULFILLING", "1003", {"MUG": 1, "TEE": 1}), correlation_id="o3"
    )
    await h.harness.deliver(shipped("o3", "p1", {"MUG": 2}), correlation_id="o3")
    await h.run_pushes()
    [push] = await h.pushes(kind="shipment")
    assert push["status"] == "dead" and "MUG" in push["last_error"]
    assert double.fulfillments == []
    [alert] = await h.harness.emitted_contracts("OperatorAlert")
    assert alert.order_id == "o3"


# --- cancellations and refunds ---------------------------------------------------------------


async def test_a_cancelled_order_is_cancelled_on_shopify_once(
    connector: tuple[ConnectorHarness, ShopifyClient], double: ShopifyDouble
) -> None:
    h, _client = connector
    order = double.add_order(1004, [("MUG", 2)])
    await h.harness.deliver(status("o4", "RECEIVED", "1004", {"MUG": 2}), correlation_id="o4")
    await h.harness.deliver(
        status("o4", "CANCELLED", "1004", {"MUG": 2}, reason="customer asked"),
        correlation_id="o4",
    )
    double.fail_next(503, root="orderCancel", after=True)
    await h.run_pushes()
    await retry_now(h)
    [push] = await h.pushes(kind="cancellation")
    assert (push["status"], push["attempts"]) == ("done", 2)
    [cancellation] = double.cancellations
    assert {k: cancellation[k] for k in ("order", "reason", "refund", "restock")} == {
        "order": order,
        "reason": "CUSTOMER",
        "refund": True,
        "restock": False,
    }
    assert "customer asked" in cancellation["staff_note"]
    assert double.orders[order].cancelled_at is not None
    assert len(double.calls_of("orderCancel")) == 1


async def test_refunds_go_back_to_the_payment_once_and_too_much_is_refused(
    connector: tuple[ConnectorHarness, ShopifyClient], double: ShopifyDouble
) -> None:
    h, _client = connector
    order = double.add_order(1005, [("MUG", 2)], paid="59.44")
    await h.harness.deliver(status("o5", "DELIVERED", "1005", {"MUG": 2}), correlation_id="o5")

    def refund(return_id: str, amount: str) -> ChannelRefundRequested:
        return ChannelRefundRequested(
            return_id=return_id,
            order_id="o5",
            channel="shopify",
            amount=Decimal(amount),
            currency="EUR",
            reason="damaged",
            idempotency_key=f"refund-{return_id}",
        )

    await h.harness.deliver(refund("r1", "20.00"), correlation_id="o5")
    await h.run_pushes()
    double.fail_next(502, root="refundCreate", after=True)  # made, answer lost
    await h.harness.deliver(refund("r2", "30.00"), correlation_id="o5")
    await h.run_pushes()
    await retry_now(h)
    refunds = double.orders[order].refunds
    assert [r["amount"] for r in refunds] == [Decimal("20.00"), Decimal("30.00")]
    sale = double.orders[order].transactions[0]
    assert all(r["transactions"] == [(sale.id, r["amount"])] for r in refunds)
    assert len(double.calls_of("refundCreate")) == 2
    pushes = {p["key"]: p for p in await h.pushes(kind="refund")}
    assert (pushes["refund-r2"]["status"], pushes["refund-r2"]["attempts"]) == ("done", 2)
    assert pushes["refund-r2"]["channel_reference"] == refunds[1]["id"]
    sent: dict[str, Any] = double.calls_of("refundCreate")[0].variables["input"]
    assert sent["transactions"] == [
        {
            "orderId": order,
            "kind": "REFUND",
            "parentId": sale.id,
            "gateway": "shopify_payments",
            "amount": "20.00",
        }
    ]

    await h.harness.deliver(refund("r3", "10.00"), correlation_id="o5")  # 9.44 left
    await h.run_pushes()
    pushes = {p["key"]: p for p in await h.pushes(kind="refund")}
    assert pushes["refund-r3"]["status"] == "dead"
    assert "amount" in pushes["refund-r3"]["last_error"]
    assert len(double.calls_of("refundCreate")) == 2
