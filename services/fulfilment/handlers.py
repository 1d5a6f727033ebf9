"""Commands from the order saga: CreateFulfilment, AddFulfilment and CancelFulfilment.

Both are idempotent beyond the inbox (the saga re-sends with a new message id after a deadline)
and both always answer:
- CreateFulfilment creates one fulfilment per location with ids derived from the order and the
  location; a re-send creates nothing and answers the same FulfilmentCreated. Once the order was
  cancelled it creates nothing and answers FulfilmentCancelled instead.
- AddFulfilment (units re-allocated after a short pick) creates one fulfilment per location of
  its allocations, with ids derived from the order, the location and the short (a location the
  order already has a fulfilment at gets a second one: the first may be on the floor already);
  a re-send creates nothing and answers the same FulfilmentsAdded; once the order was cancelled,
  FulfilmentCancelled.
- CancelFulfilment cancels what has not shipped, remembers the order as cancelled, and answers
  FulfilmentCancelled with the order's cancelled, already shipped and failed fulfilments; a
  re-send or a cancel of an unknown order answers the same way.
- HoldFulfilments holds the order's fulfilments not shipped yet and remembers the order as held
  (fulfilments created for it while held are created held, and their partner requests wait);
  it answers FulfilmentsHeld, naming the held ones whose partner request had gone out already
  (not recalled). A re-send holds nothing new and answers the same (the first reason stays).
- ReleaseFulfilments takes the hold off (partner requests held back go out now) and answers
  FulfilmentsReleased; a re-send answers with the fulfilments the last release took it off.
- UpdateShippingAddress (a channel's order edit) is in `address_changes`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.fulfilment import store
from services.fulfilment.address_changes import on_update_shipping_address
from services.fulfilment.domain import (
    Action,
    PlannedFulfilment,
    Status,
    TransitionRefused,
    plan_fulfilments,
    plan_hold,
    summarise_cancel,
    transition,
)
from services.fulfilment.partners import dispatch as partners
from services.fulfilment.store import Fulfilment
from shared.contracts.common import SkuQuantity
from shared.contracts.fulfilment import (
    FulfilmentCancelled,
    FulfilmentCreated,
    FulfilmentRef,
    FulfilmentsAdded,
    FulfilmentsHeld,
    FulfilmentsReleased,
)
from shared.contracts.order_intake import (
    AddFulfilment,
    CancelFulfilment,
    CreateFulfilment,
    HoldFulfilments,
    ReleaseFulfilments,
    UpdateShippingAddress,
)
from shared.envelope import Envelope
from shared.platform.handlers import HandlerRegistry
from shared.platform.outbox import UnitOfWork
from shared.platform.telemetry import current_trace_headers


async def on_create_fulfilment(
    uow: UnitOfWork, envelope: Envelope, command: CreateFulfilment
) -> None:
    order = await store.lock_order(uow.conn, command.order_id)
    if order.cancelled:
        await _answer_cancelled(uow, command.order_id, order.cancel_reason or "cancelled")
        return
    existing = await _first_fulfilments(uow, command.order_id)
    if not existing:
        planned = plan_fulfilments(command.order_id, command.allocations)
        await _insert_planned(uow, command, planned, order.hold_reason)
        existing = await _first_fulfilments(uow, command.order_id)
        await partners.dispatch_new(uow, existing)
    uow.emit(
        FulfilmentCreated(order_id=command.order_id, fulfilments=_refs(existing)),
        key=command.order_id,
    )


async def _insert_planned(
    uow: UnitOfWork,
    command: CreateFulfilment | AddFulfilment,
    planned: list[PlannedFulfilment],
    hold_reason: str | None,
    reallocated_for_short: str | None = None,
) -> None:
    """Create the planned fulfilments for the command's address and shipping method (held
    while the order is on hold), carrying the order's trace."""
    await store.insert_fulfilments(
        uow.conn,
        command.order_id,
        planned,
        _ship_to(command),
        command.shipping_method,
        datetime.now(UTC),
        current_trace_headers(),
        reallocated_for_short=reallocated_for_short,
        hold_reason=hold_reason,
    )


def _ship_to(command: CreateFulfilment | AddFulfilment) -> dict[str, Any]:
    """The address the parcels go to, with the recipient's name when the order has one."""
    address: dict[str, Any] = command.shipping_address.model_dump(mode="json")
    if command.recipient_name:
        address["name"] = command.recipient_name
    return address


async def _first_fulfilments(uow: UnitOfWork, order_id: str) -> list[Fulfilment]:
    """The fulfilments CreateFulfilment made (not the ones added after short picks)."""
    found = await store.fulfilments_of_order(uow.conn, order_id)
    return [f for f in found if f.reallocated_for_short is None]


async def _planned_fulfilments(
    uow: UnitOfWork, order_id: str, planned: list[PlannedFulfilment]
) -> list[Fulfilment]:
    """Of the order's fulfilments, the planned ones (AddFulfilment's, by their derived ids)."""
    ids = {p.fulfilment_id for p in planned}
    found = await store.fulfilments_of_order(uow.conn, order_id)
    return [f for f in found if f.fulfilment_id in ids]


def _refs(fulfilments: list[Fulfilment]) -> tuple[FulfilmentRef, ...]:
    return tuple(
        FulfilmentRef(
            fulfilment_id=f.fulfilment_id,
            location=f.location,
            lines=tuple(SkuQuantity(sku=ln.sku, quantity=ln.quantity) for ln in f.lines),
        )
        for f in fulfilments
    )


