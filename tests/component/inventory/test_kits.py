"""Kits through inventory's real HTTP API and consumer on a real Postgres: definitions and their
refusals, a kit's derived stock, reserving a kit reserves its components (all or nothing, once
through crashes and re-sends), and commits, releases and availability work on the components."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.contracts.common import Allocation, ShortLine, SkuQuantity
from shared.contracts.inventory import (
    AvailabilityChanged,
    ChannelAvailabilityChanged,
    StockCommitted,
    StockReleased,
    StockReservationFailed,
    StockReserved,
)
from shared.contracts.order_intake import CommitStock, ReleaseStock
from tests.component.inventory.support import (
    assert_stock_consistent,
    define_sku,
    receive,
    reserve,
    stock_of,
)
from tests.support.component import ComponentHarness
from tests.support.crash import CrashOnce, crash_once_for

pytestmark = pytest.mark.component

GIFT = {"components": [{"sku": "MUG", "quantity": 2}, {"sku": "SPOON", "quantity": 1}]}


async def put_kit(h: ComponentHarness, sku: str, body: Any, *roles: str) -> Any:
    async with h.http(*roles) as client:
        return await client.put(f"/v1/kits/{sku}", json=body)


@pytest.fixture
async def kits(inventory: ComponentHarness) -> ComponentHarness:
    """GIFT = 2 x MUG + 1 x SPOON. MUG: 6 at east, 2 at west; SPOON: 2 at east, 3 at west."""
    for sku in ("MUG", "SPOON", "GIFT", "TEA"):
        await define_sku(inventory, sku)
    await receive(inventory, "MUG", "east", 6)
    await receive(inventory, "MUG", "west", 2)
    await receive(inventory, "SPOON", "east", 2)
    await receive(inventory, "SPOON", "west", 3)
    response = await put_kit(inventory, "GIFT", GIFT)
    assert response.status_code == 201, response.text
    await inventory.clear_outbox()
    return inventory


@pytest.fixture
def crash_once(kits: ComponentHarness, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrashOnce]:
    yield from crash_once_for(kits, monkeypatch)


async def levels(h: ComponentHarness, sku: str) -> dict[str, tuple[int, int]]:
    stock = await stock_of(h, sku)
    return {row["location"]: (row["on_hand"], row["reserved"]) for row in stock["locations"]}


async def announced(h: ComponentHarness) -> dict[str, int]:
    """The latest availability announced per SKU."""
    return {m.sku: m.available for m in await h.emitted_contracts(AvailabilityChanged.TYPE)}


# --- definitions ------------------------------------------------------------------------------


async def test_a_kit_is_defined_replaced_and_read_back(inventory: ComponentHarness):
    for sku in ("MUG", "SPOON", "GIFT"):
        await define_sku(inventory, sku)
    created = await put_kit(inventory, "GIFT", GIFT, "warehouse")
    replaced = await put_kit(inventory, "GIFT", {"components": [{"sku": "MUG", "quantity": 4}]})
    async with inventory.http("viewer") as client:
        fetched = await client.get("/v1/kits/GIFT")
    assert created.status_code == 201, created.text
    assert created.json() == {"sku": "GIFT", **GIFT}
    assert replaced.status_code == 200, replaced.text
    assert fetched.status_code == 200
    assert fetched.json() == {"sku": "GIFT", "components": [{"sku": "MUG", "quantity": 4}]}


async def test_defining_a_kit_announces_its_availability(inventory: ComponentHarness):
    for sku in ("MUG", "SPOON", "GIFT"):
        await define_sku(inventory, sku)
    await receive(inventory, "MUG", "east", 5)
    await receive(inventory, "SPOON", "east", 9)
    await inventory.clear_outbox()
    assert (await put_kit(inventory, "GIFT", GIFT)).status_code == 201
    assert await inventory.emitted_contracts(AvailabilityChanged.TYPE) == [
        AvailabilityChanged(sku="GIFT", on_hand=2, reserved=0, available=2)
    ]
    amazon = [
        m
        for m in await inventory.emitted_contracts(ChannelAvailabilityChanged.TYPE)
        if m.channel == "amazon"
    ]
    assert [(m.sku, m.available, m.warehouse_available) for m in amazon] == [("GIFT", 0, 2)]


@pytest.mark.parametrize(
    ("sku", "body", "status", "code", "field"),
    [
        ("NOPE", GIFT, 404, "unknown_sku", None),
        ("GIFT", {"components": [{"sku": "MUG", "quantity": 1}, {"sku": "CUP", "quantity": 1}]},
         422, "unknown_component", "components.1.sku"),
        ("GIFT", {"components": [{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 1}]},
         422, "duplicate_component", "components.1.sku"),
        ("GIFT", {"components": [{"sku": "GIFT", "quantity": 1}]},
         422, "kit_contains_itself", "components.0.sku"),
        ("BIG", {"components": [{"sku": "GIFT", "quantity": 1}]},
         409, "component_is_kit", "components.0.sku"),
        ("MUG", {"components": [{"sku": "SPOON", "quantity": 1}]},
         409, "kit_is_component", "sku"),
        ("TEA", {"components": [{"sku": "SPOON", "quantity": 1}]}, 409, "sku_has_stock", None),
        ("GIFT", {"components": []}, 422, "validation_failed", "components"),
        ("GIFT", {"components": [{"sku": "MUG", "quantity": 0}]},
         422, "validation_failed", "components.0.quantity"),
        ("GIFT", {"components": [{"sku": "MUG", "quantity": "2"}]},
         422, "validation_failed", "components.0.quantity"),
        ("GIFT", {"components": [{"sku": "MUG"}]},
         422, "validation_failed", "components.0.quantity"),
        ("GIFT", {"components": [{"sku": "MUG", "quantity": 1}], "name": "x"},
         422, "validation_failed", "name"),
    ],
)  # fmt: skip
async def test_bad_definitions_are_refused_with_a_stable_code_and_change_nothing(
    kits: ComponentHarness, sku: str, body: Any, status: int, code: str, field: str | None
):
    await define_sku(kits, "BIG")
    await receive(kits, "TEA", "east", 1)
    response = await put_kit(kits, sku, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if field is not None:
        fields = (
            [p["field"] for p in error["details"]["problems"]]
            if code == "validation_failed"
            else [error["details"]["field"]]
        )
        assert field in fields
    rows = await kits.fetch("SELECT kit_sku, component, quantity FROM kit_components ORDER BY 1, 2")
    assert [tuple(r) for r in rows] == [("GIFT", "MUG", 2), ("GIFT", "SPOON", 1)]


async def test_only_stock_writers_define_kits(kits: ComponentHarness):
    response = await put_kit(kits, "GIFT", GIFT, "viewer")
    assert response.status_code == 403


async def test_reading_a_kit_that_is_none(kits: ComponentHarness):
    async with kits.http() as client:
        unknown = await client.get("/v1/kits/NOPE")
        plain = await client.get("/v1/kits/MUG")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_sku")
    assert (plain.status_code, plain.json()["error"]["code"]) == (404, "not_a_kit")


async def test_a_kit_has_no_stock_of_its_own(kits: ComponentHarness):
    async with kits.http() as client:
        response = await client.post(
            "/v1/stock/adjustments",
            json={"sku": "GIFT", "location": "east", "delta": 5, "reason": "receipt"},
        )
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "kit_has_no_stock"
    assert await kits.fetch("SELECT * FROM stock WHERE sku = 'GIFT'") == []


async def test_a_kits_stock_is_derived_from_its_components(kits: ComponentHarness):
    assert await stock_of(kits, "GIFT") == {
        "sku": "GIFT",
        "kit": True,
        "components": [{"sku": "MUG", "quantity": 2}, {"sku": "SPOON", "quantity": 1}],
        # east: 6 mugs, 2 spoons -> 2 gifts; west: 2 mugs, 3 spoons -> 1 gift
        "on_hand": 3,
        "reserved": 0,
        "available": 3,
        "backordered": 0,
        "incoming": 0,
        "available_to_promise": 3,
        "locations": [
            {"location": "east", "on_hand": 2, "reserved": 0, "available": 2},
            {"location": "west", "on_hand": 1, "reserved": 0, "available": 1},
        ],
    }
    # A plain SKU's stock is shown as before: no kit fields.
    assert set(await stock_of(kits, "MUG")) == {
        "sku",
        "on_hand",
        "reserved",
        "available",
        "backordered",
        "incoming",
        "available_to_promise",
        "locations",
    }


# --- reserving ---------------------------------------------------------------------------------


async def test_reserving_a_kit_reserves_its_components_and_answers_with_the_composition(
    kits: ComponentHarness,
):
    await kits.deliver(reserve("o-1", ("GIFT", 2), ("MUG", 1)), correlation_id="o-1")
    [answer] = await kits.emitted_contracts(StockReserved.TYPE)
    assert answer == StockReserved(
        order_id="o-1",
        allocations=(
            Allocation(
                line_id="o-1-l1/MUG", sku="MUG", location="east", quantity=4,
                kit_sku="GIFT", kit_line_id="o-1-l1", per_kit=2,
            ),
            Allocation(
                line_id="o-1-l1/SPOON", sku="SPOON", location="east", quantity=2,
                kit_sku="GIFT", kit_line_id="o-1-l1", per_kit=1,
            ),
            Allocation(line_id="o-1-l2", sku="MUG", location="east", quantity=1),
        ),
        routing=answer.routing,
    )  # fmt: skip
    assert answer.routing is not None and answer.routing.locations == ("east",)
    rows = await kits.fetch(
        "SELECT line_id, sku, location, position, quantity FROM reservations ORDER BY position"
    )
    assert [tuple(r) for r in rows] == [
        ("o-1-l1/MUG", "MUG", "east", 0, 4),
        ("o-1-l1/SPOON", "SPOON", "east", 1, 2),
        ("o-1-l2", "MUG", "east", 2, 1),
    ]
    assert await levels(kits, "MUG") == {"east": (6, 5), "west": (2, 0)}
    assert await levels(kits, "SPOON") == {"east": (2, 2), "west": (3, 0)}
    # The kit is announced with its components: east has no spoon left, west makes one gift.
    assert await announced(kits) == {"MUG": 3, "SPOON": 3, "GIFT": 1}
    assert (await stock_of(kits, "GIFT"))["available"] == 1
    await assert_stock_consistent(kits)


async def test_a_kit_short_of_a_component_reserves_nothing_and_names_kit_and_component(
    kits: ComponentHarness,
):
    # 8 mugs make 4 gifts; 5 spoons less the one of l1 make 4 too: the 5th gift has neither.
    await kits.deliver(reserve("o-1", ("SPOON", 1), ("GIFT", 5)), correlation_id="o-1")
    [answer] = await kits.emitted_contracts(StockReservationFailed.TYPE)
    assert answer == StockReservationFailed(
        order_id="o-1",
        reason="insufficient_stock",
        short_lines=(
            ShortLine(line_id="o-1-l2", sku="GIFT", requested=5, available=4, component="MUG"),
            ShortLine(line_id="o-1-l2", sku="GIFT", requested=5, available=4, component="SPOON"),
        ),
    )
    assert await kits.fetch("SELECT * FROM reservations") == []
    assert await levels(kits, "MUG") == {"east": (6, 0), "west": (2, 0)}
    assert await levels(kits, "SPOON") == {"east": (2, 0), "west": (3, 0)}


async def test_components_of_one_kit_may_come_from_different_locations(kits: ComponentHarness):
    # 3 gifts need 6 mugs (only east has them) and 3 spoons (only west has them all).
    await kits.deliver(reserve("o-1", ("GIFT", 3)), correlation_id="o-1")
    [answer] = await kits.emitted_contracts(StockReserved.TYPE)
    assert [(a.sku, a.location, a.quantity) for a in answer.allocations] == [
        ("MUG", "east", 6),
        ("SPOON", "west", 3),
    ]
    assert {a.kit_sku for a in answer.allocations} == {"GIFT"}
    await assert_stock_consistent(kits)


async def test_the_same_reserve_of_a_kit_twice_reserves_once_and_answers_the_same(
    kits: ComponentHarness, crash_once: CrashOnce
):
    command = reserve("o-1", ("GIFT", 2))
    crash_once("before_db_commit")  # rolled back, handled again
    await kits.deliver(command, correlation_id="o-1")
    crash_once("after_db_commit")  # committed; the redelivery is dropped by the inbox
    sent = await kits.deliver(command, correlation_id="o-1")
    await kits.deliver(command, correlation_id="o-1", envelope=sent)  # redelivered as is
    await kits.deliver(command, correlation_id="o-1")  # the saga re-sends it
    assert crash_once.crashed == ["before_db_commit", "after_db_commit"]

    answers = await kits.emitted_contracts(StockReserved.TYPE)
    assert len(answers) == 3 and answers[0] == answers[1] == answers[2]
    assert {(a.sku, a.kit_sku, a.kit_line_id, a.per_kit) for a in answers[2].allocations} == {
        ("MUG", "GIFT", "o-1-l1", 2),
        ("SPOON", "GIFT", "o-1-l1", 1),
    }
    assert await levels(kits, "MUG") == {"east": (6, 4), "west": (2, 0)}
    assert await levels(kits, "SPOON") == {"east": (2, 2), "west": (3, 0)}
    ledger = await kits.fetch("SELECT count(*) AS n FROM stock_ledger WHERE order_id = 'o-1'")
    assert ledger[0]["n"] == 2
    await assert_stock_consistent(kits)


async def test_a_refused_kit_is_refused_the_same_when_re_sent(kits: ComponentHarness):
    command = reserve("o-1", ("GIFT", 9))
    await kits.deliver(command, correlation_id="o-1")
    await receive(kits, "MUG", "east", 100)  # stock arrives: the stored answer still stands
    await kits.deliver(command, correlation_id="o-1")
    first, second = await kits.emitted_contracts(StockReservationFailed.TYPE)
    assert first == second
    assert [(s.sku, s.component) for s in first.short_lines] == [("GIFT", "MUG"), ("GIFT", "SPOON")]


# --- after reserving: commit, release ----------------------------------------------------------


async def test_a_kit_shipped_in_two_parcels_commits_its_components(kits: ComponentHarness):
    await kits.deliver(reserve("o-1", ("GIFT", 3)), correlation_id="o-1")
    await kits.deliver(
        CommitStock(
            order_id="o-1",
            fulfilment_id="f-east",
            location="east",
            lines=(SkuQuantity(sku="MUG", quantity=6),),
        ),
        correlation_id="o-1",
    )
    await kits.deliver(
        CommitStock(
            order_id="o-1",
            fulfilment_id="f-west",
            location="west",
            lines=(SkuQuantity(sku="SPOON", quantity=3),),
        ),
        correlation_id="o-1",
    )
    assert len(await kits.emitted_contracts(StockCommitted.TYPE)) == 2
    assert await levels(kits, "MUG") == {"east": (0, 0), "west": (2, 0)}
    assert await levels(kits, "SPOON") == {"east": (2, 0), "west": (0, 0)}
    rows = await kits.fetch("SELECT line_id, committed, status FROM reservations ORDER BY 1, 2")
    assert {(r["line_id"], r["status"]) for r in rows} == {
        ("o-1-l1/MUG", "committed"),
        ("o-1-l1/SPOON", "committed"),
    }
    ledger = await kits.fetch(
        "SELECT sku, location, on_hand_delta, reserved_delta FROM stock_ledger"
        " WHERE order_id = 'o-1' AND reason = 'committed' ORDER BY sku, location"
    )
    assert [tuple(r) for r in ledger] == [
        ("MUG", "east", -6, -6),
        ("SPOON", "west", -3, -3),
    ]
    # What is left makes no gift: 2 spoons at east, 2 mugs at west.
    assert (await stock_of(kits, "GIFT"))["available"] == 0
    assert (await announced(kits))["GIFT"] == 0
    await assert_stock_consistent(kits)


async def test_releasing_a_kit_gives_its_components_back(kits: ComponentHarness):
    await kits.deliver(reserve("o-1", ("GIFT", 3)), correlation_id="o-1")
    assert (await stock_of(kits, "GIFT"))["available"] == 0
    await kits.clear_outbox()
    await kits.deliver(ReleaseStock(order_id="o-1", reason="cancelled"), correlation_id="o-1")
    [released] = await kits.emitted_contracts(StockReleased.TYPE)
    assert sorted((a.line_id, a.location, a.quantity) for a in released.released) == [
        ("o-1-l1/MUG", "east", 6),
        ("o-1-l1/SPOON", "west", 3),
    ]
    assert await levels(kits, "MUG") == {"east": (6, 0), "west": (2, 0)}
    assert await levels(kits, "SPOON") == {"east": (2, 0), "west": (3, 0)}
    assert await announced(kits) == {"MUG": 8, "SPOON": 5, "GIFT": 3}
    await assert_stock_consistent(kits)


async def test_a_component_adjusted_announces_every_kit_containing_it(kits: ComponentHarness):
    await define_sku(kits, "DUO")
    assert (
        await put_kit(kits, "DUO", {"components": [{"sku": "MUG", "quantity": 1}]})
    ).status_code == 201
    await kits.clear_outbox()
    await receive(kits, "MUG", "west", 2)  # west: 4 mugs, 3 spoons
    assert await announced(kits) == {"MUG": 10, "GIFT": 4, "DUO": 10}
    await kits.clear_outbox()
    await receive(kits, "TEA", "west", 2)  # in no kit
    assert await announced(kits) == {"TEA": 2}
