"""`oms.channel.orders.v1` through the real Consumer on a real Postgres: dedupe of re-sent
messages, dead letters (at once, with the reason) for messages that can never map."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from services.order_intake.app import build
from services.order_intake.settings import OrderIntakeSettings
from shared.contracts.channels import ChannelOrderReceived
from shared.contracts.common import Allocation, SkuQuantity
from shared.contracts.fulfilment import (
    FulfilmentCancelled,
    FulfilmentCreated,
    FulfilmentRef,
    FulfilmentShipped,
)
from shared.contracts.inventory import StockReserved
from shared.envelope import Envelope
from shared.topics import CHANNEL_ORDERS
from tests.support.component import ComponentHarness, FakeRecord, start_harness
from tests.support.env import Infra
from tests.unit.channels import payloads

pytestmark = pytest.mark.component


@pytest.fixture
async def intake(infra: Infra) -> AsyncIterator[ComponentHarness]:
    settings = OrderIntakeSettings(
        shopify_webhook_secret=SecretStr(payloads.SHOPIFY_SECRET),
        woocommerce_webhook_secret=SecretStr(payloads.WOOCOMMERCE_SECRET),
    )
    async for harness in start_harness(infra, build(settings)):
        yield harness


def message(
    channel: str, raw: bytes, headers: dict[str, str] | None = None
) -> ChannelOrderReceived:
    return ChannelOrderReceived(channel=channel, headers=headers or {}, payload=raw.decode())


async def orders(intake: ComponentHarness) -> list[Any]:
    return await intake.fetch("SELECT order_id, channel, external_id, status FROM orders")


async def test_the_same_channel_order_sent_twice_makes_one_order(intake: ComponentHarness):
    raw = payloads.body(payloads.amazon_order())
    first = await intake.deliver(message("amazon", raw), correlation_id="113-4567890-1234567")
    await intake.deliver(message("amazon", raw), correlation_id="113-4567890-1234567")
    # and an exact redelivery of the first Kafka message (same message id): the inbox drops it
    await intake.deliver(message("amazon", raw), correlation_id="x", envelope=first)
    [order] = await orders(intake)
    assert (order["channel"], order["external_id"], order["status"]) == (
        "amazon",
        "113-4567890-1234567",
        "RESERVING_STOCK",
    )
    assert len(await intake.emitted("ReserveStock")) == 1
    assert intake.dead_letters == []
    [row] = await intake.fetch("SELECT raw_request FROM orders")
    assert row["raw_request"]["body"] == raw.decode()


async def test_a_forwarded_webhook_is_deduped_on_its_delivery_id_and_verified(
    intake: ComponentHarness,
):
    raw = payloads.body(payloads.shopify_order())
    headers = {k.lower(): v for k, v in payloads.shopify_headers(raw).items()}
    await intake.deliver(message("shopify", raw, headers), correlation_id="5940139491234")
    await intake.deliver(message("shopify", raw, headers), correlation_id="5940139491234")
    assert len(await orders(intake)) == 1
    deliveries = await intake.fetch("SELECT outcome FROM channel_deliveries")
    assert [d["outcome"] for d in deliveries] == ["created"]

    tampered = raw.replace(b'"12.50"', b'"0.50"')
    await intake.deliver(message("shopify", tampered, headers), correlation_id="5940139491234")
    [(_, letter)] = intake.dead_letters
    assert letter["x-dlq-reason"] == "rejected"
    assert letter["x-dlq-error"].startswith("invalid_signature: ")


async def test_messages_that_can_never_map_are_dead_lettered_at_once_with_the_reason(
    intake: ComponentHarness,
):
    no_sku = payloads.shopify_order()
    no_sku["line_items"][0]["sku"] = ""
    await intake.deliver(message("shopify", payloads.body(no_sku)), correlation_id="c1")
    await intake.deliver(message("amazon", b'{"AmazonOrderId": '), correlation_id="c2")
    await intake.deliver(message("etsy", b"{}"), correlation_id="c3")
    reasons = [
        (h["x-dlq-reason"], h["x-dlq-error"], h["x-dlq-attempts"]) for _, h in intake.dead_letters
    ]
    assert [r[0] for r in reasons] == ["rejected", "rejected", "rejected"]
    assert reasons[0][1].startswith("invalid_payload: line_items.0.sku: ")
    assert reasons[1][1].startswith("malformed_json: ")
    assert reasons[2][1].startswith("unknown_channel: ")
    assert [r[2] for r in reasons] == ["1", "1", "1"], "no retries for a permanent failure"
    # the dead letter is the whole Kafka message: the raw channel payload is kept in it
    envelope = Envelope.model_validate_json(intake.dead_letters[0][0])
    assert envelope.payload["payload"] == payloads.body(no_sku).decode()
    assert await orders(intake) == []


async def test_a_bad_message_in_a_batch_does_not_take_its_neighbours_with_it(
    intake: ComponentHarness,
):
    good = Envelope.wrap(message("ebay", payloads.body(payloads.ebay_order())), correlation_id="g")
    bad = Envelope.wrap(message("ebay", b"[]"), correlation_id="b")
    await intake.consumer.handle_records(
        [
            FakeRecord(CHANNEL_ORDERS, bad.to_bytes(), offset=1),
            FakeRecord(CHANNEL_ORDERS, good.to_bytes(), offset=2),
        ]
    )
    assert [h["x-dlq-attempts"] for _, h in intake.dead_letters] == ["1"]
    assert [o["channel"] for o in await orders(intake)] == ["ebay"]


async def fulfilling_woocommerce_order(intake: ComponentHarness) -> tuple[str, Any]:
    """WooCommerce order 727 (3 x SOCK-3, 2 x MUG-1), reserved and with its fulfilment f1."""
    await intake.deliver(
        message("woocommerce", payloads.body(payloads.woocommerce_order())), correlation_id="727"
    )
    [order] = await orders(intake)
    order_id = order["order_id"]
    lines = (SkuQuantity(sku="SOCK-3", quantity=3), SkuQuantity(sku="MUG-1", quantity=2))
    await intake.deliver(
        StockReserved(
            order_id=order_id,
            allocations=(
                Allocation(line_id="l1", sku="SOCK-3", location="berlin", quantity=2),
                Allocation(line_id="l2", sku="SOCK-3", location="berlin", quantity=1),
                Allocation(line_id="l3", sku="MUG-1", location="berlin", quantity=2),
            ),
        ),
        correlation_id=order_id,
    )
    await intake.deliver(
        FulfilmentCreated(
            order_id=order_id,
            fulfilments=(FulfilmentRef(fulfilment_id="f1", location="berlin", lines=lines),),
        ),
        correlation_id=order_id,
    )
    return order_id, lines


async def test_a_refused_cancellation_is_recorded_not_dead_lettered(intake: ComponentHarness):
    order_id, lines = await fulfilling_woocommerce_order(intake)
    await intake.deliver(
        FulfilmentShipped(
            order_id=order_id,
            fulfilment_id="f1",
            location="berlin",
            lines=lines,
            carrier="dhl",
            tracking_number="JJD1",
            shipped_at=datetime.now(UTC),
        ),
        correlation_id=order_id,
    )
    cancelled = payloads.body(payloads.woocommerce_order(status="cancelled"))
    await intake.deliver(message("woocommerce", cancelled), correlation_id="727")
    await intake.deliver(message("woocommerce", cancelled), correlation_id="727")
    assert intake.dead_letters == []
    [order] = await orders(intake)
    assert order["status"] == "SHIPPED"
    refusals = await intake.fetch(
        "SELECT detail FROM order_timeline WHERE event = 'channel_cancel_refused'"
    )
    assert len(refusals) == 1
    assert refusals[0]["detail"]["code"] == "already_shipped"
    assert [a.kind for a in await intake.emitted_contracts("OperatorAlert")] == [
        "channel_cancel_refused"
    ]


async def test_a_channel_cancellation_of_a_partly_shipped_order_cancels_the_rest(
    intake: ComponentHarness,
):
    order_id, _ = await fulfilling_woocommerce_order(intake)
    await intake.deliver(
        FulfilmentShipped(
            order_id=order_id,
            fulfilment_id="f1",
            location="berlin",
            lines=(SkuQuantity(sku="SOCK-3", quantity=3),),
            carrier="dhl",
            tracking_number="JJD1",
            shipped_at=datetime.now(UTC),
            shipment_id="par-1",
            fulfilment_complete=False,
        ),
        correlation_id=order_id,
    )
    cancelled = payloads.body(payloads.woocommerce_order(status="cancelled"))
    await intake.deliver(message("woocommerce", cancelled), correlation_id="727")
    await intake.deliver(message("woocommerce", cancelled), correlation_id="727")
    assert intake.dead_letters == []
    [order] = await orders(intake)
    assert order["status"] == "CANCELLING"
    assert len(await intake.emitted("CancelFulfilment")) == 1, "the second is a repeat"
    assert await intake.emitted("OperatorAlert") == [], "not refused"
    await intake.deliver(
        FulfilmentCancelled(order_id=order_id, reason="x", partly_shipped=("f1",)),
        correlation_id=order_id,
    )
    [order] = await orders(intake)
    assert order["status"] == "SHIPPED"
    [notice] = [
        n
        for n in await intake.emitted_contracts("CustomerNotification")
        if n.kind == "rest_cancelled"
    ]
    assert notice.data["paid_externally"] is True
    assert notice.data["lines"] == [{"sku": "MUG-1", "quantity": 2}]
    assert len(await intake.emitted("ReleaseStock")) == 1
    assert await intake.emitted("VoidPayment") == []
