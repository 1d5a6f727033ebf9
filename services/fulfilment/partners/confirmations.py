"""A partner's shipment confirmation: each parcel it names becomes one of the fulfilment's
parcels and ships through the parcel path (`packing.service.ship_parcel`: one FulfilmentShipped
per parcel, with the parcel id as shipment id; the saga commits stock and captures payment per
shipment; the last one completes the fulfilment).

All in one unit of work, the fulfilment's row locked first (as every action on it does). Parcel
ids derive from the fulfilment and the tracking number, so a confirmation sent again finds its
parcels recorded and shipped and changes nothing; a later confirmation may add more parcels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from services.fulfilment import store as fulfilments
from services.fulfilment.actions import FulfilmentNotFound
from services.fulfilment.domain import Status, decide_ship_parcel
from services.fulfilment.packing import service as packing
from services.fulfilment.packing import store as parcels
from services.fulfilment.packing.store import NewParcel, Parcel, ParcelLine
from services.fulfilment.partners import store
from services.fulfilment.partners.model import ConfirmedParcel, new_parcels
from services.fulfilment.store import TrackingNumberInUse
from shared.platform.outbox import UnitOfWork


@dataclass(frozen=True)
class ConfirmationResult:
    fulfilment_id: str
    status: Status
    parcels: tuple[Parcel, ...]  # the confirmation's parcels, in the order given


async def confirm(
    uow: UnitOfWork, location: str, fulfilment_id: str, confirmed: Sequence[ConfirmedParcel]
) -> ConfirmationResult:
    """Raises FulfilmentNotFound (also for a fulfilment at another location),
    LinesExceedFulfilment, ConfirmationConflict, TransitionRefused (the fulfilment was cancelled,
    or failed), TrackingNumberInUse."""
    fulfilment = await fulfilments.get_fulfilment(uow.conn, fulfilment_id, lock=True)
    if fulfilment is None or fulfilment.location != location:
        raise FulfilmentNotFound(fulfilment_id)
    recorded = await parcels.parcels_of(uow.conn, fulfilment_id)
    existing = {
        p.parcel_id: ConfirmedParcel(
            p.parcel_id,
            p.carrier or "",
            p.tracking_number or "",
            p.tracking_url,
            tuple((line.sku, line.quantity) for line in p.lines),
        )
        for p in recorded
    }
    fresh = new_parcels(
        ((line.sku, line.quantity) for line in fulfilment.lines), existing, confirmed
    )
    if fresh:
        # Refuses a cancelled or failed fulfilment before anything is written.
        decide_ship_parcel(fulfilment.status, completes=False)
        number = max((p.number for p in recorded), default=0)
        await parcels.insert_parcels(
            uow.conn,
            fulfilment_id,
            [
                NewParcel(
                    parcel_id=p.parcel_id,
                    number=number + index,
                    box=None,
                    expected_weight_g=0,
                    lines=tuple(ParcelLine(sku, quantity) for sku, quantity in p.lines),
                )
                for index, p in enumerate(fresh, start=1)
            ],
        )
        for p in fresh:
            try:
                await store.save_partner_labelled(
                    uow.conn, p.parcel_id, p.carrier, p.tracking_number, p.tracking_url
                )
            except asyncpg.UniqueViolationError as exc:
                raise TrackingNumberInUse(p.carrier, p.tracking_number) from exc
        await store.mark_confirmed(uow.conn, fulfilment_id, datetime.now(UTC))
    shipped = [await packing.ship_parcel(uow, p.parcel_id) for p in confirmed]
    after = await fulfilments.get_fulfilment(uow.conn, fulfilment_id)
    assert after is not None
    return ConfirmationResult(fulfilment_id, after.status, tuple(shipped))
