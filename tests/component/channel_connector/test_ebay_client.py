"""The eBay client against the local eBay double: the refresh-token grant (before expiry and
after a 401), 429 with and without Retry-After, getOrders paging, shipping fulfillments exactly
once (also when the answer to the first was lost), bulk quantities with a per-SKU error,
cancellations and refunds; and, through the connector on real Postgres, events to eBay calls."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.channel_connector.clients.base import (
    CancellationPush,
    RefundPush,
    ShipmentPush,
    StockPush,
    StockRefused,
)
from services.channel_connector.clients.ebay import EbayClient, create
from services.channel_connector.domain import Quantity
from services.channel_connector.http import ChannelApiError
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings
from shared.contracts.common import SkuQuantity
from shared.contracts.fulfilment import FulfilmentShipped
from shared.contracts.inventory import ChannelAvailabilityChanged
from shared.contracts.order_intake import OrderLineSummary, OrderStatusChanged
from tests.support.connector import start_connector
from tests.support.ebay_double import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, EbayDouble
from tests.support.env import Infra
from tests.unit.channels import payloads

pytestmark = pytest.mark.component

ORDER_ID = "12-34567-89012"  # payloads.ebay_order: 3 x MUG-1 (line ...01), 2 x TSHIRT-M (...02)
SHIPPED_AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def double() -> Iterator[EbayDouble]:
    with EbayDouble(token_ttl_s=7200).serving() as running:
        yield running


def ebay_account(
    double: EbayDouble, credentials: dict[str, str] | None = None, **options: str
) -> AccountSettings:
    return AccountSettings.model_validate(
        {
            "name": "ebay-gb",
            "channel": "ebay",
            "api_base": double.base_url,
            "credentials": {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "refresh_token": REFRESH_TOKEN,
            }
            if credentials is None
            else credentials,
            "options": {"marketplace_id": "EBAY_GB", **options},
            "requests_per_second": 50,
            "stock_push_interval_s": 3600,
        }
    )


def settings(**values: Any) -> ChannelConnectorSettings:
    return ChannelConnectorSettings(connector_max_inline_wait_s=2, **values)


@pytest.fixture
async def client(double: EbayDouble) -> AsyncIterator[EbayClient]:
    found = create(ebay_account(double), settings())
    yield found
    await found.aclose()


def parcel(key: str, tracking: str, *lines: tuple[str, int]) -> ShipmentPush:
    return ShipmentPush(
        key=key,
        order_id="o-1",
        external_id=ORDER_ID,
        carrier="royal_mail",
        tracking_number=tracking,
        tracking_url=None,
        shipped_at=SHIPPED_AT,
        lines=tuple(Quantity(sku, quantity) for sku, quantity in lines),
    )


# --- auth ------------------------------------------------------------------------------------


async def test_missing_credentials_are_named(double: EbayDouble) -> None:
    account = ebay_account(double, credentials={"client_id": CLIENT_ID})
    with pytest.raises(ValueError, match="client_secret, refresh_token"):
        create(account, settings())


async def test_the_user_token_is_refreshed_before_it_expires_and_when_ebay_refuses_it(
    client: EbayClient, double: EbayDouble
) -> None:
    double.token_ttl_s = 61  # kept 60 s less than its lifetime: 1 s here
    since = datetime.now(UTC) - timedelta(hours=1)
    await client.poll_orders(since)
    await client.poll_orders(since)
    assert double.tokens_issued == 1
    [grant] = double.calls("POST", "/identity/v1/oauth2/token")
    assert grant.authorization.startswith("Basic ")
    assert "sell.fulfillment" in double.token_scopes[0]
    assert "sell.inventory" in double.token_scopes[0]

    await asyncio.sleep(1.1)
    await client.poll_orders(since)  # expired by its own clock: a new one first, no 401
    assert double.tokens_issued == 2

    double.token_ttl_s = 7200
    await asyncio.sleep(1.1)
    await client.poll_orders(since)
    await client.poll_orders(since)
    assert double.tokens_issued == 3
    double.expire_tokens()  # eBay refuses it early: the 401 fetches a new one, tried once more
    await client.poll_orders(since)
    assert double.tokens_issued == 4
    gets = double.calls("GET", "/sell/fulfillment/v1/order")
    assert len(gets) == 7
    assert all(g.authorization.startswith("Bearer v^1.1#") for g in gets)


async def test_a_refresh_token_ebay_does_not_know_is_a_refusal_for_good(
    double: EbayDouble,
) -> None:
    account = ebay_account(
        double,
        credentials={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": "v^1.1#revoked",
        },
    )
    client = create(account, settings())
    try:
        with pytest.raises(ChannelApiError, match="invalid_grant") as refused:
            await client.poll_orders(datetime.now(UTC))
        assert refused.value.retryable is False
    finally:
        await client.aclose()


# --- throttling and failures -----------------------------------------------------------------


async def test_a_short_retry_after_is_waited_out_and_429_without_one_backs_off(
    client: EbayClient, double: EbayDouble
) -> None:
    double.add_order(payloads.ebay_order())
    since = datetime.now(UTC) - timedelta(hours=1)
    double.fail_next("/sell/fulfillment/v1/order", 429, retry_after=1)
    started = time.monotonic()
    [polled] = await client.poll_orders(since)
    assert polled.external_id == ORDER_ID
    assert time.monotonic() - started >= 1.0
    assert len(double.calls("GET", "/sell/fulfillment/v1/order")) == 2

    # eBay usually sends no Retry-After: the connector backs off (a retryable error).
    double.fail_next("/sell/fulfillment/v1/order", 429)
    with pytest.raises(ChannelApiError) as throttled:
        await client.poll_orders(since)
    assert (throttled.value.status, throttled.value.retryable) == (429, True)
    assert throttled.value.retry_after_s is None
    double.fail_next("/sell/fulfillment/v1/order", 500)
    with pytest.raises(ChannelApiError) as failed:
        await client.poll_orders(since)
    assert (failed.value.status, failed.value.retryable) == (500, True)
    assert "2003" in str(failed.value)


# --- polling ---------------------------------------------------------------------------------


async def test_polling_reads_every_page_of_the_orders_changed_since(double: EbayDouble) -> None:
    client = create(ebay_account(double, page_size="2"), settings())
    try:
        long_ago = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        double.add_order(payloads.ebay_order("11-00000-00000"), modified=long_ago)
        for n in range(1, 6):
            double.add_order(payloads.ebay_order(f"11-00000-0000{n}"))
        polled = await client.poll_orders(datetime.now(UTC) - timedelta(hours=1))
    finally:
        await client.aclose()
    assert sorted(p.external_id for p in polled) == [f"11-00000-0000{n}" for n in range(1, 6)]
    pages = double.calls("GET", "/sell/fulfillment/v1/order")
    assert [p.query.get("offset") for p in pages] == [["0"], ["2"], ["4"]]
    assert all(p.query["filter"][0].startswith("lastmodifieddate:[") for p in pages)
    first = next(p for p in polled if p.external_id == "11-00000-00001")
    stored = double.orders["11-00000-00001"]
    assert first.updated_at == datetime.fromisoformat(stored["lastModifiedDate"])
    payload = json.loads(first.payload)
    assert payload["lineItems"] == stored["lineItems"]
    assert payload["pricingSummary"] == stored["pricingSummary"]


# --- shipments -------------------------------------------------------------------------------


async def test_a_parcel_becomes_one_shipping_fulfillment_of_the_open_lines(
    client: EbayClient, double: EbayDouble
) -> None:
    double.add_order(payloads.ebay_order())
    first = await client.push_shipment(parcel("p1", "JD0146000038", ("MUG-1", 2), ("TSHIRT-M", 2)))
    second = await client.push_shipment(parcel("p2", "JD0146000039", ("MUG-1", 1)))
    [f1, f2] = double.fulfillments_of(ORDER_ID)
    assert (first, second) == (f1.id, f2.id)
    assert f1.lines == [("10000000001", 2), ("10000000002", 2)]
    assert f2.lines == [("10000000001", 1)]
    assert (f1.carrier, f1.tracking_number) == ("RoyalMail", "JD0146000038")
    assert double.fulfillment_posts[0].body["shippedDate"] == "2026-12-01T09:30:00.000Z"
    assert double.orders[ORDER_ID]["orderFulfillmentStatus"] == "FULFILLED"

    # Nothing of MUG-1 is open any more: refused before anything is sent.
    with pytest.raises(ValueError, match="MUG-1"):
        await client.push_shipment(parcel("p3", "JD0146000040", ("MUG-1", 1)))
    assert len(double.fulfillment_posts) == 2


async def test_a_parcel_whose_answer_was_lost_is_not_fulfilled_twice(
    client: EbayClient, double: EbayDouble
) -> None:
    double.add_order(payloads.ebay_order())
    double.fail_next("/shipping_fulfillment", 500, method="POST", after_processing=True)
    shipment = parcel("p1", "JD0146000038", ("MUG-1", 3))
    with pytest.raises(ChannelApiError) as lost:
        await client.push_shipment(shipment)
    assert lost.value.retryable is True
    again = await client.push_shipment(shipment)
    [fulfillment] = double.fulfillments_of(ORDER_ID)
    assert again == fulfillment.id
    assert len(double.fulfillment_posts) == 1


# --- stock -----------------------------------------------------------------------------------


async def test_bulk_quantities_go_25_a_call_and_a_sku_ebay_refuses_is_reported(
    client: EbayClient, double: EbayDouble
) -> None:
    skus = [f"SKU-{n:02d}" for n in range(30)]
    for sku in skus:
        double.add_inventory_item(sku, 1)
    await client.push_stock([StockPush(sku, n) for n, sku in enumerate(skus)])
    assert [len(p.body["requests"]) for p in double.stock_posts] == [25, 5]
    assert double.quantities["SKU-29"] == 29

    with pytest.raises(StockRefused, match="NO-SUCH-SKU: 25702") as refused:
        await client.push_stock(
            [StockPush("SKU-00", 7), StockPush("NO-SUCH-SKU", 3), StockPush("SKU-01", 0)]
        )
    assert list(refused.value.refused) == ["NO-SUCH-SKU"] and not refused.value.retryable
    assert (double.quantities["SKU-00"], double.quantities["SKU-01"]) == (7, 0)
    assert "NO-SUCH-SKU" not in double.quantities


# --- cancellations and refunds ---------------------------------------------------------------


async def test_a_cancellation_is_made_once_through_the_post_order_api(
    client: EbayClient, double: EbayDouble
) -> None:
    double.add_order(payloads.ebay_order())
    cancellation = CancellationPush(
        key="o-1",
        order_id="o-1",
        external_id=ORDER_ID,
        reason="out of stock",
        lines=(Quantity("MUG-1", 3),),
    )
    cancel_id = await client.cancel_order(cancellation)
    assert cancel_id is not None and cancel_id.isdigit()
    assert double.orders[ORDER_ID]["cancelStatus"]["cancelState"] == "CANCELED"
    [posted] = double.calls("POST", "/post-order/v2/cancellation")
    assert posted.authorization.startswith("IAF v^1.1#")
    assert posted.body == {
        "legacyOrderId": "110123456789-27123456789",
        "cancelReason": "OUT_OF_STOCK_OR_CANNOT_FULFILL",
        "buyerPaid": True,
        "buyerPaidDate": {"value": "2024-07-10T10:31:00.000Z"},
    }
    assert await client.cancel_order(cancellation) == "cancelled"  # sent again: done already
    assert len(double.calls("POST", "/post-order/v2/cancellation")) == 1

    shipped = payloads.ebay_order("12-34567-00002")
    shipped["legacyOrderId"] = "110123456789-27123450002"
    double.add_order(shipped)
    await client.push_shipment(
        ShipmentPush(
            **{**parcel("p9", "JD9", ("MUG-1", 1)).__dict__, "external_id": shipped["orderId"]}
        )
    )
    with pytest.raises(ChannelApiError, match=r"ITEM_SHIPPED|did not cancel") as refused:
        await client.cancel_order(
            CancellationPush("o-2", "o-2", shipped["orderId"], "out of stock", ())
        )
    assert refused.value.retryable is False


async def test_a_refund_is_issued_once_and_more_than_is_left_is_refused(
    client: EbayClient, double: EbayDouble
) -> None:
    double.add_order(payloads.ebay_order())
    refund = RefundPush(
        key="refund-r1",
        order_id="o-1",
        external_id=ORDER_ID,
        return_id="r1",
        amount=Decimal("13.49"),
        currency="GBP",
        reason="damaged",
    )
    refund_id = await client.refund_order(refund)
    [issued] = double.orders[ORDER_ID]["paymentSummary"]["refunds"]
    assert refund_id == issued["refundId"]
    assert issued["amount"] == {"value": "13.49", "currency": "GBP"}
    [posted] = double.calls("POST", "/issue_refund")
    assert posted.body["reasonForRefund"] == "BUYER_RETURN"
    assert posted.body["orderLevelRefundAmount"] == {"value": "13.49", "currency": "GBP"}

    assert await client.refund_order(refund) == refund_id  # its answer lost: not paid twice
    assert len(double.calls("POST", "/issue_refund")) == 1

    too_much = RefundPush("refund-r2", "o-1", ORDER_ID, "r2", Decimal("60.00"), "GBP", "damaged")
    with pytest.raises(ChannelApiError, match="34905") as refused:
        await client.refund_order(too_much)
    assert (refused.value.status, refused.value.retryable) == (400, False)


# --- through the connector -------------------------------------------------------------------


def ebay_status(order_id: str, state: str) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order_id,
        channel="ebay",
        status=state,
        currency="GBP",
        total=Decimal("61.47"),
        lines=(
            OrderLineSummary(
                line_id="l1",
                sku="MUG-1",
                quantity=3,
                unit_price=Decimal("9.99"),
                line_total=Decimal("29.99"),
            ),
            OrderLineSummary(
                line_id="l2",
                sku="TSHIRT-M",
                quantity=2,
                unit_price=Decimal("13.49"),
                line_total=Decimal("26.98"),
            ),
        ),
        at=SHIPPED_AT,
        external_id=ORDER_ID,
    )


def shipped(parcel_id: str, tracking: str, *lines: tuple[str, int]) -> FulfilmentShipped:
    return FulfilmentShipped(
        order_id="o-1",
        fulfilment_id="o-1-f1",
        location="main",
        lines=tuple(SkuQuantity(sku=sku, quantity=quantity) for sku, quantity in lines),
        carrier="royal_mail",
        tracking_number=tracking,
        shipped_at=SHIPPED_AT,
        shipment_id=parcel_id,
        fulfilment_complete=False,
    )


async def test_through_the_connector_each_parcel_is_one_fulfillment_even_after_a_lost_answer(
    infra: Infra, double: EbayDouble
) -> None:
    double.add_order(payloads.ebay_order())
    double.add_inventory_item("MUG-1", 0)
    account = ebay_account(double)
    client = create(account, settings())
    async with start_connector(infra, [(account, client)]) as h:
        await h.harness.deliver(ebay_status("o-1", "FULFILLING"), correlation_id="o-1")
        await h.harness.deliver(
            shipped("p1", "JD0146000038", ("MUG-1", 2), ("TSHIRT-M", 2)), correlation_id="o-1"
        )
        double.fail_next("/shipping_fulfillment", 503, method="POST", after_processing=True)
        await h.run_pushes()  # the first answer lost: tried again after a backoff
        await h.harness.pool.execute("UPDATE pushes SET next_attempt_at = now()")
        await h.run_pushes()
        [push] = await h.pushes(kind="shipment")
        assert (push["status"], push["attempts"]) == ("done", 2)
        await h.harness.deliver(shipped("p2", "JD0146000039", ("MUG-1", 1)), correlation_id="o-1")
        double.fail_next("/shipping_fulfillment", 429, method="POST")  # no Retry-After: backoff
        await h.run_pushes()
        await h.harness.pool.execute("UPDATE pushes SET next_attempt_at = now()")
        await h.run_pushes()
        [throttled] = await h.pushes(kind="shipment", key="p2")
        assert (throttled["status"], throttled["attempts"]) == ("done", 2)

        fulfillments = double.fulfillments_of(ORDER_ID)
        assert [f.lines for f in fulfillments] == [
            [("10000000001", 2), ("10000000002", 2)],
            [("10000000001", 1)],
        ]
        # p1 posted once (its answer lost, found by its tracking number after); p2 throttled
        # once (refused before eBay acted), then posted.
        assert len(double.fulfillment_posts) == 3
        pushes = await h.pushes(kind="shipment")
        assert [(p["status"], p["channel_reference"]) for p in pushes] == [
            ("done", fulfillments[0].id),
            ("done", fulfillments[1].id),
        ]

        await h.harness.deliver(
            ChannelAvailabilityChanged(
                channel="ebay", sku="MUG-1", available=4, safety_stock=1, warehouse_available=5
            ),
            correlation_id="MUG-1",
        )
        await h.run_stock("ebay-gb")
        assert double.quantities["MUG-1"] == 4
    await client.aclose()
