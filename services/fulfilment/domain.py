"""Fulfilment rules, free of I/O: the state machine, grouping allocations into one fulfilment per
location, carrier choice and tracking numbers.

State machine (anything not listed is refused with a stable code):

    created   --ship-->    shipped    --deliver--> delivered
    created   --cancel-->  cancelled
    shipped   --fail-->    failed      (carrier exception / returned to sender)

Shipping in parcels (the warehouse floor): each parcel shipped takes the fulfilment to
partially_shipped until the parcel that ships its last lines takes it to shipped:

    created / partially_shipped --ship parcel--> partially_shipped | shipped
    partially_shipped           --fail-->        failed

Holds (HoldFulfilments): a fulfilment not shipped yet (created, or partially shipped with parcels
still to go) may be held; while held the floor may not pick, pack, label or ship it
(`fulfilment_on_hold`). A cancel still applies. Holding does not change the status.

Address changes (UpdateShippingAddress, an order edit from the sales channel): all of the
order's open fulfilments take the new address, or none does — refused once any of them is on a
released pick list or has parcels that left (`picking_started`), or a partner has its request
(`partner_notified`). See `plan_address_change`.

Repeats that already hold are unchanged, not refused: delivering a delivered fulfilment,
cancelling a cancelled one, failing a failed one. Shipping again with the same carrier and
tracking number is an idempotent repeat too (see `decide_ship`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class Status(StrEnum):
    CREATED = "created"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    FAILED = "failed"


class Action(StrEnum):
    SHIP = "ship"
    DELIVER = "deliver"
    CANCEL = "cancel"
    FAIL = "fail"


class Refusal(StrEnum):
    """Stable codes for refused transitions (also the HTTP error codes)."""

    NOT_SHIPPED = "not_shipped"
    SHIPS_IN_PARCELS = "ships_in_parcels"
    REST_CANCELLED = "rest_cancelled"
    ALREADY_SHIPPED = "already_shipped"
    ALREADY_DELIVERED = "already_delivered"
    FULFILMENT_CANCELLED = "fulfilment_cancelled"
    FULFILMENT_FAILED = "fulfilment_failed"


_MESSAGES: dict[Refusal, str] = {
    Refusal.NOT_SHIPPED: "the fulfilment has not been shipped yet",
    Refusal.REST_CANCELLED: "the order's unshipped rest was cancelled: this parcel stays",
    Refusal.SHIPS_IN_PARCELS: "part of the fulfilment has shipped in parcels: ship the rest as"
    " parcels too",
    Refusal.ALREADY_SHIPPED: "the fulfilment has already been shipped",
    Refusal.ALREADY_DELIVERED: "the fulfilment has already been delivered",
    Refusal.FULFILMENT_CANCELLED: "the fulfilment was cancelled",
    Refusal.FULFILMENT_FAILED: "the carrier reported the shipment failed",
}


class TransitionRefused(Exception):
    def __init__(self, code: Refusal, status: Status, action: Action) -> None:
        super().__init__(f"cannot {action.value} a {status.value} fulfilment: {_MESSAGES[code]}")
        self.code = code
        self.status = status
        self.action = action


@dataclass(frozen=True)
class Transition:
    to: Status
    changed: bool  # False: the fulfilment is already there (an idempotent repeat)


_CHANGES: dict[tuple[Status, Action], Status] = {
    (Status.CREATED, Action.SHIP): Status.SHIPPED,
    (Status.CREATED, Action.CANCEL): Status.CANCELLED,
    (Status.SHIPPED, Action.DELIVER): Status.DELIVERED,
    (Status.SHIPPED, Action.FAIL): Status.FAILED,
    (Status.PARTIALLY_SHIPPED, Action.FAIL): Status.FAILED,
}

_REPEATS: frozenset[tuple[Status, Action]] = frozenset(
    {
        (Status.DELIVERED, Action.DELIVER),
        (Status.CANCELLED, Action.CANCEL),
        (Status.FAILED, Action.FAIL),
    }
)

# Any other action is refused, for the reason its status gives, unless the action has its own.
_REFUSED_IN: dict[Status, Refusal] = {
    Status.CREATED: Refusal.NOT_SHIPPED,
    Status.PARTIALLY_SHIPPED: Refusal.ALREADY_SHIPPED,
    Status.SHIPPED: Refusal.ALREADY_SHIPPED,
    Status.DELIVERED: Refusal.ALREADY_DELIVERED,
    Status.CANCELLED: Refusal.FULFILMENT_CANCELLED,
    Status.FAILED: Refusal.FULFILMENT_FAILED,
}
_REFUSED_FOR: dict[tuple[Status, Action], Refusal] = {
    (Status.DELIVERED, Action.SHIP): Refusal.ALREADY_SHIPPED,
    (Status.DELIVERED, Action.CANCEL): Refusal.ALREADY_SHIPPED,
    (Status.PARTIALLY_SHIPPED, Action.SHIP): Refusal.SHIPS_IN_PARCELS,
    (Status.PARTIALLY_SHIPPED, Action.DELIVER): Refusal.NOT_SHIPPED,
}


def transition(status: Status, action: Action) -> Transition:
    """Where `action` takes a fulfilment in `status`; raises TransitionRefused when it may not."""
    key = (status, action)
    if key in _CHANGES:
        return Transition(_CHANGES[key], changed=True)
    if key in _REPEATS:
        return Transition(status, changed=False)
    raise TransitionRefused(_REFUSED_FOR.get(key, _REFUSED_IN[status]), status, action)


@dataclass(frozen=True)
class Shipment:
    carrier: str
    tracking_number: str


def decide_ship(status: Status, current: Shipment | None, requested: Shipment) -> Transition:
    """Shipping; a repeat with the same carrier and tracking number is unchanged, not refused,
    so a client retrying a timed-out request gets the same answer."""
    if status in (Status.SHIPPED, Status.DELIVERED) and current == requested:
        return Transition(status, changed=False)
    return transition(status, Action.SHIP)


def decide_ship_parcel(
    status: Status, *, completes: bool, rest_cancelled: bool = False
) -> Transition:
    """Shipping one parcel; `completes`: it holds the last unshipped lines of the fulfilment;
    `rest_cancelled`: a cancel took what had not shipped, so no other parcel may leave."""
    if rest_cancelled:
        raise TransitionRefused(Refusal.REST_CANCELLED, status, Action.SHIP)
    if status not in (Status.CREATED, Status.PARTIALLY_SHIPPED):
        raise TransitionRefused(_REFUSED_IN[status], status, Action.SHIP)
    return Transition(Status.SHIPPED if completes else Status.PARTIALLY_SHIPPED, changed=True)


def normalise_carrier(carrier: str) -> str:
    return carrier.strip().lower()


# Carrier choice when the warehouse does not name one: by destination country. Deliberately
# simple; a rate-shopping policy would replace this table.
_CARRIER_BY_COUNTRY: dict[str, str] = {
    "US": "ups",
    "CA": "ups",
    "GB": "royal_mail",
    **dict.fromkeys(
        ("AT", "BE", "CH", "CZ", "DE", "DK", "ES", "FR", "IT", "LU", "NL", "PL", "PT", "SE"),
        "dhl",
    ),
}
DEFAULT_CARRIER = "fedex"


def choose_carrier(country: str) -> str:
    return _CARRIER_BY_COUNTRY.get(country.upper(), DEFAULT_CARRIER)


def issue_tracking_number(carrier: str, fulfilment_id: str) -> str:
    """A tracking number derived from the fulfilment, so a retried ship issues the same one."""
    digest = hashlib.sha256(f"{carrier}/{fulfilment_id}".encode()).hexdigest()
    prefix = "".join(c for c in carrier.upper() if c.isalnum())[:3] or "TRK"
    return f"{prefix}{int(digest[:16], 16) % 10**12:012d}"


# --- creating fulfilments -------------------------------------------------------------------

_FULFILMENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:oms:fulfilment")


def fulfilment_id_for(order_id: str, location: str, short_id: str | None = None) -> str:
    """Deterministic: a re-sent CreateFulfilment maps to the same fulfilments. `short_id`: a
    fulfilment of units re-allocated after that short pick (AddFulfilment), which may be at a
    location the order already has a fulfilment at."""
    name = f"{order_id}\x1f{location}" + (f"\x1f{short_id}" if short_id else "")
    return str(uuid.uuid5(_FULFILMENT_NAMESPACE, name))


class AllocationLike(Protocol):
    @property
    def sku(self) -> str: ...

    @property
    def location(self) -> str: ...

    @property
    def quantity(self) -> int: ...


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int
    short: int = 0  # units a bin did not hold (short picks): no longer the fulfilment's

    @property
    def to_ship(self) -> int:
        return self.quantity - self.short


@dataclass(frozen=True)
class PlannedFulfilment:
    fulfilment_id: str
    location: str
    lines: tuple[Line, ...]


class NothingToFulfil(ValueError):
    pass


def plan_fulfilments(
    order_id: str, allocations: Iterable[AllocationLike], short_id: str | None = None
) -> list[PlannedFulfilment]:
    """One fulfilment per location, quantities summed per SKU; sorted by location and SKU.
    `short_id`: the fulfilments of units re-allocated after that short pick."""
    by_location: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for allocation in allocations:
        if allocation.quantity <= 0:
            raise ValueError(f"allocation of {allocation.sku} has quantity {allocation.quantity}")
        by_location[allocation.location][allocation.sku] += allocation.quantity
    if not by_location:
        raise NothingToFulfil(f"order {order_id} has no allocations to fulfil")
    return [
        PlannedFulfilment(
            fulfilment_id=fulfilment_id_for(order_id, location, short_id),
            location=location,
            lines=tuple(Line(sku, quantity) for sku, quantity in sorted(skus.items())),
        )
        for location, skus in sorted(by_location.items())
    ]


# --- short picks ----------------------------------------------------------------------------

SHORT_PICK = "short_pick"
"""The cancel reason of a fulfilment none of whose units was found: it ends without shipping."""


class ShortBeyondLine(ValueError):
    pass


def record_short(lines: Iterable[Line], sku: str, missing: int) -> tuple[Line, ...]:
    """The fulfilment's lines once `missing` units of `sku` were found missing on the floor:
    they no longer belong to it, so it ships what is left and its last parcel completes it."""
    if missing <= 0:
        raise ValueError(f"a short pick misses a positive number of units, not {missing}")
    recorded = False
    after = []
    for line in lines:
        if line.sku == sku and not recorded:
            if missing > line.to_ship:
                raise ShortBeyondLine(f"{missing} of {sku} short, {line.to_ship} left to ship")
            line = Line(line.sku, line.quantity, line.short + missing)
            recorded = True
        after.append(line)
    if not recorded:
        raise ShortBeyondLine(f"the fulfilment has no line of {sku}")
    return tuple(after)


def nothing_to_ship(lines: Iterable[Line]) -> bool:
    """Every unit of the fulfilment is short: it ends without shipping (cancelled, reason
    `short_pick`)."""
    return all(line.to_ship == 0 for line in lines)


@dataclass(frozen=True)
class CancelOutcome:
    """How an order's fulfilments answer a cancel, by status after the cancel was applied."""

    cancelled: tuple[str, ...]
    already_shipped: tuple[str, ...]
    already_failed: tuple[str, ...]
    partly_shipped: tuple[str, ...] = ()


