"""Order edits from channels (domain/edits.py): an address change before the order reaches
fulfilment is applied at once, at fulfilment it is asked of fulfilment and applied on its
answer, after picking (or shipping, or once closed) it is refused with one operator alert; line
changes are refused; the same change again, and a repeated answer, change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.order_intake.domain import edits
from services.order_intake.domain import saga as s
from services.order_intake.domain.saga import OrderSaga, Status
from shared.contracts.common import Address, SkuQuantity
from shared.contracts.fulfilment import ShippingAddressChangeRefused, ShippingAddressUpdated
from shared.contracts.order_intake import CreateFulfilment, OperatorAlert, UpdateShippingAddress
from tests.unit.order_intake.test_saga import ORDER, POLICY, T0, at, authorized, new_saga

LATER = T0 + timedelta(minutes=10)
NEW = Address(line1="9 Side St", city="Hamburg", postal_code="20095", country="DE")
OTHER = Address(line1="3 Far Rd", city="Munich", postal_code="80331", country="DE")
LINES = (SkuQuantity(sku="A", quantity=2), SkuQuantity(sku="B", quantity=1))


def update(
    address: Address | None = None, lines: tuple[SkuQuantity, ...] = LINES
) -> edits.ChannelUpdate:
    return edits.ChannelUpdate(
        channel="shopify",
        external_id="5940",
        shipping_address=address or new_saga().shipping_address,
        lines=lines,
    )


def edit(saga: OrderSaga, change: edits.ChannelUpdate, *, picking: bool = False):
    return edits.request_edit(saga, change, LATER, picking_started=picking)


def events(decision: s.Decision) -> list[str]:
    return [e.event for e in decision.timeline]


def alerts(decision: s.Decision) -> list[OperatorAlert]:
    return [m for m in decision.messages if isinstance(m, OperatorAlert)]


def test_the_same_address_and_lines_in_any_order_are_no_edit():
    saga = at(new_saga(), Status.FULFILLING)
    reordered = (SkuQuantity(sku="B", quantity=1), SkuQuantity(sku="A", quantity=2))
    assert not edits.wants_change(saga, update(lines=reordered))
    result = edit(saga, update(lines=reordered))
    assert result.outcome == "duplicate" and result.edits == ()
    assert result.decision.timeline == [] and result.decision.messages == []
    assert saga.channel_edits == {}


@pytest.mark.parametrize("status", [Status.RESERVING_STOCK, Status.AUTHORIZING_PAYMENT])
def test_before_fulfilment_the_address_is_applied_at_once(status: Status):
    saga = at(new_saga(), status)
    result = edit(saga, update(NEW))
    assert result.outcome == "edit_applied"
    assert saga.shipping_address == NEW and saga.status == status
    assert result.decision.messages == []
    [note] = result.decision.timeline
    assert note.event == edits.ADDRESS_CHANGED
    assert note.detail["fields"] == ["line1", "city", "postal_code"]
    assert "9 Side St" not in str(note.detail), "the timeline names fields, not personal data"


def test_an_address_applied_before_confirmation_goes_to_fulfilment_with_create():
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    edit(saga, update(NEW))
    decision = s.handle(saga, authorized(), T0, POLICY)
    [create] = [m for m in decision.messages if isinstance(m, CreateFulfilment)]
    assert create.shipping_address == NEW


@pytest.mark.parametrize("status", [Status.CONFIRMED, Status.FULFILLING])
def test_at_fulfilment_the_change_is_asked_of_fulfilment_and_applied_on_its_answer(
    status: Status,
):
    saga = at(new_saga(), status)
    before = saga.shipping_address
    result = edit(saga, update(NEW))
    assert result.outcome == "edit_requested"
    [command] = result.decision.messages
    assert isinstance(command, UpdateShippingAddress)
    assert command.shipping_address == NEW and command.recipient_name == "C"
    assert command.change_id == f"{ORDER}:edit:1"
    assert events(result.decision) == [edits.ADDRESS_CHANGE_REQUESTED]
    assert saga.shipping_address == before, "not changed until fulfilment has taken it"

    answer = ShippingAddressUpdated(order_id=ORDER, change_id=command.change_id, updated=("f1",))
    decision = edits.handle_answer(saga, answer, LATER)
    assert saga.shipping_address == NEW and saga.status == status
    [note] = decision.timeline
    assert (note.event, note.detail["fulfilments"]) == (edits.ADDRESS_CHANGED, ["f1"])
    assert saga.channel_edits[command.change_id].state == edits.APPLIED

    again = edits.handle_answer(saga, answer, LATER)  # a re-sent command's answer
    assert again.timeline == [] and again.messages == []


def test_the_same_change_while_fulfilment_decides_is_not_asked_twice():
    saga = at(new_saga(), Status.FULFILLING)
    edit(saga, update(NEW))
    assert not edits.wants_change(saga, update(NEW))
    repeat = edit(saga, update(NEW))
    assert repeat.outcome == "duplicate" and repeat.decision.messages == []
    # A second, different change is a new edit (the later answer wins: answers come in order).
    second = edit(saga, update(OTHER))
    [command] = second.decision.messages
    assert isinstance(command, UpdateShippingAddress) and command.change_id == f"{ORDER}:edit:2"
    for change_id in (f"{ORDER}:edit:1", f"{ORDER}:edit:2"):
        edits.handle_answer(
            saga, ShippingAddressUpdated(order_id=ORDER, change_id=change_id), LATER
        )
    assert saga.shipping_address == OTHER


def test_fulfilment_refusing_records_the_refusal_and_alerts_once():
    saga = at(new_saga(), Status.FULFILLING)
    before = saga.shipping_address
    command = edit(saga, update(NEW)).decision.messages[0]
    assert isinstance(command, UpdateShippingAddress)
    refused = ShippingAddressChangeRefused(
        order_id=ORDER,
        change_id=command.change_id,
        code="picking_started",
        reason="picking has started for fulfilment(s) f1",
        fulfilments=("f1",),
    )
    decision = edits.handle_answer(saga, refused, LATER)
    assert saga.shipping_address == before
    [note] = decision.timeline
    assert note.event == edits.EDIT_REFUSED
    assert (note.detail["code"], note.detail["fulfilments"]) == ("picking_started", ["f1"])
    [alert] = alerts(decision)
    assert alert.kind == edits.EDIT_REFUSED and "picking has started" in alert.message
    assert edits.handle_answer(saga, refused, LATER).messages == []
    # The channel sending the refused address again is not a new change (no second alert).
    assert edit(saga, update(NEW)).outcome == "duplicate"


def test_after_picking_the_change_is_refused_with_one_alert():
    saga = at(new_saga(), Status.FULFILLING)
    before = saga.shipping_address
    result = edit(saga, update(NEW), picking=True)
    assert result.outcome == "edit_refused"
    assert result.reason and "started picking" in result.reason
    assert saga.shipping_address == before
    assert not any(isinstance(m, UpdateShippingAddress) for m in result.decision.messages)
    [note] = result.decision.timeline
    assert (note.event, note.detail["code"], note.detail["kind"]) == (
        edits.EDIT_REFUSED,
        edits.PICKING_STARTED,
        edits.ADDRESS,
    )
    assert len(alerts(result.decision)) == 1
    again = edit(saga, update(NEW), picking=True)
    assert again.outcome == "duplicate" and again.decision.messages == []


@pytest.mark.parametrize(
    ("status", "code"),
    [(Status.PARTIALLY_SHIPPED, edits.ALREADY_SHIPPED), (Status.SHIPPED, edits.ALREADY_SHIPPED)],
)
def test_shipped_orders_refuse_the_change(status: Status, code: str):
    saga = at(new_saga(), status)
    result = edit(saga, update(NEW))
    assert result.outcome == "edit_refused"
    assert result.decision.timeline[0].detail["code"] == code


def test_a_cancelled_order_refuses_the_change():
    saga = at(new_saga(), Status.RESERVING_STOCK)
    s.request_cancel(saga, "customer", T0, POLICY)
    result = edit(saga, update(NEW))
    assert result.decision.timeline[0].detail["code"] == edits.ORDER_CLOSED


def test_a_line_change_is_refused_with_both_line_sets_named():
    saga = at(new_saga(), Status.RESERVING_STOCK)
    wanted = (SkuQuantity(sku="A", quantity=3), SkuQuantity(sku="B", quantity=1))
    result = edit(saga, update(lines=wanted))
    assert result.outcome == "edit_refused"
    [note] = result.decision.timeline
    assert note.detail["code"] == edits.LINE_CHANGE_UNSUPPORTED
    assert note.detail["wanted"] == [{"sku": "A", "quantity": 3}, {"sku": "B", "quantity": 1}]
    assert note.detail["ordered"] == [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}]
    assert len(alerts(result.decision)) == 1
    assert [li.quantity for li in saga.lines] == [2, 1], "the order's lines are unchanged"
    assert edit(saga, update(lines=wanted)).outcome == "duplicate"


def test_address_and_lines_changed_together_apply_the_address_and_refuse_the_lines():
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    wanted = (SkuQuantity(sku="A", quantity=1),)
    result = edit(saga, update(NEW, wanted))
    assert [e.state for e in result.edits] == [edits.APPLIED, edits.REFUSED]
    assert result.outcome == "edit_refused" and saga.shipping_address == NEW


def test_a_parked_order_waiting_on_fulfilment_asks_fulfilment():
    saga = at(new_saga(), Status.CONFIRMED)
    for _ in range(POLICY.max_attempts):
        assert saga.deadline_at is not None
        s.on_deadline(saga, saga.deadline_at, POLICY)
    assert saga.status == Status.NEEDS_ATTENTION
    result = edit(saga, update(NEW))
    assert result.outcome == "edit_requested"


def test_a_saga_stored_before_edits_loads_without_any():
    stored = at(new_saga(), Status.FULFILLING).model_dump(mode="json")
    stored.pop("channel_edits")
    assert OrderSaga.model_validate(stored).channel_edits == {}


def test_an_older_version_arriving_late_is_no_edit():
    saga = at(new_saga(channel_changed_at=T0), Status.FULFILLING)
    newer = edits.ChannelUpdate(
        channel="shopify",
        external_id="5940",
        shipping_address=NEW,
        lines=LINES,
        changed_at=T0 + timedelta(minutes=5),
    )
    assert edit(saga, newer).outcome == "edit_requested"
    assert saga.channel_changed_at == T0 + timedelta(minutes=5)
    late = edits.ChannelUpdate(
        channel="shopify",
        external_id="5940",
        shipping_address=OTHER,
        lines=(SkuQuantity(sku="A", quantity=9),),
        changed_at=T0 + timedelta(minutes=1),
    )
    assert edits.is_stale(saga, late)
    result = edit(saga, late)
    assert result.outcome == "duplicate" and result.decision.messages == []
    assert len(saga.channel_edits) == 1


def test_a_newer_version_without_changes_is_remembered():
    saga = at(new_saga(channel_changed_at=T0), Status.FULFILLING)
    same = update()
    newer = edits.ChannelUpdate(
        channel=same.channel,
        external_id=same.external_id,
        shipping_address=same.shipping_address,
        lines=same.lines,
        changed_at=T0 + timedelta(hours=1),
    )
    assert not edits.wants_change(saga, newer)
    assert edits.note_version(saga, newer) and saga.channel_changed_at == T0 + timedelta(hours=1)
    assert not edits.note_version(saga, newer), "the same version again is nothing new"
