"""Per-channel availability: available stock less each channel's safety stock, never below 0,
queued per SKU in a unit of work and written once before it commits."""

from __future__ import annotations

from typing import Any

from services.inventory.availability.channels import (
    channel_available,
    channel_messages,
    queue_availability,
)
from services.inventory.settings import InventorySettings
from shared.contracts.inventory import AvailabilityChanged, ChannelAvailabilityChanged
from shared.envelope import Envelope
from shared.platform.outbox import UnitOfWork

SAFETY = {"shopify": 0, "woocommerce": 0, "amazon": 2, "ebay": 1}


def test_safety_stock_is_held_back_and_never_goes_below_zero():
    assert channel_available(10, 2) == 8
    assert channel_available(2, 2) == 0
    assert channel_available(1, 2) == 0
    assert channel_available(0, 0) == 0
    assert channel_available(5, -3) == 5


def test_default_safety_stock_per_channel():
    assert InventorySettings().channel_safety_stock == SAFETY


def test_one_message_per_channel():
    messages = channel_messages("MUG-1", 1, SAFETY)
    assert {(m.channel, m.available, m.safety_stock) for m in messages} == {
        ("shopify", 1, 0),
        ("woocommerce", 1, 0),
        ("amazon", 0, 2),
        ("ebay", 0, 1),
    }
    assert all(m.warehouse_available == 1 and m.sku == "MUG-1" for m in messages)


class _NoOverrides:
    """A connection whose SKUs have no safety stock of their own (counts the reads)."""

    def __init__(self) -> None:
        self.reads: list[Any] = []

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.reads.append(args)
        return []


def _uow() -> UnitOfWork:
    cause = Envelope(type="ReserveStock", correlation_id="ord_1", payload={})
    return UnitOfWork(conn=_NoOverrides(), service="inventory", cause=cause)


def _availability(uow: UnitOfWork, sku: str, available: int) -> None:
    queue_availability(
        uow,
        AvailabilityChanged(sku=sku, on_hand=10, reserved=10 - available, available=available),
        SAFETY,
    )


def _channel(uow: UnitOfWork) -> list[tuple[str, str, int]]:
    found: list[Any] = [
        (p.key, p.envelope.payload["channel"], p.envelope.payload["available"])
        for p in uow.pending
        if p.envelope.type == ChannelAvailabilityChanged.TYPE
    ]
    return sorted(found)


async def test_the_latest_availability_of_each_sku_in_a_batch_goes_out_once_before_commit():
    uow = _uow()
    _availability(uow, "A", 5)
    _availability(uow, "B", 1)
    _availability(uow, "A", 0)  # a later message of the batch sells A out
    assert uow.pending == [], "nothing is written before the commit"
    await uow.run_before_commit()
    totals = [
        (p.key, p.envelope.payload["available"])
        for p in uow.pending
        if p.envelope.type == AvailabilityChanged.TYPE
    ]
    assert totals == [("A", 0), ("B", 1)]
    assert _channel(uow) == [
        ("A", "amazon", 0),
        ("A", "ebay", 0),
        ("A", "shopify", 0),
        ("A", "woocommerce", 0),
        ("B", "amazon", 0),
        ("B", "ebay", 0),
        ("B", "shopify", 1),
        ("B", "woocommerce", 1),
    ]
    correlation = {p.envelope.correlation_id for p in uow.pending}
    assert correlation == {"ord_1"}
    assert uow.conn.reads == [(["A", "B"],)], "the SKUs' overrides read once, in one query"
    await uow.run_before_commit()
    assert len(uow.pending) == 10, "written once"


async def test_nothing_without_an_availability_change():
    uow = _uow()
    await uow.run_before_commit()
    assert uow.pending == []