def summarise_cancel(
    statuses: Iterable[tuple[str, Status]], rest_cancelled: Collection[str] = ()
) -> CancelOutcome:
    """`rest_cancelled`: fulfilments of which some parcels had left when the cancel came, and
    whose unshipped rest it cancelled (they are shipped now, as far as they go)."""
    cancelled: list[str] = []
    shipped: list[str] = []
    failed: list[str] = []
    partly: list[str] = []
    for fulfilment_id, status in statuses:
        if status is Status.CANCELLED:
            cancelled.append(fulfilment_id)
        elif fulfilment_id in rest_cancelled:
            partly.append(fulfilment_id)
        elif status in (Status.SHIPPED, Status.DELIVERED):
            shipped.append(fulfilment_id)
        elif status is Status.FAILED:
            failed.append(fulfilment_id)
        else:
            raise ValueError(f"fulfilment {fulfilment_id} is still {status.value} after a cancel")
    return CancelOutcome(tuple(cancelled), tuple(shipped), tuple(failed), tuple(partly))


# --- holds ---------------------------------------------------------------------------------

FULFILMENT_ON_HOLD = "fulfilment_on_hold"


class FulfilmentOnHold(Exception):
    """The floor may not go on with a held fulfilment (409 `fulfilment_on_hold`)."""

    code = FULFILMENT_ON_HOLD

    def __init__(self, fulfilment_id: str, reason: str) -> None:
        super().__init__(
            f"fulfilment {fulfilment_id} is on hold ({reason}): wait for the order's release"
        )
        self.fulfilment_id = fulfilment_id
        self.reason = reason


