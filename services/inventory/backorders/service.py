"""What the stock commands and every stock change call: queue a backordered order, fill the
queues when stock arrives, and take an order out of them when it is released.

Filling runs in the transaction of the change that made stock available (a receipt, a
transfer, a release, a restock), before availability is announced, so no other order can be
given the units first and the channels hear of what is left after the queue was served. An
order every queued line of which is filled is answered `StockReserved` with all its
reservations: the order saga goes on from BACKORDERED.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from services.inventory.backorders.domain import (
    Backordered,
    Incoming,
    Policy,
    SkuDemand,
    fill_changes,
    plan_fill,
)
from services.inventory.backorders.store import BackorderStore, QueueRow
from services.inventory.stock.domain import Placement, StockChange
from services.inventory.stock.store import InventoryStore
from shared.contracts.common import Allocation
from shared.contracts.inventory import BackorderedLine, StockBackordered, StockReserved
from shared.platform.outbox import UnitOfWork


async def demand(uow: UnitOfWork, skus: Iterable[str]) -> dict[str, SkuDemand]:
    return await BackorderStore(uow.conn).demand(skus)


async def incoming_for(uow: UnitOfWork, demand: Mapping[str, SkuDemand]) -> list[Incoming]:
    """Open purchase orders of the SKUs that may be backordered (none asked for the others)."""
    skus = [sku for sku, d in demand.items() if d.policy != Policy.DENY]
    return await BackorderStore(uow.conn).incoming(skus) if skus else []


async def queue_order(
    uow: UnitOfWork, order_id: str, decision: Backordered, positions: dict[str, int]
) -> None:
    """Queue the order's missing units, remember the answer and give it."""
    store = BackorderStore(uow.conn)
    await store.queue(order_id, decision.queued, positions)
    await store.record_backordered(order_id, decision.placements, decision.queued)
    emit_backordered(uow, order_id, decision)


def emit_backordered(uow: UnitOfWork, order_id: str, decision: Backordered) -> None:
    uow.emit(
        StockBackordered(
            order_id=order_id,
            allocations=_allocations(decision.placements),
            backordered=tuple(
                BackorderedLine(
                    line_id=q.line_id,
                    sku=q.sku,
                    location=q.location,
                    quantity=q.quantity,
                    kind="preorder" if q.kind == "preorder" else "backorder",
                    expected_on=q.expected_on,
                )
                for q in decision.queued
            ),
            expected_on=decision.expected_on,
        ),
        key=order_id,
    )


async def answer_again(uow: UnitOfWork, store: InventoryStore, order_id: str) -> None:
    """A re-sent ReserveStock of a backordered order: StockReserved once every queued unit was
    filled, else the same StockBackordered."""
    backorders = BackorderStore(uow.conn)
    rows = await backorders.of_order(order_id)
    if rows and all(row.status == "filled" for row in rows):
        await _emit_reserved(uow, store, order_id)
        return
    placements, queued = await backorders.answered_backordered(order_id)
    emit_backordered(uow, order_id, Backordered(placements, queued))


async def skus_waiting(uow: UnitOfWork, order_id: str) -> set[str]:
    return await BackorderStore(uow.conn).skus_of_order(order_id)


async def leave_queues(uow: UnitOfWork, order_id: str) -> list[QueueRow]:
    """The order (released) leaves every queue; its filled units are reservations, released
    with the rest. Call with the stock rows of its SKUs locked."""
    return await BackorderStore(uow.conn).release_order(order_id)


async def fill_queues(
    uow: UnitOfWork, store: InventoryStore, skus: Iterable[str], demand: Mapping[str, SkuDemand]
) -> list[StockChange]:
    """Reserve what is available of the SKUs for the orders waiting in their queues, oldest
    first; answer every order now filled whole. The stock changes made, one per order and
    stock row."""
    backorders = BackorderStore(uow.conn)
    changes: list[StockChange] = []
    for sku in sorted(set(skus)):
        waiting = await backorders.waiting_orders(sku)
        if not waiting:
            continue
        levels = await store.lock_stock([sku])
        rows = await backorders.lock_orders(waiting)
        queue = [row for row in rows if row.sku == sku and row.status == "queued"]
        whole_first = demand[sku].fill_whole_first if sku in demand else False
        plan = plan_fill(sku, queue, levels, whole_first=whole_first)
        if not plan.fills:
            continue
        per_order: dict[str, list[Placement]] = defaultdict(list)
        positions: dict[str, dict[str, int]] = defaultdict(dict)
        for fill in plan.fills:
            entry = fill.entry
            per_order[entry.order_id].append(
                Placement(entry.line_id, sku, fill.location, fill.quantity)
            )
            positions[entry.order_id][entry.line_id] = entry.position
        for order_id, placements in sorted(per_order.items()):
            await store.add_reservations(order_id, placements, positions[order_id])
            order_changes = fill_changes(sku, placements)
            await store.apply_stock_changes(order_changes, order_id=order_id, reference="backorder")
            changes.extend(order_changes)
        await backorders.save_fills(plan.fills)
        filled = plan.filled()
        for order_id in sorted(per_order):
            order_rows = [row for row in rows if row.order_id == order_id]
            if all(_filled_now(row, filled) for row in order_rows):
                await _emit_reserved(uow, store, order_id)
    return changes


def _filled_now(row: QueueRow, filled: Mapping[tuple[str, str], int]) -> bool:
    if row.status == "released":
        return False
    return row.filled + filled.get((row.order_id, row.line_id), 0) >= row.quantity


async def _emit_reserved(uow: UnitOfWork, store: InventoryStore, order_id: str) -> None:
    reservations = await store.reservations(order_id)
    uow.emit(
        StockReserved(
            order_id=order_id,
            allocations=tuple(
                Allocation(
                    line_id=r.line_id, sku=r.sku, location=r.location, quantity=r.outstanding
                )
                for r in reservations
                if r.outstanding > 0
            ),
        ),
        key=order_id,
        correlation_id=order_id,
    )


def _allocations(placements: Iterable[Placement]) -> tuple[Allocation, ...]:
    return tuple(
        Allocation(line_id=p.line_id, sku=p.sku, location=p.location, quantity=p.quantity)
        for p in placements
    )
