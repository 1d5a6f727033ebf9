"""The order saga with 3-D Secure: AWAITING_CUSTOMER_ACTION after PaymentRequiresAction, a
human-paced wait with its own deadline, ended by the payment's outcome, a cancel or expiry; late
and repeated answers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.order_intake.domain import saga as s
from services.order_intake.domain.saga import Status
from shared.contracts.inventory import StockReleased
from shared.contracts.order_intake import (
    AuthorizePayment,
    CreateFulfilment,
    ReleaseStock,
    VoidPayment,
)
from shared.contracts.payment import PaymentDeclined, PaymentRequiresAction, PaymentVoided
from tests.unit.order_intake.test_saga import (
    ALLOC,
    ORDER,
    POLICY,
    T0,
    at,
    authorized,
    kinds,
    new_saga,
    notices,
)

LATER = T0 + timedelta(minutes=5)


def requires_action(secret: str = "pi_3ds_secret_x") -> PaymentRequiresAction:
    return PaymentRequiresAction(
        order_id=ORDER,
        payment_id="p1",
        client_secret=secret,
        next_action="use_stripe_sdk",
        gateway_reference="pi_3ds",
    )


def declined() -> PaymentDeclined:
    return PaymentDeclined(
        order_id=ORDER,
        reason="authentication failed",
        decline_code="payment_intent_authentication_failure",
    )


def voided() -> PaymentVoided:
    return PaymentVoided(order_id=ORDER, voided=True, reason="cancelled")


def released() -> StockReleased:
    return StockReleased(order_id=ORDER, released=ALLOC)


def awaiting() -> s.OrderSaga:
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    s.handle(saga, requires_action(), T0, POLICY)
    assert saga.status == Status.AWAITING_CUSTOMER_ACTION
    return saga


def events(decision: s.Decision) -> list[str]:
    return [t.event for t in decision.timeline]


def test_requires_action_waits_for_the_customer_with_its_own_deadline_and_no_retry() -> None:
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    decision = s.handle(saga, requires_action(), T0, POLICY)
    assert saga.status == Status.AWAITING_CUSTOMER_ACTION
    assert saga.step is None and saga.deadline_at is None, "the step answered: no machine retry"
    assert decision.messages == []
    action = saga.customer_action
    assert action is not None
    assert (action.client_secret, action.next_action) == ("pi_3ds_secret_x", "use_stripe_sdk")
    assert action.expires_at == T0 + POLICY.customer_action_timeout == T0 + timedelta(minutes=30)
    assert saga.next_deadline == action.expires_at
    assert "payment_requires_action" in events(decision)
    assert not saga.payment_authorized
    # Before its deadline a deadline tick changes nothing and the order is not stuck.
    assert s.on_deadline(saga, LATER, POLICY).messages == []
    assert saga.status == Status.AWAITING_CUSTOMER_ACTION
    assert not s.is_stuck(saga, T0 + timedelta(minutes=29))


def test_the_deadline_follows_the_policy() -> None:
    policy = s.SagaPolicy(customer_action_timeout=timedelta(minutes=5))
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    s.handle(saga, requires_action(), T0, policy)
    assert saga.customer_action is not None
    assert saga.customer_action.expires_at == T0 + timedelta(minutes=5)


def test_authorised_after_the_action_confirms_the_order() -> None:
    saga = awaiting()
    decision = s.handle(saga, authorized(), LATER, POLICY)
    assert saga.status == Status.CONFIRMED
    assert saga.payment_authorized and saga.customer_action is None
    assert kinds(decision)[0] is CreateFulfilment
    assert notices(decision) == ["confirmed"]
    assert "customer_action_completed" in events(decision)
    assert saga.next_deadline == saga.deadline_at  # the fulfilment step's, nothing of the wait


def test_authorised_after_the_action_while_held_waits_on_hold() -> None:
    saga = awaiting()
    s.place_hold(saga, "address_check", None, "alice", T0, POLICY)
    decision = s.handle(saga, authorized(), LATER, POLICY)
    assert saga.status == Status.ON_HOLD
    assert CreateFulfilment not in kinds(decision)
    released_hold = s.release_hold(saga, "alice", None, LATER, POLICY)
    assert saga.status == Status.CONFIRMED
    assert CreateFulfilment in kinds(released_hold)


def test_a_duplicate_authorisation_changes_nothing() -> None:
    saga = awaiting()
    s.handle(saga, authorized(), LATER, POLICY)
    before = saga.model_copy(deep=True)
    again = s.handle(saga, authorized(), LATER, POLICY)
    assert again.messages == [] and saga == before


def test_declined_after_the_action_cancels_as_a_decline_without_a_void() -> None:
    saga = awaiting()
    decision = s.handle(saga, declined(), LATER, POLICY)
    assert saga.status == Status.CANCELLING
    assert kinds(decision) == [ReleaseStock], "nothing was authorised: nothing to void"
    assert saga.customer_action is None
    s.handle(saga, released(), LATER, POLICY)
    assert saga.status == Status.CANCELLED
    assert "payment declined: payment_intent_authentication_failure" in (saga.reason or "")


def test_a_customer_cancel_applies_at_once_voiding_and_releasing() -> None:
    saga = awaiting()
    decision = s.request_cancel(saga, "customer changed their mind", LATER, POLICY)
    assert saga.status == Status.CANCELLING
    assert sorted(k.__name__ for k in kinds(decision)) == ["ReleaseStock", "VoidPayment"]
    [void] = [m for m in decision.messages if isinstance(m, VoidPayment)]
    assert void.idempotency_key == saga.void_key
    assert saga.customer_action is None
    s.handle(saga, voided(), LATER, POLICY)
    done = s.handle(saga, released(), LATER, POLICY)
    assert saga.status == Status.CANCELLED
    assert notices(done) == ["cancelled"]


def test_the_wait_expiring_cancels_with_void_and_release() -> None:
    saga = awaiting()
    expiry = T0 + POLICY.customer_action_timeout
    decision = s.on_deadline(saga, expiry, POLICY)
    assert saga.status == Status.CANCELLING
    assert sorted(k.__name__ for k in kinds(decision)) == ["ReleaseStock", "VoidPayment"]
    assert "customer_action_expired" in events(decision)
    assert (saga.reason or "").startswith("customer_action_expired")
    # A second tick at the same time does not cancel twice.
    assert s.on_deadline(saga, expiry, POLICY).messages == []


@pytest.mark.parametrize("finish", [True, False], ids=["cancelled", "cancelling"])
def test_a_late_authorisation_after_the_wait_expired_is_voided(finish: bool) -> None:
    saga = awaiting()
    s.on_deadline(saga, T0 + POLICY.customer_action_timeout, POLICY)
    if finish:
        s.handle(saga, PaymentVoided(order_id=ORDER, voided=False, reason="x"), LATER, POLICY)
        s.handle(saga, released(), LATER, POLICY)
        assert saga.status == Status.CANCELLED
    decision = s.handle(saga, authorized(), LATER, POLICY)
    assert kinds(decision) == [VoidPayment]
    assert "late_payment_authorized_voided" in events(decision)
    assert not saga.payment_authorized


def test_a_late_decline_after_the_wait_expired_changes_nothing() -> None:
    saga = awaiting()
    s.on_deadline(saga, T0 + POLICY.customer_action_timeout, POLICY)
    before = saga.model_copy(deep=True)
    assert s.handle(saga, declined(), LATER, POLICY).messages == []
    assert saga == before


def test_a_repeated_requires_action_while_waiting_changes_nothing() -> None:
    saga = awaiting()
    before = saga.model_copy(deep=True)
    decision = s.handle(saga, requires_action(), LATER, POLICY)
    assert decision.messages == [] and saga == before


def test_requires_action_after_the_order_was_given_up_voids_the_attempt() -> None:
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    for _ in range(POLICY.max_attempts):
        s.on_deadline(saga, saga.deadline_at or T0, POLICY)
    assert saga.status == Status.CANCELLING
    decision = s.handle(saga, requires_action(), LATER, POLICY)
    assert kinds(decision) == [VoidPayment]
    assert saga.status == Status.CANCELLING and saga.customer_action is None


def test_a_cancel_remembered_while_authorising_applies_when_action_is_required() -> None:
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    s.request_cancel(saga, "customer", T0, POLICY)
    assert saga.status == Status.AUTHORIZING_PAYMENT
    decision = s.handle(saga, requires_action(), LATER, POLICY)
    assert saga.status == Status.CANCELLING
    assert sorted(k.__name__ for k in kinds(decision)) == ["ReleaseStock", "VoidPayment"]


def test_requires_action_in_an_unrelated_state_is_ignored() -> None:
    saga = at(new_saga(), Status.CONFIRMED)
    before = saga.model_copy(deep=True)
    decision = s.handle(saga, requires_action(), LATER, POLICY)
    assert decision.messages == [] and saga == before
    assert "ignored" in events(decision)


def test_a_re_sent_authorisation_is_not_a_step_of_the_wait() -> None:
    """No machine retry while waiting: the operator's retry has nothing to re-send."""
    saga = awaiting()
    with pytest.raises(s.OperatorActionRefused):
        s.operator_retry(saga, LATER, POLICY)
    assert AuthorizePayment not in kinds(s.on_deadline(saga, LATER, POLICY))


def test_the_saga_round_trips_through_json_while_waiting() -> None:
    saga = awaiting()
    again = s.OrderSaga.model_validate_json(saga.model_dump_json())
    assert again == saga and again.customer_action == saga.customer_action
