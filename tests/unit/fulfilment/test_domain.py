"""The fulfilment state machine, allocation grouping, carrier choice and cancel summaries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from services.fulfilment.domain import (
    DEFAULT_CARRIER,
    Action,
    Line,
    NothingToFulfil,
    Refusal,
    Shipment,
    Status,
    TrackingStatus,
    Transition,
    TransitionRefused,
    action_for_tracking,
    choose_carrier,
    decide_ship,
    decide_ship_parcel,
    failure_reason,
    fulfilment_id_for,
    issue_tracking_number,
    normalise_carrier,
    plan_fulfilments,
    summarise_cancel,
    transition,
)

# --- state machine: every (status, action) pair -------------------------------------------

CHANGES = [
    (Status.CREATED, Action.SHIP, Status.SHIPPED),
    (Status.CREATED, Action.CANCEL, Status.CANCELLED),
    (Status.SHIPPED, Action.DELIVER, Status.DELIVERED),
    (Status.SHIPPED, Action.FAIL, Status.FAILED),
    (Status.PARTIALLY_SHIPPED, Action.FAIL, Status.FAILED),
]

REPEATS = [
    (Status.DELIVERED, Action.DELIVER),
    (Status.CANCELLED, Action.CANCEL),
    (Status.FAILED, Action.FAIL),
]

REFUSALS = [
    (Status.CREATED, Action.DELIVER, Refusal.NOT_SHIPPED),
    (Status.CREATED, Action.FAIL, Refusal.NOT_SHIPPED),
    (Status.SHIPPED, Action.SHIP, Refusal.ALREADY_SHIPPED),
    (Status.SHIPPED, Action.CANCEL, Refusal.ALREADY_SHIPPED),
    (Status.DELIVERED, Action.SHIP, Refusal.ALREADY_SHIPPED),
    (Status.DELIVERED, Action.CANCEL, Refusal.ALREADY_SHIPPED),
    (Status.DELIVERED, Action.FAIL, Refusal.ALREADY_DELIVERED),
    (Status.CANCELLED, Action.SHIP, Refusal.FULFILMENT_CANCELLED),
    (Status.CANCELLED, Action.DELIVER, Refusal.FULFILMENT_CANCELLED),
    (Status.CANCELLED, Action.FAIL, Refusal.FULFILMENT_CANCELLED),
    (Status.FAILED, Action.SHIP, Refusal.FULFILMENT_FAILED),
    (Status.FAILED, Action.DELIVER, Refusal.FULFILMENT_FAILED),
    (Status.FAILED, Action.CANCEL, Refusal.FULFILMENT_FAILED),
    (Status.PARTIALLY_SHIPPED, Action.SHIP, Refusal.SHIPS_IN_PARCELS),
    (Status.PARTIALLY_SHIPPED, Action.DELIVER, Refusal.NOT_SHIPPED),
    (Status.PARTIALLY_SHIPPED, Action.CANCEL, Refusal.ALREADY_SHIPPED),
]


def test_the_tables_cover_every_status_and_action_exactly_once():
    pairs = [(s, a) for s, a, _ in CHANGES] + REPEATS + [(s, a) for s, a, _ in REFUSALS]
    assert sorted(pairs) == sorted((s, a) for s in Status for a in Action)


@pytest.mark.parametrize(("status", "action", "to"), CHANGES)
def test_allowed_transition_changes_the_status(status: Status, action: Action, to: Status):
    assert transition(status, action) == Transition(to, changed=True)


@pytest.mark.parametrize(("status", "action"), REPEATS)
def test_repeat_of_a_done_action_is_unchanged_not_refused(status: Status, action: Action):
    assert transition(status, action) == Transition(status, changed=False)


@pytest.mark.parametrize(("status", "action", "code"), REFUSALS)
def test_refused_transition_names_a_stable_code(status: Status, action: Action, code: Refusal):
    with pytest.raises(TransitionRefused) as refused:
        transition(status, action)
    assert refused.value.code is code
    assert refused.value.status is status
    assert status.value in str(refused.value)


# --- shipping ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "completes", "to"),
    [
        (Status.CREATED, False, Status.PARTIALLY_SHIPPED),
        (Status.CREATED, True, Status.SHIPPED),
        (Status.PARTIALLY_SHIPPED, False, Status.PARTIALLY_SHIPPED),
        (Status.PARTIALLY_SHIPPED, True, Status.SHIPPED),
    ],
)
def test_a_parcel_ships_part_or_the_rest(status: Status, completes: bool, to: Status):
    assert decide_ship_parcel(status, completes=completes) == Transition(to, changed=True)


def test_no_parcel_ships_once_the_rest_was_cancelled():
    with pytest.raises(TransitionRefused) as refused:
        decide_ship_parcel(Status.SHIPPED, completes=False, rest_cancelled=True)
    assert refused.value.code is Refusal.REST_CANCELLED


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (Status.SHIPPED, Refusal.ALREADY_SHIPPED),
        (Status.DELIVERED, Refusal.ALREADY_DELIVERED),
        (Status.CANCELLED, Refusal.FULFILMENT_CANCELLED),
        (Status.FAILED, Refusal.FULFILMENT_FAILED),
    ],
)
def test_no_parcel_ships_from_a_finished_fulfilment(status: Status, code: Refusal):
    with pytest.raises(TransitionRefused) as refused:
        decide_ship_parcel(status, completes=True)
    assert refused.value.code is code


UPS_1 = Shipment("ups", "1Z1")


def test_ship_a_created_fulfilment():
    assert decide_ship(Status.CREATED, None, UPS_1) == Transition(Status.SHIPPED, changed=True)


@pytest.mark.parametrize("status", [Status.SHIPPED, Status.DELIVERED])
def test_shipping_again_with_the_same_carrier_and_number_is_an_idempotent_repeat(status: Status):
    assert decide_ship(status, UPS_1, Shipment("ups", "1Z1")) == Transition(status, changed=False)


@pytest.mark.parametrize("other", [Shipment("ups", "1Z2"), Shipment("dhl", "1Z1")])
def test_shipping_again_with_another_shipment_is_refused(other: Shipment):
    with pytest.raises(TransitionRefused) as refused:
        decide_ship(Status.SHIPPED, UPS_1, other)
    assert refused.value.code is Refusal.ALREADY_SHIPPED


def test_shipping_a_cancelled_fulfilment_is_refused():
    with pytest.raises(TransitionRefused) as refused:
        decide_ship(Status.CANCELLED, None, UPS_1)
    assert refused.value.code is Refusal.FULFILMENT_CANCELLED


def test_a_failed_shipment_is_not_shipped_again_even_with_the_same_number():
    with pytest.raises(TransitionRefused) as refused:
        decide_ship(Status.FAILED, UPS_1, UPS_1)
    assert refused.value.code is Refusal.FULFILMENT_FAILED


@pytest.mark.parametrize(
    ("country", "carrier"),
    [("US", "ups"), ("ca", "ups"), ("GB", "royal_mail"), ("DE", "dhl"), ("FR", "dhl")],
)
def test_carrier_is_chosen_by_destination_country(country: str, carrier: str):
    assert choose_carrier(country) == carrier


def test_other_destinations_get_the_default_carrier():
    assert choose_carrier("JP") == DEFAULT_CARRIER == "fedex"


def test_carrier_names_are_normalised():
    assert normalise_carrier("  DHL ") == "dhl"


def test_issued_tracking_numbers_are_stable_and_distinct_per_fulfilment():
    first = issue_tracking_number("ups", "f-1")
    assert first == issue_tracking_number("ups", "f-1")
    assert first != issue_tracking_number("ups", "f-2")
    assert first.startswith("UPS")
    assert len(first) == 15
    assert issue_tracking_number("royal_mail", "f-1").startswith("ROY")


# --- grouping allocations into fulfilments ---------------------------------------------------


@dataclass(frozen=True)
class Alloc:
    line_id: str
    sku: str
    location: str
    quantity: int


def test_one_fulfilment_per_location_with_quantities_summed_per_sku():
    planned = plan_fulfilments(
        "o-1",
        [
            Alloc("l1", "SKU-A", "WH-2", 2),
            Alloc("l2", "SKU-B", "WH-1", 1),
            Alloc("l3", "SKU-A", "WH-1", 3),
            Alloc("l4", "SKU-A", "WH-1", 4),  # a second order line of the same SKU
        ],
    )
    assert [(p.location, p.lines) for p in planned] == [
        ("WH-1", (Line("SKU-A", 7), Line("SKU-B", 1))),
        ("WH-2", (Line("SKU-A", 2),)),
    ]
    assert [p.fulfilment_id for p in planned] == [
        fulfilment_id_for("o-1", "WH-1"),
        fulfilment_id_for("o-1", "WH-2"),
    ]


def test_fulfilment_ids_are_deterministic_uuids_per_order_and_location():
    first = fulfilment_id_for("o-1", "WH-1")
    assert uuid.UUID(first).version == 5
    assert first == fulfilment_id_for("o-1", "WH-1")
    assert len({first, fulfilment_id_for("o-2", "WH-1"), fulfilment_id_for("o-1", "WH-2")}) == 3
    # Order id and location are kept apart, not simply concatenated.
    assert fulfilment_id_for("a", "bc") != fulfilment_id_for("ab", "c")


def test_the_same_allocations_in_another_order_give_the_same_plan():
    allocations = [Alloc("l1", "A", "X", 1), Alloc("l2", "B", "Y", 2), Alloc("l3", "A", "X", 1)]
    assert plan_fulfilments("o", allocations) == plan_fulfilments("o", reversed(allocations))


def test_no_allocations_is_refused():
    with pytest.raises(NothingToFulfil):
        plan_fulfilments("o-1", [])


def test_a_non_positive_quantity_is_refused():
    with pytest.raises(ValueError, match="quantity 0"):
        plan_fulfilments("o-1", [Alloc("l1", "A", "X", 0)])


# --- cancel summary and tracking -------------------------------------------------------------


def test_cancel_summary_sorts_fulfilments_by_what_happened_to_them():
    outcome = summarise_cancel(
        [
            ("f1", Status.CANCELLED),
            ("f2", Status.SHIPPED),
            ("f3", Status.DELIVERED),
            ("f4", Status.FAILED),
        ]
    )
    assert outcome.cancelled == ("f1",)
    assert outcome.already_shipped == ("f2", "f3")
    assert outcome.already_failed == ("f4",)


def test_cancel_summary_of_nothing_is_empty():
    outcome = summarise_cancel([])
    assert (outcome.cancelled, outcome.already_shipped, outcome.already_failed) == ((), (), ())


def test_a_fulfilment_left_created_after_a_cancel_is_a_bug():
    with pytest.raises(ValueError, match="still created"):
        summarise_cancel([("f1", Status.CREATED)])


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (TrackingStatus.IN_TRANSIT, None),
        (TrackingStatus.OUT_FOR_DELIVERY, None),
        (TrackingStatus.DELIVERED, Action.DELIVER),
        (TrackingStatus.EXCEPTION, Action.FAIL),
        (TrackingStatus.RETURNED_TO_SENDER, Action.FAIL),
    ],
)
def test_tracking_updates_map_to_actions(status: TrackingStatus, action: Action | None):
    assert action_for_tracking(status) is action


def test_failure_reason_names_the_carrier_status_and_its_description():
    assert failure_reason(TrackingStatus.EXCEPTION, None) == "exception"
    assert (
        failure_reason(TrackingStatus.RETURNED_TO_SENDER, "addressee unknown")
        == "returned_to_sender: addressee unknown"
    )
