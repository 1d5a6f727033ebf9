"""Availability sync back to the sales channels (`oms.channel.availability.v1`, keyed by SKU).

Inventory emits `AvailabilityChanged` (on `oms.inventory.events.v1`) with a SKU's new totals
whenever its available stock changes: reservations, releases, commits, stock adjustments,
restocks. For each of those, one `ChannelAvailabilityChanged` per channel goes out in the same
transaction (outbox): the SKU's available stock minus that channel's safety stock, never
below 0, so a channel stops selling before the last units are gone everywhere.

The messages are derived from the `AvailabilityChanged` messages a unit of work holds, after
the code that changed the stock ran: `handlers.announce_availability`, which every path that
changes stock calls (handlers, HTTP API, returns), ends with `sync_channel_availability`. A consumer batch shares one transaction: when a later message
of the batch changes the same SKU again, the earlier per-channel messages are replaced, as
`AvailabilityChanged` itself is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.contracts.inventory import AvailabilityChanged, ChannelAvailabilityChanged
from shared.envelope import Envelope
from shared.platform.outbox import UnitOfWork


def channel_available(available: int, safety_stock: int) -> int:
    """What a channel may sell: the available stock less its safety stock, never below 0."""
    return max(0, available - max(0, safety_stock))


def channel_messages(
    sku: str, available: int, safety_stock: Mapping[str, int]
) -> list[ChannelAvailabilityChanged]:
    return [
        ChannelAvailabilityChanged(
            channel=channel,
            sku=sku,
            available=channel_available(available, held_back),
            safety_stock=held_back,
            warehouse_available=available,
        )
        for channel, held_back in sorted(safety_stock.items())
    ]


def sync_channel_availability(uow: UnitOfWork, safety_stock: Mapping[str, int]) -> None:
    """Make the unit of work's per-channel messages match its `AvailabilityChanged` ones."""
    latest: dict[str, Envelope] = {}
    channel_payloads: dict[str, list[dict[str, Any]]] = {}
    for pending in uow.pending:
        envelope = pending.envelope
        if envelope.type == AvailabilityChanged.TYPE:
            latest[str(envelope.payload["sku"])] = envelope
        elif envelope.type == ChannelAvailabilityChanged.TYPE:
            channel_payloads.setdefault(str(envelope.payload["sku"]), []).append(envelope.payload)
    for sku, envelope in latest.items():
        wanted = channel_messages(sku, int(envelope.payload["available"]), safety_stock)
        if channel_payloads.get(sku) == [m.model_dump(mode="json") for m in wanted]:
            continue
        uow.pending[:] = [
            p
            for p in uow.pending
            if not (p.envelope.type == ChannelAvailabilityChanged.TYPE and p.key == sku)
        ]
        for message in wanted:
            uow.emit(message, key=sku, correlation_id=envelope.correlation_id)


_safety_stock: dict[str, int] = {}


def configure(safety_stock: Mapping[str, int]) -> None:
    """Set the per-channel safety stock (from the service's settings, at build time)."""
    _safety_stock.clear()
    _safety_stock.update(safety_stock)


def configured_safety_stock() -> Mapping[str, int]:
    return _safety_stock
