"""Picking on the floor: release pick lists for a location's waiting fulfilments, claim a list,
confirm picks by scanning, report an empty bin.

An empty bin (or a line no bin holds at release) is a short pick: the missing units leave their
fulfilment in the same transaction (`fulfilment_lines.short`; one none of whose units is left is
cancelled with reason `short_pick`), and ShortPick tells the order saga, which re-allocates them
or cancels them from the order.

Every action is one unit of work that reads top to bottom: lock → decide (the pure planner and
the pick list's state machine) → save → emit. A confirmation may carry the scan id of the
picker's device, so a retried confirmation is not a second pick.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from services.fulfilment import store as fulfilments
from services.fulfilment.domain import check_not_held, nothing_to_ship, record_short
from services.fulfilment.picking import lifecycle, store
from services.fulfilment.picking.lifecycle import PickDecision, Shortage
from services.fulfilment.picking.store import StoredPickList
from services.fulfilment.picking.strategies import (
    PickingPolicy,
    PickList,
    PickOrder,
    PickPlan,
    ServiceLevel,
    ShortLine,
    Strategy,
    WavePolicy,
    plan_picking,
    plan_waves,
)
from services.fulfilment.picking.walk import walk_list
from services.fulfilment.store import Fulfilment
from services.fulfilment.warehouse import store as warehouse
from services.fulfilment.warehouse.model import Bin
from shared.contracts.fulfilment import (
    LinePicked,
    PickListEntry,
    PickListReleased,
    ShortPick,
    short_pick_id,
)
from shared.platform.outbox import UnitOfWork

# Bins carry no counted quantity: a bin assigned a SKU is taken to hold enough, and an empty
# bin is found on the floor (a short pick).
_UNCOUNTED = 1_000_000_000
WAVE = "wave"


class PickListNotFound(Exception):
    def __init__(self, pick_list_id: str) -> None:
        super().__init__(f"no pick list {pick_list_id!r}")
        self.pick_list_id = pick_list_id


@dataclass(frozen=True)
class Skipped:
    fulfilment_id: str
    sku: str
    reason: str


@dataclass(frozen=True)
class Release:
    lists: tuple[StoredPickList, ...]
    short: tuple[ShortLine, ...]
    skipped: tuple[Skipped, ...]


def _service_level(shipping_method: str | None) -> ServiceLevel:
    try:
        return ServiceLevel((shipping_method or "").lower())
    except ValueError:
        return ServiceLevel.STANDARD


async def release(
    uow: UnitOfWork,
    location: str,
    strategy: str,
    *,
    orders_per_batch: int,
    max_fulfilments: int,
) -> Release:
    """Plan pick lists for up to `max_fulfilments` waiting fulfilments at `location` with
    `strategy` (single_order, batch, zone, or wave: waves by service level, each batch-picked).
    A fulfilment with a SKU that has no bin or no barcode there stays waiting (`skipped`)."""
    now = datetime.now(UTC)
    waiting = await store.lock_fulfilments_to_pick(uow.conn, location, max_fulfilments)
    found = [await fulfilments.get_fulfilment(uow.conn, f) for f in waiting]
    layout = await warehouse.get_layout(uow.conn, location)
    bins_of = layout.bins_of()
    skus = sorted({line.sku for f in found if f for line in f.lines})
    barcodes = {sku: item.barcode for sku, item in (await warehouse.items(uow.conn, skus)).items()}
    orders: list[PickOrder] = []
    skipped: list[Skipped] = []
    for fulfilment in found:
        assert fulfilment is not None
        problem = _unpickable(fulfilment, bins_of, barcodes)
        if problem:
            skipped.append(problem)
            continue
        orders.append(
            PickOrder(
                fulfilment_id=fulfilment.fulfilment_id,
                order_id=fulfilment.order_id,
                lines=fulfilment.lines,
                service_level=_service_level(fulfilment.shipping_method),
            )
        )
    stock = {sku: [(b, _UNCOUNTED) for b in bins] for sku, bins in bins_of.items()}
    plans: list[PickPlan]
    if strategy == WAVE:
        waves = plan_waves(
            orders,
            stock,
            WavePolicy(split_by_carrier=False),
            PickingPolicy(strategy=Strategy.BATCH, orders_per_batch=orders_per_batch),
        )
        plans = [w.plan for w in waves]
    else:
        policy = PickingPolicy(strategy=Strategy(strategy), orders_per_batch=orders_per_batch)
        plans = [plan_picking(orders, stock, policy)]
    released: list[StoredPickList] = []
    for plan in plans:
        for pick_list in plan.lists:
            await _save_released(uow, location, strategy, pick_list, barcodes, now)
            stored = await store.get_pick_list(uow.conn, pick_list.list_id)
            assert stored is not None
            released.append(stored)
    await store.mark_released(uow.conn, [o.fulfilment_id for o in orders], now)
    short = tuple(line for plan in plans for line in plan.short)
    for line in short:
        await _record_short(
            uow, line.order_id, line.fulfilment_id, location, "", line.sku, line.missing, None, now
        )
    return Release(tuple(released), short, tuple(skipped))


def _unpickable(
    fulfilment: Fulfilment, bins_of: Mapping[str, Sequence[Bin]], barcodes: Mapping[str, str]
) -> Skipped | None:
    for line in fulfilment.lines:
        if line.sku not in barcodes:
            return Skipped(fulfilment.fulfilment_id, line.sku, "sku_has_no_barcode")
        if line.sku not in bins_of:
            return Skipped(fulfilment.fulfilment_id, line.sku, "sku_in_no_bin")
    return None


async def _save_released(
    uow: UnitOfWork,
    location: str,
    strategy: str,
    pick_list: PickList,
    barcodes: dict[str, str],
    now: datetime,
) -> None:
    lifecycle.release(pick_list, barcodes)  # checks every stop has its barcode
    await store.insert_pick_list(uow.conn, location, pick_list, walk_list(pick_list).metres, now)
    entries = {(put.order_id, put.fulfilment_id) for stop in pick_list.stops for put in stop.puts}
    uow.emit(
        PickListReleased(
            pick_list_id=pick_list.list_id,
            location=location,
            strategy=strategy,
            wave=pick_list.wave,
            zone=pick_list.zone,
            fulfilments=tuple(
                PickListEntry(order_id=o, fulfilment_id=f) for o, f in sorted(entries)
            ),
        ),
        key=pick_list.list_id,
        correlation_id=pick_list.list_id,
    )


async def _lock(uow: UnitOfWork, pick_list_id: str) -> StoredPickList:
    found = await store.get_pick_list(uow.conn, pick_list_id, lock=True)
    if found is None:
        raise PickListNotFound(pick_list_id)
    return found


async def _apply(
    uow: UnitOfWork, pick_list: StoredPickList, decision: PickDecision, now: datetime
) -> StoredPickList:
    """Save the decision; the list as saved (not read back: the decision is what was saved)."""
    claimed = decision.outcome is lifecycle.Outcome.CLAIMED
    await store.save_progress(
        uow.conn, decision.state, now, claimed=claimed, finished=decision.finished
    )
    return replace(
        pick_list,
        state=decision.state,
        status=decision.state.status,
        picker=decision.state.picker_id,
        claimed_at=now if claimed else pick_list.claimed_at,
        finished_at=now if decision.finished else pick_list.finished_at,
    )


async def claim(uow: UnitOfWork, pick_list_id: str, picker: str) -> StoredPickList:
    pick_list = await _lock(uow, pick_list_id)
    decision = lifecycle.claim(pick_list.state, picker)
    if decision.outcome is lifecycle.Outcome.UNCHANGED:
        return pick_list
    for fulfilment_id, reason in await store.held_on_list(uow.conn, pick_list_id):
        check_not_held(fulfilment_id, reason)
    return await _apply(uow, pick_list, decision, datetime.now(UTC))


async def confirm_pick(
    uow: UnitOfWork,
    pick_list_id: str,
    picker: str,
    stop: int,
    barcode: str,
    quantity: int,
    scan_id: str | None,
) -> StoredPickList:
    pick_list = await _lock(uow, pick_list_id)
    decision = lifecycle.confirm_pick(pick_list.state, picker, stop, barcode, quantity)
    if scan_id is not None and not await store.first_confirmation(uow.conn, pick_list_id, scan_id):
        return pick_list  # a retried confirmation: the pick was recorded the first time
    before = pick_list.state.stops[stop].put_outcomes()
    after = decision.state.stops[stop].put_outcomes()
    bin_code = decision.state.stops[stop].stop.bin.code
    for was, now_ in zip(before, after, strict=True):
        if now_.picked > was.picked:
            uow.emit(
                LinePicked(
                    order_id=now_.put.order_id,
                    fulfilment_id=now_.put.fulfilment_id,
                    pick_list_id=pick_list_id,
                    sku=decision.state.stops[stop].stop.sku,
                    quantity=now_.picked - was.picked,
                    bin=bin_code,
                ),
                key=now_.put.order_id,
                correlation_id=now_.put.order_id,
            )
    return await _apply(uow, pick_list, decision, datetime.now(UTC))


async def report_empty_bin(
    uow: UnitOfWork, pick_list_id: str, picker: str, stop: int
) -> StoredPickList:
    pick_list = await _lock(uow, pick_list_id)
    decision = lifecycle.report_empty_bin(pick_list.state, picker, stop)
    now = datetime.now(UTC)
    # Fulfilments locked in id order, as everywhere.
    for shortage in sorted(decision.shortages, key=lambda s: s.fulfilment_id):
        await _record_short_of(uow, pick_list, shortage, now)
    return await _apply(uow, pick_list, decision, now)


async def _record_short_of(
    uow: UnitOfWork, pick_list: StoredPickList, shortage: Shortage, now: datetime
) -> None:
    await _record_short(
        uow,
        shortage.order_id,
        shortage.fulfilment_id,
        pick_list.location,
        pick_list.pick_list_id,
        shortage.sku,
        shortage.missing,
        shortage.bin_code,
        now,
    )


async def _record_short(
    uow: UnitOfWork,
    order_id: str,
    fulfilment_id: str,
    location: str,
    pick_list_id: str,
    sku: str,
    missing: int,
    bin_code: str | None,
    now: datetime,
) -> None:
    """Units a bin did not hold leave their fulfilment (a fulfilment none of whose units is
    left ends without shipping), and the order saga hears of it: ShortPick."""
    fulfilment = await fulfilments.get_fulfilment(uow.conn, fulfilment_id, lock=True)
    assert fulfilment is not None  # pick lists reference their fulfilments
    lines = record_short(fulfilment.lines, sku, missing)
    await fulfilments.save_short(uow.conn, fulfilment_id, lines)
    empty = nothing_to_ship(lines)
    if empty:
        await fulfilments.save_ended_short(uow.conn, fulfilment_id, now)
    uow.emit(
        ShortPick(
            order_id=order_id,
            fulfilment_id=fulfilment_id,
            location=location,
            pick_list_id=pick_list_id,
            sku=sku,
            missing=missing,
            bin=bin_code,
            short_id=short_pick_id(fulfilment_id, pick_list_id, bin_code, sku),
            fulfilment_empty=empty,
        ),
        key=order_id,
        correlation_id=order_id,
    )


@dataclass(frozen=True)
class Picked:
    """What picking produced for one fulfilment: whether every list it is on is finished, and
    the units picked per SKU."""

    on_lists: bool
    finished: bool
    units: Counter[str]


async def picked_for(db: store.Db, fulfilment_id: str) -> Picked:
    lists = await store.pick_lists_of_fulfilment(db, fulfilment_id)
    units: Counter[str] = Counter()
    for pick_list in lists:
        for progress in pick_list.state.stops:
            for outcome in progress.put_outcomes():
                if outcome.put.fulfilment_id == fulfilment_id and outcome.picked:
                    units[progress.stop.sku] += outcome.picked
    finished = bool(lists) and all(p.status in lifecycle.FINISHED for p in lists)
    return Picked(bool(lists), finished, units)
