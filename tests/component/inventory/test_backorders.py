"""Backorders and purchase orders on real Postgres: queued in order, filled oldest first as
stock is received, left when released; purchase orders received in part, idempotently; the
channels told what may still be promised."""

from __future__ import annotations

from typing import Any

from shared.contracts.inventory import (
    AvailabilityChanged,
    ChannelAvailabilityChanged,
    StockBackordered,
    StockReleased,
    StockReserved,
)
from shared.contracts.order_intake import ReleaseStock
from tests.component.inventory.support import (
    assert_stock_consistent,
    define_sku,
    receive,
    reserve,
    stock_of,
)
from tests.support.component import ComponentHarness


async def purchase_order(
    h: ComponentHarness,
    po_id: str,
    lines: dict[str, int],
    *,
    at: str = "east",
    on: str = "2026-12-20",
) -> Any:
    async with h.http() as client:
        response = await client.post(
            "/v1/purchase-orders",
            json={
                "po_id": po_id,
                "supplier": "Acme",
                "location": at,
                "expected_on": on,
                "lines": [{"sku": sku, "quantity": n} for sku, n in lines.items()],
            },
        )
    assert response.status_code in (200, 201), response.text
    return response


async def receipt(h: ComponentHarness, po_id: str, receipt_id: str, lines: dict[str, int]) -> Any:
    async with h.http() as client:
        return await client.post(
            f"/v1/purchase-orders/{po_id}/receipts",
            json={
                "receipt_id": receipt_id,
                "lines": [{"sku": sku, "quantity": n} for sku, n in lines.items()],
            },
        )


