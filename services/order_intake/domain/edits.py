"""Order edits from sales channels, as pure rules on the order saga.

A channel that sends an order the OMS already has (Shopify `orders/updated`, a polled order
seen again) may have changed it. `request_edit` compares what the channel now says with the
saga and decides; `handle_answer` applies fulfilment's answer. Both return the saga's
`Decision` (timeline entries, messages); the caller persists it like any saga step. An edit
never changes the order's status.

- Shipping address changed: before picking it is applied. An order not yet at fulfilment
  takes it at once (CreateFulfilment will carry it). At fulfilment (CreateFulfilment sent, or
  fulfilments made) UpdateShippingAddress asks fulfilment, which changes the unpicked
  fulfilments and answers ShippingAddressUpdated (the saga's address is changed then) or
  ShippingAddressChangeRefused (picking started meanwhile, or a partner has the request).
  Once picking started (order-intake saw the floor's progress on the timeline, or a short
  pick), anything shipped, or the order closed or being cancelled, it is refused.
- Lines changed (SKU or quantity per SKU): refused, with the lines wanted on the timeline.
  Re-reserving and re-pricing an order in flight (stock, payment authorisation, the channel's
  own totals) is not done automatically; an operator handles it with the customer.
- Anything else that differs (prices, customer, notes, payment status) is not applied: the
  update is a duplicate unless its address or lines differ.
- A version older than one received before (the channel's `changed_at`, e.g. Shopify's
  `updated_at`: webhooks are not ordered) is no edit at all: a late `orders/create` does not
  put the old address back.

Every refusal is on the timeline (`channel_edit_refused`) with an OperatorAlert of that kind,
once per change: the same change again — a redelivery with a new delivery id, or the same
content polled again — is a duplicate (the last edit of its kind already wants it), and
fulfilment's answer to a change already decided changes nothing. The timeline names the
address fields that changed, never their values (they are personal data).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.order_intake.domain.saga import (
    SHIPPED_OR_LATER,
    TERMINAL,
    ChannelEdit,
    Decision,
    OrderSaga,
    Status,
    Step,
    shipped_anything,
)
from shared.contracts.common import Address, SkuQuantity
from shared.contracts.fulfilment import ShippingAddressChangeRefused, ShippingAddressUpdated
from shared.contracts.order_intake import OperatorAlert, UpdateShippingAddress
from shared.envelope import Contract

ADDRESS = "address"
LINES = "lines"

REQUESTED = "requested"
APPLIED = "applied"
REFUSED = "refused"

# Timeline events (and the refusal's alert kind).
ADDRESS_CHANGED = "shipping_address_changed"
ADDRESS_CHANGE_REQUESTED = "shipping_address_change_requested"
EDIT_REFUSED = "channel_edit_refused"

# Refusal codes.
ORDER_CLOSED = "order_closed"
ALREADY_SHIPPED = "already_shipped"
PICKING_STARTED = "picking_started"
LINE_CHANGE_UNSUPPORTED = "line_change_unsupported"

_ADDRESS_FIELDS = ("line1", "line2", "city", "region", "postal_code", "country")


@dataclass(frozen=True)
class ChannelUpdate:
    """What the channel now says of an order it sent before."""

    channel: str
    external_id: str
    shipping_address: Address
    lines: tuple[SkuQuantity, ...]
    changed_at: datetime | None = None  # the channel's last change of this version


@dataclass(frozen=True)
class EditResult:
    """`edits`: the edits this update made (none: nothing changed, a duplicate)."""

    decision: Decision
    edits: tuple[ChannelEdit, ...]

    @property
    def outcome(self) -> str:
        """`edit_refused` when any edit was refused, else `edit_requested` when fulfilment was
        asked, else `edit_applied`; `duplicate` when nothing changed."""
        states = {edit.state for edit in self.edits}
        if not states:
            return "duplicate"
        if REFUSED in states:
            return "edit_refused"
        return "edit_requested" if REQUESTED in states else "edit_applied"

    @property
    def reason(self) -> str | None:
        refused = [edit.message for edit in self.edits if edit.state == REFUSED and edit.message]
        return "; ".join(refused) or None


def units(lines: Iterable[tuple[str, int]]) -> tuple[SkuQuantity, ...]:
    """Units per SKU, by SKU: lines compared whatever their order or split."""
    per_sku: dict[str, int] = {}
    for sku, quantity in lines:
        per_sku[sku] = per_sku.get(sku, 0) + quantity
    return tuple(SkuQuantity(sku=sku, quantity=n) for sku, n in sorted(per_sku.items()))


def ordered(saga: OrderSaga) -> tuple[SkuQuantity, ...]:
    return units((line.sku, line.quantity) for line in saga.lines)


def is_stale(saga: OrderSaga, update: ChannelUpdate) -> bool:
    """An older version of the order than one received before (the channel's webhooks are not
    ordered): not an edit, whatever it says."""
    return (
        update.changed_at is not None
        and saga.channel_changed_at is not None
        and update.changed_at < saga.channel_changed_at
    )


def note_version(saga: OrderSaga, update: ChannelUpdate) -> bool:
    """Remember the update's version when it is the newest received; True when it was."""
    if update.changed_at is None or is_stale(saga, update):
        return False
    if saga.channel_changed_at is not None and update.changed_at <= saga.channel_changed_at:
        return False
    saga.channel_changed_at = update.changed_at
    return True


