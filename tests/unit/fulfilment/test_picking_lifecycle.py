"""A pick list's state machine: every transition, every refusal, and nothing recorded on one."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from services.fulfilment.domain import Line
from services.fulfilment.picking.lifecycle import (
    Outcome,
    PickListState,
    PickRefused,
    Refusal,
    Shortage,
    Status,
    claim,
    confirm_pick,
    release,
    report_empty_bin,
)
from services.fulfilment.picking.strategies import (
    PickingPolicy,
    PickList,
    PickOrder,
    Strategy,
    plan_picking,
)
from services.fulfilment.warehouse.model import Bin

BARCODES = {"mug": "2000000000015", "cup": "2000000000022"}
MUG_BIN = Bin("A-01", "A", 1, 3.0, 2.0)
CUP_BIN = Bin("A-02", "A", 2, 3.0, 3.0)
MUG_STOP, CUP_STOP = 0, 1  # the stops of `_pick_list`, in walking order


def _pick_list() -> PickList:
    """A batch list: stop 0 is 5 mugs, 2 for f1 (tote 1) and 3 for f2 (tote 2); stop 1 is 1 cup
    for f2."""
    stock = {"mug": [(MUG_BIN, 10)], "cup": [(CUP_BIN, 10)]}
    orders = [
        PickOrder("f1", "o1", (Line("mug", 2),)),
        PickOrder("f2", "o2", (Line("cup", 1), Line("mug", 3))),
    ]
    policy = PickingPolicy(Strategy.BATCH, group_nearby_orders=False)
    (pick_list,) = plan_picking(orders, stock, policy).lists
    return pick_list


def _released() -> PickListState:
    return release(_pick_list(), BARCODES)


def _claimed(picker: str = "ann") -> PickListState:
    return claim(_released(), picker).state


def _picked_in_full() -> PickListState:
    state = _claimed()
    state = confirm_pick(state, "ann", MUG_STOP, BARCODES["mug"], 5).state
    return confirm_pick(state, "ann", CUP_STOP, BARCODES["cup"], 1).state


def _partly_picked() -> PickListState:
    return confirm_pick(_claimed(), "ann", MUG_STOP, BARCODES["mug"], 2).state


def _mugs_picked() -> PickListState:
    return confirm_pick(_claimed(), "ann", MUG_STOP, BARCODES["mug"], 5).state


def _short() -> PickListState:
    state = _partly_picked()
    state = report_empty_bin(state, "ann", MUG_STOP).state
    return confirm_pick(state, "ann", CUP_STOP, BARCODES["cup"], 1).state


@contextlib.contextmanager
def _refused(code: Refusal) -> Iterator[None]:
    with pytest.raises(PickRefused) as refused:
        yield
    assert refused.value.code is code


def test_release_makes_a_released_list_with_every_stop_waiting() -> None:
    state = _released()
    assert state.status is Status.RELEASED
    assert state.picker_id is None
    assert [(s.stop.sku, s.barcode, s.remaining) for s in state.stops] == [
        ("mug", BARCODES["mug"], 5),
        ("cup", BARCODES["cup"], 1),
    ]


def test_release_needs_every_barcode_and_a_stop() -> None:
    with pytest.raises(ValueError, match="no barcode for mug"):
        release(_pick_list(), {"cup": "1"})
    empty = PickList("id", Strategy.BATCH, _pick_list().sort, (), (), ())
    with pytest.raises(ValueError, match="no stops"):
        release(empty, BARCODES)


# --- claim ----------------------------------------------------------------------------------


def test_claim_takes_a_released_list() -> None:
    decision = claim(_released(), "ann")
    assert decision.outcome is Outcome.CLAIMED
    assert (decision.state.status, decision.state.picker_id) == (Status.CLAIMED, "ann")
    assert decision.previous is Status.RELEASED
    assert decision.status_changed and not decision.finished


@pytest.mark.parametrize("started", [False, True])
def test_the_same_picker_claiming_again_changes_nothing(started: bool) -> None:
    state = _claimed()
    if started:
        state = confirm_pick(state, "ann", CUP_STOP, BARCODES["cup"], 1).state
    decision = claim(state, "ann")
    assert decision.outcome is Outcome.UNCHANGED
    assert decision.state == state
    assert not decision.status_changed


@pytest.mark.parametrize("started", [False, True])
def test_another_picker_cannot_claim_a_claimed_list(started: bool) -> None:
    state = _claimed()
    if started:
        state = confirm_pick(state, "ann", CUP_STOP, BARCODES["cup"], 1).state
    with _refused(Refusal.ALREADY_CLAIMED):
        claim(state, "bob")


def test_a_finished_list_cannot_be_claimed() -> None:
    state = _picked_in_full()
    for picker in ("ann", "bob"):
        with _refused(Refusal.LIST_FINISHED):
            claim(state, picker)


def test_a_picker_id_is_needed() -> None:
    with pytest.raises(ValueError, match="picker id"):
        claim(_released(), " ")


# --- confirming picks -----------------------------------------------------------------------


def test_the_first_confirmed_pick_starts_picking() -> None:
    decision = confirm_pick(_claimed(), "ann", MUG_STOP, BARCODES["mug"], 2)
    assert decision.outcome is Outcome.PICKED
    assert (decision.previous, decision.state.status) == (Status.CLAIMED, Status.PICKING)
    assert decision.state.stops[MUG_STOP].picked == 2
    assert decision.state.stops[MUG_STOP].remaining == 3
    assert decision.shortages == ()


def test_a_stop_can_be_confirmed_in_several_scans_and_stops_in_any_order() -> None:
    state = _claimed()
    state = confirm_pick(state, "ann", MUG_STOP, BARCODES["mug"], 2).state
    decision = confirm_pick(state, "ann", MUG_STOP, f" {BARCODES['mug']}\n", 3)
    assert decision.state.stops[MUG_STOP].finished
    assert decision.state.status is Status.PICKING
    assert not decision.status_changed


def test_confirming_every_unit_finishes_the_list_picked() -> None:
    state = _claimed()
    state = confirm_pick(state, "ann", MUG_STOP, BARCODES["mug"], 5).state
    decision = confirm_pick(state, "ann", CUP_STOP, BARCODES["cup"], 1)
    assert decision.state.status is Status.PICKED
    assert decision.finished
    assert decision.state.shortages == ()


def test_a_one_stop_list_goes_from_claimed_to_picked_in_one_decision() -> None:
    stock = {"mug": [(MUG_BIN, 1)]}
    (pick_list,) = plan_picking([PickOrder("f1", "o1", (Line("mug", 1),))], stock).lists
    state = claim(release(pick_list, BARCODES), "ann").state
    decision = confirm_pick(state, "ann", 0, BARCODES["mug"], 1)
    assert (decision.previous, decision.state.status) == (Status.CLAIMED, Status.PICKED)
    assert decision.finished


# --- refusals: nothing recorded -------------------------------------------------------------

REFUSED_CONFIRMS: list[tuple[Callable[[], PickListState], str, int, str, int, Refusal]] = [
    # (state, picker, stop, barcode scanned, quantity, refused with)
    (_partly_picked, "ann", MUG_STOP, BARCODES["cup"], 1, Refusal.WRONG_BARCODE),
    (_partly_picked, "ann", MUG_STOP, "", 1, Refusal.WRONG_BARCODE),
    (_partly_picked, "ann", MUG_STOP, BARCODES["mug"], 4, Refusal.OVER_PICK),
    (_mugs_picked, "ann", MUG_STOP, BARCODES["mug"], 1, Refusal.OVER_PICK),
    (_claimed, "ann", CUP_STOP, BARCODES["cup"], 2, Refusal.OVER_PICK),
    (_partly_picked, "ann", MUG_STOP, BARCODES["mug"], 0, Refusal.INVALID_QUANTITY),
    (_partly_picked, "ann", MUG_STOP, BARCODES["mug"], -1, Refusal.INVALID_QUANTITY),
    (_partly_picked, "ann", 2, BARCODES["mug"], 1, Refusal.UNKNOWN_STOP),
    (_partly_picked, "ann", -1, BARCODES["mug"], 1, Refusal.UNKNOWN_STOP),
    (_partly_picked, "bob", MUG_STOP, BARCODES["mug"], 1, Refusal.CLAIMED_BY_ANOTHER_PICKER),
    (_claimed, "bob", MUG_STOP, BARCODES["mug"], 1, Refusal.CLAIMED_BY_ANOTHER_PICKER),
    (_released, "ann", MUG_STOP, BARCODES["mug"], 1, Refusal.NOT_CLAIMED),
    (_picked_in_full, "ann", MUG_STOP, BARCODES["mug"], 1, Refusal.LIST_FINISHED),
    (_short, "ann", MUG_STOP, BARCODES["mug"], 1, Refusal.LIST_FINISHED),
]


@pytest.mark.parametrize(
    ("make_state", "picker", "stop", "barcode", "quantity", "code"), REFUSED_CONFIRMS
)
def test_a_refused_confirm_records_nothing(
    make_state: Callable[[], PickListState],
    picker: str,
    stop: int,
    barcode: str,
    quantity: int,
    code: Refusal,
) -> None:
    state = make_state()
    with _refused(code):
        confirm_pick(state, picker, stop, barcode, quantity)
    assert state == make_state()


REFUSED_EMPTY_BINS: list[tuple[Callable[[], PickListState], str, int, Refusal]] = [
    (_mugs_picked, "ann", MUG_STOP, Refusal.STOP_FINISHED),
    (_partly_picked, "ann", 7, Refusal.UNKNOWN_STOP),
    (_partly_picked, "bob", MUG_STOP, Refusal.CLAIMED_BY_ANOTHER_PICKER),
    (_released, "ann", MUG_STOP, Refusal.NOT_CLAIMED),
    (_short, "ann", MUG_STOP, Refusal.LIST_FINISHED),
]


@pytest.mark.parametrize(("make_state", "picker", "stop", "code"), REFUSED_EMPTY_BINS)
def test_a_refused_empty_bin_report_records_nothing(
    make_state: Callable[[], PickListState], picker: str, stop: int, code: Refusal
) -> None:
    state = make_state()
    with _refused(code):
        report_empty_bin(state, picker, stop)
    assert state == make_state()


def test_refusals_say_why() -> None:
    with pytest.raises(PickRefused) as refused:
        confirm_pick(_partly_picked(), "ann", MUG_STOP, BARCODES["mug"], 4)
    assert refused.value.message == "stop 0 waits for 3 units of mug, not 4"
    assert str(refused.value) == refused.value.message


# --- empty bins: short picks ----------------------------------------------------------------


def test_an_empty_bin_records_the_missing_units_as_a_short_pick() -> None:
    decision = report_empty_bin(_partly_picked(), "ann", MUG_STOP)
    assert decision.outcome is Outcome.SHORT_PICK
    progress = decision.state.stops[MUG_STOP]
    assert (progress.picked, progress.missing, progress.remaining) == (2, 3, 0)
    # The 2 mugs picked went to tote 1 (f1); f2's 3 are missing.
    assert decision.shortages == (Shortage(MUG_STOP, "A-01", "mug", "f2", "o2", 2, 3),)
    assert decision.state.status is Status.PICKING


def test_a_short_pick_split_over_two_fulfilments_names_both() -> None:
    decision = report_empty_bin(_claimed(), "ann", MUG_STOP)
    assert [(s.fulfilment_id, s.tote, s.missing) for s in decision.shortages] == [
        ("f1", 1, 2),
        ("f2", 2, 3),
    ]
    assert (decision.previous, decision.state.status) == (Status.CLAIMED, Status.PICKING)


def test_a_list_with_a_short_pick_finishes_short() -> None:
    state = report_empty_bin(_partly_picked(), "ann", MUG_STOP).state
    decision = confirm_pick(state, "ann", CUP_STOP, BARCODES["cup"], 1)
    assert decision.state.status is Status.SHORT
    assert decision.finished
    assert decision.shortages == ()  # recorded by the earlier decision
    assert decision.state.shortages == (Shortage(MUG_STOP, "A-01", "mug", "f2", "o2", 2, 3),)


def test_put_outcomes_share_picked_units_in_tote_order() -> None:
    state = report_empty_bin(_partly_picked(), "ann", MUG_STOP).state
    outcomes = state.stops[MUG_STOP].put_outcomes()
    assert [(o.put.fulfilment_id, o.picked, o.missing) for o in outcomes] == [
        ("f1", 2, 0),
        ("f2", 0, 3),
    ]