async def queue_of(h: ComponentHarness, sku: str) -> list[tuple[str, int, int, str]]:
    rows = await h.fetch(
        "SELECT order_id, quantity, filled, status FROM backorders WHERE sku = $1 ORDER BY seq",
        sku,
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_three_orders_wait_and_are_filled_oldest_first_as_stock_arrives(
    inventory: ComponentHarness,
):
    h = inventory
    await define_sku(h, "A", backorder_policy="backorder")
    await receive(h, "A", "east", 1)
    await purchase_order(h, "po-1", {"A": 6})
    for order in ("o-1", "o-2", "o-3"):
        await h.deliver(reserve(order, ("A", 2)), correlation_id=order)

    answers = await h.emitted_contracts(StockBackordered.TYPE)
    assert [a.order_id for a in answers] == ["o-1", "o-2", "o-3"]
    assert [(a.allocations[0].quantity if a.allocations else 0) for a in answers] == [1, 0, 0]
    assert [a.backordered[0].quantity for a in answers] == [1, 2, 2]
    assert {str(a.expected_on) for a in answers} == {"2026-12-20"}
    assert [a.backordered[0].location for a in answers] == ["east"] * 3
    assert await queue_of(h, "A") == [
        ("o-1", 1, 0, "queued"),
        ("o-2", 2, 0, "queued"),
        ("o-3", 2, 0, "queued"),
    ]

    response = await receipt(h, "po-1", "r-1", {"A": 2})  # fills o-1, one unit towards o-2
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "open"
    assert [a.order_id for a in await h.emitted_contracts(StockReserved.TYPE)] == ["o-1"]
    [filled] = await h.emitted_contracts(StockReserved.TYPE)
    assert sum(a.quantity for a in filled.allocations) == 2
    assert await queue_of(h, "A") == [
        ("o-1", 1, 1, "filled"),
        ("o-2", 2, 1, "queued"),
        ("o-3", 2, 0, "queued"),
    ]
    stock = await stock_of(h, "A")
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (3, 3, 0)

    response = await receipt(h, "po-1", "r-2", {"A": 4})  # the rest: o-2 and o-3, one left
    assert response.json()["status"] == "received"
    assert [a.order_id for a in await h.emitted_contracts(StockReserved.TYPE)] == [
        "o-1",
        "o-2",
        "o-3",
    ]
    stock = await stock_of(h, "A")
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (7, 6, 1)
    await assert_stock_consistent(h)


async def test_a_receipt_sent_again_is_applied_once(inventory: ComponentHarness):
    h = inventory
    await define_sku(h, "A")
    await purchase_order(h, "po-1", {"A": 5})
    first = await receipt(h, "po-1", "r-1", {"A": 3})
    again = await receipt(h, "po-1", "r-1", {"A": 3})
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert first.json()["lines"] == [{"sku": "A", "quantity": 5, "received": 3, "outstanding": 2}]
    assert (await stock_of(h, "A"))["on_hand"] == 3
    await assert_stock_consistent(h)


async def test_purchase_order_refusals_name_what_is_wrong(inventory: ComponentHarness):
    h = inventory
    await define_sku(h, "A")
    await define_sku(h, "B")
    await purchase_order(h, "po-1", {"A": 5})
    same = await purchase_order(h, "po-1", {"A": 5})
    assert same.status_code == 200
    async with h.http() as client:
        other = await client.post(
            "/v1/purchase-orders",
            json={
                "po_id": "po-1",
                "location": "east",
                "expected_on": "2026-12-21",
                "lines": [{"sku": "A", "quantity": 5}],
            },
        )
        unknown = await client.post(
            "/v1/purchase-orders",
            json={
                "po_id": "po-2",
                "location": "east",
                "expected_on": "2026-12-21",
                "lines": [{"sku": "NOPE", "quantity": 5}],
            },
        )
        twice = await client.post(
            "/v1/purchase-orders",
            json={
                "po_id": "po-3",
                "location": "east",
                "expected_on": "2026-12-21",
                "lines": [{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 2}],
            },
        )
        viewer = h.http("viewer")
        async with viewer:
            forbidden = await viewer.post(
                "/v1/purchase-orders/po-1/receipts",
                json={"receipt_id": "r-x", "lines": [{"sku": "A", "quantity": 1}]},
            )
    assert (other.status_code, other.json()["error"]["code"]) == (409, "purchase_order_exists")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_sku")
    assert twice.status_code == 422
    assert forbidden.status_code == 403
    not_on_it = await receipt(h, "po-1", "r-1", {"B": 1})
    assert (not_on_it.status_code, not_on_it.json()["error"]["code"]) == (
        409,
        "not_on_purchase_order",
    )
    async with h.http() as client:
        cancelled = await client.post("/v1/purchase-orders/po-1/cancel")
    assert cancelled.json()["status"] == "cancelled"
    closed = await receipt(h, "po-1", "r-2", {"A": 1})
    assert (closed.status_code, closed.json()["error"]["code"]) == (409, "purchase_order_closed")
    assert (await stock_of(h, "A"))["on_hand"] == 0


async def test_a_released_backorder_leaves_its_place_and_gives_back_what_it_held(
    inventory: ComponentHarness,
):
    h = inventory
    await define_sku(h, "A", backorder_policy="backorder")
    for order in ("o-1", "o-2"):
        await h.deliver(reserve(order, ("A", 2)), correlation_id=order)
    await receive(h, "A", "east", 1)  # one unit towards o-1
    assert await queue_of(h, "A") == [("o-1", 2, 1, "queued"), ("o-2", 2, 0, "queued")]

    await h.deliver(ReleaseStock(order_id="o-1", reason="customer"), correlation_id="o-1")
    [released] = await h.emitted_contracts(StockReleased.TYPE)
    assert [(r.sku, r.quantity) for r in released.released] == [("A", 1)]
    # Its unit goes on to o-2, which now waits for one more.
    assert await queue_of(h, "A") == [("o-1", 2, 1, "released"), ("o-2", 2, 1, "queued")]
    await receive(h, "A", "east", 1)
    assert [a.order_id for a in await h.emitted_contracts(StockReserved.TYPE)] == ["o-2"]
    await assert_stock_consistent(h)


async def test_a_new_order_does_not_overtake_the_queue(inventory: ComponentHarness):
    h = inventory
    await define_sku(h, "A", backorder_policy="backorder")
    await define_sku(h, "D")  # deny: refused when short
    await h.deliver(reserve("o-1", ("A", 2)), correlation_id="o-1")
    await receive(h, "A", "east", 3)  # o-1 filled, 1 free
    await h.deliver(reserve("o-2", ("A", 2)), correlation_id="o-2")
    [o2] = [a for a in await h.emitted_contracts(StockBackordered.TYPE) if a.order_id == "o-2"]
    assert (o2.allocations[0].quantity, o2.backordered[0].quantity) == (1, 1)
    await h.deliver(reserve("o-3", ("A", 1), ("D", 1)), correlation_id="o-3")
    refused = [e for e in await h.emitted() if e.correlation_id == "o-3"]
    assert [e.type for e in refused] == ["StockReservationFailed"]
    await assert_stock_consistent(h)


async def test_reserve_stock_sent_again_repeats_the_answer_and_queues_once(
    inventory: ComponentHarness,
):
    h = inventory
    await define_sku(h, "A", backorder_policy="backorder")
    envelope = await h.deliver(reserve("o-1", ("A", 2)), correlation_id="o-1")
    await h.deliver(envelope.contract(), correlation_id="o-1")  # re-sent: a new message id
    await h.deliver(reserve("o-1", ("A", 2)), correlation_id="o-1", envelope=envelope)  # dup
    answers = await h.emitted_contracts(StockBackordered.TYPE)
    assert len(answers) == 2 and answers[0] == answers[1]
    assert await queue_of(h, "A") == [("o-1", 2, 0, "queued")]
    await receive(h, "A", "east", 2)
    await h.deliver(reserve("o-1", ("A", 2)), correlation_id="o-1")  # re-sent once filled
    reserved = await h.emitted_contracts(StockReserved.TYPE)
    assert len(reserved) == 2 and reserved[0] == reserved[1]
    await assert_stock_consistent(h)


async def test_channels_are_told_what_may_still_be_promised(inventory: ComponentHarness):
    h = inventory
    await define_sku(h, "A", backorder_policy="backorder")
    await define_sku(h, "P", backorder_policy="preorder", release_date="2027-01-15")
    await purchase_order(h, "po-1", {"A": 10})
    await h.deliver(reserve("o-1", ("A", 3)), correlation_id="o-1")
    [*_, last] = [a for a in await h.emitted_contracts(AvailabilityChanged.TYPE) if a.sku == "A"]
    assert (last.available, last.backordered, last.incoming, last.available_to_promise) == (
        0,
        3,
        10,
        7,
    )
    per_channel = {
        c.channel: c.available
        for c in await h.emitted_contracts(ChannelAvailabilityChanged.TYPE)
        if c.sku == "A"
    }
    assert per_channel["shopify"] == 7 and per_channel["amazon"] == 5  # safety stock 2
    async with h.http() as client:
        sku = (await client.get("/v1/skus/P")).json()
        missing = await client.put("/v1/skus/Q", json={"name": "Q", "backorder_policy": "preorder"})
    assert (sku["backorder_policy"], sku["release_date"]) == ("preorder", "2027-01-15")
    assert missing.status_code == 422
    assert "release_date" in missing.text


async def test_a_transfer_on_its_way_dates_backorders_and_its_arrival_fills_them(
    inventory: ComponentHarness,
):
    h = inventory
    await define_sku(h, "A", backorder_policy="backorder")
    await receive(h, "A", "west", 3)
    await h.deliver(reserve("o-1", ("A", 3)), correlation_id="o-1")  # takes west's 3
    async with h.http() as client:
        created = await client.post(
            "/v1/transfers",
            json={
                "from_location": "west",
                "to_location": "east",
                "lines": [{"sku": "A", "quantity": 2}],
                "expected_on": "2026-12-15",
            },
        )
        assert created.status_code == 201, created.text
        transfer_id = created.json()["transfer_id"]
    await h.deliver(ReleaseStock(order_id="o-1", reason="customer"), correlation_id="o-1")
    async with h.http() as client:
        shipped = await client.post(f"/v1/transfers/{transfer_id}/ship")
        assert shipped.status_code == 200, shipped.text
    await h.deliver(reserve("o-2", ("A", 3)), correlation_id="o-2")  # 1 left at west
    [o2] = [a for a in await h.emitted_contracts(StockBackordered.TYPE) if a.order_id == "o-2"]
    assert [(b.quantity, b.location, str(b.expected_on)) for b in o2.backordered] == [
        (2, "east", "2026-12-15")
    ]
    assert (await stock_of(h, "A"))["incoming"] == 2
    async with h.http() as client:
        arrived = await client.post(
            f"/v1/transfers/{transfer_id}/receipts",
            json={"receipt_id": "t-r1", "lines": [{"sku": "A", "quantity": 2}]},
        )
        assert arrived.status_code in (200, 201), arrived.text
    assert [a.order_id for a in await h.emitted_contracts(StockReserved.TYPE)] == ["o-1", "o-2"]
    await assert_stock_consistent(h)


async def test_the_queue_is_listed_oldest_first(inventory: ComponentHarness):
    h = inventory
    await define_sku(h, "A", backorder_policy="backorder")
    for order in ("o-1", "o-2"):
        await h.deliver(reserve(order, ("A", 2)), correlation_id=order)
    await receive(h, "A", "east", 2)
    async with h.http("viewer") as client:
        waiting = await client.get("/v1/backorders", params={"sku": "A"})
        everything = await client.get("/v1/backorders", params={"status": "filled"})
    assert waiting.status_code == 200, waiting.text
    assert [(b["order_id"], b["quantity"], b["filled"]) for b in waiting.json()["backorders"]] == [
        ("o-2", 2, 0)
    ]
    assert [b["order_id"] for b in everything.json()["backorders"]] == ["o-1"]
