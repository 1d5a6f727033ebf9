"""The warehouse floor's steps on the order timeline: pick list released, line picked, short
pick, parcel packed, label created; and a 3PL or dropship supplier past its deadline, which
also alerts an operator. They change no saga state (shipping does, through FulfilmentShipped);
an operator reading the timeline sees where the order is on the floor."""

from __future__ import annotations

from typing import Any

from services.order_intake.orders import store
from shared.contracts.fulfilment import (
    LabelCreated,
    LinePicked,
    ParcelPacked,
    PartnerFulfilmentOverdue,
    PickListReleased,
)
from shared.contracts.order_intake import OperatorAlert
from shared.envelope import Envelope
from shared.platform.consumer import Handler
from shared.platform.outbox import UnitOfWork


async def on_pick_list_released(
    uow: UnitOfWork, envelope: Envelope, event: PickListReleased
) -> None:
    detail: dict[str, Any] = {"pick_list_id": event.pick_list_id, "strategy": event.strategy}
    if event.wave is not None:
        detail["wave"] = event.wave
    if event.zone is not None:
        detail["zone"] = event.zone
    orders = sorted({entry.order_id for entry in event.fulfilments})
    await store.append_progress(uow.conn, orders, "pick_list_released", detail)


OneOrderStep = LinePicked | ParcelPacked | LabelCreated

# Floor steps of one order, each onto its timeline under `kind` with these fields of the event.
_ONE_ORDER_STEPS: dict[type[OneOrderStep], tuple[str, tuple[str, ...]]] = {
    LinePicked: ("line_picked", ("sku", "quantity", "bin")),
    ParcelPacked: ("parcel_packed", ("parcel_id", "box", "weight_g")),
    LabelCreated: ("label_created", ("parcel_id", "carrier", "service", "tracking_number")),
}


async def on_one_order_step(uow: UnitOfWork, envelope: Envelope, event: OneOrderStep) -> None:
    kind, fields = _ONE_ORDER_STEPS[type(event)]
    detail = {name: getattr(event, name) for name in fields}
    await store.append_progress(uow.conn, [event.order_id], kind, detail)


async def on_partner_fulfilment_overdue(
    uow: UnitOfWork, envelope: Envelope, event: PartnerFulfilmentOverdue
) -> None:
    """Human-paced: the partner is late, an operator chases it; nothing is cancelled."""
    await store.append_progress(
        uow.conn,
        [event.order_id],
        "partner_overdue",
        {
            "fulfilment_id": event.fulfilment_id,
            "location": event.location,
            "request_kind": event.request_kind,
            "deadline_at": event.deadline_at.isoformat(),
        },
    )
    if await store.has_timeline_event(uow.conn, event.order_id, "partner_overdue"):
        asked = "the purchase order" if event.request_kind == "purchase_order" else "shipping"
        uow.emit(
            OperatorAlert(
                order_id=event.order_id,
                kind="partner_overdue",
                message=f"{event.location} has not confirmed {asked} of order"
                f" {event.order_id} (fulfilment {event.fulfilment_id}), due"
                f" {event.deadline_at.isoformat()}",
            ),
            key=event.order_id,
            correlation_id=event.order_id,
        )


def warehouse_progress_handlers() -> dict[str, Handler]:
    return {
        PickListReleased.TYPE: on_pick_list_released,
        **{step.TYPE: on_one_order_step for step in _ONE_ORDER_STEPS},
        PartnerFulfilmentOverdue.TYPE: on_partner_fulfilment_overdue,
    }
