"""The saga's commands to inventory: reserve, release and commit stock.

Each handler runs inside the consumer's transaction: lock the order, lock its stock rows, let the
domain decide, save, and emit the answer through the outbox. Every command is idempotent beyond
the inbox (the saga re-sends commands with new message ids):

- ReserveStock: the first answer of an order is stored and repeated as is; an order already
  released is never reserved afterwards (answered `order_released`). The locations follow the
  routing policy (services/inventory/routing). A kit's line reserves its components
  (services/inventory/kits), all or nothing with the rest of the order. An order short of SKUs
  that may be backordered reserves what there is and waits in their queues for the rest
  (StockBackordered; services/inventory/backorders); a re-sent one is answered StockReserved
  once the queues filled it, else the same StockBackordered.
- ReleaseStock: releases what is still reserved (and takes the order out of any backorder
  queue) and always answers, listing everything the order ever released (so a re-sent release
  gets the same answer and changes nothing).
- CommitStock: applied once per shipment (`shipment_id`, else the fulfilment id: a fulfilment
  shipped whole); a re-sent one repeats the stored answer. A fulfilment that leaves in several
  parcels commits each parcel's lines on its own.
"""

from __future__ import annotations

from collections.abc import Iterable

from services.inventory.availability.channels import Availability
from services.inventory.backorders import service as backorders
from services.inventory.backorders.domain import (
    Backordered,
    demand_may_queue,
    deny_kit_components,
)
from services.inventory.backorders.domain import reserve as reserve_or_queue
from services.inventory.kits.domain import expand
from services.inventory.kits.store import KitStore
from services.inventory.routing import router as routing
from services.inventory.stock.domain import (
    ORDER_RELEASED,
    Placement,
    Refused,
    Shortfall,
    plan_commit,
    plan_release,
    reservation_changes,
)
from services.inventory.stock.domain import LineRequest as DomainLine
from services.inventory.stock.store import (
    CommittedFulfilment,
    InventoryStore,
    OrderRecord,
    levels_after,
)
from shared.contracts.common import Allocation, ShortLine, SkuQuantity
from shared.contracts.inventory import (
    StockCommitted,
    StockReleased,
    StockReservationFailed,
    StockReserved,
)
from shared.contracts.order_intake import CommitStock, ReleaseStock, ReserveStock
from shared.envelope import Envelope
from shared.platform.outbox import UnitOfWork


