"""Produced by fulfilment."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from shared.contracts.common import Address, FulfilmentLines, SkuQuantity, Value
from shared.envelope import Event, register
from shared.topics import FULFILMENT_EVENTS, FULFILMENT_PARTNERS


class FulfilmentRef(Value):
    fulfilment_id: str
    location: str
    lines: tuple[SkuQuantity, ...]


@register
class FulfilmentCreated(Event):
    TYPE = "FulfilmentCreated"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    fulfilments: tuple[FulfilmentRef, ...]


@register
class FulfilmentsAdded(Event):
    """Answer to AddFulfilment: the fulfilments of the units re-allocated after the short pick
    `short_id` (the same answer when the command is re-sent)."""

    TYPE = "FulfilmentsAdded"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    short_id: str
    fulfilments: tuple[FulfilmentRef, ...]


@register
class FulfilmentShipped(Event, FulfilmentLines):
    """One shipment (parcel) of a fulfilment left the warehouse; `lines` are what is in it.

    A fulfilment may leave in several parcels, one event each: `shipment_id` names the parcel
    (absent: the fulfilment id — the whole fulfilment in one shipment, as older producers send
    it); `fulfilment_complete` is False while lines of the fulfilment are still unshipped.
    Re-sent for the same parcel, it carries the same `shipment_id`."""

    TYPE = "FulfilmentShipped"
    TOPIC = FULFILMENT_EVENTS
    carrier: str
    tracking_number: str
    shipped_at: datetime
    shipment_id: str | None = None
    fulfilment_complete: bool = True
    tracking_url: str | None = None

    @property
    def shipment_key(self) -> str:
        """The parcel's id: `shipment_id`, or the fulfilment id for a whole-fulfilment one."""
        return self.shipment_id or self.fulfilment_id


@register
class FulfilmentDelivered(Event):
    """A shipment of the fulfilment was delivered (`shipment_id`), or, without one, every
    shipment of it so far (the whole fulfilment, when it left in one)."""

    TYPE = "FulfilmentDelivered"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    fulfilment_id: str
    delivered_at: datetime
    shipment_id: str | None = None


@register
class FulfilmentCancelled(Event):
    """The answer to CancelFulfilment, also when there was nothing to cancel.

    `cancelled`: the order's fulfilments that are cancelled (now or by an earlier cancel);
    `already_shipped`: shipped or delivered ones, which could not be cancelled;
    `already_failed`: ones the carrier reported failed before the cancel, left as they are;
    `partly_shipped`: ones of which some parcels had left (each reported by FulfilmentShipped
    before this answer) and whose unshipped rest is cancelled.
    """

    TYPE = "FulfilmentCancelled"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    cancelled: tuple[str, ...] = ()
    reason: str
    already_shipped: tuple[str, ...] = ()
    already_failed: tuple[str, ...] = ()
    partly_shipped: tuple[str, ...] = ()


@register
class FulfilmentsHeld(Event):
    """The answer to HoldFulfilments (a re-send answers the same): `held`, the order's
    fulfilments not shipped yet, now held; `not_recalled`, those of them whose request had
    already gone to a partner (3PL / dropship supplier), which the hold cannot recall."""

    TYPE = "FulfilmentsHeld"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    reason: str
    held: tuple[str, ...] = ()
    not_recalled: tuple[str, ...] = ()


@register
class FulfilmentsReleased(Event):
    """The answer to ReleaseFulfilments (a re-send answers the same): `released`, the order's
    fulfilments no longer held (the ones the hold had stopped)."""

    TYPE = "FulfilmentsReleased"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    released: tuple[str, ...] = ()


@register
class ShippingAddressUpdated(Event):
    """The answer to UpdateShippingAddress when fulfilment took the change: `updated`, the
    order's unpicked fulfilments that now ship to the new address (none: the order has no open
    fulfilment). A re-send answers the same."""

    TYPE = "ShippingAddressUpdated"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    change_id: str
    updated: tuple[str, ...] = ()


@register
class ShippingAddressChangeRefused(Event):
    """The answer to UpdateShippingAddress when the change came too late: `code`
    `picking_started` (a fulfilment is on a released pick list, or packed, or shipped) or
    `partner_notified` (its request went to a 3PL / dropship supplier); `fulfilments` names
    them. Nothing was changed. A re-send answers the same."""

    TYPE = "ShippingAddressChangeRefused"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    change_id: str
    code: str
    reason: str
    fulfilments: tuple[str, ...] = ()


@register
class FulfilmentFailed(Event):
    TYPE = "FulfilmentFailed"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    fulfilment_id: str
    reason: str


# --- the warehouse floor --------------------------------------------------------------------