async def on_add_fulfilment(uow: UnitOfWork, envelope: Envelope, command: AddFulfilment) -> None:
    order = await store.lock_order(uow.conn, command.order_id)
    if order.cancelled:
        await _answer_cancelled(uow, command.order_id, order.cancel_reason or "cancelled")
        return
    planned = plan_fulfilments(command.order_id, command.allocations, command.short_id)
    existing = await _planned_fulfilments(uow, command.order_id, planned)
    if not existing:
        await _insert_planned(uow, command, planned, order.hold_reason, command.short_id)
        existing = await _planned_fulfilments(uow, command.order_id, planned)
        await partners.dispatch_new(uow, existing)
    uow.emit(
        FulfilmentsAdded(
            order_id=command.order_id, short_id=command.short_id, fulfilments=_refs(existing)
        ),
        key=command.order_id,
    )


async def on_cancel_fulfilment(
    uow: UnitOfWork, envelope: Envelope, command: CancelFulfilment
) -> None:
    order = await store.lock_order(uow.conn, command.order_id)
    now = datetime.now(UTC)
    if not order.cancelled:
        await store.mark_order_cancelled(uow.conn, command.order_id, command.reason, now)
    fulfilments = await store.fulfilments_of_order(uow.conn, command.order_id, lock=True)
    to_cancel = []
    rest_to_cancel = []
    for fulfilment in fulfilments:
        if fulfilment.status is Status.PARTIALLY_SHIPPED:
            rest_to_cancel.append(fulfilment.fulfilment_id)  # its parcels that left stay shipped
            continue
        try:
            if transition(fulfilment.status, Action.CANCEL).changed:
                to_cancel.append(fulfilment.fulfilment_id)
        except TransitionRefused:
            continue  # shipped or failed: reported as such below
    if to_cancel:
        await store.save_cancelled(uow.conn, to_cancel, command.reason, now)
    if rest_to_cancel:
        await store.save_rest_cancelled(uow.conn, rest_to_cancel, command.reason, now)
    await partners.dispatch_cancellations(uow, to_cancel + rest_to_cancel, command.reason)
    # The first cancel's reason stays the answer, so a re-send answers exactly the same.
    await _answer_cancelled(uow, command.order_id, order.cancel_reason or command.reason)


async def _answer_cancelled(uow: UnitOfWork, order_id: str, reason: str) -> None:
    fulfilments = await store.fulfilments_of_order(uow.conn, order_id)
    outcome = summarise_cancel(
        ((f.fulfilment_id, f.status) for f in fulfilments),
        rest_cancelled={f.fulfilment_id for f in fulfilments if f.rest_cancelled},
    )
    uow.emit(
        FulfilmentCancelled(
            order_id=order_id,
            cancelled=outcome.cancelled,
            already_shipped=outcome.already_shipped,
            already_failed=outcome.already_failed,
            partly_shipped=outcome.partly_shipped,
            reason=reason,
        ),
        key=order_id,
    )


async def on_hold_fulfilments(
    uow: UnitOfWork, envelope: Envelope, command: HoldFulfilments
) -> None:
    order = await store.lock_order(uow.conn, command.order_id)
    reason = order.hold_reason or command.reason
    now = datetime.now(UTC)
    if order.hold_reason is None:
        await store.save_order_held(uow.conn, command.order_id, reason, now)
    fulfilments = await store.fulfilments_of_order(uow.conn, command.order_id, lock=True)
    plan = plan_hold(
        (f.fulfilment_id, f.status, f.rest_cancelled, f.hold_reason is not None)
        for f in fulfilments
    )
    if plan.to_hold:
        await store.save_held(uow.conn, plan.to_hold, reason, now)
    not_recalled = await partners.requests_gone_out(uow, plan.held)
    uow.emit(
        FulfilmentsHeld(
            order_id=command.order_id,
            reason=reason,
            held=plan.held,
            not_recalled=not_recalled,
        ),
        key=command.order_id,
    )


async def on_release_fulfilments(
    uow: UnitOfWork, envelope: Envelope, command: ReleaseFulfilments
) -> None:
    order = await store.lock_order(uow.conn, command.order_id)
    released: tuple[str, ...] = ()
    if order.hold_reason is not None:
        now = datetime.now(UTC)
        fulfilments = await store.fulfilments_of_order(uow.conn, command.order_id, lock=True)
        held = [f for f in fulfilments if f.hold_reason is not None]
        released = tuple(sorted(f.fulfilment_id for f in held))
        await store.save_released(uow.conn, released, now)
        await store.save_order_released(uow.conn, command.order_id, now)
        await partners.dispatch_released(uow, [f.fulfilment_id for f in held])
    elif order.hold_released_at is not None:
        released = tuple(
            await store.released_with_order(uow.conn, command.order_id, order.hold_released_at)
        )
    uow.emit(
        FulfilmentsReleased(order_id=command.order_id, released=released),
        key=command.order_id,
    )


def handlers() -> HandlerRegistry:
    registry = HandlerRegistry()
    registry.register(on_create_fulfilment, CreateFulfilment)
    registry.register(on_add_fulfilment, AddFulfilment)
    registry.register(on_cancel_fulfilment, CancelFulfilment)
    registry.register(on_hold_fulfilments, HoldFulfilments)
    registry.register(on_release_fulfilments, ReleaseFulfilments)
    registry.register(on_update_shipping_address, UpdateShippingAddress)
    return registry