def check_not_held(fulfilment_id: str, hold_reason: str | None) -> None:
    """Raises FulfilmentOnHold while the fulfilment is held."""
    if hold_reason is not None:
        raise FulfilmentOnHold(fulfilment_id, hold_reason)


def can_hold(status: Status, *, rest_cancelled: bool = False) -> bool:
    """Only what may still leave the floor is held: not shipped (or partly), not ended."""
    return status in (Status.CREATED, Status.PARTIALLY_SHIPPED) and not rest_cancelled


@dataclass(frozen=True)
class HoldPlan:
    to_hold: tuple[str, ...]  # not held yet: hold them now
    held: tuple[str, ...]  # held once the plan is saved (the answer)


def plan_hold(fulfilments: Iterable[tuple[str, Status, bool, bool]]) -> HoldPlan:
    """`fulfilments`: (id, status, rest cancelled, held already). Holding again is a repeat:
    nothing new to hold, the same answer."""
    to_hold: list[str] = []
    held: list[str] = []
    for fulfilment_id, status, rest_cancelled, already in fulfilments:
        if not can_hold(status, rest_cancelled=rest_cancelled):
            continue
        held.append(fulfilment_id)
        if not already:
            to_hold.append(fulfilment_id)
    return HoldPlan(tuple(sorted(to_hold)), tuple(sorted(held)))


