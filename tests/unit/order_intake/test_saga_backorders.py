"""The order saga with backorders: BACKORDERED until inventory reserves the rest, cancelled by
the customer or when the wait runs out, and late answers undone."""

from __future__ import annotations

from datetime import date, timedelta

from services.order_intake.domain import saga as s
from services.order_intake.domain.saga import Status
from shared.contracts.common import Allocation
from shared.contracts.inventory import BackorderedLine, StockBackordered, StockReleased
from shared.contracts.order_intake import (
    AuthorizePayment,
    CreateFulfilment,
    OperatorAlert,
    ReleaseStock,
)
from tests.unit.order_intake.test_saga import (
    ALLOC,
    ORDER,
    POLICY,
    T0,
    kinds,
    new_saga,
    notices,
    reserved,
)


def backordered(
    expected: date | None = date(2026, 12, 10), kind: str = "backorder"
) -> StockBackordered:
    return StockBackordered(
        order_id=ORDER,
        allocations=(Allocation(line_id="l2", sku="B", location="hamburg", quantity=1),),
        backordered=(
            BackorderedLine(
                line_id="l1",
                sku="A",
                location="berlin",
                quantity=2,
                kind=kind,  # type: ignore[arg-type]
                expected_on=expected,
            ),
        ),
        expected_on=expected,
    )


def waiting() -> s.OrderSaga:
    saga = new_saga()
    s.start(saga, T0, POLICY)
    s.handle(saga, backordered(), T0, POLICY)
    return saga


def test_a_backordered_answer_waits_without_a_machine_deadline_and_tells_the_customer() -> None:
    saga = new_saga()
    s.start(saga, T0, POLICY)
    decision = s.handle(saga, backordered(), T0, POLICY)
    assert saga.status == Status.BACKORDERED
    assert saga.step is None and saga.deadline_at is None
    assert saga.backorder_expires_at == T0 + POLICY.backorder_max_wait
    assert saga.next_deadline == saga.backorder_expires_at
    assert notices(decision) == ["backordered"]
    [notice] = [m for m in decision.messages if hasattr(m, "kind")]
    assert notice.data["expected_on"] == "2026-12-10"
    assert notice.data["lines"][0]["sku"] == "A"
    assert "backordered" in [t.event for t in decision.timeline]
    assert not s.is_stuck(saga, T0 + timedelta(days=3)), "human-paced: not stuck"


def test_stock_reserved_after_the_wait_goes_on_to_payment() -> None:
    saga = waiting()
    decision = s.handle(saga, reserved(), T0 + timedelta(days=4), POLICY)
    assert saga.status == Status.AUTHORIZING_PAYMENT
    assert saga.allocations == ALLOC and saga.backorder_expires_at is None
    assert kinds(decision) == [AuthorizePayment]
    assert "backorder_allocated" in [t.event for t in decision.timeline]


def test_a_channel_paid_backorder_is_confirmed_when_its_stock_arrives() -> None:
    saga = new_saga(paid_externally=True)
    s.start(saga, T0, POLICY)
    s.handle(saga, backordered(), T0, POLICY)
    decision = s.handle(saga, reserved(), T0 + timedelta(days=1), POLICY)
    assert saga.status == Status.CONFIRMED
    assert CreateFulfilment in kinds(decision)


def test_a_customer_cancel_releases_the_queue_place_and_what_was_reserved() -> None:
    saga = waiting()
    decision = s.request_cancel(saga, "customer changed mind", T0, POLICY)
    assert saga.status == Status.CANCELLING
    assert kinds(decision) == [ReleaseStock]
    decision = s.handle(saga, StockReleased(order_id=ORDER), T0, POLICY)
    assert saga.status == Status.CANCELLED
    assert notices(decision) == ["cancelled"]


def test_the_wait_running_out_cancels_with_a_notice() -> None:
    saga = waiting()
    assert s.on_deadline(saga, T0 + timedelta(days=29), POLICY).messages == []
    decision = s.on_deadline(saga, T0 + POLICY.backorder_max_wait, POLICY)
    assert saga.status == Status.CANCELLING
    assert saga.reason is not None and saga.reason.startswith("backorder_expired")
    assert kinds(decision) == [ReleaseStock]
    s.handle(saga, StockReleased(order_id=ORDER), T0, POLICY)
    assert saga.status == Status.CANCELLED


def test_a_preorder_waits_from_its_release_date() -> None:
    saga = new_saga()
    s.start(saga, T0, POLICY)
    s.handle(saga, backordered(date(2027, 2, 1), kind="preorder"), T0, POLICY)
    assert saga.backorder_expires_at is not None
    assert saga.backorder_expires_at.date() == date(2027, 2, 1) + POLICY.backorder_max_wait


def test_a_cancel_requested_while_reserving_is_applied_when_the_backorder_answer_comes() -> None:
    saga = new_saga()
    s.start(saga, T0, POLICY)
    s.request_cancel(saga, "customer", T0, POLICY)
    decision = s.handle(saga, backordered(), T0, POLICY)
    assert saga.status == Status.CANCELLING
    assert kinds(decision) == [ReleaseStock]


def test_a_late_backorder_answer_after_giving_up_is_released() -> None:
    saga = new_saga()
    s.start(saga, T0, POLICY)
    for attempt in range(POLICY.max_attempts):
        s.on_deadline(saga, T0 + POLICY.stock_timeout * (attempt + 1), POLICY)
    assert saga.status in {Status.CANCELLING, Status.CANCELLED}
    decision = s.handle(saga, backordered(), T0 + timedelta(minutes=5), POLICY)
    assert ReleaseStock in kinds(decision)


def test_a_second_backorder_answer_changes_nothing() -> None:
    saga = waiting()
    decision = s.handle(saga, backordered(), T0, POLICY)
    assert saga.status == Status.BACKORDERED
    assert decision.messages == []


def test_an_operator_can_compensate_a_backordered_order() -> None:
    saga = waiting()
    decision = s.operator_compensate(saga, T0, POLICY)
    assert saga.status == Status.CANCELLING
    assert kinds(decision) == [ReleaseStock]
    assert OperatorAlert not in kinds(decision)
