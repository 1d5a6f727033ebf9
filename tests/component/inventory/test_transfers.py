"""Transfers between locations over HTTP on a real Postgres: ship, receive in part and in full,
cancel; free stock only; retries and concurrent calls move stock once; stock conserved."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.inventory.transfers.store import TransferStore
from shared.contracts.inventory import AvailabilityChanged
from tests.component.inventory.support import (
    assert_stock_consistent,
    define_sku,
    new_order_id,
    receive,
    reserve,
    stock_of,
)
from tests.support.component import ComponentHarness

pytestmark = pytest.mark.component

TRANSFER_REASONS = ("transfer_out", "transfer_in", "transfer_returned")


async def post(
    h: ComponentHarness, path: str, body: Any = None, *, role: str = "warehouse", **kwargs: Any
) -> Any:
    async with h.http(role) as client:
        return await client.post(path, json=body, **kwargs)


async def create(h: ComponentHarness, *lines: tuple[str, int], **fields: Any) -> dict[str, Any]:
    body = {
        "from_location": "east",
        "to_location": "west",
        "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines],
        **fields,
    }
    response = await post(h, "/v1/transfers", body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def ship(h: ComponentHarness, transfer_id: str) -> dict[str, Any]:
    response = await post(h, f"/v1/transfers/{transfer_id}/ship")
    assert response.status_code == 200, response.text
    shipped: dict[str, Any] = response.json()
    return shipped


async def on_hand(h: ComponentHarness, sku: str) -> dict[str, int]:
    stock = await stock_of(h, sku)
    return {row["location"]: row["on_hand"] for row in stock["locations"]}


async def assert_conserved(h: ComponentHarness) -> None:
    """The ledger adds up to every stock row; per SKU, what the transfer rows of the ledger
    took out of locations and did not put back is exactly what is in transit; and each
    transfer's ledger rows match its lines."""
    await assert_stock_consistent(h)
    moved = {
        row["sku"]: row["delta"]
        for row in await h.fetch(
            "SELECT sku, sum(on_hand_delta) AS delta FROM stock_ledger"
            " WHERE reason = ANY($1::text[]) GROUP BY sku",
            list(TRANSFER_REASONS),
        )
    }
    in_transit = {
        row["sku"]: row["units"]
        for row in await h.fetch(
            "SELECT l.sku, sum(l.quantity - l.received - l.returned) AS units"
            " FROM transfer_lines l JOIN transfers t USING (transfer_id)"
            " WHERE t.status IN ('in_transit', 'partially_received') GROUP BY l.sku"
        )
    }
    for sku in moved.keys() | in_transit.keys():
        assert moved.get(sku, 0) == -in_transit.get(sku, 0), sku
    lines = await h.fetch(
        "SELECT l.transfer_id, l.sku, l.quantity, l.received, l.returned, t.shipped_at,"
        " t.from_location, t.to_location,"
        " (SELECT coalesce(sum(g.on_hand_delta), 0) FROM stock_ledger g"
        "   WHERE g.reference = l.transfer_id AND g.sku = l.sku AND g.reason = 'transfer_out'"
        "   AND g.location = t.from_location) AS shipped,"
        " (SELECT coalesce(sum(g.on_hand_delta), 0) FROM stock_ledger g"
        "   WHERE g.reference = l.transfer_id AND g.sku = l.sku AND g.reason = 'transfer_in'"
        "   AND g.location = t.to_location) AS arrived,"
        " (SELECT coalesce(sum(g.on_hand_delta), 0) FROM stock_ledger g"
        "   WHERE g.reference = l.transfer_id AND g.sku = l.sku"
        "   AND g.reason = 'transfer_returned' AND g.location = t.from_location) AS returned_back"
        " FROM transfer_lines l JOIN transfers t USING (transfer_id)"
    )
    for line in lines:
        where = f"{line['transfer_id']}/{line['sku']}"
        was_shipped = line["shipped_at"] is not None
        assert line["shipped"] == (-line["quantity"] if was_shipped else 0), where
        assert line["arrived"] == line["received"], where
        assert line["returned_back"] == line["returned"], where