class StockCommands:
    def __init__(self, availability: Availability, router: routing.Router | None = None) -> None:
        self._availability = availability
        self._router = router or routing.Router()

    async def reserve(self, uow: UnitOfWork, envelope: Envelope, command: ReserveStock) -> None:
        store = InventoryStore(uow.conn)
        order = await store.lock_order(command.order_id)
        if order.outcome == "backordered":
            await backorders.answer_again(uow, store, command.order_id)
            return
        if order.outcome is not None:
            _answer_again(uow, order)
            return
        if order.released:
            await store.record_refused(command.order_id, ORDER_RELEASED, ())
            _emit_refusal(uow, command.order_id, ORDER_RELEASED, ())
            return

        ordered = [DomainLine(line.line_id, line.sku, line.quantity) for line in command.lines]
        kits = await KitStore(uow.conn).kits_touching(line.sku for line in ordered)
        expansion = expand(ordered, kits)  # a kit's line becomes one line per component
        lines = expansion.lines
        skus = {line.sku for line in lines}
        stock, known = await store.lock_stock_of_known_skus(skus)
        demand = await backorders.demand(uow, skus)
        # Kits are not backordered: a kit short of a component is refused as before.
        policies = deny_kit_components(demand, expansion.component_skus)
        incoming = (
            await backorders.incoming_for(uow, policies) if demand_may_queue(policies) else []
        )
        allocator = await self._router.allocator(uow.conn, command, stock)
        decision = reserve_or_queue(lines, stock, known, policies, incoming, allocator)
        if not isinstance(decision, Backordered):
            decision = expansion.answer(decision)
        if isinstance(decision, Refused):
            await store.record_refused(command.order_id, decision.reason, decision.shortfalls)
            _emit_refusal(uow, command.order_id, decision.reason, decision.shortfalls)
            return

        positions = {line.line_id: index for index, line in enumerate(lines)}
        await store.add_reservations(command.order_id, decision.placements, positions)
        changes = reservation_changes(decision.placements)
        ledger = await store.apply_stock_changes(changes, order_id=command.order_id)
        levels = levels_after(stock, ledger)
        if isinstance(decision, Backordered):
            await backorders.queue_order(uow, command.order_id, decision, positions)
            await self._availability.announce(uow, store, changes, levels=levels, skus=skus)
            return
        explanation = routing.stored(allocator.explanation) if allocator.explanation else None
        await store.record_reserved(command.order_id, decision.placements, explanation)
        uow.emit(
            StockReserved(
                order_id=command.order_id,
                allocations=_allocations(decision.placements),
                routing=routing.decision(explanation),
            ),
            key=command.order_id,
        )
        await self._availability.announce(
            uow, store, changes, levels=levels, demand=demand, kits=kits
        )

    async def release(self, uow: UnitOfWork, envelope: Envelope, command: ReleaseStock) -> None:
        store = InventoryStore(uow.conn)
        await store.lock_order(command.order_id, expect_existing=True)
        await store.mark_released(command.order_id, command.reason)
        # Backorder fills change the order's reservations under the stock rows' locks: lock
        # them before reading what to release.
        waiting = await backorders.skus_waiting(uow, command.order_id)
        skus = waiting | {r.sku for r in await store.reservations(command.order_id)}
        locked = await store.lock_stock(skus) if skus else []
        left_queues = await backorders.leave_queues(uow, command.order_id) if waiting else []
        plan = plan_release(await store.reservations(command.order_id))
        levels = None
        if plan.stock_changes:
            await store.save_reservations(plan.reservations)
            ledger = await store.apply_stock_changes(
                plan.stock_changes, order_id=command.order_id, detail=command.reason
            )
            levels = levels_after(locked, ledger)
        released = [r for r in await store.reservations(command.order_id) if r.released > 0]
        uow.emit(
            StockReleased(
                order_id=command.order_id,
                released=tuple(
                    Allocation(
                        line_id=r.line_id, sku=r.sku, location=r.location, quantity=r.released
                    )
                    for r in released
                ),
            ),
            key=command.order_id,
        )
        await self._availability.announce(
            uow, store, plan.stock_changes, levels=levels, skus={r.sku for r in left_queues}
        )

    async def commit(self, uow: UnitOfWork, envelope: Envelope, command: CommitStock) -> None:
        store = InventoryStore(uow.conn)
        await store.lock_order(command.order_id, expect_existing=True)
        shipment_id = command.shipment_id or command.fulfilment_id
        done = await store.committed_shipment(shipment_id)
        if done is not None:
            _emit_committed(uow, done)
            return

        shipped = [(line.sku, line.quantity) for line in command.lines]
        reservations = await store.reservations(command.order_id)
        stock = await store.lock_stock(sku for sku, _ in shipped)
        # CannotCommit propagates: shipped stock that inventory cannot account for is dead-lettered
        # for an operator (correct the count, then replay), never silently clamped.
        plan = plan_commit(command.location, shipped, reservations, stock)
        await store.save_reservations(plan.reservations)
        ledger = await store.apply_stock_changes(
            plan.stock_changes,
            order_id=command.order_id,
            reference=shipment_id,
            detail=None
            if shipment_id == command.fulfilment_id
            else f"fulfilment {command.fulfilment_id}",
        )
        commit = CommittedFulfilment(
            command.fulfilment_id, command.order_id, command.location, tuple(shipped), shipment_id
        )
        await store.record_commit(commit)
        _emit_committed(uow, commit)
        await self._availability.announce(
            uow, store, plan.stock_changes, levels=levels_after(stock, ledger)
        )


def _answer_again(uow: UnitOfWork, order: OrderRecord) -> None:
    if order.outcome == "reserved":
        uow.emit(
            StockReserved(
                order_id=order.order_id,
                allocations=_allocations(order.allocations),
                routing=routing.decision(order.routing),
            ),
            key=order.order_id,
        )
    else:
        _emit_refusal(uow, order.order_id, order.failure_reason or "", order.short_lines)


def _emit_refusal(
    uow: UnitOfWork, order_id: str, reason: str, shortfalls: Iterable[Shortfall]
) -> None:
    uow.emit(
        StockReservationFailed(
            order_id=order_id,
            reason=reason,
            short_lines=tuple(
                ShortLine(
                    line_id=s.line_id,
                    sku=s.sku,
                    requested=s.requested,
                    available=s.available,
                    component=s.component,
                )
                for s in shortfalls
            ),
        ),
        key=order_id,
    )


def _emit_committed(uow: UnitOfWork, commit: CommittedFulfilment) -> None:
    uow.emit(
        StockCommitted(
            order_id=commit.order_id,
            fulfilment_id=commit.fulfilment_id,
            location=commit.location,
            lines=tuple(SkuQuantity(sku=sku, quantity=qty) for sku, qty in commit.lines),
            shipment_id=None if commit.shipment_id == commit.fulfilment_id else commit.shipment_id,
        ),
        key=commit.order_id,
    )


def _allocations(placements: Iterable[Placement]) -> tuple[Allocation, ...]:
    return tuple(
        Allocation(
            line_id=p.line_id,
            sku=p.sku,
            location=p.location,
            quantity=p.quantity,
            kit_sku=p.kit_sku,
            kit_line_id=p.kit_line_id,
            per_kit=p.per_kit,
        )
        for p in placements
    )
