"""Channel intake across all five services, as real processes on real Kafka and Postgres:
webhooks and Kafka ingress, marketplace-paid orders without the gateway, channel
cancellations, availability back to the channels, and e-mails to a real SMTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import orjson
import pytest

from shared.contracts.channels import ChannelOrderReceived
from shared.topics import CHANNEL_AVAILABILITY, CHANNEL_ORDERS, dead_letter_topic
from tests.support.env import Infra
from tests.support.kafka import Seen, send, wait_for_records
from tests.support.services import eventually
from tests.support.system import System, start_system
from tests.unit.channels import payloads
from tests.unit.channels.mailbox import Mailbox, smtp_server, text_of

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
async def system(infra: Infra, mailbox: Mailbox) -> AsyncIterator[System]:
    started = await start_system(
        infra,
        {
            "order_intake": {
                "OMS_SHOPIFY_WEBHOOK_SECRET": payloads.SHOPIFY_SECRET,
                "OMS_WOOCOMMERCE_WEBHOOK_SECRET": payloads.WOOCOMMERCE_SECRET,
                "OMS_SMTP_ENABLED": "true",
                "OMS_SMTP_HOST": mailbox.host,
                "OMS_SMTP_PORT": str(mailbox.port),
                "OMS_SMTP_SENDER": "orders@shop.example.com",
                "OMS_NOTIFICATION_POLL_INTERVAL_S": "0.2",
                "OMS_DEADLINE_POLL_INTERVAL_S": "0.2",
            },
        },
    )
    yield started
    await started.close()


async def post_channel(
    system: System, channel: str, raw: bytes, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = await system.client.post(
        f"{system.url('order_intake')}/v1/channels/{channel}/orders",
        content=raw,
        headers=headers or {"Content-Type": "application/json"},
    )
    assert response.status_code in (200, 202), response.text
    answer: dict[str, Any] = response.json()
    return answer


async def orders_of(system: System, channel: str) -> list[dict[str, Any]]:
    response = await system.client.get(
        f"{system.url('order_intake')}/v1/orders", params={"channel": channel}
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["orders"]
    return found


async def send_channel_message(
    system: System, channel: str, raw: bytes, key: str, headers: dict[str, str] | None = None
) -> None:
    await send(
        system.env.kafka,
        system.env.topic(CHANNEL_ORDERS),
        ChannelOrderReceived(channel=channel, headers=headers or {}, payload=raw.decode()),
        correlation_id=key,
    )


async def ship_and_deliver(system: System, order_id: str, carrier: str, tracking: str) -> None:
    [fulfilment] = await system.fulfilments(order_id)
    shipped = await system.ship(
        fulfilment["fulfilment_id"], carrier=carrier, tracking_number=tracking
    )
    assert shipped.status_code == 200, shipped.text
    await system.wait_status(order_id, "SHIPPED", "DELIVERED", "COMPLETED")
    delivered = await system.deliver(fulfilment["fulfilment_id"])
    assert delivered.status_code == 200, delivered.text


def availability(records: list[Seen], sku: str) -> dict[str, dict[str, Any]]:
    """The latest ChannelAvailabilityChanged per channel for the SKU."""
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.key != sku.encode() or record.value is None:
            continue
        payload = orjson.loads(record.value)["payload"]
        latest[payload["channel"]] = payload
    return latest


async def test_shopify_webhook_is_confirmed_without_the_gateway_and_the_customer_is_mailed(
    system: System, mailbox: Mailbox
):
    skus = ("CH-SHOP-MUG", "CH-SHOP-TEE")
    for sku in skus:
        await system.stock_up(sku, ("berlin", 10))
    raw = payloads.body(payloads.shopify_order(order_id=6100000000001, skus=skus))
    answer = await post_channel(system, "shopify", raw, payloads.shopify_headers(raw))
    assert answer["outcome"] == "created"
    order_id = answer["order_id"]
    view = await system.wait_status(order_id, "FULFILLING")
    assert view["payment"]["status"] == "paid_externally"
    assert await system.payments(order_id) == [], "a paid Shopify order never meets the gateway"
    assert [(li["sku"], li["quantity"], li["unit_price"]) for li in view["lines"]] == [
        (skus[0], 2, "12.50"),
        (skus[1], 1, "20.00"),
    ]
    assert (await system.stock(skus[0]))["reserved"] == 2

    confirmation = await mailbox.wait_for("ada@example.com", f"Your order {order_id} is confirmed")
    body = text_of(confirmation)
    assert f"2 x {skus[0]} at 12.50 EUR = 25.00 EUR" in body
    assert "Total:    59.44 EUR" in body

    await ship_and_deliver(system, order_id, "dhl", "JJD000390007")
    shipped = text_of(
        await mailbox.wait_for("ada@example.com", f"Your order {order_id} has shipped")
    )
    assert "dhl" in shipped and "JJD000390007" in shipped
    done = await system.wait_status(order_id, "COMPLETED")
    assert done["payment"]["status"] == "paid_externally"
    delivered = await mailbox.wait_for("ada@example.com", f"Your order {order_id} was delivered")
    assert "How did we do?" in text_of(delivered)


async def test_a_redelivered_webhook_and_a_channel_cancellation(system: System):
    sku = "CH-CANCEL-1"
    await system.stock_up(sku, ("berlin", 5))
    payload = payloads.woocommerce_order(order_id=9001, skus=(sku, sku))
    raw = payloads.body(payload)
    first = await post_channel(system, "woocommerce", raw, payloads.woocommerce_headers(raw))
    again = await post_channel(system, "woocommerce", raw, payloads.woocommerce_headers(raw))
    assert again["order_id"] == first["order_id"] and again["duplicate"] is True
    order_id = first["order_id"]
    await system.wait_status(order_id, "FULFILLING")
    assert (await system.stock(sku))["reserved"] == 5

    cancelled = payloads.body(payloads.woocommerce_order(order_id=9001, status="cancelled"))
    headers = payloads.woocommerce_headers(cancelled, topic="order.updated", delivery_id="d-2")
    answer = await post_channel(system, "woocommerce", cancelled, headers)
    assert answer["outcome"] == "cancel_requested"
    done = await system.wait_status(order_id, "CANCELLED")
    assert done["reason"] == "cancelled in WooCommerce"
    stock = await system.stock(sku)
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (5, 0, 5)
    assert [f["status"] for f in await system.fulfilments(order_id)] == ["cancelled"]
    assert len(await orders_of(system, "woocommerce")) == 1


async def test_the_same_channel_order_twice_over_kafka_makes_one_order(system: System):
    skus = ("CH-KAFKA-MUG", "CH-KAFKA-TEE")
    for sku in skus:
        await system.stock_up(sku, ("berlin", 10))
    raw = payloads.body(payloads.shopify_order(order_id=6200000000002, skus=skus))
    for delivery in ("kafka-delivery-1", "kafka-delivery-2"):
        headers = {
            k.lower(): v for k, v in payloads.shopify_headers(raw, webhook_id=delivery).items()
        }
        await send_channel_message(system, "shopify", raw, "6200000000002", headers)

    conn = await asyncpg.connect(system.env.service_urls["order_intake"])
    try:

        async def both_deliveries() -> list[Any]:
            rows = await conn.fetch(
                "SELECT delivery_id, order_id, outcome FROM order_intake.channel_deliveries"
                " WHERE channel = 'shopify' AND delivery_id LIKE 'kafka-delivery-%'"
                " ORDER BY delivery_id"
            )
            return rows if len(rows) == 2 else []

        rows = await eventually(both_deliveries, timeout_s=60, message="both Kafka deliveries")
    finally:
        await conn.close()
    assert {r["order_id"] for r in rows} != {None}
    assert len({r["order_id"] for r in rows}) == 1
    assert sorted(r["outcome"] for r in rows) == ["created", "duplicate"]
    order_id = rows[0]["order_id"]
    await system.wait_status(order_id, "FULFILLING")
    assert [
        o["order_id"]
        for o in await orders_of(system, "shopify")
        if o["external_id"] == "6200000000002"
    ] == [order_id]
    assert (await system.stock(skus[0]))["reserved"] == 2


async def test_an_amazon_order_over_kafka_completes_and_sells_out_every_channel(system: System):
    skus = ("CH-AMZ-MUG", "CH-AMZ-TEE")
    await system.stock_up(skus[0], ("berlin", 3))
    await system.stock_up(skus[1], ("berlin", 4))
    external_id = "114-0000000-0000001"
    raw = payloads.body(payloads.amazon_order(external_id, skus=skus))
    await send_channel_message(system, "amazon", raw, external_id)

    async def the_order() -> list[dict[str, Any]]:
        return [o for o in await orders_of(system, "amazon") if o["external_id"] == external_id]

    [order] = await eventually(the_order, timeout_s=60, message="the Amazon order")
    order_id = order["order_id"]
    view = await system.wait_status(order_id, "FULFILLING")
    assert view["totals"]["total"] == "75.61"
    # All 3 mugs are reserved: every channel now sells 0 of them.
    topic = system.env.topic(CHANNEL_AVAILABILITY)
    records = await wait_for_records(
        system.env.kafka,
        topic,
        lambda seen: (
            {c: p["available"] for c, p in availability(seen, skus[0]).items()}
            == {"shopify": 0, "woocommerce": 0, "amazon": 0, "ebay": 0}
        ),
    )
    shirts = availability(records, skus[1])
    assert {c: p["available"] for c, p in shirts.items()} == {
        "shopify": 2,
        "woocommerce": 2,
        "amazon": 0,  # 2 left, 2 held back for Amazon
        "ebay": 1,
    }
    await ship_and_deliver(system, order_id, "ups", "1Z999AA10123456784")
    done = await system.wait_status(order_id, "COMPLETED")
    assert done["payment"]["status"] == "paid_externally"
    assert await system.payments(order_id) == [], "Amazon took the money: no authorisation"
    stock = await system.stock(skus[0])
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (0, 0, 0)


async def test_a_stock_adjustment_is_published_to_every_channel_less_its_safety_stock(
    system: System,
):
    await system.stock_up("CH-AVAIL-1", ("berlin", 7), ("hamburg", 3))
    records = await wait_for_records(
        system.env.kafka,
        system.env.topic(CHANNEL_AVAILABILITY),
        lambda seen: (
            {c: p["warehouse_available"] for c, p in availability(seen, "CH-AVAIL-1").items()}
            == {"shopify": 10, "woocommerce": 10, "amazon": 10, "ebay": 10}
        ),
    )
    latest = availability(records, "CH-AVAIL-1")
    assert {c: (p["available"], p["safety_stock"]) for c, p in latest.items()} == {
        "shopify": (10, 0),
        "woocommerce": (10, 0),
        "amazon": (8, 2),
        "ebay": (9, 1),
    }


async def test_a_malformed_channel_message_is_dead_lettered_with_the_reason(system: System):
    broken = payloads.ebay_order(order_id="99-00000-00001")
    broken["lineItems"][1]["sku"] = None
    await send_channel_message(system, "ebay", payloads.body(broken), "99-00000-00001")
    await send_channel_message(system, "ebay", b"{not json", "99-00000-00002")
    dlq = system.env.topic(dead_letter_topic("order_intake"))
    letters = await wait_for_records(
        system.env.kafka,
        dlq,
        lambda seen: len([s for s in seen if s.headers.get("x-dlq-reason") == "rejected"]) >= 2,
        timeout_s=60,
    )
    rejected = sorted(
        (s.headers["x-dlq-error"], s.headers["x-dlq-attempts"])
        for s in letters
        if s.headers.get("x-dlq-reason") == "rejected"
    )
    assert rejected[0][0].startswith("invalid_payload: lineItems.1.sku: ")
    assert rejected[1][0].startswith("malformed_json: ")
    assert {attempts for _, attempts in rejected} == {"1"}
    await asyncio.sleep(0.5)
    assert [o for o in await orders_of(system, "ebay") if o["external_id"].startswith("99-")] == []


async def test_an_unknown_sku_rejects_the_order_naming_it_and_the_customer_is_told(
    system: System, mailbox: Mailbox
):
    await system.stock_up("CH-KNOWN-1", ("berlin", 5))
    raw = payloads.body(
        payloads.ebay_order(order_id="12-00000-00042", skus=("CH-KNOWN-1", "CH-NO-SUCH-SKU"))
    )
    answer = await post_channel(system, "ebay", raw)
    assert answer["outcome"] == "created"
    rejected = await system.wait_status(answer["order_id"], "REJECTED")
    assert rejected["reason"] == "unknown_sku: CH-NO-SUCH-SKU"
    failure = next(e for e in rejected["timeline"] if e["event"] == "stock_reservation_failed")
    assert [line["sku"] for line in failure["detail"]["short_lines"]] == ["CH-NO-SUCH-SKU"]
    assert (await system.stock("CH-KNOWN-1"))["reserved"] == 0
    notice = await mailbox.wait_for(
        "alan.t@example.co.uk", f"We could not accept your order {answer['order_id']}"
    )
    assert "we do not sell CH-NO-SUCH-SKU" in text_of(notice)