@pytest.fixture
async def stocked(inventory: ComponentHarness) -> ComponentHarness:
    for sku in ("A", "B"):
        await define_sku(inventory, sku)
    await receive(inventory, "A", "east", 10)
    await receive(inventory, "B", "east", 5)
    await inventory.clear_outbox()
    return inventory


async def test_a_transfer_ships_then_arrives_in_two_receipts(stocked: ComponentHarness):
    created = await create(stocked, ("A", 6), ("B", 5), reference="move-1")
    transfer_id = created["transfer_id"]
    assert created["status"] == "requested"
    assert created["reference"] == "move-1"
    assert await on_hand(stocked, "A") == {"east": 10}  # nothing moves before it ships

    shipped = await ship(stocked, transfer_id)
    assert shipped["status"] == "in_transit"
    assert [(m["sku"], m["location"], m["delta"], m["reason"]) for m in shipped["moved"]] == [
        ("A", "east", -6, "transfer_out"),
        ("B", "east", -5, "transfer_out"),
    ]
    assert await on_hand(stocked, "A") == {"east": 4}
    assert await on_hand(stocked, "B") == {"east": 0}

    first = await post(
        stocked, f"/v1/transfers/{transfer_id}/receipts", {"lines": [{"sku": "A", "quantity": 4}]}
    )
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "partially_received"
    assert first.json()["moved"][0]["reason"] == "transfer_in"
    assert await on_hand(stocked, "A") == {"east": 4, "west": 4}  # the west row was created
    async with stocked.pool.acquire() as conn:
        incoming = await TransferStore(conn).incoming_transfers(["A", "B"])
    assert incoming == {("A", "west"): 2, ("B", "west"): 5}
    await assert_conserved(stocked)

    last = await post(
        stocked,
        f"/v1/transfers/{transfer_id}/receipts",
        {"lines": [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 5}]},
    )
    assert last.status_code == 201, last.text
    view = last.json()
    assert view["status"] == "received"
    assert view["received_at"] is not None
    assert [(ln["sku"], ln["received"], ln["in_transit"]) for ln in view["lines"]] == [
        ("A", 6, 0),
        ("B", 5, 0),
    ]
    assert len(view["receipts"]) == 2
    assert await on_hand(stocked, "A") == {"east": 4, "west": 6}
    assert await on_hand(stocked, "B") == {"east": 0, "west": 5}
    async with stocked.pool.acquire() as conn:
        assert await TransferStore(conn).incoming_transfers(["A", "B"]) == {}

    ledger = [
        row["reference"]
        for row in await stocked.fetch(
            "SELECT reference FROM stock_ledger WHERE reason LIKE 'transfer_%'"
        )
    ]
    assert ledger and set(ledger) == {transfer_id}
    announced = await stocked.emitted(AvailabilityChanged.TYPE)
    assert {e.correlation_id for e in announced} == {transfer_id}
    assert announced[-1].contract() == AvailabilityChanged(
        sku="B", on_hand=5, reserved=0, available=5, available_to_promise=5
    )
    await assert_conserved(stocked)


async def test_reserved_stock_never_ships(stocked: ComponentHarness):
    order_id = new_order_id()
    await stocked.deliver(reserve(order_id, ("A", 7)), correlation_id=order_id)
    assert (await stock_of(stocked, "A"))["reserved"] == 7
    too_much = await create(stocked, ("A", 4))

    refused = await post(stocked, f"/v1/transfers/{too_much['transfer_id']}/ship")

    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "insufficient_stock"
    assert (error["details"]["sku"], error["details"]["available"]) == ("A", 3)
    assert await on_hand(stocked, "A") == {"east": 10}
    async with stocked.http() as client:
        still = (await client.get(f"/v1/transfers/{too_much['transfer_id']}")).json()
    assert still["status"] == "requested"

    enough = await create(stocked, ("A", 3))
    assert (await ship(stocked, enough["transfer_id"]))["status"] == "in_transit"
    stock = await stock_of(stocked, "A")
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (7, 7, 0)
    await assert_conserved(stocked)


