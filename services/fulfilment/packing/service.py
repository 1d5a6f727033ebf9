"""Pack station and dock: parcels are planned into boxes, scanned, weighed, labelled, shipped.

Each action runs in one unit of work and locks the fulfilment's row first, then the parcel's,
the same order everywhere (tracking updates too), so two actions on one fulfilment never
interleave. Buying a label talks to the carrier outside the transaction; the buy is idempotent
per parcel, so a retry after a lost answer gets the same label.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar

from services.fulfilment import store as fulfilments
from services.fulfilment.actions import (
    FulfilmentNotFound,
    TrackingOutcome,
    TrackingResult,
    UnknownTrackingNumber,
    deliver_locked,
    emit_in_order_trace,
    fail_locked,
    record_event,
    record_tracking,
    view,
)
from services.fulfilment.carriers.base import Label, ParcelSpec, PostalAddress, TrackingUpdate
from services.fulfilment.carriers.rate_shopping import Promise, ShippingMethod, choose_rate
from services.fulfilment.carriers.registry import Carriers
from services.fulfilment.domain import (
    Action,
    Line,
    Status,
    action_for_tracking,
    check_not_held,
    decide_ship_parcel,
    failure_reason,
    normalise_carrier,
)
from services.fulfilment.packing import store
from services.fulfilment.packing.boxes import BoxType, PackedBox, choose_boxes
from services.fulfilment.packing.lifecycle import ParcelAction, ParcelStatus, check
from services.fulfilment.packing.scan import ParcelScan, ScanRefusal, ScanRefused
from services.fulfilment.packing.slip import PackingSlip, SlipLine, packing_slip_pdf
from services.fulfilment.packing.store import NewParcel, Parcel, ParcelLine
from services.fulfilment.packing.weights import WeightTolerance, check_parcel_weight
from services.fulfilment.picking import service as picking
from services.fulfilment.store import Fulfilment
from services.fulfilment.warehouse import store as warehouse
from shared.contracts.common import SkuQuantity
from shared.contracts.fulfilment import FulfilmentShipped, LabelCreated, ParcelPacked
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


def _units_to_ship(lines: Iterable[Line]) -> Counter[str]:
    return Counter({line.sku: line.to_ship for line in lines if line.to_ship > 0})


async def ship_parcel(uow: UnitOfWork, parcel_id: str) -> Parcel:
    """Hand a labelled parcel to the carrier. Shipping a shipped parcel again is an idempotent
    repeat. The parcel holding the last unshipped lines ships the fulfilment."""
    fulfilment, parcel = await lock_parcel(uow, parcel_id)
    if parcel.status in SHIPPED:
        return parcel
    check_not_held(fulfilment.fulfilment_id, fulfilment.hold_reason)
    check(parcel.status, ParcelAction.SHIP, ParcelStatus.SHIPPED)
    assert parcel.carrier and parcel.tracking_number
    shipped = _units(parcel.lines)
    for other in await store.parcels_of(uow.conn, fulfilment.fulfilment_id):
        if other.status in SHIPPED:
            shipped += _units(other.lines)
    # Units found missing on the floor (short picks) are no longer the fulfilment's to ship.
    completes = not (_units_to_ship(fulfilment.lines) - shipped)
    to = decide_ship_parcel(
        fulfilment.status, completes=completes, rest_cancelled=fulfilment.rest_cancelled
    ).to
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


async def record_parcel_tracking(uow: UnitOfWork, update: TrackingUpdate) -> TrackingResult:
    """A carrier's update (its carrier normalised) for one parcel. A delivered parcel delivers
    the fulfilment once every parcel of it has shipped and been delivered; an exception fails
    the fulfilment."""
    found = await store.find_by_tracking_number(uow.conn, update.carrier, update.tracking_number)
    if found is None:
        raise UnknownTrackingNumber(update.carrier, update.tracking_number)
    fulfilment, parcel = await lock_parcel(uow, found)
    if not await record_event(uow, fulfilment.fulfilment_id, update):
        return TrackingResult(await view(uow, fulfilment.fulfilment_id), TrackingOutcome.DUPLICATE)
    outcome = TrackingOutcome.RECORDED
    action = action_for_tracking(update.status)
    when = update.at or datetime.now(UTC)
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
        await fail_locked(uow, fulfilment, failure_reason(update.status, update.description), when)
        outcome = TrackingOutcome.FAILED
    return TrackingResult(await view(uow, fulfilment.fulfilment_id), outcome)


# --- the pack station -----------------------------------------------------------------------


class PackStationRefused(Exception):
    """A refusal of the pack station or the dock; `code` is stable (the HTTP error code),
    `details` name what it is about."""

    code: ClassVar[str]
    conflict: ClassVar[bool] = True  # the state refuses (409), not the request (422)

    def __init__(self, message: str, **details: str) -> None:
        super().__init__(message)
        self.details: dict[str, Any] = details


class NotPicked(PackStationRefused):
    code = "not_picked"


class NothingLeftToPack(PackStationRefused):
    code = "nothing_to_pack"


class ItemNotSetUp(PackStationRefused):
    code = "item_not_set_up"


class LocationNotSetUp(PackStationRefused):
    code = "location_not_set_up"


class LinesExceedPicked(PackStationRefused):
    code = "lines_exceed_picked"
    conflict = False


class ParcelNeedsSeveralBoxes(PackStationRefused):
    code = "parcel_needs_several_boxes"
    conflict = False


class RatesInSeveralCurrencies(PackStationRefused):
    code = "carrier_required"
    conflict = False


def _not_set_up(sku: str) -> ItemNotSetUp:
    return ItemNotSetUp(
        f"{sku} has no size, weight and barcode on the floor (PUT /v1/items)", sku=sku
    )


def parcel_id_for(fulfilment_id: str, number: int) -> str:
    return str(uuid.uuid5(_PARCEL_NAMESPACE, f"{fulfilment_id}\x1f{number}"))


_PARCEL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:oms:parcel")


async def _catalogue(uow: UnitOfWork) -> list[BoxType]:
    return [
        BoxType(b.code, b.inner, b.max_weight_g, b.tare_g)
        for b in await warehouse.list_boxes(uow.conn)
    ]


async def pack(
    uow: UnitOfWork, fulfilment_id: str, requested: Sequence[Mapping[str, int]] | None
) -> list[Parcel]:
    """Open parcels for the fulfilment's picked and not yet packed units: as the box chooser
    plans them (the smallest box that fits, else the fewest boxes), or split as `requested`
    (SKU → units per parcel), each parcel in the smallest box that fits it."""
    fulfilment = await fulfilments.get_fulfilment(uow.conn, fulfilment_id, lock=True)
    if fulfilment is None:
        raise FulfilmentNotFound(fulfilment_id)
    check_not_held(fulfilment_id, fulfilment.hold_reason)
    picked = await picking.picked_for(uow.conn, fulfilment_id)
    if not picked.finished:
        reason = "its pick lists are not finished" if picked.on_lists else "it is on no pick list"
        raise NotPicked(
            f"fulfilment {fulfilment_id} cannot be packed: {reason}", fulfilment_id=fulfilment_id
        )
    existing = await store.parcels_of(uow.conn, fulfilment_id)
    packable = picked.units - _units(line for p in existing for line in p.lines)
    packable = +packable
    if not packable:
        raise NothingLeftToPack(
            f"every picked unit of fulfilment {fulfilment_id} is in a parcel",
            fulfilment_id=fulfilment_id,
        )
    items = await warehouse.items(uow.conn, sorted(packable))
    for sku in packable:
        if sku not in items:
            raise _not_set_up(sku)
    catalogue = await _catalogue(uow)
    boxes: list[PackedBox] = []
    if requested is None:
        boxes = list(
            choose_boxes([(items[s], n) for s, n in sorted(packable.items())], catalogue).boxes
        )
    else:
        wanted: Counter[str] = Counter()
        for split in requested:
            wanted.update(split)
        for sku, n in sorted(wanted.items()):
            if n > packable.get(sku, 0):
                raise LinesExceedPicked(
                    f"{n} units of {sku} requested, {packable.get(sku, 0)} picked and unpacked",
                    field="parcels",
                    sku=sku,
                )
        for number, split in enumerate(requested, start=1):
            plan = choose_boxes([(items[s], n) for s, n in sorted(split.items()) if n], catalogue)
            if plan.box_count != 1:
                raise ParcelNeedsSeveralBoxes(
                    f"parcel {number} does not fit one box of the catalogue: split it",
                    field="parcels",
                )
            boxes.append(plan.boxes[0])
    first = len(existing) + 1
    new = [
        NewParcel(
            parcel_id=parcel_id_for(fulfilment_id, first + i),
            number=first + i,
            box=packed.box.code,
            expected_weight_g=packed.gross_weight_g,
            lines=tuple(ParcelLine(sku, n) for sku, n in packed.quantities().items()),
        )
        for i, packed in enumerate(boxes)
    ]
    await store.insert_parcels(uow.conn, fulfilment_id, new)
    return await store.parcels_of(uow.conn, fulfilment_id)


async def _scan_state(uow: UnitOfWork, fulfilment: Fulfilment, parcel: Parcel) -> ParcelScan:
    """The parcel's scans so far; every barcode of the fulfilment is known (a unit of it that
    belongs in another parcel is an over-scan here, not a wrong barcode)."""
    items = await warehouse.items(uow.conn, [line.sku for line in fulfilment.lines])
    for line in parcel.lines:
        if line.sku not in items:
            raise _not_set_up(line.sku)
    started = ParcelScan.start({ln.sku: ln.quantity for ln in parcel.lines}, items.values())
    scanned = {ln.sku: ln.scanned for ln in parcel.lines if ln.scanned}
    return replace(started, scanned=MappingProxyType(scanned))


async def scan(uow: UnitOfWork, parcel_id: str, barcode: str, quantity: int) -> Parcel:
    """`quantity` units of the scanned barcode go into the parcel (all or none are counted)."""
    fulfilment, parcel = await lock_parcel(uow, parcel_id)
    if parcel.status is not ParcelStatus.OPEN:
        raise ScanRefused(ScanRefusal.PARCEL_CLOSED, f"the parcel is {parcel.status.value}")
    state = await _scan_state(uow, fulfilment, parcel)
    for _ in range(quantity):
        state = state.scan(barcode)
    for sku, count in state.scanned.items():
        if count != next(ln.scanned for ln in parcel.lines if ln.sku == sku):
            await store.save_scanned(uow.conn, parcel_id, sku, count)
    return await _parcel(uow, parcel_id)


async def close(
    uow: UnitOfWork, parcel_id: str, measured_weight_g: int | None, tolerance: WeightTolerance
) -> Parcel:
    """Close a fully scanned parcel: packed, or held when the scale disagrees with the expected
    weight beyond the tolerance. Closing again with the weight that packed it is a repeat."""
    fulfilment, parcel = await lock_parcel(uow, parcel_id)
    if parcel.status is ParcelStatus.PACKED and measured_weight_g == parcel.measured_weight_g:
        return parcel
    if parcel.status is ParcelStatus.OPEN:
        (await _scan_state(uow, fulfilment, parcel)).close()  # raises items_missing
    verdict = (
        None
        if measured_weight_g is None
        else check_parcel_weight(parcel.expected_weight_g, measured_weight_g, tolerance)
    )
    held = verdict is not None and verdict.verdict == "hold"
    to = ParcelStatus.HELD if held else ParcelStatus.PACKED
    check(parcel.status, ParcelAction.CLOSE, to)
    reason = (
        f"weight_mismatch: expected {verdict.expected_g} g, measured {verdict.measured_g} g"
        f" (tolerance {verdict.tolerance_g} g)"
        if held and verdict
        else None
    )
    await store.save_closed(uow.conn, parcel_id, to, measured_weight_g, reason)
    if to is ParcelStatus.PACKED:
        _emit_packed(uow, fulfilment, parcel, measured_weight_g)
    return await _parcel(uow, parcel_id)


async def release_hold(uow: UnitOfWork, parcel_id: str) -> Parcel:
    """A person checked the held parcel and lets it go as it is."""
    fulfilment, parcel = await lock_parcel(uow, parcel_id)
    check(parcel.status, ParcelAction.RELEASE, ParcelStatus.PACKED)
    await store.save_closed(
        uow.conn, parcel_id, ParcelStatus.PACKED, parcel.measured_weight_g, None
    )
    _emit_packed(uow, fulfilment, parcel, parcel.measured_weight_g)
    return await _parcel(uow, parcel_id)


def _emit_packed(
    uow: UnitOfWork, fulfilment: Fulfilment, parcel: Parcel, measured: int | None
) -> None:
    emit_in_order_trace(
        uow,
        fulfilment,
        ParcelPacked(
            order_id=fulfilment.order_id,
            fulfilment_id=fulfilment.fulfilment_id,
            parcel_id=parcel.parcel_id,
            box=parcel.box,
            weight_g=measured or parcel.expected_weight_g,
            lines=tuple(SkuQuantity(sku=ln.sku, quantity=ln.quantity) for ln in parcel.lines),
        ),
    )


async def _parcel(uow: UnitOfWork, parcel_id: str) -> Parcel:
    found = await store.get_parcel(uow.conn, parcel_id)
    assert found is not None
    return found


# --- labels ---------------------------------------------------------------------------------


def _postal(address: Mapping[str, object], fallback_name: str) -> PostalAddress:
    def text(key: str) -> str | None:
        value = address.get(key)
        return str(value) if value not in (None, "") else None

    return PostalAddress(
        name=text("name") or fallback_name,
        line1=text("line1") or "",
        line2=text("line2"),
        city=text("city") or "",
        postal_code=text("postal_code") or "",
        region=text("region"),
        country=(text("country") or "").upper(),
        phone=text("phone"),
        email=text("email"),
    )


async def parcel_spec(db: store.Db, fulfilment: Fulfilment, parcel: Parcel) -> ParcelSpec:
    location = await warehouse.get_location(db, fulfilment.location)
    if location is None:
        raise LocationNotSetUp(
            f"location {fulfilment.location} has no address to ship from (PUT /v1/locations)",
            location=fulfilment.location,
        )
    box = next((b for b in await warehouse.list_boxes(db) if b.code == parcel.box), None)
    assert box is not None  # parcels reference their box
    return ParcelSpec(
        reference=f"{parcel.parcel_id}/{parcel.labels_voided}",
        from_address=_postal(location.address, location.name),
        to_address=_postal(fulfilment.shipping_address, f"order {fulfilment.order_id}"),
        dimensions=box.inner,
        weight_g=parcel.measured_weight_g or parcel.expected_weight_g,
    )


def _promise(shipping_method: str | None) -> Promise:
    try:
        return Promise(method=ShippingMethod((shipping_method or "").lower()))
    except ValueError:
        return Promise()


async def buy_label(
    pool: store.Db, carriers: Carriers, parcel_id: str, carrier: str | None
) -> tuple[Parcel, Label | None]:
    """Rate the packed parcel with one carrier or all, and buy the cheapest rate that meets the
    order's shipping method. Outside any transaction (it talks to carriers); a buy is
    idempotent per parcel reference, so a retry gets the same label. None: already labelled."""
    parcel = await store.get_parcel(pool, parcel_id)
    if parcel is None:
        raise ParcelNotFound(parcel_id)
    if parcel.status in (ParcelStatus.LABELLED, *SHIPPED):
        return parcel, None
    check(parcel.status, ParcelAction.LABEL, ParcelStatus.LABELLED)
    fulfilment = await fulfilments.get_fulfilment(pool, parcel.fulfilment_id)
    assert fulfilment is not None
    check_not_held(fulfilment.fulfilment_id, fulfilment.hold_reason)
    spec = await parcel_spec(pool, fulfilment, parcel)
    quotes = await carriers.quotes(carrier, spec)
    currencies = sorted({q.rate.currency for q in quotes})
    if len(currencies) > 1:
        raise RatesInSeveralCurrencies(
            f"the carriers quote in {', '.join(currencies)}: name the carrier to buy from",
            field="carrier",
        )
    chosen = choose_rate([q.rate for q in quotes], _promise(fulfilment.shipping_method))
    plugin = next(q.plugin for q in quotes if q.rate == chosen)
    return parcel, await plugin.buy(spec, chosen)


async def save_label(uow: UnitOfWork, parcel_id: str, label: Label) -> Parcel:
    """Keep a bought label on the parcel (labelled) and tell the order."""
    fulfilment, parcel = await lock_parcel(uow, parcel_id)
    if parcel.status is ParcelStatus.PACKED:
        await store.save_label(uow.conn, parcel_id, label)
        emit_in_order_trace(
            uow,
            fulfilment,
            LabelCreated(
                order_id=fulfilment.order_id,
                fulfilment_id=fulfilment.fulfilment_id,
                parcel_id=parcel_id,
                carrier=label.carrier,
                service=label.service,
                tracking_number=label.tracking_number,
            ),
        )
    return await _parcel(uow, parcel_id)


async def void_label(uow: UnitOfWork, carriers: Carriers, parcel_id: str) -> Parcel:
    """Void a labelled parcel's label with its carrier; the parcel is packed again and its next
    label gets a new tracking number."""
    _, parcel = await lock_parcel(uow, parcel_id)
    check(parcel.status, ParcelAction.VOID, ParcelStatus.PACKED)
    assert parcel.carrier and parcel.tracking_number and parcel.label_id
    label = Label(
        carrier=parcel.carrier,
        service=parcel.service or "",
        tracking_number=parcel.tracking_number,
        label_id=parcel.label_id,
        amount=parcel.label_cost or Decimal(0),
        currency=parcel.label_currency or "",
        pdf=b"",
    )
    await carriers.plugin_for(parcel.carrier).void(label)
    await store.clear_label(uow.conn, parcel_id)
    return await _parcel(uow, parcel_id)


async def packing_slip(db: store.Db, parcel_id: str) -> bytes:
    parcel = await store.get_parcel(db, parcel_id)
    if parcel is None:
        raise ParcelNotFound(parcel_id)
    fulfilment = await fulfilments.get_fulfilment(db, parcel.fulfilment_id)
    assert fulfilment is not None
    count = len(await store.parcels_of(db, parcel.fulfilment_id))
    descriptions = await warehouse.item_descriptions(db, [ln.sku for ln in parcel.lines])
    return packing_slip_pdf(
        PackingSlip(
            order_id=fulfilment.order_id,
            fulfilment_id=fulfilment.fulfilment_id,
            parcel_id=parcel_id,
            parcel_number=parcel.number,
            parcel_count=count,
            ship_to=_postal(fulfilment.shipping_address, f"order {fulfilment.order_id}"),
            lines=tuple(
                SlipLine(ln.sku, ln.quantity, descriptions.get(ln.sku) or None)
                for ln in parcel.lines
            ),
        )
    )


async def record_tracking_update(uow: UnitOfWork, update: TrackingUpdate) -> TrackingResult:
    """A carrier's update, for a whole-fulfilment shipment or one parcel (whichever has the
    tracking number); raises UnknownTrackingNumber when neither has."""
    update = replace(update, carrier=normalise_carrier(update.carrier))
    try:
        return await record_tracking(uow, update)
    except UnknownTrackingNumber:
        return await record_parcel_tracking(uow, update)
