"""The returns saga's commands to inventory: restock resellable returned items, write off
damaged ones.

Both are idempotent per (return id, SKU) beyond the inbox: what was applied for a return is
recorded in `returned_stock` in the same transaction, a re-sent command applies only SKUs not
applied yet (none, normally) and answers with everything applied for the return.

Ledger reasons:
- restock: `return` (+quantity on hand at the location: sellable again);
- write-off: `return_damaged` (+quantity: the units came back) immediately followed by `damage`
  (-quantity: written off), so the ledger shows both and sellable stock does not change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from services.inventory.availability.channels import Availability
from services.inventory.stock.domain import StockChange
from services.inventory.stock.store import InventoryStore, ReturnedStock
from shared.contracts.common import SkuQuantity
from shared.contracts.inventory import (
    ReturnedItemsRestocked,
    ReturnedItemsWrittenOff,
    ReturnedStockFailed,
)
from shared.contracts.returns import RestockReturnedItems, WriteOffReturnedItems
from shared.envelope import Envelope
from shared.platform.outbox import UnitOfWork

RESTOCK = "restock"
WRITE_OFF = "write_off"

RETURN = "return"
RETURN_DAMAGED = "return_damaged"
DAMAGE = "damage"

UNKNOWN_SKU = "unknown_sku"


def still_to_apply(
    lines: Iterable[SkuQuantity], done: Iterable[ReturnedStock]
) -> list[tuple[str, int]]:
    """The command's units per SKU, less the SKUs already applied for the return."""
    applied = {row.sku for row in done}
    wanted: dict[str, int] = {}
    for line in lines:
        if line.sku not in applied:
            wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    return sorted(wanted.items())


class ReturnedStockCommands:
    def __init__(self, availability: Availability) -> None:
        self._availability = availability

    async def restock(
        self, uow: UnitOfWork, envelope: Envelope, command: RestockReturnedItems
    ) -> None:
        async def put_back(store: InventoryStore, todo: list[tuple[str, int]]) -> None:
            changes = [StockChange(sku, command.location, qty, 0, RETURN) for sku, qty in todo]
            await store.apply_stock_changes(
                changes,
                order_id=command.order_id,
                reference=command.return_id,
                detail="returned, resellable",
            )
            await self._availability.announce(uow, store, changes)

        await _apply_once(uow, command, RESTOCK, put_back, ReturnedItemsRestocked)

    async def write_off(
        self, uow: UnitOfWork, envelope: Envelope, command: WriteOffReturnedItems
    ) -> None:
        async def write_off(store: InventoryStore, todo: list[tuple[str, int]]) -> None:
            for on_hand_sign, reason in ((1, RETURN_DAMAGED), (-1, DAMAGE)):
                # One change per stock row per statement: the two ledger rows, two statements.
                await store.apply_stock_changes(
                    [
                        StockChange(sku, command.location, on_hand_sign * qty, 0, reason)
                        for sku, qty in todo
                    ],
                    order_id=command.order_id,
                    reference=command.return_id,
                    detail=command.reason,
                )

        await _apply_once(uow, command, WRITE_OFF, write_off, ReturnedItemsWrittenOff)


async def _apply_once(
    uow: UnitOfWork,
    command: RestockReturnedItems | WriteOffReturnedItems,
    kind: str,
    apply: Callable[[InventoryStore, list[tuple[str, int]]], Awaitable[None]],
    answer: type[ReturnedItemsRestocked] | type[ReturnedItemsWrittenOff],
) -> None:
    """Apply the SKUs of the command not applied for the return yet (refused, with nothing
    applied, when one is unknown), record them, and answer with all applied for the return."""
    store = InventoryStore(uow.conn)
    await store.lock_return(command.return_id)
    todo = still_to_apply(command.lines, await store.returned_stock(command.return_id, kind))
    if todo:
        if not await _all_known(uow, store, command.return_id, command.order_id, kind, todo):
            return
        await store.lock_stock_at(command.location, (sku for sku, _ in todo))
        await apply(store, todo)
        await store.record_returned_stock(
            _rows(command.return_id, kind, command.order_id, command.location, todo)
        )
    done = await store.returned_stock(command.return_id, kind)
    uow.emit(
        answer(
            return_id=command.return_id,
            order_id=command.order_id,
            location=done[0].location if done else command.location,
            lines=tuple(SkuQuantity(sku=r.sku, quantity=r.quantity) for r in done),
        ),
        key=command.return_id,
    )


async def _all_known(
    uow: UnitOfWork,
    store: InventoryStore,
    return_id: str,
    order_id: str,
    kind: str,
    todo: list[tuple[str, int]],
) -> bool:
    """True when inventory knows every SKU; else answers with the refusal (nothing applied)."""
    skus = [sku for sku, _ in todo]
    unknown = sorted(set(skus) - await store.known_skus(skus))
    if unknown:
        uow.emit(
            ReturnedStockFailed(
                return_id=return_id,
                order_id=order_id,
                kind=kind,
                reason=UNKNOWN_SKU,
                skus=tuple(unknown),
            ),
            key=return_id,
        )
    return not unknown


def _rows(
    return_id: str, kind: str, order_id: str, location: str, todo: list[tuple[str, int]]
) -> list[ReturnedStock]:
    return [ReturnedStock(return_id, kind, sku, order_id, location, qty) for sku, qty in todo]
