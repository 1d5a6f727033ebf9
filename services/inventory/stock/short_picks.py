"""The order saga's commands after a short pick (a bin found empty on the floor):
ReallocateStock and WriteOffShortPick.

Both first write the missing units off where they were reserved: out of the order's
reservation there and out of stock on hand (ledger reason `short_pick`, reference the short's
id), since the units are not there; what is available does not change. ReallocateStock then
reserves as many at the other locations by the allocation rule, under the same order lines
(ledger reason `reserved`, reference the short's id) → StockReallocated, or, when the other
locations cannot take them all (or the order's stock was released), reserves nothing →
StockReallocationFailed. WriteOffShortPick answers ShortPickWrittenOff.

Idempotent per short id beyond the inbox: what was applied is recorded in `short_picks` in the
same transaction, and a re-sent command repeats the stored answer.
"""

from __future__ import annotations

from dataclasses import replace

from services.inventory.availability.channels import Availability
from services.inventory.stock.domain import (
    ORDER_RELEASED,
    Refused,
    ReservationState,
    StockChange,
    plan_short_write_off,
    reallocate_short,
    reservation_changes,
)
from services.inventory.stock.store import (
    AppliedShortPick,
    InventoryStore,
    LedgerEntry,
    levels_after,
)
from shared.contracts.common import Allocation, ShortUnits
from shared.contracts.inventory import (
    ShortPickWrittenOff,
    StockReallocated,
    StockReallocationFailed,
)
from shared.contracts.order_intake import ReallocateStock, WriteOffShortPick
from shared.envelope import Envelope
from shared.platform.outbox import UnitOfWork

REALLOCATE = "reallocate"
WRITE_OFF = "write_off"

REALLOCATED = "reallocated"
FAILED = "failed"
WRITTEN_OFF = "written_off"

NOT_RESERVED = "not_reserved"  # the order holds no reservation of the SKU to re-allocate


class ShortPickCommands:
    def __init__(self, availability: Availability) -> None:
        self._availability = availability

    async def reallocate(
        self, uow: UnitOfWork, envelope: Envelope, command: ReallocateStock
    ) -> None:
        store = InventoryStore(uow.conn)
        order = await store.lock_order(command.order_id, expect_existing=True)
        done = await store.short_pick(command.short_id)
        if done is not None:
            _answer(uow, done)
            return
        reservations = await store.reservations(command.order_id)
        stock, known = await store.lock_stock_of_known_skus([command.sku])
        changes, ledger, per_line = await _write_off(store, command, reservations)
        levels = levels_after(stock, ledger)
        applied = _applied(command, REALLOCATE, sum(n for _, n in per_line))
        line_ids = per_line or _lines_of(reservations, command.sku)
        elsewhere = sum(
            max(level.available, 0) for level in levels if level.location != command.location
        )
        if order.released:
            applied = _failed(applied, ORDER_RELEASED, 0)
        elif not line_ids:
            applied = _failed(applied, NOT_RESERVED, elsewhere)
        else:
            decision = reallocate_short(
                command.sku, command.quantity, command.location, line_ids, levels, known
            )
            if isinstance(decision, Refused):
                applied = _failed(applied, decision.reason, elsewhere)
            else:
                positions = {r.line_id: r.position for r in reservations}
                await store.add_reservations(command.order_id, decision.placements, positions)
                reserving = reservation_changes(decision.placements)
                ledger += await store.apply_stock_changes(
                    reserving,
                    order_id=command.order_id,
                    reference=command.short_id,
                    detail=f"re-allocated after a short pick at {command.location}",
                )
                changes = (*changes, *reserving)
                levels = levels_after(levels, ledger)
                applied = replace(applied, outcome=REALLOCATED, allocations=decision.placements)
        await store.record_short_pick(applied)
        _answer(uow, applied)
        await self._availability.announce(uow, store, changes, levels=levels)

    async def write_off(
        self, uow: UnitOfWork, envelope: Envelope, command: WriteOffShortPick
    ) -> None:
        store = InventoryStore(uow.conn)
        await store.lock_order(command.order_id, expect_existing=True)
        done = await store.short_pick(command.short_id)
        if done is not None:
            _answer(uow, done)
            return
        reservations = await store.reservations(command.order_id)
        stock = await store.lock_stock([command.sku])
        changes, ledger, per_line = await _write_off(store, command, reservations)
        applied = _applied(command, WRITE_OFF, sum(n for _, n in per_line))
        await store.record_short_pick(applied)
        _answer(uow, applied)
        await self._availability.announce(uow, store, changes, levels=levels_after(stock, ledger))


async def _write_off(
    store: InventoryStore, command: ShortUnits, reservations: list[ReservationState]
) -> tuple[tuple[StockChange, ...], list[LedgerEntry], tuple[tuple[str, int], ...]]:
    """Write the missing units off the order's reservation at the short location: the stock
    changes, their ledger rows, and the units taken per order line."""
    plan = plan_short_write_off(command.location, command.sku, command.quantity, reservations)
    await store.save_reservations(plan.reservations)
    detail = f"bin {command.bin} found empty" if command.bin else "short at release"
    ledger = await store.apply_stock_changes(
        plan.stock_changes,
        order_id=command.order_id,
        reference=command.short_id,
        detail=f"{detail} (fulfilment {command.fulfilment_id})",
    )
    return plan.stock_changes, ledger, plan.per_line


def _lines_of(reservations: list[ReservationState], sku: str) -> tuple[tuple[str, int], ...]:
    """The order's first line of the SKU (none written off: its reservation there was used up),
    to re-allocate the units under."""
    for reservation in reservations:
        if reservation.sku == sku:
            return ((reservation.line_id, 0),)
    return ()


def _applied(command: ShortUnits, kind: str, written_off: int) -> AppliedShortPick:
    return AppliedShortPick(
        short_id=command.short_id,
        order_id=command.order_id,
        kind=kind,
        sku=command.sku,
        location=command.location,
        quantity=command.quantity,
        written_off=written_off,
        outcome=WRITTEN_OFF,
    )


def _failed(applied: AppliedShortPick, reason: str, available: int) -> AppliedShortPick:
    return replace(applied, outcome=FAILED, reason=reason, available=available)


def _answer(uow: UnitOfWork, applied: AppliedShortPick) -> None:
    common = {
        "order_id": applied.order_id,
        "short_id": applied.short_id,
        "sku": applied.sku,
        "location": applied.location,
        "written_off": applied.written_off,
    }
    if applied.kind == WRITE_OFF:
        uow.emit(ShortPickWrittenOff(**common), key=applied.order_id)
    elif applied.outcome == REALLOCATED:
        allocations = tuple(
            Allocation(line_id=p.line_id, sku=p.sku, location=p.location, quantity=p.quantity)
            for p in applied.allocations
        )
        uow.emit(StockReallocated(**common, allocations=allocations), key=applied.order_id)
    else:
        uow.emit(
            StockReallocationFailed(
                **common,
                requested=applied.quantity,
                available=applied.available or 0,
                reason=applied.reason or FAILED,
            ),
            key=applied.order_id,
        )