async def test_a_transfer_of_a_sku_without_stock_at_the_source_does_not_ship(
    stocked: ComponentHarness,
):
    await define_sku(stocked, "C")
    created = await create(stocked, ("A", 1), ("C", 1))
    refused = await post(stocked, f"/v1/transfers/{created['transfer_id']}/ship")
    assert refused.status_code == 409
    assert refused.json()["error"]["details"]["sku"] == "C"
    assert await on_hand(stocked, "A") == {"east": 10}  # all lines or none


async def test_retried_posts_move_stock_once(stocked: ComponentHarness):
    body = {"from_location": "east", "to_location": "west", "lines": [{"sku": "A", "quantity": 5}]}
    key = {"Idempotency-Key": "move-42"}
    first = await post(stocked, "/v1/transfers", body, headers=key)
    again = await post(stocked, "/v1/transfers", body, headers=key)
    other = await post(
        stocked, "/v1/transfers", {**body, "lines": [{"sku": "A", "quantity": 6}]}, headers=key
    )
    assert (first.status_code, again.status_code) == (201, 200)
    transfer_id = first.json()["transfer_id"]
    assert again.json()["transfer_id"] == transfer_id
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert len(await stocked.fetch("SELECT 1 FROM transfers")) == 1

    await ship(stocked, transfer_id)
    repeat = await ship(stocked, transfer_id)
    assert repeat["status"] == "in_transit"
    assert repeat["moved"] == []
    assert await on_hand(stocked, "A") == {"east": 5}

    receipt = {"receipt_id": "r-1", "lines": [{"sku": "A", "quantity": 2}]}
    path = f"/v1/transfers/{transfer_id}/receipts"
    applied = await post(stocked, path, receipt)
    repeated = await post(stocked, path, receipt)
    reused = await post(stocked, path, {**receipt, "lines": [{"sku": "A", "quantity": 3}]})
    assert (applied.status_code, repeated.status_code) == (201, 200)
    assert repeated.json()["duplicate"] is True
    assert repeated.json()["moved"] == []
    assert repeated.json()["receipt"] == applied.json()["receipt"]
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "receipt_id_reused"
    assert await on_hand(stocked, "A") == {"east": 5, "west": 2}

    by_header = {"lines": [{"sku": "A", "quantity": 3}]}
    header = {"Idempotency-Key": "r-2"}
    once = await post(stocked, path, by_header, headers=header)
    twice = await post(stocked, path, by_header, headers=header)
    assert (once.status_code, twice.status_code) == (201, 200)
    assert once.json()["receipt"]["receipt_id"] == "r-2"
    assert twice.json()["status"] == "received"
    assert await on_hand(stocked, "A") == {"east": 5, "west": 5}
    mismatch = await post(stocked, path, {"receipt_id": "r-3", **by_header}, headers=header)
    assert mismatch.status_code == 422
    assert mismatch.json()["error"]["details"]["problems"][0]["field"] == "receipt_id"
    ledger_rows = await stocked.fetch(
        "SELECT reason FROM stock_ledger WHERE reference = $1", transfer_id
    )
    assert sorted(r["reason"] for r in ledger_rows) == [
        "transfer_in",
        "transfer_in",
        "transfer_out",
    ]
    await assert_conserved(stocked)


