"""What warehouses and carriers do to a fulfilment: ship, deliver, report tracking.

Each runs inside one unit of work: lock the fulfilment's row (SELECT ... FOR UPDATE, so a ship,
a deliver and a cancel of the same fulfilment never interleave and exactly one of a racing ship
and cancel wins), ask the domain, save, and emit the event through the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from services.fulfilment import store
from services.fulfilment.carriers.base import TrackingUpdate
from services.fulfilment.domain import (
    Action,
    Shipment,
    Status,
    action_for_tracking,
    check_not_held,
    choose_carrier,
    decide_ship,
    failure_reason,
    issue_tracking_number,
    normalise_carrier,
    transition,
)
from services.fulfilment.store import Fulfilment
from shared.contracts.common import SkuQuantity
from shared.contracts.fulfilment import FulfilmentDelivered, FulfilmentFailed, FulfilmentShipped
from shared.envelope import Event
from shared.platform.outbox import UnitOfWork
from shared.platform.telemetry import continue_trace


class FulfilmentNotFound(Exception):
    def __init__(self, fulfilment_id: str) -> None:
        super().__init__(f"no fulfilment {fulfilment_id!r}")
        self.fulfilment_id = fulfilment_id


class UnknownTrackingNumber(Exception):
    def __init__(self, carrier: str, tracking_number: str) -> None:
        super().__init__(f"{carrier} has no shipment with tracking number {tracking_number!r}")
        self.carrier = carrier
        self.tracking_number = tracking_number


async def ship(
    uow: UnitOfWork, fulfilment_id: str, carrier: str | None, tracking_number: str | None
) -> Fulfilment:
    """Ship; without a carrier one is chosen by destination, without a number one is issued
    (both deterministic, so a retried request with the same body is an idempotent repeat)."""
    fulfilment = await _lock(uow, fulfilment_id)
    if fulfilment.status in (Status.CREATED, Status.PARTIALLY_SHIPPED):
        check_not_held(fulfilment_id, fulfilment.hold_reason)
    chosen = normalise_carrier(carrier) if carrier else _default_carrier(fulfilment)
    requested = Shipment(chosen, tracking_number or issue_tracking_number(chosen, fulfilment_id))
    current = (
        Shipment(fulfilment.carrier, fulfilment.tracking_number)
        if fulfilment.carrier and fulfilment.tracking_number
        else None
    )
    if decide_ship(fulfilment.status, current, requested).changed:
        shipped_at = datetime.now(UTC)
        await store.save_shipped(
            uow.conn, fulfilment_id, requested.carrier, requested.tracking_number, shipped_at
        )
        emit_in_order_trace(
            uow,
            fulfilment,
            FulfilmentShipped(
                order_id=fulfilment.order_id,
                fulfilment_id=fulfilment_id,
                location=fulfilment.location,
                lines=tuple(
                    SkuQuantity(sku=ln.sku, quantity=ln.to_ship)
                    for ln in fulfilment.lines
                    if ln.to_ship > 0  # units short on the floor stay behind
                ),
                carrier=requested.carrier,
                tracking_number=requested.tracking_number,
                shipped_at=shipped_at,
            ),
        )
    return await view(uow, fulfilment_id)


def _default_carrier(fulfilment: Fulfilment) -> str:
    return choose_carrier(str(fulfilment.shipping_address.get("country", "")))


async def deliver(uow: UnitOfWork, fulfilment_id: str) -> Fulfilment:
    """Deliver a shipped fulfilment; delivering again is unchanged and emits nothing."""
    fulfilment = await _lock(uow, fulfilment_id)
    await deliver_locked(uow, fulfilment, datetime.now(UTC))
    return await view(uow, fulfilment_id)


class TrackingOutcome(StrEnum):
    DELIVERED = "delivered"  # the update delivered the fulfilment
    FAILED = "failed"  # the update failed the shipment
    RECORDED = "recorded"  # kept in the tracking history; no change of status
    DUPLICATE = "duplicate"  # the same update was received before; nothing done


@dataclass(frozen=True)
class TrackingResult:
    fulfilment: Fulfilment
    outcome: TrackingOutcome


async def record_tracking(uow: UnitOfWork, update: TrackingUpdate) -> TrackingResult:
    """A carrier's tracking update (its carrier normalised). `delivered` delivers; `exception`
    and `returned_to_sender` fail a shipment not yet delivered. An update the status no longer
    allows (e.g. delivered after failed) is only recorded: carriers are not refused, their
    history is kept."""
    fulfilment = await store.lock_by_tracking_number(
        uow.conn, update.carrier, update.tracking_number
    )
    if fulfilment is None:
        raise UnknownTrackingNumber(update.carrier, update.tracking_number)
    if not await record_event(uow, fulfilment.fulfilment_id, update):
        return TrackingResult(await view(uow, fulfilment.fulfilment_id), TrackingOutcome.DUPLICATE)
    outcome = TrackingOutcome.RECORDED
    action = action_for_tracking(update.status)
    when = update.at or datetime.now(UTC)
    if action is Action.DELIVER and fulfilment.status is Status.SHIPPED:
        await deliver_locked(uow, fulfilment, when)
        outcome = TrackingOutcome.DELIVERED
    elif action is Action.FAIL and fulfilment.status is Status.SHIPPED:
        await fail_locked(uow, fulfilment, failure_reason(update.status, update.description), when)
        outcome = TrackingOutcome.FAILED
    return TrackingResult(await view(uow, fulfilment.fulfilment_id), outcome)


async def record_event(uow: UnitOfWork, fulfilment_id: str, update: TrackingUpdate) -> bool:
    """Keep the carrier's update in the fulfilment's tracking history; False when the same
    update was kept before."""
    return await store.insert_tracking_event(
        uow.conn,
        fulfilment_id,
        update.carrier,
        update.tracking_number,
        update.status.value,
        update.at,
        update.description,
    )


async def deliver_locked(uow: UnitOfWork, fulfilment: Fulfilment, at: datetime) -> None:
    if not transition(fulfilment.status, Action.DELIVER).changed:
        return
    await store.save_delivered(uow.conn, fulfilment.fulfilment_id, at)
    emit_in_order_trace(
        uow,
        fulfilment,
        FulfilmentDelivered(
            order_id=fulfilment.order_id, fulfilment_id=fulfilment.fulfilment_id, delivered_at=at
        ),
    )


async def fail_locked(uow: UnitOfWork, fulfilment: Fulfilment, reason: str, at: datetime) -> None:
    if not transition(fulfilment.status, Action.FAIL).changed:
        return
    await store.save_failed(uow.conn, fulfilment.fulfilment_id, reason, at)
    emit_in_order_trace(
        uow,
        fulfilment,
        FulfilmentFailed(
            order_id=fulfilment.order_id, fulfilment_id=fulfilment.fulfilment_id, reason=reason
        ),
    )


def emit_in_order_trace(
    uow: UnitOfWork,
    fulfilment: Fulfilment,
    event: Event,
) -> None:
    """Warehouse and carrier calls start traces of their own; the events they cause belong to
    the order's trace, which was stored with the fulfilment when the saga created it."""
    with continue_trace(fulfilment.trace_context, f"fulfilment {event.TYPE}") as span:
        span.set_attribute("oms.order_id", fulfilment.order_id)
        span.set_attribute("oms.message_type", event.TYPE)
        uow.emit(event, key=fulfilment.order_id, correlation_id=fulfilment.order_id)


async def _lock(uow: UnitOfWork, fulfilment_id: str) -> Fulfilment:
    fulfilment = await store.get_fulfilment(uow.conn, fulfilment_id, lock=True)
    if fulfilment is None:
        raise FulfilmentNotFound(fulfilment_id)
    return fulfilment


async def view(uow: UnitOfWork, fulfilment_id: str) -> Fulfilment:
    fulfilment = await store.get_fulfilment(uow.conn, fulfilment_id, with_events=True)
    assert fulfilment is not None
    return fulfilment