class PickListEntry(Value):
    order_id: str
    fulfilment_id: str


@register
class PickListReleased(Event):
    """A pick list was generated; keyed by pick list. Each order on it gets a timeline entry."""

    TYPE = "PickListReleased"
    TOPIC = FULFILMENT_EVENTS
    pick_list_id: str
    location: str
    strategy: str
    wave: int | None = None
    zone: str | None = None
    fulfilments: tuple[PickListEntry, ...]


@register
class LinePicked(Event):
    """Units of one SKU were picked for a fulfilment (scanned at the bin)."""

    TYPE = "LinePicked"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    fulfilment_id: str
    pick_list_id: str
    sku: str
    quantity: int
    bin: str


@register
class ShortPick(Event):
    """A bin held less than the pick list asked for; `missing` units of the SKU were not found.

    The missing units no longer belong to the fulfilment: it ships what is left, and its last
    parcel completes it. `short_id` names the short (the same fulfilment, pick list, bin and
    SKU: absent from older producers, `short_key` derives it); `fulfilment_empty`: no unit of
    the fulfilment is left to ship, so it ends without shipping (cancelled, reason
    `short_pick`)."""

    TYPE = "ShortPick"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    fulfilment_id: str
    location: str
    pick_list_id: str
    sku: str
    missing: int
    bin: str | None
    short_id: str | None = None
    fulfilment_empty: bool = False

    @property
    def short_key(self) -> str:
        return self.short_id or short_pick_id(
            self.fulfilment_id, self.pick_list_id, self.bin, self.sku
        )


_SHORT_PICK_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:oms:short-pick")


def short_pick_id(fulfilment_id: str, pick_list_id: str, bin_code: str | None, sku: str) -> str:
    """The id of a short pick: one per fulfilment, pick list, bin and SKU (a stop is found
    empty once; a short at release has no pick list and no bin)."""
    name = "\x1f".join((fulfilment_id, pick_list_id, bin_code or "", sku))
    return str(uuid.uuid5(_SHORT_PICK_NAMESPACE, name))


@register
class ParcelPacked(Event):
    TYPE = "ParcelPacked"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    fulfilment_id: str
    parcel_id: str
    box: str
    weight_g: int
    lines: tuple[SkuQuantity, ...]


@register
class LabelCreated(Event):
    TYPE = "LabelCreated"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    fulfilment_id: str
    parcel_id: str
    carrier: str
    service: str
    tracking_number: str


# --- 3PL and dropship partners --------------------------------------------------------------


PartnerRequestKind = Literal["fulfilment_request", "purchase_order"]


class PurchaseOrderRef(Value):
    """A dropship supplier's purchase order: its number and the PO document (PDF, base64)."""

    number: str
    pdf_base64: str


@register
class PartnerFulfilmentRequested(Event):
    """A fulfilment at a 3PL or dropship supplier reached over Kafka, keyed by the location.
    `request_kind` fulfilment_request (3PL) or purchase_order (dropship supplier, with the PO).
    The partner confirms with `POST /v1/partners/{location}/shipments` by `confirm_by`."""

    TYPE = "PartnerFulfilmentRequested"
    TOPIC = FULFILMENT_PARTNERS
    dispatch_id: str
    request_kind: PartnerRequestKind
    order_id: str
    fulfilment_id: str
    location: str
    lines: tuple[SkuQuantity, ...]
    ship_to: Address
    shipping_method: str | None = None
    requested_at: datetime
    confirm_by: datetime
    purchase_order: PurchaseOrderRef | None = None


@register
class PartnerFulfilmentOverdue(Event):
    """A partner has not confirmed the shipment of a fulfilment by its deadline (once per
    fulfilment). Human-paced: an operator is alerted, nothing is cancelled."""

    TYPE = "PartnerFulfilmentOverdue"
    TOPIC = FULFILMENT_EVENTS
    order_id: str
    fulfilment_id: str
    location: str
    request_kind: PartnerRequestKind
    requested_at: datetime
    deadline_at: datetime


@register
class PartnerFulfilmentCancelled(Event):
    """A fulfilment whose request (`cancels_dispatch_id`) already went to a partner reached over
    Kafka was cancelled: the partner should not ship what it has not shipped yet. Once per
    fulfilment, keyed by the location; `po_number` names a dropship supplier's purchase order."""

    TYPE = "PartnerFulfilmentCancelled"
    TOPIC = FULFILMENT_PARTNERS
    dispatch_id: str
    cancels_dispatch_id: str
    order_id: str
    fulfilment_id: str
    location: str
    reason: str
    cancelled_at: datetime
    po_number: str | None = None
