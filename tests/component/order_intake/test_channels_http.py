"""`POST /v1/channels/{channel}/orders` on a real Postgres: mapping, signatures, dedupe,
concurrency, refusals that keep the raw payload, cancellations through the saga."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr

from services.order_intake.app import build
from services.order_intake.settings import OrderIntakeSettings
from shared.contracts.common import Allocation, ShortLine, SkuQuantity
from shared.contracts.fulfilment import (
    FulfilmentCancelled,
    FulfilmentCreated,
    FulfilmentDelivered,
    FulfilmentRef,
    FulfilmentShipped,
)
from shared.contracts.inventory import StockReleased, StockReservationFailed, StockReserved
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra
from tests.unit.channels import payloads

pytestmark = pytest.mark.component

URL = "/v1/channels/{}/orders"


def settings(**overrides: Any) -> OrderIntakeSettings:
    values: dict[str, Any] = {
        "shopify_webhook_secret": SecretStr(payloads.SHOPIFY_SECRET),
        "woocommerce_webhook_secret": SecretStr(payloads.WOOCOMMERCE_SECRET),
        **overrides,
    }
    return OrderIntakeSettings(**values)


@pytest.fixture
async def intake(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build(settings())):
        yield harness


async def post_shopify(
    client: httpx.AsyncClient, payload: dict[str, Any], **header_options: Any
) -> httpx.Response:
    raw = payloads.body(payload)
    return await client.post(
        URL.format("shopify"), content=raw, headers=payloads.shopify_headers(raw, **header_options)
    )


async def order_count(intake: ComponentHarness) -> int:
    return len(await intake.fetch("SELECT order_id FROM orders"))


async def rejected(intake: ComponentHarness) -> list[Any]:
    return await intake.fetch(
        "SELECT error_code, error, raw_body FROM rejected_requests ORDER BY id"
    )


def allocations_for(view: dict[str, Any]) -> tuple[Allocation, ...]:
    return tuple(
        Allocation(line_id=li["line_id"], sku=li["sku"], location="berlin", quantity=li["quantity"])
        for li in view["lines"]
    )


async def test_shopify_webhook_becomes_a_paid_order_with_its_raw_payload(intake: ComponentHarness):
    payload = payloads.shopify_order()
    async with intake.http() as client:
        response = await post_shopify(client, payload)
        assert response.status_code == 202, response.text
        answer = response.json()
        assert answer["outcome"] == "created" and answer["duplicate"] is False
        assert answer["external_id"] == "5940139491234"
        view = (await client.get(f"/v1/orders/{answer['order_id']}")).json()
    assert view["channel"] == "shopify" and view["external_id"] == "5940139491234"
    assert view["status"] == "RESERVING_STOCK"
    assert [(li["sku"], li["quantity"], li["unit_price"]) for li in view["lines"]] == [
        ("MUG-1", 2, "12.50"),
        ("TSHIRT-M", 1, "20.00"),
    ]
    assert view["totals"] == {
        "currency": "EUR",
        "subtotal": "45.00",
        "discount": "0.00",
        "shipping": "4.95",
        "tax": "9.49",
        "total": "59.44",
    }
    assert view["customer"] == {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "phone": "+49 30 1234567",
    }
    assert view["shipping_address"]["line1"] == "Invalidenstraße 116"
    assert view["payment"]["status"] == "paid_externally"
    [reserve] = await intake.emitted_contracts("ReserveStock")
    assert [(li.sku, li.quantity) for li in reserve.lines] == [("MUG-1", 2), ("TSHIRT-M", 1)]
    assert reserve.channel == "shopify"
    [row] = await intake.fetch("SELECT raw_request FROM orders")
    kept = row["raw_request"]
    assert kept["channel"] == "shopify"
    assert kept["headers"]["x-shopify-webhook-id"] == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert orjson.loads(kept["body"]) == payload


async def test_redelivered_webhook_answers_the_same_order(intake: ComponentHarness):
    payload = payloads.shopify_order()
    async with intake.http() as client:
        first = await post_shopify(client, payload)
        again = await post_shopify(client, payload)  # Shopify's retry: same webhook id
        other = await post_shopify(client, payload, webhook_id="another-delivery-of-the-order")
    assert first.status_code == 202
    assert again.status_code == 200 and other.status_code == 200
    order_id = first.json()["order_id"]
    assert again.json()["order_id"] == order_id and again.json()["duplicate"] is True
    assert other.json()["order_id"] == order_id and other.json()["duplicate"] is True
    assert await order_count(intake) == 1
    assert len(await intake.emitted("ReserveStock")) == 1


async def test_identical_webhooks_at_the_same_moment_make_one_order(intake: ComponentHarness):
    payload = payloads.shopify_order(order_id=777)
    async with intake.http() as client:
        same_delivery = await asyncio.gather(*(post_shopify(client, payload) for _ in range(4)))
        other_deliveries = await asyncio.gather(
            *(post_shopify(client, payload, webhook_id=f"delivery-{n}") for n in range(4))
        )
    responses = [*same_delivery, *other_deliveries]
    assert all(r.status_code in (200, 202) for r in responses), [r.text for r in responses]
    assert len({r.json()["order_id"] for r in responses}) == 1
    assert sorted(r.status_code for r in responses) == [200] * 7 + [202]
    assert await order_count(intake) == 1


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ("body", "does not match"),
        ("secret", "does not match"),
        ("missing", "is missing"),
    ],
)
async def test_bad_signature_is_refused_and_creates_nothing(
    intake: ComponentHarness, tamper: str, message: str
):
    raw = payloads.body(payloads.shopify_order())
    headers = payloads.shopify_headers(
        raw, secret="wrong" if tamper == "secret" else payloads.SHOPIFY_SECRET
    )
    if tamper == "body":
        raw = raw.replace(b'"12.50"', b'"0.50"')
    if tamper == "missing":
        del headers["X-Shopify-Hmac-SHA256"]
    async with intake.http() as client:
        response = await client.post(URL.format("shopify"), content=raw, headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_signature" and message in error["message"]
    assert await order_count(intake) == 0
    [kept] = await rejected(intake)
    assert kept["error_code"] == "invalid_signature" and bytes(kept["raw_body"]) == raw


async def test_woocommerce_signature_is_verified_and_ping_answered(intake: ComponentHarness):
    raw = payloads.body(payloads.woocommerce_order())
    async with intake.http() as client:
        ping = await client.post(
            URL.format("woocommerce"),
            content=b"webhook_id=12",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        forged = await client.post(
            URL.format("woocommerce"),
            content=raw,
            headers=payloads.woocommerce_headers(raw, secret=payloads.SHOPIFY_SECRET),
        )
        good = await client.post(
            URL.format("woocommerce"), content=raw, headers=payloads.woocommerce_headers(raw)
        )
        view = (await client.get(f"/v1/orders/{good.json()['order_id']}")).json()
    assert ping.status_code == 200 and ping.json()["outcome"] == "ping_acknowledged"
    assert forged.status_code == 401
    assert good.status_code == 202, good.text
    assert [(li["sku"], li["quantity"], li["unit_price"]) for li in view["lines"]] == [
        ("SOCK-3", 2, "3.33"),
        ("SOCK-3", 1, "3.34"),
        ("MUG-1", 2, "12.50"),
    ]
    assert view["totals"]["total"] == "47.54"


async def test_signed_channel_without_a_secret_is_refused(infra: Infra):
    async for intake in start_harness(infra, build(OrderIntakeSettings())):
        async with intake.http() as client:
            response = await post_shopify(client, payloads.shopify_order())
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "channel_not_configured"
        assert await order_count(intake) == 0


async def test_bad_input_is_refused_clearly_and_kept_raw(intake: ComponentHarness):
    unmappable = payloads.body(payloads.without(payloads.amazon_order(), "OrderItems.0.SellerSKU"))
    async with intake.http() as client:
        unknown = await client.post(URL.format("etsy"), content=b'{"id": 1}')
        malformed = await client.post(URL.format("amazon"), content=b'{"AmazonOrderId": ')
        not_mapping = await client.post(URL.format("amazon"), content=unmappable)
        no_sku = payloads.shopify_order()
        no_sku["line_items"][0]["sku"] = None
        shopify_no_sku = await post_shopify(client, no_sku)
        huge = await client.post(URL.format("ebay"), content=b"[" + b" " * (300 * 1024) + b"]")
        not_object = await client.post(URL.format("ebay"), content=b"[1, 2, 3]")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_channel"
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed_json"
    assert not_mapping.status_code == 422
    assert not_mapping.json()["error"]["details"]["field"] == "OrderItems.0.SellerSKU"
    assert not_mapping.json()["error"]["message"].startswith("OrderItems.0.SellerSKU: ")
    assert shopify_no_sku.status_code == 422
    assert shopify_no_sku.json()["error"]["details"]["field"] == "line_items.0.sku"
    assert huge.status_code == 413
    assert not_object.status_code == 422
    assert await order_count(intake) == 0
    kept = await rejected(intake)
    assert [k["error_code"] for k in kept] == [
        "unknown_channel",
        "malformed_json",
        "invalid_payload",
        "invalid_payload",
        "payload_too_large",
        "invalid_payload",
    ]
    assert bytes(kept[1]["raw_body"]) == b'{"AmazonOrderId": '
    assert bytes(kept[2]["raw_body"]) == unmappable


async def test_amazon_order_completes_without_the_payment_gateway(intake: ComponentHarness):
    async with intake.http() as client:
        response = await client.post(
            URL.format("amazon"), content=payloads.body(payloads.amazon_order())
        )
        assert response.status_code == 202, response.text
        order_id = response.json()["order_id"]
        view = (await client.get(f"/v1/orders/{order_id}")).json()
        await intake.deliver(
            StockReserved(order_id=order_id, allocations=allocations_for(view)),
            correlation_id=order_id,
        )
        confirmed = (await client.get(f"/v1/orders/{order_id}")).json()
        assert confirmed["status"] == "CONFIRMED"
        ref = FulfilmentRef(
            fulfilment_id="ful_a",
            location="berlin",
            lines=(SkuQuantity(sku="MUG-1", quantity=3), SkuQuantity(sku="TSHIRT-M", quantity=2)),
        )
        await intake.deliver(
            FulfilmentCreated(order_id=order_id, fulfilments=(ref,)), correlation_id=order_id
        )
        await intake.deliver(
            FulfilmentShipped(
                order_id=order_id,
                fulfilment_id="ful_a",
                location="berlin",
                lines=ref.lines,
                carrier="ups",
                tracking_number="1Z999",
                shipped_at=datetime.now(UTC),
            ),
            correlation_id=order_id,
        )
        await intake.deliver(
            FulfilmentDelivered(
                order_id=order_id, fulfilment_id="ful_a", delivered_at=datetime.now(UTC)
            ),
            correlation_id=order_id,
        )
        done = (await client.get(f"/v1/orders/{order_id}")).json()
    assert done["status"] == "COMPLETED"
    assert done["payment"]["status"] == "paid_externally"
    assert Decimal(done["totals"]["total"]) == Decimal("75.61")
    assert await intake.emitted("AuthorizePayment") == []
    assert await intake.emitted("CapturePayment") == []
    assert len(await intake.emitted("CommitStock")) == 1


async def test_channel_cancellation_cancels_an_unshipped_order_and_releases_stock(
    intake: ComponentHarness,
):
    async with intake.http() as client:
        order_id = (await post_shopify(client, payloads.shopify_order())).json()["order_id"]
        view = (await client.get(f"/v1/orders/{order_id}")).json()
        await intake.deliver(
            StockReserved(order_id=order_id, allocations=allocations_for(view)),
            correlation_id=order_id,
        )
        await intake.clear_outbox()
        cancel = await post_shopify(
            client, payloads.shopify_cancelled(), topic="orders/cancelled", webhook_id="cancel-1"
        )
        assert cancel.status_code == 202, cancel.text
        assert cancel.json()["outcome"] == "cancel_requested"
        assert cancel.json()["order_id"] == order_id
        again = await post_shopify(
            client, payloads.shopify_cancelled(), topic="orders/cancelled", webhook_id="cancel-1"
        )
        assert again.status_code == 200 and again.json()["duplicate"] is True
        # CONFIRMED with CreateFulfilment in flight: the cancel waits for fulfilment's answer.
        await intake.deliver(
            FulfilmentCreated(
                order_id=order_id,
                fulfilments=(
                    FulfilmentRef(
                        fulfilment_id="ful_c",
                        location="berlin",
                        lines=(SkuQuantity(sku="MUG-1", quantity=2),),
                    ),
                ),
            ),
            correlation_id=order_id,
        )
        # The fulfilment is cancelled first; stock is released once that is confirmed.
        assert len(await intake.emitted("CancelFulfilment")) == 1
        assert await intake.emitted("ReleaseStock") == []
        await intake.deliver(
            FulfilmentCancelled(order_id=order_id, cancelled=("ful_c",), reason="cancel"),
            correlation_id=order_id,
        )
        [release] = await intake.emitted_contracts("ReleaseStock")
        assert "cancelled on Shopify" in release.reason
        assert await intake.emitted("VoidPayment") == []  # Shopify holds the money
        await intake.deliver(
            StockReleased(order_id=order_id, released=allocations_for(view)),
            correlation_id=order_id,
        )
        done = (await client.get(f"/v1/orders/{order_id}")).json()
    assert done["status"] == "CANCELLED"
    assert "cancelled on Shopify (customer)" in done["reason"]


async def test_channel_cancellation_after_shipment_is_refused_and_recorded_once(
    intake: ComponentHarness,
):
    async with intake.http() as client:
        created = await client.post(
            URL.format("ebay"), content=payloads.body(payloads.ebay_order())
        )
        order_id = created.json()["order_id"]
        view = (await client.get(f"/v1/orders/{order_id}")).json()
        await intake.deliver(
            StockReserved(order_id=order_id, allocations=allocations_for(view)),
            correlation_id=order_id,
        )
        lines = (SkuQuantity(sku="MUG-1", quantity=3), SkuQuantity(sku="TSHIRT-M", quantity=2))
        await intake.deliver(
            FulfilmentCreated(
                order_id=order_id,
                fulfilments=(FulfilmentRef(fulfilment_id="ful_s", location="berlin", lines=lines),),
            ),
            correlation_id=order_id,
        )
        await intake.deliver(
            FulfilmentShipped(
                order_id=order_id,
                fulfilment_id="ful_s",
                location="berlin",
                lines=lines,
                carrier="royal_mail",
                tracking_number="RM1",
                shipped_at=datetime.now(UTC),
            ),
            correlation_id=order_id,
        )
        cancelled = payloads.body(payloads.ebay_order(cancel_state="CANCELED"))
        first = await client.post(URL.format("ebay"), content=cancelled)
        second = await client.post(URL.format("ebay"), content=cancelled)
        view = (await client.get(f"/v1/orders/{order_id}")).json()
    for refused in (first, second):
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "already_shipped"
        assert refused.json()["error"]["details"]["order_id"] == order_id
    assert view["status"] == "SHIPPED"
    refusals = [e for e in view["timeline"] if e["event"] == "channel_cancel_refused"]
    assert len(refusals) == 1 and refusals[0]["detail"]["channel"] == "ebay"
    alerts = await intake.emitted_contracts("OperatorAlert")
    assert [a.kind for a in alerts] == ["channel_cancel_refused"]


async def test_cancellation_before_its_order_cancels_the_order_when_it_arrives(
    intake: ComponentHarness,
):
    async with intake.http() as client:
        early = await client.post(
            URL.format("amazon"),
            content=payloads.body(payloads.amazon_order(status="Canceled")),
        )
        assert early.status_code == 202 and early.json()["outcome"] == "cancel_recorded"
        assert early.json()["order_id"] is None
        created = await client.post(
            URL.format("amazon"), content=payloads.body(payloads.amazon_order())
        )
        order_id = created.json()["order_id"]
        view = (await client.get(f"/v1/orders/{order_id}")).json()
        assert view["cancel_requested"] == "cancelled on Amazon"
        await intake.deliver(
            StockReserved(order_id=order_id, allocations=allocations_for(view)),
            correlation_id=order_id,
        )
        assert len(await intake.emitted("ReleaseStock")) == 1
        await intake.deliver(
            StockReleased(order_id=order_id, released=allocations_for(view)),
            correlation_id=order_id,
        )
        done = (await client.get(f"/v1/orders/{order_id}")).json()
    assert done["status"] == "CANCELLED"
    assert await intake.emitted("CreateFulfilment") == []


async def test_unknown_sku_is_accepted_then_rejected_naming_the_sku(intake: ComponentHarness):
    async with intake.http() as client:
        response = await client.post(
            URL.format("ebay"),
            content=payloads.body(payloads.ebay_order(skus=("MUG-1", "NO-SUCH-SKU"))),
        )
        assert response.status_code == 202
        order_id = response.json()["order_id"]
        await intake.deliver(
            StockReservationFailed(
                order_id=order_id,
                reason="unknown_sku",
                short_lines=(ShortLine(line_id="l3", sku="NO-SUCH-SKU", requested=2, available=0),),
            ),
            correlation_id=order_id,
        )
        view = (await client.get(f"/v1/orders/{order_id}")).json()
    assert view["status"] == "REJECTED"
    assert view["reason"] == "unknown_sku: NO-SUCH-SKU"
    failure = next(e for e in view["timeline"] if e["event"] == "stock_reservation_failed")
    assert failure["detail"]["short_lines"][0]["sku"] == "NO-SUCH-SKU"


async def test_ignored_delivery_answers_200_and_creates_nothing(intake: ComponentHarness):
    async with intake.http() as client:
        pending = await client.post(
            URL.format("amazon"), content=payloads.body(payloads.amazon_order(status="Pending"))
        )
    assert pending.status_code == 200
    assert pending.json()["outcome"] == "ignored" and "Pending" in pending.json()["reason"]
    assert await order_count(intake) == 0


async def test_absurd_amounts_are_refused_not_a_server_error(intake: ComponentHarness):
    payload = payloads.shopify_order()
    payload["line_items"][0].update(quantity=100_000, price="999999999.00")
    payload["line_items"][0]["sku"] = "MUG\u0000"
    async with intake.http() as client:
        nul = await post_shopify(client, payload, webhook_id="w1")
        payload["line_items"][0]["sku"] = "MUG-1"
        huge = await post_shopify(client, payload, webhook_id="w2")
    assert nul.status_code == 422 and nul.json()["error"]["details"]["field"] == "line_items.0.sku"
    assert huge.status_code == 422 and huge.json()["error"]["code"] == "amount_too_large"
    assert await order_count(intake) == 0


async def test_marketplace_orders_need_that_channels_token(intake: ComponentHarness):
    """Issue 13's repro: an unsigned SP-API-shaped body, paid on the marketplace, posted without
    a token, answered 201 and shipped free goods. Now: 401 and nothing created; a
    `channel:ebay` token cannot post Amazon orders; a `channel:amazon` token can."""
    order = payloads.amazon_order()
    order["OrderTotal"]["Amount"] = "0.01"
    raw = payloads.body(order)
    async with intake.anonymous() as client:
        anonymous = await client.post(URL.format("amazon"), content=raw)
    async with intake.http("channel:ebay") as client:
        wrong_channel = await client.post(URL.format("amazon"), content=raw)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthenticated"
    assert wrong_channel.status_code == 403
    assert await order_count(intake) == 0
    async with intake.http("channel:amazon") as client:
        right = await client.post(URL.format("amazon"), content=raw)
    assert right.status_code == 202, right.text
    assert await order_count(intake) == 1


async def test_a_signed_channel_still_needs_its_signature_with_a_token(intake: ComponentHarness):
    raw = payloads.body(payloads.shopify_order())
    async with intake.http("channel:shopify") as client:
        unsigned = await client.post(URL.format("shopify"), content=raw)
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["code"] == "invalid_signature"
