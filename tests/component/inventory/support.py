"""Helpers for inventory's component tests: set stock up over HTTP, check the invariants."""

from __future__ import annotations

import uuid
from typing import Any

from shared.contracts.common import OrderLineRef
from shared.contracts.order_intake import ReserveStock
from tests.support.component import ComponentHarness


async def define_sku(h: ComponentHarness, sku: str, **fields: Any) -> None:
    async with h.http() as client:
        response = await client.put(f"/v1/skus/{sku}", json={"name": f"Item {sku}", **fields})
    assert response.status_code in (200, 201), response.text


async def receive(h: ComponentHarness, sku: str, location: str, quantity: int) -> dict[str, Any]:
    async with h.http() as client:
        response = await client.post(
            "/v1/stock/adjustments",
            json={"sku": sku, "location": location, "delta": quantity, "reason": "receipt"},
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stock_of(h: ComponentHarness, sku: str) -> dict[str, Any]:
    async with h.http() as client:
        response = await client.get(f"/v1/stock/{sku}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def reserve(order_id: str, *lines: tuple[str, int]) -> ReserveStock:
    return ReserveStock(
        order_id=order_id,
        channel="web",
        lines=tuple(
            OrderLineRef(line_id=f"{order_id}-l{i}", sku=sku, quantity=quantity)
            for i, (sku, quantity) in enumerate(lines, start=1)
        ),
    )


def new_order_id() -> str:
    return f"o-{uuid.uuid4().hex[:10]}"


async def assert_stock_consistent(h: ComponentHarness) -> None:
    """For every SKU and location: 0 <= reserved <= on_hand, reserved is what the open
    reservations hold, and the ledger adds up to the stock row."""
    rows = await h.fetch(
        "SELECT s.sku, s.location, s.on_hand, s.reserved,"
        " (SELECT coalesce(sum(r.quantity - r.committed - r.released - r.written_off), 0) FROM reservations r"
        "   WHERE r.sku = s.sku AND r.location = s.location) AS outstanding,"
        " (SELECT coalesce(sum(l.on_hand_delta), 0) FROM stock_ledger l"
        "   WHERE l.sku = s.sku AND l.location = s.location) AS ledger_on_hand,"
        " (SELECT coalesce(sum(l.reserved_delta), 0) FROM stock_ledger l"
        "   WHERE l.sku = s.sku AND l.location = s.location) AS ledger_reserved"
        " FROM stock s"
    )
    for row in rows:
        where = f"{row['sku']}@{row['location']}"
        assert 0 <= row["reserved"] <= row["on_hand"], where
        assert row["reserved"] == row["outstanding"], where
        assert row["on_hand"] == row["ledger_on_hand"], where
        assert row["reserved"] == row["ledger_reserved"], where
