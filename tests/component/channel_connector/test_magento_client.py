"""The Magento client against the Magento double, over real HTTP: polls by `updated_at` over
every page with exact money, source items, ship calls once on the right order items,
cancellations, offline credit memos once, and the API's errors (401, 429 with Retry-After, 5xx).
One test runs the connector's own poll and push machinery on Postgres with this client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.channel_connector.clients.base import (
    CancellationPush,
    RefundPush,
    ShipmentPush,
    StockPush,
)
from services.channel_connector.clients.magento import MagentoClient, create
from services.channel_connector.domain import Quantity, UnmatchedShipment
from services.channel_connector.http import ChannelApiError
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings
from shared.contracts.common import SkuQuantity
from shared.contracts.fulfilment import FulfilmentShipped
from shared.contracts.order_intake import OrderLineSummary, OrderStatusChanged
from tests.support.connector import start_connector
from tests.support.env import Infra
from tests.support.magento_double import ACCESS_TOKEN, MagentoDouble
from tests.unit.channels.magento_payloads import magento_order

pytestmark = pytest.mark.component

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def double() -> Iterator[MagentoDouble]:
    with MagentoDouble().serving() as served:
        yield served


def account(double: MagentoDouble, token: str = ACCESS_TOKEN, **options: str) -> AccountSettings:
    return AccountSettings.model_validate(
        {
            "name": "mage",
            "channel": "magento",
            "api_base": double.api_base,
            "credentials": {"access_token": token},
            "options": options,
            "first_poll_lookback_s": 3600,
        }
    )


@pytest.fixture
async def client(double: MagentoDouble) -> AsyncIterator[MagentoClient]:
    made = create(account(double), ChannelConnectorSettings(connector_max_inline_wait_s=1.0))
    yield made
    await made.aclose()


def parcel(key: str, *lines: tuple[str, int], order: int = 41) -> ShipmentPush:
    return ShipmentPush(
        key=key,
        order_id="ord_1",
        external_id=str(order),
        carrier="DHL",
        tracking_number=f"JJD-{key}",
        tracking_url=None,
        shipped_at=NOW,
        lines=tuple(Quantity(sku, qty) for sku, qty in lines),
    )


async def test_a_poll_reads_every_page_from_the_time_given_with_exact_money(
    double: MagentoDouble, client: MagentoClient
) -> None:
    for n in range(120):
        double.add_order(
            magento_order(1000 + n, updated_at=f"2026-12-01 11:{n // 60:02d}:{n % 60:02d}"),
            touch=False,
        )
    double.add_order(magento_order(999, updated_at="2026-12-01 10:59:59"), touch=False)
    polled = await client.poll_orders(datetime(2026, 12, 1, 11, 0, 0, 700000, tzinfo=UTC))
    assert [p.external_id for p in polled] == [str(1000 + n) for n in range(120)]
    assert double.order_searches == ["2026-12-01 11:00:00"] * 3
    assert polled[61].updated_at == datetime(2026, 12, 1, 11, 1, 1, tzinfo=UTC)
    payload = polled[0].payload
    assert '"grand_total":98.77' in payload and '"tax_amount":5.51' in payload
    assert json.loads(payload)["increment_id"] == "000001000"


async def test_stock_goes_to_the_source_and_an_unknown_sku_does_not_block_the_others(
    double: MagentoDouble,
) -> None:
    double.skus |= {"MB-01", "WS-TEE-M"}
    made = create(account(double, source_code="berlin"), ChannelConnectorSettings())
    try:
        await made.push_stock([StockPush("MB-01", 7), StockPush("WS-TEE-M", 0)])
        assert double.source_items == {
            "MB-01": ("berlin", Decimal(7), 1),
            "WS-TEE-M": ("berlin", Decimal(0), 0),
        }
        await made.push_stock([StockPush("MB-01", 3), StockPush("GHOST", 2)])
    finally:
        await made.aclose()
    assert double.source_items["MB-01"] == ("berlin", Decimal(3), 1)
    assert "GHOST" not in double.source_items


async def test_parcels_ship_the_open_order_items_once(
    double: MagentoDouble, client: MagentoClient
) -> None:
    double.add_order(magento_order(41))
    first = parcel("p1", ("MB-01", 2), ("WS-TEE-M", 2))
    shipment_id = await client.push_shipment(first)
    assert await client.push_shipment(first) == shipment_id  # found by its tracking number
    [(order, body)] = double.ship_calls
    assert order == 41
    assert body["items"] == [{"order_item_id": 4111, "qty": 2}, {"order_item_id": 4112, "qty": 2}]
    assert body["tracks"] == [{"track_number": "JJD-p1", "title": "DHL", "carrier_code": "dhl"}]
    assert body["arguments"] == {"extension_attributes": {"source_code": "default"}}
    assert body["notify"] is False
    assert double.order(41)["state"] == "processing"

    await client.push_shipment(parcel("p2", ("MB-01", 1)))
    assert double.ship_calls[-1][1]["items"] == [{"order_item_id": 4111, "qty": 1}]
    assert double.order(41)["state"] == "complete"
    assert len(double.ship_calls) == 2
    # Shipped in Magento's admin already: nothing left to ship is success, without a call.
    assert await client.push_shipment(parcel("p3", ("MB-01", 1))) is None
    assert len(double.ship_calls) == 2


async def test_a_parcel_that_does_not_fit_the_order_is_refused(
    double: MagentoDouble, client: MagentoClient
) -> None:
    double.add_order(magento_order(41))
    with pytest.raises(UnmatchedShipment):
        await client.push_shipment(parcel("p1", ("MB-01", 5)))
    assert double.ship_calls == []


async def test_cancellations(double: MagentoDouble, client: MagentoClient) -> None:
    double.add_order(magento_order(41, invoiced=False, state="new"))
    push = CancellationPush("ord_1", "ord_1", "41", "out of stock", (Quantity("MB-01", 3),))
    await client.cancel_order(push)
    await client.cancel_order(push)  # already canceled: success without another call
    assert double.cancel_calls == [41]
    assert double.order(41)["state"] == "canceled"

    double.add_order(magento_order(42))  # invoiced in full: Magento answers false
    with pytest.raises(ChannelApiError, match="credit memo") as refused:
        await client.cancel_order(CancellationPush("o", "o", "42", "x", (Quantity("MB-01", 3),)))
    assert not refused.value.retryable


async def test_a_refund_is_one_offline_credit_memo_of_the_amount(
    double: MagentoDouble, client: MagentoClient
) -> None:
    double.add_order(magento_order(41))
    refund = RefundPush("refund-r1", "ord_1", "41", "r1", Decimal("12.34"), "EUR", "damaged")
    memo = await client.refund_order(refund)
    assert await client.refund_order(refund) == memo
    [(order, body)] = double.refund_calls
    assert order == 41 and body["arguments"]["adjustment_positive"] == "12.34"
    assert {item["qty"] for item in body["items"]} == {0}
    [credit] = double.creditmemos
    assert Decimal(str(credit["grand_total"])) == Decimal("12.34")
    with pytest.raises(ChannelApiError) as refused:
        await client.refund_order(
            RefundPush("refund-r2", "ord_1", "41", "r2", Decimal("90.00"), "EUR", "all")
        )
    assert refused.value.status == 400 and "most money" in str(refused.value)
    with pytest.raises(ChannelApiError, match="in GBP"):
        await client.refund_order(
            RefundPush("refund-r3", "ord_1", "41", "r3", Decimal("1.00"), "GBP", "x")
        )


async def test_the_apis_errors(double: MagentoDouble, client: MagentoClient) -> None:
    double.add_order(magento_order(41))
    wrong = create(account(double, token="expired"), ChannelConnectorSettings())
    try:
        with pytest.raises(ChannelApiError) as refused:
            await wrong.poll_orders(NOW)
    finally:
        await wrong.aclose()
    assert refused.value.status == 401 and not refused.value.retryable
    assert "isn't authorized" in str(refused.value)

    double.fail_next("/V1/orders", 429, retry_after="0")
    assert [p.external_id for p in await client.poll_orders(NOW - timedelta(days=9999))] == ["41"]
    double.fail_next("/V1/orders", 429, retry_after="60")
    with pytest.raises(ChannelApiError) as throttled:
        await client.poll_orders(NOW)
    assert throttled.value.retryable and throttled.value.retry_after_s == 60
    double.fail_next("/ship", 503, method="POST")
    with pytest.raises(ChannelApiError) as failed:
        await client.push_shipment(parcel("p1", ("MB-01", 1)))
    assert failed.value.retryable and failed.value.status == 503
    await client.push_shipment(parcel("p1", ("MB-01", 1)))  # the retry ships it, once
    assert [b["items"] for _, b in double.ship_calls] == [[{"order_item_id": 4111, "qty": 1}]]
    assert double.order(41)["items"][0]["qty_shipped"] == 1
    with pytest.raises(ChannelApiError) as missing:
        await client.push_shipment(parcel("p9", ("MB-01", 1), order=404))
    assert missing.value.status == 404 and not missing.value.retryable


async def test_the_connector_polls_and_ships_through_the_magento_client(
    infra: Infra, double: MagentoDouble
) -> None:
    double.add_order(magento_order(41))
    settings = ChannelConnectorSettings()
    made = create(account(double), settings)
    async with start_connector(infra, [(account(double), made)]) as h:
        assert await h.run_poll("mage") == 1
        assert await h.run_poll("mage") == 0
        [sent] = await h.harness.emitted_contracts("ChannelOrderReceived")
        assert sent.channel == "magento" and json.loads(sent.payload)["entity_id"] == 41
        await h.harness.deliver(
            OrderStatusChanged(
                order_id="o41",
                channel="magento",
                status="FULFILLING",
                currency="EUR",
                total=Decimal("98.77"),
                lines=(
                    OrderLineSummary(
                        line_id="l1", sku="MB-01", quantity=3, unit_price=Decimal("9.66"),
                        line_total=Decimal("29.00"),
                    ),
                ),
                at=NOW,
                external_id="41",
            ),
            correlation_id="o41",
        )  # fmt: skip
        await h.harness.deliver(
            FulfilmentShipped(
                order_id="o41",
                fulfilment_id="f41",
                location="berlin",
                lines=(
                    SkuQuantity(sku="MB-01", quantity=3),
                    SkuQuantity(sku="WS-TEE-M", quantity=2),
                ),
                carrier="ups",
                tracking_number="1Z999",
                shipped_at=NOW,
                shipment_id="s41",
            ),
            correlation_id="o41",
        )
        double.fail_next("/ship", 500, method="POST")
        await h.run_pushes()  # the 500 is retried after the (test's short) backoff
        [push] = await h.pushes(kind="shipment")
        assert (push["status"], push["attempts"]) == ("done", 2)
        assert push["channel_reference"] == str(double.shipments[0]["entity_id"])
    assert [b["items"] for _, b in double.ship_calls] == [
        [{"order_item_id": 4111, "qty": 3}, {"order_item_id": 4112, "qty": 2}]
    ]
    assert double.order(41)["state"] == "complete"
    await made.aclose()
