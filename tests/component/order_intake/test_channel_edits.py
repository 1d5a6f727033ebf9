"""Order edits from channels through order-intake on a real Postgres: Shopify `orders/updated`
(and a polled order seen again over Kafka) with another address goes through the saga —
applied before fulfilment, asked of fulfilment at fulfilment and applied on its answer,
refused with one operator alert after picking or when fulfilment refuses; a line change is
refused; an identical update, a redelivered webhook and a redelivered answer change nothing."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.order_intake.app import build
from services.order_intake.settings import OrderIntakeSettings
from shared.contracts.channels import ChannelOrderReceived
from shared.contracts.common import Allocation, SkuQuantity
from shared.contracts.fulfilment import (
    FulfilmentCreated,
    FulfilmentRef,
    PickListEntry,
    PickListReleased,
    ShippingAddressChangeRefused,
    ShippingAddressUpdated,
)
from shared.contracts.inventory import StockReserved
from shared.contracts.order_intake import UpdateShippingAddress
from tests.support.component import ComponentHarness, start_harness
from tests.support.crash import CrashOnce, crash_once_for
from tests.support.env import Infra
from tests.unit.channels import payloads

pytestmark = pytest.mark.component

URL = "/v1/channels/{}/orders"
FULFILMENT = "ful_edit"


@pytest.fixture
async def intake(infra: Infra) -> AsyncIterator[ComponentHarness]:
    settings = OrderIntakeSettings(
        shopify_webhook_secret=SecretStr(payloads.SHOPIFY_SECRET),
        woocommerce_webhook_secret=SecretStr(payloads.WOOCOMMERCE_SECRET),
    )
    async for harness in start_harness(infra, build(settings)):
        yield harness


@pytest.fixture
async def client(intake: ComponentHarness) -> AsyncIterator[httpx.AsyncClient]:
    async with intake.http() as c:
        yield c


@pytest.fixture
def crash_once(intake: ComponentHarness, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrashOnce]:
    yield from crash_once_for(intake, monkeypatch)


def moved(payload: dict[str, Any], **address: str) -> dict[str, Any]:
    """The Shopify order with its shipping address changed (Hamburg unless told)."""
    changed = copy.deepcopy(payload)
    changed["shipping_address"].update(
        {
            "address1": "Jungfernstieg 7",
            "address2": None,
            "city": "Hamburg",
            "province": "Hamburg",
            "province_code": "HH",
            "zip": "20095",
            **address,
        }
    )
    return changed


async def post_shopify(
    client: httpx.AsyncClient,
    payload: dict[str, Any],
    *,
    topic: str = "orders/create",
    webhook_id: str = "create-1",
) -> httpx.Response:
    raw = payloads.body(payload)
    return await client.post(
        URL.format("shopify"),
        content=raw,
        headers=payloads.shopify_headers(raw, topic=topic, webhook_id=webhook_id),
    )


async def update(
    client: httpx.AsyncClient, payload: dict[str, Any], webhook_id: str
) -> httpx.Response:
    return await post_shopify(client, payload, topic="orders/updated", webhook_id=webhook_id)


async def view(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    answer = await client.get(f"/v1/orders/{order_id}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def events(order: dict[str, Any], event: str) -> list[dict[str, Any]]:
    return [e for e in order["timeline"] if e["event"] == event]


async def placed(client: httpx.AsyncClient, payload: dict[str, Any]) -> str:
    created = await post_shopify(client, payload)
    assert created.status_code == 202, created.text
    order_id: str = created.json()["order_id"]
    return order_id


async def fulfilling(
    intake: ComponentHarness, client: httpx.AsyncClient, payload: dict[str, Any]
) -> str:
    """A paid Shopify order taken to FULFILLING (stock reserved, fulfilment created)."""
    order_id = await placed(client, payload)
    order = await view(client, order_id)
    await intake.deliver(
        StockReserved(
            order_id=order_id,
            allocations=tuple(
                Allocation(
                    line_id=li["line_id"], sku=li["sku"], location="berlin", quantity=li["quantity"]
                )
                for li in order["lines"]
            ),
        ),
        correlation_id=order_id,
    )
    await intake.deliver(
        FulfilmentCreated(
            order_id=order_id,
            fulfilments=(
                FulfilmentRef(
                    fulfilment_id=FULFILMENT,
                    location="berlin",
                    lines=tuple(
                        SkuQuantity(sku=li["sku"], quantity=li["quantity"]) for li in order["lines"]
                    ),
                ),
            ),
        ),
        correlation_id=order_id,
    )
    assert (await view(client, order_id))["status"] == "FULFILLING"
    await intake.clear_outbox()
    return order_id


async def test_an_identical_update_stays_a_duplicate(
    intake: ComponentHarness, client: httpx.AsyncClient
):
    order_id = await fulfilling(intake, client, payloads.shopify_order())
    before = len((await view(client, order_id))["timeline"])
    same = payloads.shopify_order()
    same["note"] = "gift wrap"  # not an address or a line: nothing changes
    answer = await update(client, same, "update-same")
    assert answer.status_code == 200, answer.text
    assert (answer.json()["outcome"], answer.json()["duplicate"]) == ("duplicate", True)
    assert len((await view(client, order_id))["timeline"]) == before
    assert await intake.emitted() == []


async def test_before_fulfilment_the_new_address_is_applied_and_fulfilment_gets_it(
    intake: ComponentHarness, client: httpx.AsyncClient
):
    payload = payloads.shopify_order()
    order_id = await placed(client, payload)
    answer = await update(client, moved(payload), "update-1")
    assert answer.status_code == 202, answer.text
    assert answer.json()["outcome"] == "edit_applied"
    order = await view(client, order_id)
    assert order["shipping_address"]["city"] == "Hamburg"
    assert order["status"] == "RESERVING_STOCK"
    [note] = events(order, "shipping_address_changed")
    assert note["detail"]["channel"] == "shopify" and "city" in note["detail"]["fields"]

    await intake.deliver(
        StockReserved(
            order_id=order_id,
            allocations=tuple(
                Allocation(
                    line_id=li["line_id"], sku=li["sku"], location="berlin", quantity=li["quantity"]
                )
                for li in order["lines"]
            ),
        ),
        correlation_id=order_id,
    )
    [create] = await intake.emitted_contracts("CreateFulfilment")
    assert create.shipping_address.city == "Hamburg"


async def test_at_fulfilment_the_change_is_asked_once_and_applied_on_fulfilments_answer(
    intake: ComponentHarness, client: httpx.AsyncClient
):
    payload = payloads.shopify_order()
    order_id = await fulfilling(intake, client, payload)
    answer = await update(client, moved(payload), "update-1")
    assert answer.status_code == 202 and answer.json()["outcome"] == "edit_requested"
    again = await update(client, moved(payload), "update-1")  # Shopify's retry
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["outcome"] == "edit_requested"
    resent = await update(client, moved(payload), "update-2")  # same content, new webhook
    assert resent.status_code == 200 and resent.json()["outcome"] == "duplicate"

    [command] = await intake.emitted_contracts("UpdateShippingAddress")
    assert isinstance(command, UpdateShippingAddress)
    assert (command.shipping_address.line1, command.recipient_name) == (
        "Jungfernstieg 7",
        "Ada Lovelace",
    )
    order = await view(client, order_id)
    assert order["shipping_address"]["city"] == "Berlin", "not before fulfilment took it"
    assert len(events(order, "shipping_address_change_requested")) == 1

    await intake.deliver(
        ShippingAddressUpdated(
            order_id=order_id, change_id=command.change_id, updated=(FULFILMENT,)
        ),
        correlation_id=order_id,
    )
    order = await view(client, order_id)
    assert order["shipping_address"]["line1"] == "Jungfernstieg 7"
    assert order["status"] == "FULFILLING"
    [note] = events(order, "shipping_address_changed")
    assert note["detail"]["fulfilments"] == [FULFILMENT]
    assert await intake.emitted("OperatorAlert") == []


async def test_after_picking_started_the_change_is_refused_and_alerted_once(
    intake: ComponentHarness, client: httpx.AsyncClient
):
    payload = payloads.shopify_order()
    order_id = await fulfilling(intake, client, payload)
    await intake.deliver(
        PickListReleased(
            pick_list_id="pl-1",
            location="berlin",
            strategy="single_order",
            fulfilments=(PickListEntry(order_id=order_id, fulfilment_id=FULFILMENT),),
        ),
        correlation_id="pl-1",
    )
    first = await update(client, moved(payload), "update-1")
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "edit_refused"
    assert "started picking" in first.json()["reason"]
    second = await update(client, moved(payload), "update-2")  # the same change again
    assert second.json()["outcome"] == "duplicate"

    order = await view(client, order_id)
    assert order["shipping_address"]["city"] == "Berlin"
    [refusal] = events(order, "channel_edit_refused")
    assert (refusal["detail"]["code"], refusal["detail"]["kind"]) == ("picking_started", "address")
    [alert] = await intake.emitted_contracts("OperatorAlert")
    assert alert.kind == "channel_edit_refused" and order_id in alert.message
    assert await intake.emitted("UpdateShippingAddress") == []


async def test_fulfilments_refusal_is_recorded_and_alerted_once_through_a_crash(
    intake: ComponentHarness, client: httpx.AsyncClient, crash_once: CrashOnce
):
    payload = payloads.shopify_order()
    order_id = await fulfilling(intake, client, payload)
    await update(client, moved(payload), "update-1")
    [command] = await intake.emitted_contracts("UpdateShippingAddress")
    refused = ShippingAddressChangeRefused(
        order_id=order_id,
        change_id=command.change_id,
        code="picking_started",
        reason=f"picking has started for fulfilment(s) {FULFILMENT}",
        fulfilments=(FULFILMENT,),
    )
    crash_once("before_db_commit")
    await intake.deliver(refused, correlation_id=order_id)
    crash_once("after_db_commit")
    await intake.deliver(refused, correlation_id=order_id)
    assert crash_once.crashed == ["before_db_commit", "after_db_commit"]
    await intake.deliver(refused, correlation_id=order_id)  # the answer to a re-sent command
    assert not intake.dead_letters

    order = await view(client, order_id)
    assert order["shipping_address"]["city"] == "Berlin"
    [refusal] = events(order, "channel_edit_refused")
    assert refusal["detail"]["fulfilments"] == [FULFILMENT]
    [alert] = await intake.emitted_contracts("OperatorAlert")
    assert alert.kind == "channel_edit_refused"


async def test_fulfilments_update_applies_once_through_a_crash(
    intake: ComponentHarness, client: httpx.AsyncClient, crash_once: CrashOnce
):
    payload = payloads.shopify_order()
    order_id = await fulfilling(intake, client, payload)
    await update(client, moved(payload), "update-1")
    [command] = await intake.emitted_contracts("UpdateShippingAddress")
    updated = ShippingAddressUpdated(
        order_id=order_id, change_id=command.change_id, updated=(FULFILMENT,)
    )
    crash_once("before_db_commit")
    await intake.deliver(updated, correlation_id=order_id)
    crash_once("after_db_commit")
    await intake.deliver(updated, correlation_id=order_id)
    await intake.deliver(updated, correlation_id=order_id)
    assert crash_once.crashed == ["before_db_commit", "after_db_commit"]
    order = await view(client, order_id)
    assert order["shipping_address"]["city"] == "Hamburg"
    assert len(events(order, "shipping_address_changed")) == 1


async def test_a_late_older_version_does_not_put_the_old_address_back(
    intake: ComponentHarness, client: httpx.AsyncClient
):
    """Shopify's webhooks are not ordered: the `orders/updated` of 12:40 came first (it made
    the order), the `orders/create` of 12:30 comes after it."""
    created = payloads.shopify_order()
    created["updated_at"] = "2024-07-10T12:30:00+02:00"
    edited = moved(created)
    edited["updated_at"] = "2024-07-10T12:40:00+02:00"
    first = await update(client, edited, "update-first")
    assert first.status_code == 202 and first.json()["outcome"] == "created"
    order_id = first.json()["order_id"]
    late = await post_shopify(client, created, webhook_id="create-late")
    assert late.status_code == 200, late.text
    assert late.json()["outcome"] == "duplicate"
    order = await view(client, order_id)
    assert order["shipping_address"]["city"] == "Hamburg"
    assert events(order, "channel_edit_refused") == []
    assert events(order, "shipping_address_changed") == []
    # A newer version with another address is still an edit.
    newest = moved(created, address1="Ballindamm 1", zip="20095")
    newest["updated_at"] = "2024-07-10T12:50:00Z"
    answer = await update(client, newest, "update-newest")
    assert answer.json()["outcome"] == "edit_applied"
    assert (await view(client, order_id))["shipping_address"]["line1"] == "Ballindamm 1"


async def test_a_line_change_is_refused_with_an_alert(
    intake: ComponentHarness, client: httpx.AsyncClient
):
    payload = payloads.shopify_order()
    order_id = await fulfilling(intake, client, payload)
    more = copy.deepcopy(payload)
    more["line_items"][0]["quantity"] = 3
    answer = await update(client, more, "update-lines")
    assert answer.status_code == 200 and answer.json()["outcome"] == "edit_refused"
    order = await view(client, order_id)
    [refusal] = events(order, "channel_edit_refused")
    assert refusal["detail"]["code"] == "line_change_unsupported"
    assert {"sku": "MUG-1", "quantity": 3} in refusal["detail"]["wanted"]
    assert [(li["sku"], li["quantity"]) for li in order["lines"]] == [
        ("MUG-1", 2),
        ("TSHIRT-M", 1),
    ]
    assert len(await intake.emitted("OperatorAlert")) == 1
    assert await intake.emitted("ReserveStock") == []


async def test_a_polled_order_seen_again_with_another_address_is_an_edit(
    intake: ComponentHarness, client: httpx.AsyncClient
):
    order = payloads.ebay_order()
    await intake.deliver(
        ChannelOrderReceived(channel="ebay", headers={}, payload=payloads.body(order).decode()),
        correlation_id="ebay-1",
    )
    [row] = await intake.fetch("SELECT order_id FROM orders WHERE channel = 'ebay'")
    order_id = row["order_id"]
    polled_again = copy.deepcopy(order)
    ship_to = polled_again["fulfillmentStartInstructions"][0]["shippingStep"]["shipTo"]
    ship_to["contactAddress"].update(
        {"addressLine1": "1 Wilton Road", "postalCode": "SW1V 1AN", "city": "London"}
    )
    for _ in range(2):  # the poller sees it twice: one edit
        await intake.deliver(
            ChannelOrderReceived(
                channel="ebay", headers={}, payload=payloads.body(polled_again).decode()
            ),
            correlation_id="ebay-1",
        )
    shown = await view(client, order_id)
    assert shown["shipping_address"]["city"] == "London"
    assert len(events(shown, "shipping_address_changed")) == 1
    assert not intake.dead_letters
