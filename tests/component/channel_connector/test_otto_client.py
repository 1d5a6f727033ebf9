"""The OTTO Market client against the local OTTO double (real HTTP): OAuth token reuse, expiry
and 401 refresh, 429 backoff, order paging, shipments sent exactly once (a repeat is harmless),
cancellations, stock in batches of 200; and inside the connector: a poll hands OTTO orders to
order-intake, a parcel becomes one OTTO shipment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.channel_connector.clients import client_for
from services.channel_connector.clients.base import (
    CancellationPush,
    Capability,
    NotSupported,
    RefundPush,
    ShipmentPush,
    StockPush,
)
from services.channel_connector.clients.otto import OttoClient
from services.channel_connector.domain import Quantity, UnmatchedShipment
from services.channel_connector.http import ChannelApiError
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings
from services.order_intake.channels.adapters import otto as otto_adapter
from services.order_intake.channels.adapters.base import NewOrder, parse_json
from services.order_intake.domain.order import price
from shared.contracts.common import SkuQuantity
from shared.contracts.fulfilment import FulfilmentShipped
from shared.contracts.order_intake import OrderLineSummary, OrderStatusChanged
from tests.support import otto_double
from tests.support.connector import start_connector
from tests.support.env import Infra
from tests.support.otto_double import OttoDouble
from tests.unit.channels import otto_payloads as payloads

pytestmark = pytest.mark.component

SALES_ORDER = payloads.SALES_ORDER_ID


def account(double: OttoDouble, **changes: Any) -> AccountSettings:
    fields: dict[str, Any] = {
        "name": "otto-de",
        "channel": "otto",
        "api_base": double.base_url,
        "credentials": {
            "client_id": otto_double.CLIENT_ID,
            "client_secret": otto_double.CLIENT_SECRET,
        },
        "options": {
            "ship_from_city": "Hamburg",
            "ship_from_zip_code": "22179",
            "carriers": "dhl-express=DHL_EXPRESS",
        },
        "requests_per_second": 200,
        "first_poll_lookback_s": 30 * 86400,
    }
    fields.update(changes)
    return AccountSettings(**fields)


def settings(**changes: Any) -> ChannelConnectorSettings:
    return ChannelConnectorSettings(connector_http_timeout_s=5, **changes)


@pytest.fixture
def double() -> Iterator[OttoDouble]:
    with OttoDouble().serving() as served:
        yield served


@pytest.fixture
async def client(double: OttoDouble) -> AsyncIterator[OttoClient]:
    found = client_for(account(double), settings())
    assert isinstance(found, OttoClient)
    yield found
    await found.aclose()


def an_order(
    sales_order_id: str = SALES_ORDER, *, minutes_ago: float = 10, **changes: Any
) -> dict[str, Any]:
    changed = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return payloads.order(
        sales_order_id,
        last_modified=changed.isoformat(timespec="milliseconds"),
        **changes,
    )


def parcel(
    key: str,
    lines: list[tuple[str, int]],
    *,
    tracking: str = "00340434161094042557",
    earlier: Sequence[tuple[str, int]] = (),
    carrier: str = "dhl",
) -> ShipmentPush:
    return ShipmentPush(
        key=key,
        order_id="ord_1",
        external_id=SALES_ORDER,
        carrier=carrier,
        tracking_number=tracking,
        tracking_url=None,
        shipped_at=datetime(2026, 12, 2, 9, 30, tzinfo=UTC),
        lines=tuple(Quantity(sku, n) for sku, n in lines),
        earlier=tuple(Quantity(sku, n) for sku, n in earlier),
    )


def ids_of(double: OttoDouble, sku: str) -> list[str]:
    order = double.orders[SALES_ORDER]
    return [i["positionItemId"] for i in order["positionItems"] if i["product"]["sku"] == sku]


# --- tokens ----------------------------------------------------------------------------------


async def test_the_token_is_reused_and_fetched_again_shortly_before_it_expires():
    with OttoDouble(token_ttl_s=61).serving() as double:  # 61 s less the 60 s margin: 1 s
        client = client_for(account(double), settings())
        try:
            await client.poll_orders(datetime.now(UTC) - timedelta(days=1))
            await client.poll_orders(datetime.now(UTC) - timedelta(days=1))
            assert double.tokens_issued == 1
            await asyncio.sleep(1.2)
            await client.poll_orders(datetime.now(UTC) - timedelta(days=1))
            assert double.tokens_issued == 2
            assert len(double.calls("GET", "/v4/orders")) == 3, "no call was refused"
            assert double.token_requests[0] == {
                "grant_type": "client_credentials",
                "client_id": otto_double.CLIENT_ID,
                "scope": "orders shipments availability",
            }
        finally:
            await client.aclose()


async def test_a_token_refused_with_401_is_fetched_again_and_the_call_repeated(
    double: OttoDouble, client: OttoClient
):
    double.add_order(an_order())
    assert len(await client.poll_orders(datetime.now(UTC) - timedelta(days=1))) == 1
    double.expire_tokens()
    assert len(await client.poll_orders(datetime.now(UTC) - timedelta(days=1))) == 1
    assert double.tokens_issued == 2
    assert len(double.calls("GET", "/v4/orders")) == 3  # the refused one, then its repeat


async def test_wrong_credentials_fail_for_good(double: OttoDouble):
    wrong = account(double, credentials={"client_id": "x", "client_secret": "nope"})
    client = client_for(wrong, settings())
    try:
        with pytest.raises(ChannelApiError) as failed:
            await client.poll_orders(datetime.now(UTC))
        assert failed.value.retryable is False and failed.value.status == 401
    finally:
        await client.aclose()


async def test_the_older_password_grant_works_with_username_and_password(double: OttoDouble):
    older = account(
        double,
        credentials={"username": otto_double.USERNAME, "password": otto_double.PASSWORD},
    )
    client = client_for(older, settings())
    try:
        await client.poll_orders(datetime.now(UTC))
        assert double.token_requests[0]["grant_type"] == "password"
        assert double.token_requests[0]["client_id"] == "token-otto-api"
    finally:
        await client.aclose()


def test_missing_settings_are_refused_naming_them(double: OttoDouble):
    with pytest.raises(ValueError, match=r"credentials\.client_id and credentials\.client_secret"):
        client_for(account(double, credentials={"client_id": "only"}), settings())
    with pytest.raises(ValueError, match=r"options\.ship_from_city"):
        client_for(account(double, options={}), settings())
    stock_only = client_for(account(double, options={}, push_shipments=False), settings())
    assert Capability.STOCK in stock_only.capabilities


# --- throttling and failures -----------------------------------------------------------------


async def test_a_429_with_a_short_retry_after_is_waited_out(double: OttoDouble, client: OttoClient):
    double.add_order(an_order())
    double.fail_next("/v4/orders", 429, method="GET", retry_after=1)
    started = time.monotonic()
    polled = await client.poll_orders(datetime.now(UTC) - timedelta(days=1))
    assert [p.external_id for p in polled] == [SALES_ORDER]
    assert time.monotonic() - started >= 1.0
    assert len(double.calls("GET", "/v4/orders")) == 2


async def test_a_429_with_a_long_retry_after_is_left_to_the_push_backoff(
    double: OttoDouble, client: OttoClient
):
    double.fail_next("/v1/availability", 429, retry_after=120)
    with pytest.raises(ChannelApiError) as throttled:
        await client.push_stock([StockPush("MUG-1", 3)])
    assert throttled.value.retryable is True and throttled.value.retry_after_s == 120
    double.fail_next("/v1/availability", 503)
    with pytest.raises(ChannelApiError) as unavailable:
        await client.push_stock([StockPush("MUG-1", 3)])
    assert unavailable.value.retryable is True and unavailable.value.status == 503
    await client.push_stock([StockPush("MUG-1", 3)])
    assert double.quantities == {"MUG-1": 3}


# --- polling ---------------------------------------------------------------------------------


async def test_polling_follows_the_next_links_over_every_page(
    double: OttoDouble, client: OttoClient
):
    base = (datetime.now(UTC) - timedelta(hours=5)).replace(microsecond=0)
    for n in range(300):
        changed = (base + timedelta(seconds=n)).isoformat(timespec="milliseconds")
        items = payloads.items_of(f"so-{n:04d}", [("MUG-1", 1, "19.99")])
        double.add_order(payloads.order(f"so-{n:04d}", items=items, last_modified=changed))
    double.add_order(an_order("so-old", minutes_ago=60 * 24 * 3))
    polled = await client.poll_orders(base - timedelta(seconds=1))
    assert [p.external_id for p in polled] == [f"so-{n:04d}" for n in range(300)]
    assert [p.updated_at for p in polled][:2] == [base, base + timedelta(seconds=1)]
    pages = double.calls("GET", "/v4/orders")
    assert len(pages) == 3  # 128 + 128 + 44
    assert pages[0][2]["limit"] == "128" and "fromDate" in pages[0][2]
    assert set(pages[1][2]) == {"nextcursor"}


async def test_a_polled_order_is_handed_on_exactly_as_otto_priced_it(
    double: OttoDouble, client: OttoClient
):
    double.add_order(an_order())
    [polled] = await client.poll_orders(datetime.now(UTC) - timedelta(days=1))
    assert '"amount":19.99' in polled.payload and '"amount":4.95' in polled.payload
    result = otto_adapter.parse(parse_json(polled.payload), {})
    assert isinstance(result, NewOrder)
    assert str(price(result.order).total) == "117.89"


# --- shipments -------------------------------------------------------------------------------


async def test_a_parcel_becomes_one_otto_shipment_and_a_repeat_sends_nothing(
    double: OttoDouble, client: OttoClient
):
    double.add_order(an_order())
    first = parcel("parcel-1", [("MUG-1", 2), ("TEE-M", 1)], carrier="dhl-express")
    reference = await client.push_shipment(first)
    [shipment] = double.shipments
    assert reference == shipment.shipment_id
    assert (shipment.carrier, shipment.tracking_number) == ("DHL_EXPRESS", "00340434161094042557")
    assert shipment.ship_date == "2026-12-02T09:30:00.000Z"
    assert shipment.ship_from == {"city": "Hamburg", "zipCode": "22179", "countryCode": "DEU"}
    mugs, tees = ids_of(double, "MUG-1"), ids_of(double, "TEE-M")
    assert [p["positionItemId"] for p in shipment.position_items] == [*mugs, tees[0]]
    assert {p["salesOrderId"] for p in shipment.position_items} == {SALES_ORDER}

    # The same parcel again (the connector crashed before recording its success): harmless.
    assert await client.push_shipment(first) is None
    assert len(double.calls("POST", "/v1/shipments")) == 1
    assert len(double.shipments) == 1

    # The next parcel takes the shirts still open.
    second = parcel(
        "parcel-2", [("TEE-M", 2)], tracking="JJD000390007", earlier=[("MUG-1", 2), ("TEE-M", 1)]
    )
    await client.push_shipment(second)
    assert [p["positionItemId"] for p in double.shipments[1].position_items] == tees[1:]
    assert double.statuses(SALES_ORDER)[tees[2]] == "SENT"
    assert await client.push_shipment(second) is None
    assert len(double.calls("POST", "/v1/shipments")) == 2


async def test_a_conflict_looks_at_the_order_again(double: OttoDouble, client: OttoClient):
    double.add_order(an_order())
    double.fail_next("/v1/shipments", 409, method="POST")
    await client.push_shipment(parcel("parcel-1", [("BOOK-1", 1)], carrier="ups"))
    assert len(double.calls("POST", "/v1/shipments")) == 2
    assert [s.carrier for s in double.shipments] == ["UPS"]


async def test_a_parcel_otto_has_in_part_is_completed_under_its_tracking_number(
    double: OttoDouble, client: OttoClient
):
    double.add_order(an_order())
    await client.push_shipment(parcel("parcel-1", [("TEE-M", 1)], tracking="T-1"))
    # The same tracking number now carries two shirts (the parcel was corrected in the OMS).
    await client.push_shipment(parcel("parcel-1b", [("TEE-M", 2)], tracking="T-1"))
    [shipment] = double.shipments
    assert [p["positionItemId"] for p in shipment.position_items] == ids_of(double, "TEE-M")[:2]
    assert len(double.calls("POST", "/positionitems")) == 1


async def test_more_units_than_otto_has_open_are_refused(double: OttoDouble, client: OttoClient):
    double.add_order(an_order())
    with pytest.raises(UnmatchedShipment):
        await client.push_shipment(parcel("parcel-1", [("MUG-1", 3)]))
    assert double.shipments == []


# --- cancellations and refunds ---------------------------------------------------------------


async def test_a_cancellation_cancels_the_processable_units_once(
    double: OttoDouble, client: OttoClient
):
    double.add_order(an_order())
    tees = ids_of(double, "TEE-M")
    await client.push_shipment(parcel("parcel-1", [("TEE-M", 1)]))
    cancellation = CancellationPush(
        key="ord_1",
        order_id="ord_1",
        external_id=SALES_ORDER,
        reason="customer asked",
        lines=(Quantity("TEE-M", 2), Quantity("MUG-1", 2)),
    )
    assert await client.cancel_order(cancellation) is None
    statuses = double.statuses(SALES_ORDER)
    assert [statuses[i] for i in tees] == ["SENT", "CANCELLED_BY_PARTNER", "CANCELLED_BY_PARTNER"]
    assert all(statuses[i] == "CANCELLED_BY_PARTNER" for i in ids_of(double, "MUG-1"))
    assert statuses[ids_of(double, "BOOK-1")[0]] == "PROCESSABLE"
    await client.cancel_order(cancellation)  # a repeat: already cancelled, nothing sent
    assert len(double.calls("POST", "/cancellation")) == 1

    sent_too = CancellationPush("k2", "ord_1", SALES_ORDER, "late", (Quantity("TEE-M", 3),))
    with pytest.raises(ChannelApiError) as refused:
        await client.cancel_order(sent_too)
    assert refused.value.retryable is False and "1 x TEE-M" in str(refused.value)


async def test_refunds_are_otto_s_own(client: OttoClient):
    assert Capability.REFUNDS not in client.capabilities
    with pytest.raises(NotSupported):
        await client.refund_order(
            RefundPush("r1", "ord_1", SALES_ORDER, "ret-1", Decimal("9.99"), "EUR", "damaged")
        )


# --- stock -----------------------------------------------------------------------------------


async def test_stock_goes_in_batches_of_200_and_unknown_skus_are_not_retried(
    double: OttoDouble, client: OttoClient
):
    assert client.stock_batch_size == 200
    levels = [StockPush(f"SKU-{n:03d}", n % 7) for n in range(450)]
    await client.push_stock(levels)
    assert [len(batch) for batch in double.stock_requests] == [200, 200, 50]
    assert double.quantities["SKU-449"] == 449 % 7 and len(double.quantities) == 450
    double.known_skus = {"SKU-001"}
    await client.push_stock([StockPush("SKU-001", 40), StockPush("NOT-ON-OTTO", 5)])
    assert double.quantities["SKU-001"] == 40 and "NOT-ON-OTTO" not in double.quantities


# --- inside the connector --------------------------------------------------------------------


async def test_the_connector_polls_otto_and_pushes_a_parcel_once(infra: Infra, double: OttoDouble):
    double.add_order(an_order())
    settings_ = account(double)
    client = client_for(settings_, settings())
    try:
        async with start_connector(infra, [(settings_, client)]) as h:
            assert await h.run_poll("otto-de") == 1
            assert await h.run_poll("otto-de") == 0  # seen again in the overlap: not twice
            [received] = await h.harness.emitted_contracts("ChannelOrderReceived")
            assert received.channel == "otto"
            result = otto_adapter.parse(parse_json(received.payload), {})
            assert isinstance(result, NewOrder) and result.external_id == SALES_ORDER

            status = OrderStatusChanged(
                order_id="ord_otto_1",
                channel="otto",
                status="FULFILLING",
                currency="EUR",
                total=price(result.order).total,
                lines=tuple(
                    OrderLineSummary(
                        line_id=f"l{n}",
                        sku=line.sku,
                        quantity=line.quantity,
                        unit_price=line.unit_price,
                        line_total=line.unit_price * line.quantity,
                    )
                    for n, line in enumerate(result.order.lines, start=1)
                ),
                at=datetime.now(UTC),
                external_id=SALES_ORDER,
            )
            await h.harness.deliver(status, correlation_id="ord_otto_1")
            shipped = FulfilmentShipped(
                order_id="ord_otto_1",
                fulfilment_id="ful_1",
                location="main",
                lines=(SkuQuantity(sku="MUG-1", quantity=2), SkuQuantity(sku="BOOK-1", quantity=1)),
                carrier="dhl",
                tracking_number="00340434161094042557",
                shipped_at=datetime.now(UTC),
                shipment_id="shp_1",
            )
            await h.harness.deliver(shipped, correlation_id="ord_otto_1")
            await h.harness.deliver(shipped, correlation_id="ord_otto_1")
            await h.run_pushes()
            await h.run_pushes()
            [shipment] = double.shipments
            assert sorted(p["positionItemId"] for p in shipment.position_items) == sorted(
                ids_of(double, "MUG-1") + ids_of(double, "BOOK-1")
            )
            [push] = await h.pushes(kind="shipment")
            assert push["status"] == "done" and push["channel_reference"] == shipment.shipment_id
            # The order changed on OTTO (items sent): the next poll hands the new version on.
            assert await h.run_poll("otto-de") == 1
    finally:
        await client.aclose()