def wants_change(saga: OrderSaga, update: ChannelUpdate) -> bool:
    """The update asks for an edit (its address or lines differ from what the order has and
    was last asked for): a cheap check before anything is looked up for `request_edit`."""
    wanted = units((line.sku, line.quantity) for line in update.lines)
    return _address_wanted(saga, update.shipping_address) or _lines_wanted(saga, wanted)


def request_edit(
    saga: OrderSaga, update: ChannelUpdate, now: datetime, *, picking_started: bool
) -> EditResult:
    """Compare the channel's update with the order and decide (see the module's doc).
    `picking_started`: order-intake saw the warehouse start picking the order. A stale
    version (`is_stale`) makes no edit."""
    decision = Decision()
    made: list[ChannelEdit] = []
    if is_stale(saga, update):
        return EditResult(decision, ())
    note_version(saga, update)
    if _address_wanted(saga, update.shipping_address):
        made.append(_change_address(saga, update, now, picking_started, decision))
    wanted = units((line.sku, line.quantity) for line in update.lines)
    if _lines_wanted(saga, wanted):
        made.append(_refuse_lines(saga, update, wanted, now, picking_started, decision))
    return EditResult(decision, tuple(made))


def handle_answer(saga: OrderSaga, event: Contract, now: datetime) -> Decision:
    """Fulfilment's answer to UpdateShippingAddress; an answer to a change already decided (a
    re-sent command's) changes nothing."""
    decision = Decision()
    change_id = getattr(event, "change_id", None)
    edit = saga.channel_edits.get(change_id) if isinstance(change_id, str) else None
    if edit is None or edit.state != REQUESTED:
        return decision
    if isinstance(event, ShippingAddressUpdated):
        _apply_address(saga, edit, decision, fulfilments=list(event.updated))
    elif isinstance(event, ShippingAddressChangeRefused):
        _refuse(saga, edit, event.code, event.reason, decision, fulfilments=list(event.fulfilments))
    return decision


HANDLED_ANSWERS: tuple[type[Contract], ...] = (
    ShippingAddressUpdated,
    ShippingAddressChangeRefused,
)


# --- address ---------------------------------------------------------------------------------


def _latest(saga: OrderSaga, kind: str) -> ChannelEdit | None:
    found = [edit for edit in saga.channel_edits.values() if edit.kind == kind]
    return found[-1] if found else None


def _address_wanted(saga: OrderSaga, wanted: Address) -> bool:
    """The channel wants an address the order neither has nor was last asked for (a change
    still with fulfilment, or one refused already, is not asked for again)."""
    latest = _latest(saga, ADDRESS)
    if latest is not None and latest.state in {REQUESTED, REFUSED} and latest.address == wanted:
        return False
    target = latest.address if latest is not None and latest.state == REQUESTED else None
    return wanted != (target or saga.shipping_address)


def changed_fields(before: Address, after: Address) -> list[str]:
    return [name for name in _ADDRESS_FIELDS if getattr(before, name) != getattr(after, name)]


def _change_address(
    saga: OrderSaga,
    update: ChannelUpdate,
    now: datetime,
    picking_started: bool,
    decision: Decision,
) -> ChannelEdit:
    edit = _new_edit(
        saga,
        ADDRESS,
        update.channel,
        now,
        address=update.shipping_address,
        previous_address=saga.shipping_address,
    )
    refusal = _too_late(saga, picking_started)
    if refusal is not None:
        _refuse(saga, edit, *refusal, decision)
    elif _at_fulfilment(saga):
        decision.note(
            ADDRESS_CHANGE_REQUESTED,
            edit_id=edit.edit_id,
            channel=update.channel,
            fields=changed_fields(saga.shipping_address, update.shipping_address),
        )
        decision.send(
            UpdateShippingAddress(
                order_id=saga.order_id,
                change_id=edit.edit_id,
                shipping_address=update.shipping_address,
                recipient_name=saga.customer.name,
            )
        )
    else:
        _apply_address(saga, edit, decision)
    return saga.channel_edits[edit.edit_id]


