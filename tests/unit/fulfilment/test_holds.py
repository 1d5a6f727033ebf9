"""Holds in the fulfilment domain: what a hold takes, and the floor's check."""

from __future__ import annotations

import pytest

from services.fulfilment.domain import (
    FulfilmentOnHold,
    HoldPlan,
    Status,
    can_hold,
    check_not_held,
    plan_hold,
)


@pytest.mark.parametrize(
    ("status", "rest_cancelled", "holdable"),
    [
        (Status.CREATED, False, True),
        (Status.PARTIALLY_SHIPPED, False, True),
        (Status.SHIPPED, True, False),  # its rest was cancelled: nothing left to leave
        (Status.SHIPPED, False, False),
        (Status.DELIVERED, False, False),
        (Status.CANCELLED, False, False),
        (Status.FAILED, False, False),
    ],
)
def test_only_what_may_still_leave_the_floor_is_held(status, rest_cancelled, holdable):
    assert can_hold(status, rest_cancelled=rest_cancelled) is holdable


def test_plan_holds_the_unshipped_and_leaves_the_shipped_alone():
    plan = plan_hold(
        [
            ("f3", Status.CREATED, False, False),
            ("f1", Status.SHIPPED, False, False),
            ("f2", Status.PARTIALLY_SHIPPED, False, False),
        ]
    )
    assert plan == HoldPlan(to_hold=("f2", "f3"), held=("f2", "f3"))


def test_holding_again_holds_nothing_new_and_answers_the_same():
    first = plan_hold([("f1", Status.CREATED, False, False)])
    again = plan_hold([("f1", Status.CREATED, False, True)])
    assert again.to_hold == ()
    assert again.held == first.held == ("f1",)


def test_the_floor_check_names_the_fulfilment_and_the_reason():
    check_not_held("f1", None)
    with pytest.raises(FulfilmentOnHold) as held:
        check_not_held("f1", "payment_disputed")
    assert held.value.code == "fulfilment_on_hold"
    assert (held.value.fulfilment_id, held.value.reason) == ("f1", "payment_disputed")
    assert "f1" in str(held.value)
