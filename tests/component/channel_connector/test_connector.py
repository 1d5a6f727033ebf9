"""The connector's own machinery on real Postgres, with a recording client: events become
pushes once, stock is coalesced, failures are retried then dead with an alert, polls hand each
order version on once and keep their cursor across a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.channel_connector.clients.base import Capability, StockRefused
from services.channel_connector.domain import PolledOrder
from services.channel_connector.http import ChannelApiError
from services.channel_connector.settings import AccountSettings
from shared.contracts.common import SkuQuantity
from shared.contracts.fulfilment import FulfilmentShipped
from shared.contracts.inventory import ChannelAvailabilityChanged
from shared.contracts.order_intake import OrderLineSummary, OrderStatusChanged
from shared.contracts.returns import ChannelRefundRequested
from shared.envelope import Envelope
from tests.support.connector import ConnectorHarness, RecordingClient, start_connector
from tests.support.env import Infra

pytestmark = pytest.mark.component

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def connector(infra: Infra) -> AsyncIterator[tuple[ConnectorHarness, RecordingClient]]:
    client = RecordingClient(channel="shopify")
    account = AccountSettings(name="shop", channel="shopify", stock_push_interval_s=3600)
    async with start_connector(
        infra, [(account, client)], connector_retry_initial_s=30, connector_retry_max_s=60
    ) as found:
        yield found, client


def status(
    order_id: str, state: str, *, external_id: str = "1001", shipped=()
) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order_id,
        channel="shopify",
        status=state,
        currency="EUR",
        total=Decimal("30.00"),
        lines=(
            OrderLineSummary(
                line_id="l1", sku="MUG", quantity=3, unit_price=Decimal(10), line_total=Decimal(30)
            ),
        ),
        at=NOW,
        external_id=external_id,
        shipped=tuple(shipped),
    )


def shipped(order_id: str, parcel: str, quantity: int) -> FulfilmentShipped:
    return FulfilmentShipped(
        order_id=order_id,
        fulfilment_id=f"{order_id}-f1",
        location="main",
        lines=(SkuQuantity(sku="MUG", quantity=quantity),),
        carrier="dhl",
        tracking_number=f"TRK-{parcel}",
        shipped_at=NOW,
        shipment_id=parcel,
    )


async def test_a_shipment_is_pushed_once_with_its_lines_even_when_redelivered(
    connector: tuple[ConnectorHarness, RecordingClient],
) -> None:
    h, client = connector
    await h.harness.deliver(status("o1", "RECEIVED"), correlation_id="o1")
    first = await h.harness.deliver(shipped("o1", "p1", 2), correlation_id="o1")
    await h.harness.deliver(shipped("o1", "p1", 2), correlation_id="o1", envelope=first)
    await h.harness.deliver(shipped("o1", "p1", 2), correlation_id="o1")  # re-sent: new envelope
    await h.run_pushes()
    await h.harness.deliver(shipped("o1", "p2", 1), correlation_id="o1")
    await h.run_pushes()
    assert [s.key for s in client.shipments] == ["p1", "p2"]
    assert client.shipments[0].external_id == "1001"
    assert [(q.sku, q.quantity) for q in client.shipments[0].lines] == [("MUG", 2)]
    assert [(q.sku, q.quantity) for q in client.shipments[1].earlier] == [("MUG", 2)]
    assert [p["status"] for p in await h.pushes(kind="shipment")] == ["done", "done"]


async def test_a_shipment_before_its_order_is_known_waits_for_it(
    connector: tuple[ConnectorHarness, RecordingClient],
) -> None:
    h, client = connector
    await h.harness.deliver(shipped("o2", "p9", 3), correlation_id="o2")
    await h.run_pushes()
    assert client.shipments == []
    await h.harness.deliver(status("o2", "FULFILLING", external_id="2002"), correlation_id="o2")
    await h.run_pushes()
    assert [(s.key, s.external_id) for s in client.shipments] == [("p9", "2002")]


async def test_native_orders_are_not_the_connectors(
    connector: tuple[ConnectorHarness, RecordingClient],
) -> None:
    h, _client = connector
    native = status("o3", "RECEIVED").model_copy(update={"channel": "web", "external_id": None})
    await h.harness.deliver(native, correlation_id="o3")
    assert await h.harness.fetch("SELECT * FROM channel_orders") == []


async def test_cancelled_orders_cancel_what_did_not_ship_and_refunds_go_to_the_channel(
    connector: tuple[ConnectorHarness, RecordingClient],
) -> None:
    h, client = connector
    await h.harness.deliver(status("o4", "RECEIVED"), correlation_id="o4")
    cancelled = status("o4", "CANCELLED", shipped=[SkuQuantity(sku="MUG", quantity=1)])
    await h.harness.deliver(cancelled, correlation_id="o4")
    await h.harness.deliver(cancelled, correlation_id="o4")
    refund = ChannelRefundRequested(
        return_id="r1",
        order_id="o4",
        channel="shopify",
        amount=Decimal("10.00"),
        currency="EUR",
        reason="damaged",
        idempotency_key="refund-r1",
    )
    await h.harness.deliver(refund, correlation_id="o4")
    await h.harness.deliver(refund, correlation_id="o4")
    await h.run_pushes()
    assert [
        (c.external_id, [(q.sku, q.quantity) for q in c.lines]) for c in client.cancellations
    ] == [("1001", [("MUG", 2)])]
    assert [(r.amount, r.return_id) for r in client.refunds] == [(Decimal("10.00"), "r1")]


async def test_failed_pushes_are_retried_then_dead_with_an_operator_alert(
    connector: tuple[ConnectorHarness, RecordingClient],
) -> None:
    h, client = connector
    await h.harness.deliver(status("o5", "RECEIVED"), correlation_id="o5")
    await h.harness.deliver(shipped("o5", "p5", 1), correlation_id="o5")
    client.failures = [ChannelApiError("throttled", retryable=True, status=429, retry_after_s=0)]
    await h.run_pushes()
    [push] = await h.pushes(kind="shipment")
    assert (push["status"], push["attempts"]) == ("pending", 1)
    await h.harness.pool.execute("UPDATE pushes SET next_attempt_at = now()")
    await h.run_pushes()
    assert [s.key for s in client.shipments] == ["p5"]

    await h.harness.deliver(shipped("o5", "p6", 1), correlation_id="o5")
    client.failures = [ChannelApiError("the order does not exist", retryable=False, status=404)]
    await h.run_pushes()
    [dead] = await h.pushes(kind="shipment", key="p6")
    assert dead["status"] == "dead" and "does not exist" in dead["last_error"]
    [alert] = await h.harness.emitted_contracts("OperatorAlert")
    assert alert.order_id == "o5" and alert.kind == "channel_push_failed"

    async with h.harness.http("operator") as api:
        retried = await api.post(f"/v1/connectors/pushes/{dead['push_id']}/retry")
        assert retried.status_code == 200, retried.text
        again = await api.post(f"/v1/connectors/pushes/{dead['push_id']}/retry")
        assert again.status_code == 409
    await h.run_pushes()
    assert [s.key for s in client.shipments] == ["p5", "p6"]


async def test_stock_changes_are_coalesced_and_the_last_value_wins(
    connector: tuple[ConnectorHarness, RecordingClient],
) -> None:
    h, client = connector
    for quantity in range(100, 0, -1):
        await h.harness.deliver(
            ChannelAvailabilityChanged(
                channel="shopify",
                sku="MUG",
                available=quantity,
                safety_stock=0,
                warehouse_available=quantity,
            ),
            correlation_id="MUG",
        )
        if quantity == 60:
            await h.run_stock("shop")
    await h.run_stock("shop")  # within the interval: nothing goes
    assert [[(s.sku, s.quantity) for s in batch] for batch in client.stock] == [[("MUG", 60)]]
    await h.harness.pool.execute("UPDATE stock_levels SET not_before = now()")
    await h.run_stock("shop")
    assert [[(s.sku, s.quantity) for s in batch] for batch in client.stock] == [
        [("MUG", 60)],
        [("MUG", 1)],
    ]
    # Other channels' availability is not this account's.
    await h.harness.deliver(
        ChannelAvailabilityChanged(
            channel="ebay", sku="MUG", available=7, safety_stock=0, warehouse_available=7
        ),
        correlation_id="MUG",
    )
    assert [r["quantity"] for r in await h.harness.fetch("SELECT quantity FROM stock_levels")] == [
        1
    ]


async def test_polls_hand_each_order_version_on_once_and_the_cursor_survives_a_restart(
    infra: Infra,
) -> None:
    client = RecordingClient(channel="amazon")
    account = AccountSettings(name="amzn", channel="amazon", first_poll_lookback_s=10 * 86400)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    client.orders = [
        PolledOrder("A-1", t0, '{"AmazonOrderId": "A-1"}'),
        PolledOrder("A-2", t0 + timedelta(minutes=5), '{"AmazonOrderId": "A-2"}'),
    ]
    async with start_connector(infra, [(account, client)]) as h:
        assert await h.run_poll("amzn") == 2
        assert await h.run_poll("amzn") == 0  # the overlap sees them again: not handed on twice
        client.orders.append(
            PolledOrder("A-1", t0 + timedelta(minutes=9), '{"AmazonOrderId": "A-1", "v": 2}')
        )
        # A restart: a new connector on the same database resumes from the cursor.
        h.accounts.get("amzn")  # same accounts object, fresh runtime pass
        assert await h.run_poll("amzn") == 1
        sent = await h.harness.emitted_contracts("ChannelOrderReceived")
        assert [s.payload for s in sent] == [
            '{"AmazonOrderId": "A-1"}',
            '{"AmazonOrderId": "A-2"}',
            '{"AmazonOrderId": "A-1", "v": 2}',
        ]
        assert all(s.channel == "amazon" for s in sent)
        [cursor] = await h.harness.fetch("SELECT cursor_at FROM poll_cursors")
        assert cursor["cursor_at"] == t0 + timedelta(minutes=9)
        assert client.polls[-1] == t0 + timedelta(minutes=5) - timedelta(seconds=120)


async def test_duplicate_envelopes_change_nothing(
    connector: tuple[ConnectorHarness, RecordingClient],
) -> None:
    h, _client = connector
    envelope = Envelope.wrap(status("o6", "RECEIVED"), correlation_id="o6", producer="test")
    await h.harness.deliver(status("o6", "RECEIVED"), correlation_id="o6", envelope=envelope)
    await h.harness.deliver(status("o6", "RECEIVED"), correlation_id="o6", envelope=envelope)
    assert len(await h.harness.fetch("SELECT * FROM channel_orders")) == 1


async def test_skus_the_channel_refuses_wait_and_the_rest_of_the_batch_counts_as_pushed(
    connector: tuple[ConnectorHarness, RecordingClient],
) -> None:
    h, client = connector
    for sku in ("MUG", "GHOST"):
        await h.harness.deliver(
            ChannelAvailabilityChanged(
                channel="shopify", sku=sku, available=4, safety_stock=0, warehouse_available=4
            ),
            correlation_id=sku,
        )
    client.failures = [StockRefused({"GHOST": "unknown SKU"}, retryable=False)]
    await h.run_stock("shop")
    rows = {
        r["sku"]: (r["pushed_quantity"], r["last_error"])
        for r in await h.harness.fetch("SELECT * FROM stock_levels")
    }
    assert rows["MUG"] == (4, None)
    assert rows["GHOST"][0] is None and "unknown SKU" in rows["GHOST"][1]
    [waits] = await h.harness.fetch(
        "SELECT not_before - now() AS wait FROM stock_levels WHERE sku = 'GHOST'"
    )
    assert waits["wait"] > timedelta(minutes=30), "refused for good: tried again in an hour"
    await h.harness.deliver(
        ChannelAvailabilityChanged(
            channel="shopify", sku="GHOST", available=5, safety_stock=0, warehouse_available=5
        ),
        correlation_id="GHOST",
    )
    [waits] = await h.harness.fetch(
        "SELECT not_before - now() AS wait FROM stock_levels WHERE sku = 'GHOST'"
    )
    assert waits["wait"] <= timedelta(minutes=1), "a change is tried again within a minute"


async def test_a_cancellation_the_channels_api_cannot_take_alerts_an_operator(
    infra: Infra,
) -> None:
    client = RecordingClient(
        channel="amazon", capabilities=frozenset({Capability.SHIPMENTS, Capability.POLL_ORDERS})
    )
    account = AccountSettings(name="amzn", channel="amazon")
    async with start_connector(infra, [(account, client)]) as h:
        placed = status("o7", "RECEIVED").model_copy(update={"channel": "amazon"})
        await h.harness.deliver(placed, correlation_id="o7")
        cancelled = placed.model_copy(update={"status": "CANCELLED"})
        await h.harness.deliver(cancelled, correlation_id="o7")
        await h.run_pushes()
        [push] = await h.pushes(kind="cancellation")
        assert push["status"] == "skipped"
        [alert] = await h.harness.emitted_contracts("OperatorAlert")
        assert (alert.kind, alert.order_id) == ("channel_action_needed", "o7")
        assert "by hand" in alert.message
