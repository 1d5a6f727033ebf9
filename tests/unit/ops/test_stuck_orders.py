"""Which orders the operator endpoint calls stuck, and why (pure: no database)."""

from __future__ import annotations

from datetime import timedelta

from services.order_intake.domain import saga as s
from services.order_intake.domain.saga import Status
from services.order_intake.operators.routes import stuck_because
from tests.unit.order_intake.test_saga import POLICY, T0, at, new_saga


def test_a_step_within_its_deadline_is_not_stuck():
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    assert stuck_because(saga, T0, timedelta(0), include_retrying=True) is None


def test_a_step_past_its_deadline_is_overdue_only_beyond_the_grace_period():
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    assert saga.deadline_at is not None
    later = saga.deadline_at + timedelta(seconds=10)
    assert stuck_because(saga, later, timedelta(0), include_retrying=False) == "deadline_overdue"
    assert stuck_because(saga, later, timedelta(seconds=60), include_retrying=False) is None


def test_a_resent_step_counts_only_when_asked_for():
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    assert saga.deadline_at is not None
    s.on_deadline(saga, saga.deadline_at + timedelta(seconds=1), POLICY)
    assert saga.attempt == 2
    assert stuck_because(saga, T0, timedelta(0), include_retrying=False) is None
    assert stuck_because(saga, T0, timedelta(0), include_retrying=True) == "retrying"


def test_a_parked_order_needs_attention_whatever_the_grace():
    saga = at(new_saga(), Status.CONFIRMED)
    while saga.deadline_at is not None:
        s.on_deadline(saga, saga.deadline_at + timedelta(seconds=1), POLICY)
    assert saga.status == Status.NEEDS_ATTENTION
    assert stuck_because(saga, T0, timedelta(days=1), include_retrying=False) == "needs_attention"