# --- shipping address changes (UpdateShippingAddress) ---------------------------------------

PICKING_STARTED = "picking_started"
PARTNER_NOTIFIED = "partner_notified"
_LEFT_THE_FLOOR = frozenset(
    {Status.PARTIALLY_SHIPPED, Status.SHIPPED, Status.DELIVERED, Status.FAILED}
)


@dataclass(frozen=True)
class AddressFacts:
    """What an address change needs to know of one of the order's fulfilments."""

    fulfilment_id: str
    status: Status
    picking_released: bool  # put on a pick list (released) at some point
    partner_requested: bool  # its request to a 3PL / supplier is recorded
    ships_to: Mapping[str, Any]


@dataclass(frozen=True)
class AddressChangePlan:
    """`code` None: the change is taken; `updated` are the open fulfilments that ship to the
    new address once `to_update` (those not already there) are saved. Else refused: `code`,
    `reason` and the fulfilments that stop it (`blocking`); nothing changes."""

    code: str | None = None
    reason: str | None = None
    blocking: tuple[str, ...] = ()
    to_update: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()

    @property
    def refused(self) -> bool:
        return self.code is not None


def plan_address_change(
    fulfilments: Iterable[AddressFacts], ships_to: Mapping[str, Any]
) -> AddressChangePlan:
    """All or nothing. Picking has started once a fulfilment (not cancelled) is on a released
    pick list, or has parcels that left: the change is refused (`picking_started`). A partner
    fulfilment whose request is recorded has the old address already (`partner_notified`).
    Otherwise every open (created) fulfilment takes the address; one already shipping to it
    is not saved again, so a repeat changes nothing."""
    found = [f for f in fulfilments if f.status is not Status.CANCELLED]
    started = sorted(
        f.fulfilment_id for f in found if f.picking_released or f.status in _LEFT_THE_FLOOR
    )
    if started:
        return AddressChangePlan(
            PICKING_STARTED,
            "picking has started for fulfilment(s) " + ", ".join(started),
            tuple(started),
        )
    notified = sorted(f.fulfilment_id for f in found if f.partner_requested)
    if notified:
        return AddressChangePlan(
            PARTNER_NOTIFIED,
            "the request of fulfilment(s) " + ", ".join(notified) + " went to the partner"
            " with the old address",
            tuple(notified),
        )
    open_ = sorted(found, key=lambda f: f.fulfilment_id)
    return AddressChangePlan(
        to_update=tuple(f.fulfilment_id for f in open_ if dict(f.ships_to) != dict(ships_to)),
        updated=tuple(f.fulfilment_id for f in open_),
    )


# --- carrier tracking -----------------------------------------------------------------------


class TrackingStatus(StrEnum):
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    RETURNED_TO_SENDER = "returned_to_sender"


def action_for_tracking(status: TrackingStatus) -> Action | None:
    """What a carrier's tracking update does to the fulfilment (None: it is only recorded)."""
    if status is TrackingStatus.DELIVERED:
        return Action.DELIVER
    if status in (TrackingStatus.EXCEPTION, TrackingStatus.RETURNED_TO_SENDER):
        return Action.FAIL
    return None


def failure_reason(status: TrackingStatus, description: str | None) -> str:
    return f"{status.value}: {description}" if description else status.value
