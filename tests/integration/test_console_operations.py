"""The console's operations pages against the running services, as real processes on real Kafka
and Postgres: a SKU's stock and ledger and an adjustment made from the page, low stock, a dead
letter (a malformed channel message) replayed from the page once, a return approved and received
from the page. Each as a user of the role that may, and as a viewer who sees no action and is
refused one."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.contracts.channels import ChannelOrderReceived
from shared.topics import CHANNEL_ORDERS, dead_letter_topic
from tests.support import auth
from tests.support.env import Infra
from tests.support.floor import set_up_floor
from tests.support.kafka import read_topic, send, wait_for_records
from tests.support.system import CORE_SERVICES, System, order_body, start_system

pytestmark = pytest.mark.integration

HTMX = {"HX-Request": "true"}
OVERRIDES = {
    "order_intake": {"OMS_DEADLINE_POLL_INTERVAL_S": "0.2"},
    "returns": {"OMS_RETURN_WINDOW_DAYS_BY_CHANNEL": '{"web": 30}'},
}


@pytest.fixture(scope="module")
async def system(infra: Infra) -> AsyncIterator[System]:
    started = await start_system(infra, OVERRIDES, *CORE_SERVICES, "console")
    yield started
    await started.close()


def console(system: System, role: str) -> httpx.AsyncClient:
    """The console as a user of `role`: a bearer header, asking for pages."""
    return httpx.AsyncClient(
        base_url=system.url("console"),
        timeout=30,
        headers={"Authorization": f"Bearer {auth.token(role)}", "Accept": "text/html"},
    )


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_a_skus_stock_ledger_and_an_adjustment_from_the_page(system: System) -> None:
    sku = "CON-STOCK-1"
    await system.stock_up(sku, ("berlin", 5))
    async with console(system, "warehouse") as page:
        shown = await page.get(f"/stock/{sku}")
        assert shown.status_code == 200, shown.text
        assert "Adjust</button>" in shown.text
        levels = text(shown.text)
        assert "berlin 5 0 5" in levels, levels
        assert "receipt +5" in levels, "the ledger"

        adjusted = await page.post(
            f"/stock/{sku}/adjustments",
            data={"location": "berlin", "delta": "-2", "reason": "damage", "reference": "INC-9"},
        )
        assert adjusted.status_code == 200, adjusted.text
        after = text(adjusted.text)
        assert f"Adjusted {sku} at berlin by -2 (damage)" in after
        assert "berlin 3 0 3" in after and "damage -2" in after and "INC-9" in after

        partial = await page.post(
            f"/stock/{sku}/adjustments",
            data={"location": "berlin", "delta": "1", "reason": "count"},
            headers=HTMX,
        )
        assert partial.status_code == 200 and "<html" not in partial.text
        assert re.search(r'<section id="stock-levels"[^>]* hx-swap-oob="true"', partial.text)
        assert re.search(r'<section id="stock-ledger"[^>]* hx-swap-oob="true"', partial.text)
        assert "berlin 4 0 4" in text(partial.text)

        refused = await page.post(
            f"/stock/{sku}/adjustments",
            data={"location": "berlin", "delta": "-100", "reason": "loss"},
        )
        assert refused.status_code == 409 and "insufficient_stock" in refused.text
        unknown = await page.get("/stock/CON-NO-SUCH-SKU")
        assert unknown.status_code == 404 and "unknown_sku" in unknown.text
    assert (await system.stock(sku))["on_hand"] == 4, "inventory took the page's adjustments"

    reorder = await system.client.put(
        f"{system.url('inventory')}/v1/skus/{sku}/reorder/berlin", json={"reorder_point": 10}
    )
    assert reorder.status_code == 201, reorder.text
    async with console(system, "viewer") as viewer:
        shown = await viewer.get(f"/stock/{sku}")
        assert shown.status_code == 200 and "Adjust</button>" not in shown.text
        refused = await viewer.post(
            f"/stock/{sku}/adjustments",
            data={"location": "berlin", "delta": "1", "reason": "count"},
        )
        assert refused.status_code == 403 and "forbidden" in refused.text
        low = await viewer.get("/stock/low")
        assert low.status_code == 200, low.text
        assert re.search(rf"{sku} berlin 4 0 0 10 .*? low \d+", text(low.text)), text(low.text)
        listed = await viewer.get("/stock", params={"location": "berlin"})
        assert f'href="/stock/{sku}"' in listed.text
        warehouse = await viewer.get("/warehouse")
        assert warehouse.status_code == 200 and "Release</button>" not in warehouse.text
    assert (await system.stock(sku))["on_hand"] == 4


async def test_a_dead_letter_is_replayed_from_the_page_once(system: System) -> None:
    key = "99-CONSOLE-1"
    original = system.env.topic(CHANNEL_ORDERS)
    await send(
        system.env.kafka,
        original,
        ChannelOrderReceived(channel="ebay", headers={}, payload="{not json"),
        correlation_id=key,
    )
    await wait_for_records(
        system.env.kafka,
        system.env.topic(dead_letter_topic("order_intake")),
        lambda seen: any(s.key == key.encode() for s in seen),
        timeout_s=60,
    )
    async with console(system, "viewer") as viewer:
        shown = await viewer.get("/dead-letters/order_intake")
        assert shown.status_code == 200 and key in shown.text
        assert "Replay</button>" not in shown.text
    async with console(system, "operator") as operator:
        shown = await operator.get("/dead-letters/order_intake")
        row = next(r for r in shown.text.split("<tr>") if key in r)
        assert "rejected" in row and "malformed_json" in row and original in row
        [action] = re.findall(r'hx-post="(/dead-letters/order_intake/\d+/\d+/replay)"', row)
        replayed = await operator.post(action, headers=HTMX)
        assert replayed.status_code == 200, replayed.text
        assert f"Replayed to {original}" in text(replayed.text)
        again = await operator.post(action, headers=HTMX)
        assert again.status_code == 409 and "Already replayed" in again.text
    sent = [s for s in await read_topic(system.env.kafka, original) if s.key == key.encode()]
    assert len(sent) == 2, "the original and one replay"
    assert "x-replayed-from-dlq-offset" in sent[1].headers
    assert sent[1].value == sent[0].value


async def delivered_order(system: System, sku: str) -> str:
    order_id = await system.place(order_body([(sku, 1, "20.00")]))
    await system.wait_status(order_id, "FULFILLING")
    [fulfilment] = await system.fulfilments(order_id)
    assert (await system.ship(fulfilment["fulfilment_id"])).status_code == 200
    await system.wait_status(order_id, "SHIPPED")
    assert (await system.deliver(fulfilment["fulfilment_id"])).status_code == 200
    await system.wait_status(order_id, "COMPLETED")
    return order_id


async def requested_return(system: System, order_id: str, sku: str) -> dict[str, Any]:
    """A return the policy holds for an operator (reason `other`), once returns knows the order
    was delivered."""
    body = {"order_id": order_id, "lines": [{"sku": sku, "quantity": 1, "reason": "other"}]}
    deadline = time.monotonic() + 30
    while True:
        r = await system.client.post(f"{system.url('returns')}/v1/returns", json=body)
        code = r.json().get("error", {}).get("code") if r.status_code >= 400 else None
        if code not in ("order_not_found", "not_delivered") or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    assert created["status"] == "REQUESTED", created
    return created


async def test_a_return_is_approved_and_received_from_the_page(system: System) -> None:
    sku = "CON-RET-1"
    await system.stock_up(sku, ("berlin", 5))
    order_id = await delivered_order(system, sku)
    return_id = (await requested_return(system, order_id, sku))["return_id"]
    path = f"/returns/{return_id}"

    async with console(system, "viewer") as viewer:
        listed = await viewer.get("/returns")
        assert listed.status_code == 200 and return_id in listed.text
        shown = await viewer.get(path)
        assert shown.status_code == 200 and "REQUESTED" in shown.text
        assert "Approve</button>" not in shown.text and "Refuse</button>" not in shown.text
        refused = await viewer.post(f"{path}/approve")
        assert refused.status_code == 403 and "forbidden" in refused.text

    async with console(system, "customer_service") as cs:
        shown = await cs.get(path)
        assert "Approve</button>" in shown.text and "Refuse</button>" in shown.text
        assert "Receive</button>" not in shown.text, "customer service does not receive goods"
        approved = await cs.post(f"{path}/approve", headers=HTMX)
        assert approved.status_code == 200, approved.text
        assert f"Return {return_id} approved: now APPROVED" in text(approved.text)
        assert 'id="return-panel" hx-swap-oob="true"' in approved.text
        twice = await cs.post(f"{path}/approve")
        assert twice.status_code == 409 and "not_awaiting_review" in twice.text

    async with console(system, "warehouse") as floor:
        shown = await floor.get(path)
        assert "Receive</button>" in shown.text and "Approve</button>" not in shown.text
        too_many = await floor.post(f"{path}/receive", data={"resellable-0": "3"})
        assert too_many.status_code == 422 and "resellable-0" in too_many.text
        received = await floor.post(
            f"{path}/receive", data={"resellable-0": "0", "damaged-0": "1", "location": "berlin"}
        )
        assert received.status_code == 200, received.text
        assert f"Return {return_id} received" in text(received.text)

    r = await system.client.get(f"{system.url('returns')}/v1/returns/{return_id}")
    assert [(i["sku"], i["quantity"], i["condition"]) for i in r.json()["received"]] == [
        (sku, 1, "damaged")
    ]


async def test_the_warehouse_queue_and_a_release_from_the_page(system: System) -> None:
    async with httpx.AsyncClient(
        base_url=system.url("fulfilment"), headers=auth.bearer("warehouse"), timeout=30
    ) as fulfilment:
        await set_up_floor(fulfilment, "wh-console")
    await system.stock_up("MUG-1", ("wh-console", 5))
    order_id = await system.place(order_body([("MUG-1", 1, "12.50")]))
    await system.wait_status(order_id, "FULFILLING")

    async with console(system, "viewer") as viewer:
        shown = await viewer.get("/warehouse", params={"location": "wh-console"})
        assert shown.status_code == 200, shown.text
        assert "1 fulfilment(s) waiting" in text(shown.text)
        assert "Release</button>" not in shown.text
        refused = await viewer.post("/warehouse/wh-console/release", data={"strategy": "wave"})
        assert refused.status_code == 403 and "forbidden" in refused.text

    async with console(system, "warehouse") as floor:
        shown = await floor.get("/warehouse", params={"location": "wh-console"})
        assert "Release</button>" in shown.text
        released = await floor.post(
            "/warehouse/wh-console/release", data={"strategy": "wave", "orders_per_batch": "4"}
        )
        assert released.status_code == 200, released.text
        after = text(released.text)
        assert "1 pick list(s) released." in after
        assert "0 fulfilment(s) waiting" in after and re.search(r"Wave \d+", after), after
        [list_id] = re.findall(r'href="/warehouse/pick-lists/([^"]+)"', released.text)
        pick_list = await floor.get(f"/warehouse/pick-lists/{list_id}")
        assert pick_list.status_code == 200
        assert "MUG-1" in pick_list.text and "released" in pick_list.text
