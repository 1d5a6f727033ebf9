"""Pack station and dock: parcels are planned into boxes, scanned, weighed, labelled, shipped.

Each action runs in one unit of work and locks the fulfilment's row first, then the parcel's,
the same order everywhere (tracking updates too), so two actions on one fulfilment never
interleave. Buying a label talks to the carrier outside the transaction; the buy is idempotent
per parcel, so a retry after a lost answer gets the same label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

from services.fulfilment import store as fulfilments
from services.fulfilment.actions import (
    FulfilmentNotFound,
    TrackingOutcome,
    TrackingResult,
    UnknownTrackingNumber,
    deliver_locked,
    emit_in_order_trace,
    fail_locked,
    view,
)
from services.fulfilment.domain import (
    Action,
    Line,
    Status,
    TrackingStatus,
    action_for_tracking,
    decide_ship_parcel,
    failure_reason,
    normalise_carrier,
)
from services.fulfilment.packing import store
from services.fulfilment.packing.lifecycle import ParcelAction, ParcelStatus, check
from services.fulfilment.packing.store import Parcel, ParcelLine
from services.fulfilment.store import Fulfilment
from shared.contracts.common import SkuQuantity
from shared.contracts.fulfilment import FulfilmentShipped
from shared.platform.outbox import UnitOfWork

SHIPPED = frozenset({ParcelStatus.SHIPPED, ParcelStatus.DELIVERED})


class ParcelNotFound(Exception):
    def __init__(self, parcel_id: str) -> None:
        super().__init__(f"no parcel {parcel_id!r}")
        self.parcel_id = parcel_id


async def lock_parcel(uow: UnitOfWork, parcel_id: str) -> tuple[Fulfilment, Parcel]:
    """The parcel and its fulfilment, both locked (fulfilment first)."""
    found = await store.get_parcel(uow.conn, parcel_id)
    if found is None:
        raise ParcelNotFound(parcel_id)
    fulfilment = await fulfilments.get_fulfilment(uow.conn, found.fulfilment_id, lock=True)
    if fulfilment is None:
        raise FulfilmentNotFound(found.fulfilment_id)
    parcel = await store.get_parcel(uow.conn, parcel_id, lock=True)
    assert parcel is not None
    return fulfilment, parcel


def _units(lines: Iterable[Line | ParcelLine]) -> Counter[str]:
    counted: Counter[str] = Counter()
    for line in lines:
        counted[line.sku] += line.quantity
    return counted


async def ship_parcel(uow: UnitOfWork, parcel_id: str) -> Parcel:
    """Hand a labelled parcel to the carrier. Shipping a shipped parcel again is an idempotent
    repeat. The parcel holding the last unshipped lines ships the fulfilment."""
    fulfilment, parcel = await lock_parcel(uow, parcel_id)
    if parcel.status in SHIPPED:
        return parcel
    check(parcel.status, ParcelAction.SHIP, ParcelStatus.SHIPPED)
    assert parcel.carrier and parcel.tracking_number
    shipped = _units(parcel.lines)
    for other in await store.parcels_of(uow.conn, fulfilment.fulfilment_id):
        if other.status in SHIPPED:
            shipped += _units(other.lines)
    completes = not (_units(fulfilment.lines) - shipped)
    to = decide_ship_parcel(fulfilment.status, completes=completes).to
    now = datetime.now(UTC)
    await store.save_parcel_shipped(uow.conn, parcel_id, now)
    await fulfilments.save_parcel_shipped(uow.conn, fulfilment.fulfilment_id, to, now)
    emit_in_order_trace(
        uow,
        fulfilment,
        FulfilmentShipped(
            order_id=fulfilment.order_id,
            fulfilment_id=fulfilment.fulfilment_id,
            location=fulfilment.location,
            lines=tuple(SkuQuantity(sku=ln.sku, quantity=ln.quantity) for ln in parcel.lines),
            carrier=parcel.carrier,
            tracking_number=parcel.tracking_number,
            tracking_url=parcel.tracking_url,
            shipped_at=now,
            shipment_id=parcel_id,
            fulfilment_complete=to is Status.SHIPPED,
        ),
    )
    shipped_parcel = await store.get_parcel(uow.conn, parcel_id)
    assert shipped_parcel is not None
    return shipped_parcel


async def record_parcel_tracking(
    uow: UnitOfWork,
    carrier: str,
    tracking_number: str,
    status: TrackingStatus,
    at: datetime | None,
    description: str | None,
) -> TrackingResult:
    """A carrier's update for one parcel. A delivered parcel delivers the fulfilment once every
    parcel of it has shipped and been delivered; an exception fails the fulfilment."""
    carrier = normalise_carrier(carrier)
    found = await store.find_by_tracking_number(uow.conn, carrier, tracking_number)
    if found is None:
        raise UnknownTrackingNumber(carrier, tracking_number)
    fulfilment, parcel = await lock_parcel(uow, found)
    if not await fulfilments.insert_tracking_event(
        uow.conn, fulfilment.fulfilment_id, carrier, tracking_number, status.value, at, description
    ):
        return TrackingResult(await view(uow, fulfilment.fulfilment_id), TrackingOutcome.DUPLICATE)
    outcome = TrackingOutcome.RECORDED
    action = action_for_tracking(status)
    when = at or datetime.now(UTC)
    if action is Action.DELIVER and parcel.status is ParcelStatus.SHIPPED:
        await store.save_parcel_delivered(uow.conn, parcel.parcel_id, when)
        others = await store.parcels_of(uow.conn, fulfilment.fulfilment_id)
        all_delivered = all(
            p.status is ParcelStatus.DELIVERED for p in others if p.status in SHIPPED
        )
        if fulfilment.status is Status.SHIPPED and all_delivered:
            await deliver_locked(uow, fulfilment, when)
            outcome = TrackingOutcome.DELIVERED
    elif action is Action.FAIL and fulfilment.status in (Status.SHIPPED, Status.PARTIALLY_SHIPPED):
        await fail_locked(uow, fulfilment, failure_reason(status, description), when)
        outcome = TrackingOutcome.FAILED
    return TrackingResult(await view(uow, fulfilment.fulfilment_id), outcome)