def _apply_address(
    saga: OrderSaga, edit: ChannelEdit, decision: Decision, fulfilments: list[str] | None = None
) -> None:
    assert edit.address is not None
    previous = saga.shipping_address
    saga.shipping_address = edit.address
    saga.channel_edits[edit.edit_id] = edit.model_copy(
        update={"state": APPLIED, "previous_address": previous}
    )
    detail: dict[str, object] = {
        "edit_id": edit.edit_id,
        "channel": edit.channel,
        "fields": changed_fields(previous, edit.address),
    }
    if fulfilments is not None:
        detail["fulfilments"] = fulfilments
    decision.note(ADDRESS_CHANGED, **detail)


def _at_fulfilment(saga: OrderSaga) -> bool:
    """CreateFulfilment was sent (or fulfilments made): only fulfilment can change them."""
    underneath = _underneath(saga)
    return (
        bool(saga.fulfilments)
        or Step.CREATE_FULFILMENT in {saga.step, saga.parked_step}
        or underneath in {Status.CONFIRMED, Status.FULFILLING}
    )


def _underneath(saga: OrderSaga) -> Status:
    if saga.status == Status.NEEDS_ATTENTION and saga.parked_from is not None:
        return saga.parked_from
    return saga.status


def _too_late(saga: OrderSaga, picking_started: bool) -> tuple[str, str] | None:
    """Why the order can no longer be edited, if it cannot."""
    status = _underneath(saga)
    if status in TERMINAL or status == Status.CANCELLING or saga.cancel_requested:
        return ORDER_CLOSED, f"order {saga.order_id} is {status.value} (or being cancelled)"
    if status in SHIPPED_OR_LATER or shipped_anything(saga):
        return ALREADY_SHIPPED, f"order {saga.order_id} has shipped goods"
    if picking_started or saga.shorts:
        return PICKING_STARTED, f"the warehouse has started picking order {saga.order_id}"
    return None


# --- lines -----------------------------------------------------------------------------------


def _lines_wanted(saga: OrderSaga, wanted: tuple[SkuQuantity, ...]) -> bool:
    latest = _latest(saga, LINES)
    if latest is not None and latest.lines == wanted:
        return False
    return wanted != ordered(saga)


def _refuse_lines(
    saga: OrderSaga,
    update: ChannelUpdate,
    wanted: tuple[SkuQuantity, ...],
    now: datetime,
    picking_started: bool,
    decision: Decision,
) -> ChannelEdit:
    edit = _new_edit(saga, LINES, update.channel, now, lines=wanted)
    refusal = _too_late(saga, picking_started) or (
        LINE_CHANGE_UNSUPPORTED,
        "line changes from a channel are not applied automatically (stock and payment would"
        " have to be redone): change the order by hand or cancel it",
    )
    _refuse(
        saga,
        edit,
        *refusal,
        decision,
        ordered=_lines_detail(ordered(saga)),
        wanted=_lines_detail(wanted),
    )
    return saga.channel_edits[edit.edit_id]


def _lines_detail(lines: Sequence[SkuQuantity]) -> list[dict[str, object]]:
    return [{"sku": line.sku, "quantity": line.quantity} for line in lines]


# --- shared ----------------------------------------------------------------------------------


def _new_edit(
    saga: OrderSaga, kind: str, channel: str, now: datetime, **fields: object
) -> ChannelEdit:
    edit = ChannelEdit.model_validate(
        {
            "edit_id": f"{saga.order_id}:edit:{len(saga.channel_edits) + 1}",
            "kind": kind,
            "channel": channel,
            "state": REQUESTED,
            "requested_at": now,
            **fields,
        }
    )
    saga.channel_edits[edit.edit_id] = edit
    return edit


def _refuse(
    saga: OrderSaga,
    edit: ChannelEdit,
    code: str,
    message: str,
    decision: Decision,
    **detail: object,
) -> None:
    saga.channel_edits[edit.edit_id] = edit.model_copy(
        update={"state": REFUSED, "code": code, "message": message}
    )
    what = "shipping address" if edit.kind == ADDRESS else "lines"
    if edit.kind == ADDRESS and edit.address is not None:
        previous = edit.previous_address or saga.shipping_address
        detail = {"fields": changed_fields(previous, edit.address), **detail}
    decision.note(
        EDIT_REFUSED,
        edit_id=edit.edit_id,
        kind=edit.kind,
        channel=edit.channel,
        code=code,
        message=message,
        **detail,
    )
    decision.send(
        OperatorAlert(
            order_id=saga.order_id,
            kind=EDIT_REFUSED,
            message=f"{edit.channel} changed the {what} of order {saga.order_id}, but {message}"
            f" ({code}): the change was not applied; settle it with the customer",
        )
    )