async def test_concurrent_ships_and_receipts_never_move_too_much(stocked: ComponentHarness):
    created = await create(stocked, ("A", 10))
    transfer_id = created["transfer_id"]
    ships = await asyncio.gather(
        *(post(stocked, f"/v1/transfers/{transfer_id}/ship") for _ in range(6))
    )
    assert [r.status_code for r in ships] == [200] * 6
    assert sum(len(r.json()["moved"]) for r in ships) == 1
    assert await on_hand(stocked, "A") == {"east": 0}

    receipts = await asyncio.gather(
        *(
            post(
                stocked,
                f"/v1/transfers/{transfer_id}/receipts",
                {"receipt_id": f"r-{n}", "lines": [{"sku": "A", "quantity": 1}]},
            )
            for n in range(16)
        )
    )
    codes = sorted(r.status_code for r in receipts)
    assert codes == [201] * 10 + [409] * 6
    refusals = {r.json()["error"]["code"] for r in receipts if r.status_code == 409}
    assert refusals <= {"over_receipt", "transfer_received"}
    assert await on_hand(stocked, "A") == {"east": 0, "west": 10}
    async with stocked.http() as client:
        view = (await client.get(f"/v1/transfers/{transfer_id}")).json()
    assert view["status"] == "received"
    assert len(view["receipts"]) == 10
    await assert_conserved(stocked)


async def test_cancelling(stocked: ComponentHarness):
    requested = await create(stocked, ("A", 2))
    cancelled = await post(stocked, f"/v1/transfers/{requested['transfer_id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["moved"]) == ("cancelled", [])
    refused = await post(stocked, f"/v1/transfers/{requested['transfer_id']}/ship")
    assert refused.json()["error"]["code"] == "transfer_cancelled"
    assert await on_hand(stocked, "A") == {"east": 10}

    # In transit the goods come back: what did not arrive is on hand at the source again.
    moving = await create(stocked, ("A", 6), ("B", 2))
    transfer_id = moving["transfer_id"]
    await ship(stocked, transfer_id)
    await post(
        stocked,
        f"/v1/transfers/{transfer_id}/receipts",
        {"lines": [{"sku": "A", "quantity": 4}, {"sku": "B", "quantity": 2}]},
    )
    back = await post(stocked, f"/v1/transfers/{transfer_id}/cancel")
    assert back.status_code == 200, back.text
    assert [(m["sku"], m["location"], m["delta"], m["reason"]) for m in back.json()["moved"]] == [
        ("A", "east", 2, "transfer_returned")
    ]
    assert [(ln["sku"], ln["returned"], ln["in_transit"]) for ln in back.json()["lines"]] == [
        ("A", 2, 0),
        ("B", 0, 0),
    ]
    assert await on_hand(stocked, "A") == {"east": 6, "west": 4}
    again = await post(stocked, f"/v1/transfers/{transfer_id}/cancel")
    assert (again.status_code, again.json()["moved"]) == (200, [])
    late = await post(
        stocked,
        f"/v1/transfers/{transfer_id}/receipts",
        {"lines": [{"sku": "A", "quantity": 1}]},
    )
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "transfer_cancelled"
    await assert_conserved(stocked)

    done = await create(stocked, ("B", 1), from_location="west", to_location="east")
    await ship(stocked, done["transfer_id"])
    await post(
        stocked,
        f"/v1/transfers/{done['transfer_id']}/receipts",
        {"lines": [{"sku": "B", "quantity": 1}]},
    )
    too_late = await post(stocked, f"/v1/transfers/{done['transfer_id']}/cancel")
    assert too_late.status_code == 409
    assert too_late.json()["error"]["code"] == "transfer_received"
    await assert_conserved(stocked)


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"lines": [{"sku": "GHOST", "quantity": 1}]}, 404, "unknown_sku", None),
        ({"to_location": "east"}, 422, "validation_failed", "to_location"),
        (
            {"lines": [{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 2}]},
            422,
            "validation_failed",
            "lines",
        ),
        ({"lines": [{"sku": "A", "quantity": 0}]}, 422, "validation_failed", "lines.0.quantity"),
        ({"lines": []}, 422, "validation_failed", "lines"),
    ],
)
async def test_a_bad_transfer_is_refused(
    stocked: ComponentHarness, body: dict[str, Any], status: int, code: str, field: str | None
):
    request = {
        "from_location": "east",
        "to_location": "west",
        "lines": [{"sku": "A", "quantity": 1}],
        **body,
    }
    response = await post(stocked, "/v1/transfers", request)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if field is not None:
        assert error["details"]["problems"][0]["field"] == field
    assert await stocked.fetch("SELECT 1 FROM transfers") == []


