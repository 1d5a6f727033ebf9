"""Fulfilment's real handlers and HTTP API on a real Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.fulfilment.app import build
from services.fulfilment.domain import fulfilment_id_for, issue_tracking_number
from shared.contracts.common import Address, Allocation
from shared.contracts.fulfilment import (
    FulfilmentCancelled,
    FulfilmentCreated,
    FulfilmentDelivered,
    FulfilmentFailed,
    FulfilmentShipped,
)
from shared.contracts.order_intake import CancelFulfilment, CreateFulfilment
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component

US_ADDRESS = Address(line1="1 Main St", city="Springfield", postal_code="12345", country="US")


@pytest.fixture
async def h(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


@pytest.fixture
async def client(h: ComponentHarness) -> AsyncIterator[httpx.AsyncClient]:
    async with h.http() as c:
        yield c


def create_command(order_id: str, *allocations: tuple[str, str, int]) -> CreateFulfilment:
    """allocations: (sku, location, quantity); each becomes its own order line."""
    return CreateFulfilment(
        order_id=order_id,
        allocations=tuple(
            Allocation(line_id=f"l{i}", sku=sku, location=location, quantity=quantity)
            for i, (sku, location, quantity) in enumerate(allocations)
        ),
        shipping_address=US_ADDRESS,
        shipping_method="standard",
    )


async def create(h: ComponentHarness, order_id: str, *allocations: tuple[str, str, int]) -> None:
    await h.deliver(create_command(order_id, *allocations), correlation_id=order_id)


async def cancel(h: ComponentHarness, order_id: str, reason: str = "customer asked") -> None:
    await h.deliver(CancelFulfilment(order_id=order_id, reason=reason), correlation_id=order_id)


async def statuses(h: ComponentHarness, order_id: str) -> dict[str, str]:
    rows = await h.fetch(
        "SELECT location, status FROM fulfilments WHERE order_id = $1 ORDER BY location", order_id
    )
    return {r["location"]: r["status"] for r in rows}


async def ship(client: httpx.AsyncClient, fulfilment_id: str, **body: Any) -> httpx.Response:
    if body:
        return await client.post(f"/v1/fulfilments/{fulfilment_id}/ship", json=body)
    return await client.post(f"/v1/fulfilments/{fulfilment_id}/ship")


async def carrier_event(
    client: httpx.AsyncClient, carrier: str, tracking_number: str, status: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/carriers/{carrier}/events",
        json={"tracking_number": tracking_number, "status": status, **extra},
    )


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


# --- CreateFulfilment ----------------------------------------------------------------------


async def test_create_makes_one_fulfilment_per_location_with_lines_summed(h: ComponentHarness):
    await create(h, "o-1", ("SKU-A", "WH-1", 2), ("SKU-B", "WH-2", 1), ("SKU-A", "WH-1", 3))

    [created] = await h.emitted_contracts("FulfilmentCreated")
    assert isinstance(created, FulfilmentCreated)
    assert created.order_id == "o-1"
    refs = {ref.location: ref for ref in created.fulfilments}
    assert set(refs) == {"WH-1", "WH-2"}
    assert refs["WH-1"].fulfilment_id == fulfilment_id_for("o-1", "WH-1")
    assert [(ln.sku, ln.quantity) for ln in refs["WH-1"].lines] == [("SKU-A", 5)]
    assert [(ln.sku, ln.quantity) for ln in refs["WH-2"].lines] == [("SKU-B", 1)]

    assert await statuses(h, "o-1") == {"WH-1": "created", "WH-2": "created"}
    lines = await h.fetch("SELECT fulfilment_id, sku, quantity FROM fulfilment_lines")
    assert sorted((r["sku"], r["quantity"]) for r in lines) == [("SKU-A", 5), ("SKU-B", 1)]
    [envelope] = await h.emitted("FulfilmentCreated")
    assert envelope.correlation_id == "o-1"


async def test_resent_create_creates_nothing_new_and_answers_the_same(h: ComponentHarness):
    await create(h, "o-1", ("SKU-A", "WH-1", 2), ("SKU-B", "WH-2", 1))
    # The saga re-sends after a deadline: a new message id; here even with other allocations.
    await create(h, "o-1", ("SKU-A", "WH-3", 9))

    first, second = await h.emitted_contracts("FulfilmentCreated")
    assert second == first
    assert await statuses(h, "o-1") == {"WH-1": "created", "WH-2": "created"}
    [count] = await h.fetch("SELECT count(*) AS n FROM fulfilment_lines")
    assert count["n"] == 2


async def test_an_exact_redelivery_is_dropped_by_the_inbox(h: ComponentHarness):
    command = create_command("o-1", ("SKU-A", "WH-1", 1))
    envelope = await h.deliver(command, correlation_id="o-1")
    await h.deliver(command, correlation_id="o-1", envelope=envelope)
    assert len(await h.emitted("FulfilmentCreated")) == 1


async def test_create_without_allocations_is_dead_lettered_not_half_applied(h: ComponentHarness):
    await h.deliver(
        CreateFulfilment(order_id="o-1", allocations=(), shipping_address=US_ADDRESS),
        correlation_id="o-1",
    )
    assert [headers["x-dlq-reason"] for _, headers in h.dead_letters] == ["handler_failed"]
    assert "no allocations" in h.dead_letters[0][1]["x-dlq-error"]
    assert await h.emitted() == []


# --- CancelFulfilment ----------------------------------------------------------------------


async def test_cancel_cancels_what_has_not_shipped(h: ComponentHarness):
    await create(h, "o-1", ("SKU-A", "WH-1", 1), ("SKU-B", "WH-2", 1))
    await cancel(h, "o-1", "payment declined")

    [cancelled] = await h.emitted_contracts("FulfilmentCancelled")
    assert isinstance(cancelled, FulfilmentCancelled)
    assert sorted(cancelled.cancelled) == sorted(
        [fulfilment_id_for("o-1", "WH-1"), fulfilment_id_for("o-1", "WH-2")]
    )
    assert cancelled.already_shipped == ()
    assert cancelled.reason == "payment declined"
    assert await statuses(h, "o-1") == {"WH-1": "cancelled", "WH-2": "cancelled"}
    rows = await h.fetch("SELECT cancel_reason, cancelled_at FROM fulfilments")
    assert all(r["cancel_reason"] == "payment declined" and r["cancelled_at"] for r in rows)


async def test_cancel_lists_shipped_fulfilments_as_already_shipped(
    h: ComponentHarness, client: httpx.AsyncClient
):
    await create(h, "o-1", ("SKU-A", "WH-1", 1), ("SKU-B", "WH-2", 1))
    shipped_id = fulfilment_id_for("o-1", "WH-1")
    assert (await ship(client, shipped_id)).status_code == 200
    await cancel(h, "o-1")

    [cancelled] = await h.emitted_contracts("FulfilmentCancelled")
    assert cancelled.cancelled == (fulfilment_id_for("o-1", "WH-2"),)
    assert cancelled.already_shipped == (shipped_id,)
    assert await statuses(h, "o-1") == {"WH-1": "shipped", "WH-2": "cancelled"}


async def test_cancel_with_nothing_to_cancel_still_answers(h: ComponentHarness):
    await cancel(h, "o-unknown", "payment declined")
    [cancelled] = await h.emitted_contracts("FulfilmentCancelled")
    assert (cancelled.order_id, cancelled.cancelled, cancelled.already_shipped) == (
        "o-unknown",
        (),
        (),
    )
    assert cancelled.reason == "payment declined"


async def test_resent_cancel_answers_the_same(h: ComponentHarness):
    await create(h, "o-1", ("SKU-A", "WH-1", 1))
    await cancel(h, "o-1", "customer asked")
    await cancel(h, "o-1", "deadline passed")
    first, second = await h.emitted_contracts("FulfilmentCancelled")
    assert second == first
    assert first.cancelled == (fulfilment_id_for("o-1", "WH-1"),)


async def test_create_after_cancel_does_not_resurrect(h: ComponentHarness):
    await cancel(h, "o-1", "customer asked")
    await create(h, "o-1", ("SKU-A", "WH-1", 1))

    assert await h.fetch("SELECT * FROM fulfilments") == []
    assert await h.emitted("FulfilmentCreated") == []
    answers = await h.emitted_contracts("FulfilmentCancelled")
    assert len(answers) == 2
    assert answers[1].order_id == "o-1"
    assert answers[1].cancelled == ()
    assert answers[1].reason == "customer asked"


async def test_resent_create_after_cancel_keeps_the_fulfilments_cancelled(h: ComponentHarness):
    await create(h, "o-1", ("SKU-A", "WH-1", 1))
    await cancel(h, "o-1")
    await h.clear_outbox()
    await create(h, "o-1", ("SKU-A", "WH-1", 1))

    assert await statuses(h, "o-1") == {"WH-1": "cancelled"}
    assert await h.emitted("FulfilmentCreated") == []
    [answer] = await h.emitted_contracts("FulfilmentCancelled")
    assert answer.cancelled == (fulfilment_id_for("o-1", "WH-1"),)


async def test_cancel_leaves_a_failed_shipment_failed_and_says_so(
    h: ComponentHarness, client: httpx.AsyncClient
):
    await create(h, "o-1", ("SKU-A", "WH-1", 1))
    fid = fulfilment_id_for("o-1", "WH-1")
    shipped = (await ship(client, fid, carrier="ups", tracking_number="1Z9")).json()
    assert shipped["status"] == "shipped"
    assert (await carrier_event(client, "ups", "1Z9", "exception")).status_code == 200
    await cancel(h, "o-1")

    [answer] = await h.emitted_contracts("FulfilmentCancelled")
    assert (answer.cancelled, answer.already_shipped, answer.already_failed) == ((), (), (fid,))
    assert await statuses(h, "o-1") == {"WH-1": "failed"}


# --- ship ----------------------------------------------------------------------------------


async def test_ship_without_carrier_chooses_one_and_issues_a_tracking_number(
    h: ComponentHarness, client: httpx.AsyncClient
):
    await create(h, "o-1", ("SKU-A", "WH-1", 2), ("SKU-B", "WH-1", 1))
    fid = fulfilment_id_for("o-1", "WH-1")

    response = await ship(client, fid)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "shipped"
    assert body["carrier"] == "ups"  # the destination is in the US
    assert body["tracking_number"] == issue_tracking_number("ups", fid)
    assert body["shipped_at"] is not None
    [shipped] = await h.emitted_contracts("FulfilmentShipped")
    assert isinstance(shipped, FulfilmentShipped)
    assert (shipped.order_id, shipped.fulfilment_id, shipped.location) == ("o-1", fid, "WH-1")
    assert [(ln.sku, ln.quantity) for ln in shipped.lines] == [("SKU-A", 2), ("SKU-B", 1)]
    assert (shipped.carrier, shipped.tracking_number) == ("ups", body["tracking_number"])
    [envelope] = await h.emitted("FulfilmentShipped")
    assert envelope.correlation_id == "o-1"

    # A retried request without a body resolves to the same shipment: 200, no second event.
    again = await ship(client, fid)
    assert again.status_code == 200
    assert again.json()["tracking_number"] == body["tracking_number"]
    assert len(await h.emitted("FulfilmentShipped")) == 1


async def test_ship_with_carrier_and_tracking_number(
    h: ComponentHarness, client: httpx.AsyncClient
):
    await create(h, "o-1", ("SKU-A", "WH-1", 1))
    fid = fulfilment_id_for("o-1", "WH-1")

    response = await ship(client, fid, carrier="DHL", tracking_number="JD0001")

    assert response.status_code == 200
    assert (response.json()["carrier"], response.json()["tracking_number"]) == ("dhl", "JD0001")
    [shipped] = await h.emitted_contracts("FulfilmentShipped")
    assert (shipped.carrier, shipped.tracking_number) == ("dhl", "JD0001")

    same = await ship(client, fid, carrier="dhl", tracking_number="JD0001")
    assert same.status_code == 200
    other = await ship(client, fid, carrier="dhl", tracking_number="JD0002")
    assert other.status_code == 409
    assert error_code(other) == "already_shipped"
    assert len(await h.emitted("FulfilmentShipped")) == 1
    [row] = await h.fetch("SELECT tracking_number FROM fulfilments")
    assert row["tracking_number"] == "JD0001"


async def test_ship_with_a_carrier_only_issues_a_number_of_that_carrier(
    h: ComponentHarness, client: httpx.AsyncClient
):
    await create(h, "o-1", ("SKU-A", "WH-1", 1))
    fid = fulfilment_id_for("o-1", "WH-1")
    body = (await ship(client, fid, carrier="fedex")).json()
    assert (body["carrier"], body["tracking_number"]) == (
        "fedex",
        issue_tracking_number("fedex", fid),
    )


async def test_ship_a_cancelled_fulfilment_is_409(h: ComponentHarness, client: httpx.AsyncClient):
    await create(h, "o-1", ("SKU-A", "WH-1", 1))
    await cancel(h, "o-1")
    response = await ship(client, fulfilment_id_for("o-1", "WH-1"))
    assert response.status_code == 409
    assert error_code(response) == "fulfilment_cancelled"
    assert await h.emitted("FulfilmentShipped") == []
    assert await statuses(h, "o-1") == {"WH-1": "cancelled"}


async def test_ship_refusals(h: ComponentHarness, client: httpx.AsyncClient):
    await create(h, "o-1", ("SKU-A", "WH-1", 1), ("SKU-B", "WH-2", 1))
    first, second = fulfilment_id_for("o-1", "WH-1"), fulfilment_id_for("o-1", "WH-2")

    missing = await ship(client, "no-such-id")
    assert (missing.status_code, error_code(missing)) == (404, "fulfilment_not_found")

    no_carrier = await ship(client, first, tracking_number="X1")
    assert (no_carrier.status_code, error_code(no_carrier)) == (422, "carrier_required")

    bad_body = await ship(client, first, carrier="")
    assert (bad_body.status_code, error_code(bad_body)) == (422, "validation_failed")

    assert (await ship(client, first, carrier="ups", tracking_number="1Z1")).status_code == 200
    taken = await ship(client, second, carrier="ups", tracking_number="1Z1")
    assert (taken.status_code, error_code(taken)) == (409, "tracking_number_in_use")
    assert await statuses(h, "o-1") == {"WH-1": "shipped", "WH-2": "created"}
    assert len(await h.emitted("FulfilmentShipped")) == 1


# --- deliver -------------------------------------------------------------------------------


async def test_deliver_before_ship_is_409(h: ComponentHarness, client: httpx.AsyncClient):
    await create(h, "o-1", ("SKU-A", "WH-1", 1))
    response = await client.post(f"/v1/fulfilments/{fulfilment_id_for('o-1', 'WH-1')}/deliver")
    assert response.status_code == 409
    assert error_code(response) == "not_shipped"
    assert response.json()["error"]["details"]["current_status"] == "created"
    assert await h.emitted("FulfilmentDelivered") == []


async def test_deliver_twice_emits_one_event(h: ComponentHarness, client: httpx.AsyncClient):
    await create(h, "o-1", ("SKU-A", "WH-1", 1))
    fid = fulfilment_id_for("o-1", "WH-1")
    await ship(client, fid)

    first = await client.post(f"/v1/fulfilments/{fid}/deliver")
    second = await client.post(f"/v1/fulfilments/{fid}/deliver")

    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["status"] == second.json()["status"] == "delivered"
    assert second.json()["delivered_at"] == first.json()["delivered_at"]
    [delivered] = await h.emitted_contracts("FulfilmentDelivered")
    assert isinstance(delivered, FulfilmentDelivered)
    assert (delivered.order_id, delivered.fulfilment_id) == ("o-1", fid)


async def test_deliver_unknown_or_cancelled(h: ComponentHarness, client: httpx.AsyncClient):
    missing = await client.post("/v1/fulfilments/nope/deliver")
    assert (missing.status_code, error_code(missing)) == (404, "fulfilment_not_found")
    await create(h, "o-1", ("SKU-A", "WH-1", 1))
    await cancel(h, "o-1")
    cancelled = await client.post(f"/v1/fulfilments/{fulfilment_id_for('o-1', 'WH-1')}/deliver")
    assert (cancelled.status_code, error_code(cancelled)) == (409, "fulfilment_cancelled")


# --- carrier events ------------------------------------------------------------------------


async def shipped_with(
    h: ComponentHarness, client: httpx.AsyncClient, order_id: str, tracking: str
) -> str:
    await create(h, order_id, ("SKU-A", "WH-1", 1))
    fid = fulfilment_id_for(order_id, "WH-1")
    assert (await ship(client, fid, carrier="ups", tracking_number=tracking)).status_code == 200
    return fid


async def test_carrier_delivered_event_delivers_once(
    h: ComponentHarness, client: httpx.AsyncClient
):
    fid = await shipped_with(h, client, "o-1", "1Z1")

    moving = await carrier_event(
        client, "ups", "1Z1", "in_transit", at="2030-01-01T08:00:00Z", description="hub"
    )
    assert moving.status_code == 200
    assert moving.json()["outcome"] == "recorded"
    assert moving.json()["fulfilment"]["status"] == "shipped"

    event = {"at": "2030-01-02T10:30:00+00:00", "description": "left at door"}
    delivered = await carrier_event(client, "UPS", "1Z1", "delivered", **event)
    assert delivered.status_code == 200
    assert delivered.json()["outcome"] == "delivered"
    body = delivered.json()["fulfilment"]
    assert body["status"] == "delivered"
    assert body["delivered_at"].startswith("2030-01-02T10:30:00")
    assert [e["status"] for e in body["tracking_events"]] == ["in_transit", "delivered"]
    assert body["tracking_events"][1]["description"] == "left at door"

    repeat = await carrier_event(client, "ups", "1Z1", "delivered", **event)
    assert repeat.json()["outcome"] == "duplicate"
    [only] = await h.emitted_contracts("FulfilmentDelivered")
    assert only.fulfilment_id == fid
    assert only.delivered_at.isoformat().startswith("2030-01-02T10:30:00")
    events = await h.fetch("SELECT status FROM tracking_events ORDER BY id")
    assert [r["status"] for r in events] == ["in_transit", "delivered"]


async def test_carrier_exception_fails_the_shipment_once(
    h: ComponentHarness, client: httpx.AsyncClient
):
    fid = await shipped_with(h, client, "o-1", "1Z1")

    response = await carrier_event(client, "ups", "1Z1", "exception", description="damaged")
    assert response.status_code == 200
    assert response.json()["outcome"] == "failed"
    assert response.json()["fulfilment"]["status"] == "failed"
    assert response.json()["fulfilment"]["failure_reason"] == "exception: damaged"
    [failed] = await h.emitted_contracts("FulfilmentFailed")
    assert isinstance(failed, FulfilmentFailed)
    assert (failed.order_id, failed.fulfilment_id, failed.reason) == (
        "o-1",
        fid,
        "exception: damaged",
    )

    # The same event without a time, again, and another failure: one effect only.
    again = await carrier_event(client, "ups", "1Z1", "exception", description="damaged")
    assert again.json()["outcome"] == "duplicate"
    returned = await carrier_event(client, "ups", "1Z1", "returned_to_sender")
    assert returned.json()["outcome"] == "recorded"
    assert len(await h.emitted("FulfilmentFailed")) == 1
    deliver = await client.post(f"/v1/fulfilments/{fid}/deliver")
    assert (deliver.status_code, error_code(deliver)) == (409, "fulfilment_failed")


async def test_returned_to_sender_after_delivery_does_not_fail_it(
    h: ComponentHarness, client: httpx.AsyncClient
):
    await shipped_with(h, client, "o-1", "1Z1")
    await carrier_event(client, "ups", "1Z1", "delivered")
    response = await carrier_event(client, "ups", "1Z1", "returned_to_sender")
    assert response.json()["outcome"] == "recorded"
    assert response.json()["fulfilment"]["status"] == "delivered"
    assert await h.emitted("FulfilmentFailed") == []


async def test_carrier_event_refusals(h: ComponentHarness, client: httpx.AsyncClient):
    await shipped_with(h, client, "o-1", "1Z1")

    unknown = await carrier_event(client, "ups", "NOPE", "in_transit")
    assert (unknown.status_code, error_code(unknown)) == (404, "unknown_tracking_number")
    other_carrier = await carrier_event(client, "dhl", "1Z1", "delivered")
    assert (other_carrier.status_code, error_code(other_carrier)) == (
        404,
        "unknown_tracking_number",
    )
    bad_status = await carrier_event(client, "ups", "1Z1", "teleported")
    assert (bad_status.status_code, error_code(bad_status)) == (422, "validation_failed")
    assert "status" in bad_status.json()["error"]["message"]
    missing = await client.post("/v1/carriers/ups/events", json={"status": "delivered"})
    assert (missing.status_code, error_code(missing)) == (422, "validation_failed")
    assert await h.fetch("SELECT * FROM tracking_events") == []
    assert await h.emitted("FulfilmentDelivered") == []


# --- reading -------------------------------------------------------------------------------


async def test_get_endpoints(h: ComponentHarness, client: httpx.AsyncClient):
    await create(h, "o-1", ("SKU-A", "WH-1", 2), ("SKU-B", "WH-2", 1))
    await create(h, "o-2", ("SKU-A", "WH-1", 1))
    fid = fulfilment_id_for("o-1", "WH-1")
    await ship(client, fid, carrier="ups", tracking_number="1Z1")
    await carrier_event(client, "ups", "1Z1", "in_transit", description="hub")

    listed = await client.get("/v1/fulfilments", params={"order_id": "o-1"})
    assert listed.status_code == 200
    assert listed.json()["order_id"] == "o-1"
    found = listed.json()["fulfilments"]
    assert [(f["location"], f["status"]) for f in found] == [
        ("WH-1", "shipped"),
        ("WH-2", "created"),
    ]

    one = await client.get(f"/v1/fulfilments/{fid}")
    assert one.status_code == 200
    body = one.json()
    assert body == found[0]
    assert body["order_id"] == "o-1"
    assert body["lines"] == [{"sku": "SKU-A", "quantity": 2, "short": 0}]
    assert (body["carrier"], body["tracking_number"]) == ("ups", "1Z1")
    assert body["shipping_address"]["country"] == "US"
    assert body["shipping_method"] == "standard"
    assert body["created_at"] and body["shipped_at"]
    assert body["delivered_at"] is None
    assert [(e["status"], e["description"]) for e in body["tracking_events"]] == [
        ("in_transit", "hub")
    ]

    nothing = await client.get("/v1/fulfilments", params={"order_id": "o-none"})
    assert nothing.status_code == 200
    assert nothing.json()["fulfilments"] == []


async def test_get_errors(client: httpx.AsyncClient):
    no_order = await client.get("/v1/fulfilments")
    assert no_order.status_code == 422
    assert error_code(no_order) == "validation_failed"
    assert "order_id" in no_order.json()["error"]["message"]

    missing = await client.get("/v1/fulfilments/no-such-id")
    assert missing.status_code == 404
    assert error_code(missing) == "fulfilment_not_found"


# --- racing ship, deliver and cancel ---------------------------------------------------------


async def wait_until_blocked_on_a_lock(h: ComponentHarness) -> None:
    for _ in range(500):
        waiting = await h.pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("nothing waited for the row lock")


async def test_ship_waits_for_a_cancel_holding_the_row_and_then_refuses(
    h: ComponentHarness, client: httpx.AsyncClient
):
    await create(h, "o-1", ("SKU-A", "WH-1", 1))
    fid = fulfilment_id_for("o-1", "WH-1")
    async with h.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("SELECT 1 FROM fulfilments WHERE fulfilment_id = $1 FOR UPDATE", fid)
        shipping = asyncio.create_task(ship(client, fid))
        await wait_until_blocked_on_a_lock(h)
        assert not shipping.done()
        await conn.execute(
            "UPDATE fulfilments SET status = 'cancelled' WHERE fulfilment_id = $1", fid
        )
        await tx.commit()
    response = await shipping
    assert (response.status_code, error_code(response)) == (409, "fulfilment_cancelled")
    assert await h.emitted("FulfilmentShipped") == []


async def test_cancel_waits_for_a_ship_holding_the_row_and_reports_it_shipped(
    h: ComponentHarness,
):
    await create(h, "o-1", ("SKU-A", "WH-1", 1))
    fid = fulfilment_id_for("o-1", "WH-1")
    async with h.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("SELECT 1 FROM fulfilments WHERE fulfilment_id = $1 FOR UPDATE", fid)
        cancelling = asyncio.create_task(cancel(h, "o-1"))
        await wait_until_blocked_on_a_lock(h)
        await conn.execute(
            "UPDATE fulfilments SET status = 'shipped', carrier = 'ups', tracking_number = '1Z1'"
            " WHERE fulfilment_id = $1",
            fid,
        )
        await tx.commit()
    await cancelling
    [answer] = await h.emitted_contracts("FulfilmentCancelled")
    assert (answer.cancelled, answer.already_shipped) == ((), (fid,))
    assert await statuses(h, "o-1") == {"WH-1": "shipped"}


async def test_a_racing_ship_and_cancel_have_exactly_one_winner(
    h: ComponentHarness, client: httpx.AsyncClient
):
    for n in range(8):
        order_id = f"o-{n}"
        await create(h, order_id, ("SKU-A", "WH-1", 1))
        fid = fulfilment_id_for(order_id, "WH-1")
        response, _ = await asyncio.gather(ship(client, fid), cancel(h, order_id))
        answer = (await h.emitted_contracts("FulfilmentCancelled"))[-1]
        shipped = await h.emitted_contracts("FulfilmentShipped")
        if response.status_code == 200:
            assert answer.already_shipped == (fid,)
            assert answer.cancelled == ()
            assert await statuses(h, order_id) == {"WH-1": "shipped"}
            assert [s.fulfilment_id for s in shipped][-1] == fid
        else:
            assert error_code(response) == "fulfilment_cancelled"
            assert answer.cancelled == (fid,)
            assert await statuses(h, order_id) == {"WH-1": "cancelled"}
            assert fid not in {s.fulfilment_id for s in shipped}


async def test_carrier_events_need_that_carriers_token(h: ComponentHarness):
    """Issue 13's repro: anyone could mark any parcel delivered or lost."""
    await create(h, "o-auth", ("SKU-A", "WH-1", 1))
    [fulfilment_id] = [
        r["fulfilment_id"] for r in await h.fetch("SELECT fulfilment_id FROM fulfilments")
    ]
    async with h.http("warehouse") as client:
        shipped = (
            await ship(client, fulfilment_id, carrier="dhl", tracking_number="T-AUTH")
        ).json()
    async with h.anonymous() as client:
        anonymous = await carrier_event(client, "dhl", "T-AUTH", "delivered")
    async with h.http("carrier:ups") as client:
        other_carrier = await carrier_event(client, "dhl", "T-AUTH", "delivered")
    assert anonymous.status_code == 401 and other_carrier.status_code == 403
    assert (await statuses(h, "o-auth")) == {"WH-1": "shipped"}
    async with h.http("carrier:dhl") as client:
        delivered = await carrier_event(client, "dhl", "T-AUTH", "delivered")
    assert delivered.status_code == 200, delivered.text
    assert shipped["status"] == "shipped"
    assert (await statuses(h, "o-auth")) == {"WH-1": "delivered"}