async def test_receipts_that_do_not_fit_the_transfer_are_refused(stocked: ComponentHarness):
    created = await create(stocked, ("A", 3))
    path = f"/v1/transfers/{created['transfer_id']}/receipts"
    early = await post(stocked, path, {"lines": [{"sku": "A", "quantity": 1}]})
    assert (early.status_code, early.json()["error"]["code"]) == (409, "not_shipped")
    await ship(stocked, created["transfer_id"])
    over = await post(stocked, path, {"lines": [{"sku": "A", "quantity": 4}]})
    assert (over.status_code, over.json()["error"]["code"]) == (409, "over_receipt")
    assert over.json()["error"]["details"]["in_transit"] == 3
    stranger = await post(
        stocked,
        path,
        {"lines": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1}]},
    )
    assert (stranger.status_code, stranger.json()["error"]["code"]) == (
        422,
        "sku_not_in_transfer",
    )
    assert await on_hand(stocked, "A") == {"east": 7}  # nothing of a refused receipt arrived
    async with stocked.http() as client:
        missing = await client.post(
            "/v1/transfers/tr_nope/receipts", json={"lines": [{"sku": "A", "quantity": 1}]}
        )
        unknown = await client.get("/v1/transfers/tr_nope")
    assert (missing.status_code, unknown.status_code) == (404, 404)
    assert unknown.json()["error"]["code"] == "transfer_not_found"
    await assert_conserved(stocked)


async def test_listing_by_status_and_location(stocked: ComponentHarness):
    waiting = await create(stocked, ("A", 1))
    moving = await create(stocked, ("A", 1), to_location="north")
    await ship(stocked, moving["transfer_id"])
    async with stocked.http("viewer") as client:
        everything = (await client.get("/v1/transfers")).json()["transfers"]
        in_transit = (await client.get("/v1/transfers", params={"status": "in_transit"})).json()
        north = (await client.get("/v1/transfers", params={"location": "north"})).json()
        bad = await client.get("/v1/transfers", params={"status": "lost"})
    assert [t["transfer_id"] for t in everything] == [
        moving["transfer_id"],
        waiting["transfer_id"],
    ]
    assert [t["transfer_id"] for t in in_transit["transfers"]] == [moving["transfer_id"]]
    assert [t["transfer_id"] for t in north["transfers"]] == [moving["transfer_id"]]
    assert bad.status_code == 422


async def test_a_viewer_reads_transfers_but_cannot_move_stock(stocked: ComponentHarness):
    created = await create(stocked, ("A", 1))
    transfer_id = created["transfer_id"]
    body = {"from_location": "east", "to_location": "west", "lines": [{"sku": "A", "quantity": 1}]}
    async with stocked.http("viewer") as viewer:
        read = await viewer.get(f"/v1/transfers/{transfer_id}")
        writes = [
            await viewer.post("/v1/transfers", json=body),
            await viewer.post(f"/v1/transfers/{transfer_id}/ship"),
            await viewer.post(
                f"/v1/transfers/{transfer_id}/receipts",
                json={"lines": [{"sku": "A", "quantity": 1}]},
            ),
            await viewer.post(f"/v1/transfers/{transfer_id}/cancel"),
        ]
    async with stocked.anonymous() as anonymous:
        unauthenticated = await anonymous.get("/v1/transfers")
    assert read.status_code == 200
    assert [w.status_code for w in writes] == [403] * 4
    assert unauthenticated.status_code == 401
    assert await on_hand(stocked, "A") == {"east": 10}
    assert len(await stocked.fetch("SELECT 1 FROM transfers")) == 1
