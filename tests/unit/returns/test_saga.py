"""The returns saga state machine: every transition, duplicates and late answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.returns.domain import saga as s
from services.returns.domain.policy import Condition, Credit, LineCredit
from services.returns.domain.saga import (
    ActionRefused,
    ExchangeItem,
    ExchangeStatus,
    ReceivedItem,
    RefundStatus,
    ReturnLine,
    ReturnSaga,
    SagaTimings,
    Status,
    Step,
)
from shared.contracts.common import SkuQuantity
from shared.contracts.inventory import (
    ReturnedItemsRestocked,
    ReturnedItemsWrittenOff,
    ReturnedStockFailed,
)
from shared.contracts.order_intake import (
    OperatorAlert,
    RefundPayment,
    ReplacementOrderCreated,
    ReplacementOrderRefused,
)
from shared.contracts.payment import PaymentRefunded, PaymentRefundFailed
from shared.contracts.returns import (
    ChannelRefundRequested,
    CreateReplacementOrder,
    RestockReturnedItems,
    WriteOffReturnedItems,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
D = Decimal
TIMINGS = SagaTimings(
    stock_timeout=timedelta(seconds=30),
    replacement_timeout=timedelta(seconds=60),
    refund_timeout=timedelta(seconds=30),
    max_attempts=2,
    refund_max_attempts=3,
    refund_retry_backoff=timedelta(seconds=5),
)
R, X = Condition.RESELLABLE, Condition.DAMAGED


def new_saga(**extra: object) -> ReturnSaga:
    fields: dict[str, object] = {
        "return_id": "ret_1",
        "order_id": "ord_1",
        "refund_order_id": "ord_1",
        "channel": "web",
        "currency": "EUR",
        "lines": (
            ReturnLine(sku="A", quantity=2, reason="no_longer_needed"),
            ReturnLine(sku="B", quantity=1, reason="defective"),
        ),
        **extra,
    }
    return ReturnSaga.model_validate(fields)


def approved(**extra: object) -> ReturnSaga:
    saga = new_saga(**extra)
    s.open_return(saga, None, T0)
    return saga


def credit(items: str, shipping: str = "0") -> Credit:
    return Credit((LineCredit("A", R, 2, D(items)),), D(items), D(shipping))


def received(
    saga: ReturnSaga, *items: tuple[str, int, Condition], value: str = "30.00"
) -> s.Decision:
    lines = [ReceivedItem(sku=sku, quantity=qty, condition=c) for sku, qty, c in items]
    return s.receive(saga, lines, "berlin", credit(value), T0, TIMINGS)


def restocked(*lines: tuple[str, int]) -> ReturnedItemsRestocked:
    return ReturnedItemsRestocked(
        return_id="ret_1",
        order_id="ord_1",
        location="berlin",
        lines=tuple(SkuQuantity(sku=sku, quantity=q) for sku, q in lines),
    )


def written_off(*lines: tuple[str, int]) -> ReturnedItemsWrittenOff:
    return ReturnedItemsWrittenOff(
        return_id="ret_1",
        order_id="ord_1",
        location="berlin",
        lines=tuple(SkuQuantity(sku=sku, quantity=q) for sku, q in lines),
    )


def refunded(amount: str = "30.00") -> PaymentRefunded:
    return PaymentRefunded(
        order_id="ord_1",
        amount=D(amount),
        currency="EUR",
        refunded_total=D(amount),
        return_id="ret_1",
    )


def refund_failed(reason: str = "gateway_timeout") -> PaymentRefundFailed:
    return PaymentRefundFailed(order_id="ord_1", reason=reason, return_id="ret_1")


def refunding() -> ReturnSaga:
    saga = approved()
    received(saga, ("A", 2, R))
    s.handle(saga, restocked(("A", 2)), T0, TIMINGS)
    assert saga.status == Status.REFUNDING
    return saga


def events(decision: s.Decision) -> list[str]:
    return [entry.event for entry in decision.timeline]


# --- request, review ---------------------------------------------------------------------------


def test_a_return_the_policy_allows_is_approved_at_once():
    saga = new_saga()
    decision = s.open_return(saga, None, T0)
    assert saga.status == Status.APPROVED
    assert decision.transitions == [(None, Status.REQUESTED), (Status.REQUESTED, Status.APPROVED)]
    assert events(decision) == ["requested", "status_changed", "approved"]
    assert decision.messages == []


def test_a_return_for_review_waits_in_requested_until_an_operator_approves():
    saga = new_saga()
    decision = s.open_return(saga, "reason other is reviewed", T0)
    assert (saga.status, saga.review_reason) == (Status.REQUESTED, "reason other is reviewed")
    assert events(decision) == ["requested", "manual_review"]
    with pytest.raises(ActionRefused) as refused:
        s.check_receipt(saga, [ReceivedItem(sku="A", quantity=1, condition=R)])
    assert refused.value.code == "not_approved"
    approval = s.approve(saga, T0)
    assert saga.status == Status.APPROVED
    assert approval.transitions == [(Status.REQUESTED, Status.APPROVED)]
    with pytest.raises(ActionRefused) as again:
        s.approve(saga, T0)
    assert again.value.code == "not_awaiting_review"


@pytest.mark.parametrize("review", [None, "value above the limit"])
def test_an_operator_refuses_before_the_goods_arrive_and_a_repeat_changes_nothing(
    review: str | None,
):
    saga = new_saga(exchange=(ExchangeItem(sku="A", quantity=1, unit_price=D("12.50")),))
    s.open_return(saga, review, T0)
    decision = s.refuse(saga, "not ours", T0)
    assert (saga.status, saga.reason, saga.refund_status) == (
        Status.REFUSED,
        "not ours",
        RefundStatus.NONE,
    )
    assert saga.exchange_status == ExchangeStatus.FAILED
    assert decision.transitions[-1][1] == Status.REFUSED
    repeat = s.refuse(saga, "not ours", T0)
    assert (repeat.transitions, repeat.messages) == ([], [])
    with pytest.raises(ActionRefused) as refused:
        s.check_receipt(saga, [ReceivedItem(sku="A", quantity=1, condition=R)])
    assert refused.value.code == "return_refused"


def test_a_received_return_can_no_longer_be_refused():
    saga = approved()
    received(saga, ("A", 2, R))
    with pytest.raises(ActionRefused) as refused:
        s.refuse(saga, "too late", T0)
    assert refused.value.code == "cannot_refuse"


# --- receipt -----------------------------------------------------------------------------------


def test_receipt_inspects_and_sends_restock_and_write_off_for_the_conditions():
    saga = approved()
    decision = received(saga, ("A", 1, R), ("A", 1, X), ("B", 1, R))
    assert saga.status == Status.INSPECTED
    assert decision.transitions == [
        (Status.APPROVED, Status.RECEIVED),
        (Status.RECEIVED, Status.INSPECTED),
    ]
    assert (saga.step, saga.attempt, saga.deadline_at) == (
        Step.STOCK,
        1,
        T0 + TIMINGS.stock_timeout,
    )
    restock, write_off = decision.messages
    assert isinstance(restock, RestockReturnedItems)
    assert isinstance(write_off, WriteOffReturnedItems)
    assert restock.location == write_off.location == "berlin"
    assert [(li.sku, li.quantity) for li in restock.lines] == [("A", 1), ("B", 1)]
    assert [(li.sku, li.quantity) for li in write_off.lines] == [("A", 1)]
    assert saga.units() == {"A": 2, "B": 1}


def test_receipt_of_less_than_asked_claims_only_what_came_back():
    saga = approved()
    assert saga.units() == {"A": 2, "B": 1}
    received(saga, ("A", 1, R))
    assert saga.units() == {"A": 1}


@pytest.mark.parametrize(
    ("items", "code"),
    [
        ([("C", 1, R)], "sku_not_in_return"),
        ([("A", 2, R), ("A", 1, X)], "quantity_exceeds_return"),
    ],
)
def test_receipt_of_what_the_return_does_not_cover_is_refused(
    items: list[tuple[str, int, Condition]], code: str
):
    saga = approved()
    with pytest.raises(ActionRefused) as refused:
        received(saga, *items)
    assert refused.value.code == code
    assert saga.status == Status.APPROVED


def test_a_second_receipt_is_recognised_and_never_applied_again():
    saga = approved()
    received(saga, ("A", 2, R))
    same = [ReceivedItem(sku="A", quantity=1, condition=R)] * 2
    assert s.is_same_receipt(saga, same)
    assert not s.is_same_receipt(saga, [ReceivedItem(sku="A", quantity=2, condition=X)])
    with pytest.raises(ActionRefused) as refused:
        received(saga, ("A", 2, R))
    assert refused.value.code == "already_received"


# --- stock -------------------------------------------------------------------------------------


def test_every_stock_answer_is_awaited_then_the_refund_is_sent():
    saga = approved()
    received(saga, ("A", 1, R), ("A", 1, X))
    first = s.handle(saga, written_off(("A", 1)), T0, TIMINGS)
    assert (saga.status, saga.stock_pending, first.messages) == (
        Status.INSPECTED,
        (s.StockTask.RESTOCK,),
        [],
    )
    second = s.handle(saga, restocked(("A", 1)), T0, TIMINGS)
    assert saga.status == Status.REFUNDING
    [refund] = second.messages
    assert isinstance(refund, RefundPayment)
    assert (refund.order_id, refund.amount, refund.idempotency_key, refund.return_id) == (
        "ord_1",
        D("30.00"),
        "ret_1:refund",
        "ret_1",
    )
    assert (saga.refund_amount, saga.refund_status) == (D("30.00"), RefundStatus.REFUNDING)


def test_a_duplicate_stock_answer_changes_nothing():
    saga = refunding()
    decision = s.handle(saga, restocked(("A", 2)), T0, TIMINGS)
    assert (decision.messages, decision.transitions) == ([], [])
    assert events(decision) == ["ignored"]


def test_stock_deadline_resends_then_parks_and_a_late_answer_resumes():
    saga = approved()
    received(saga, ("A", 2, R))
    later = T0 + timedelta(seconds=31)
    retry = s.on_deadline(saga, later, TIMINGS)
    assert [type(m) for m in retry.messages] == [RestockReturnedItems]
    assert saga.attempt == 2
    nothing = s.on_deadline(saga, later, TIMINGS)
    assert nothing.messages == [] and saga.attempt == 2, "not due yet: nothing happens"
    give_up = s.on_deadline(saga, later + timedelta(seconds=31), TIMINGS)
    assert (saga.status, saga.parked_step, saga.step) == (Status.NEEDS_ATTENTION, Step.STOCK, None)
    [alert] = give_up.messages
    assert isinstance(alert, OperatorAlert)
    assert (alert.order_id, alert.kind) == ("ord_1", "return_needs_attention")
    assert "ret_1" in alert.message
    late = s.handle(saga, restocked(("A", 2)), later, TIMINGS)
    assert saga.status == Status.REFUNDING
    assert [type(m) for m in late.messages] == [RefundPayment]
    assert "late_answer_resumed" in events(late)


def test_inventory_refusing_the_stock_parks_the_return():
    saga = approved()
    received(saga, ("A", 2, R))
    failed = ReturnedStockFailed(
        return_id="ret_1", order_id="ord_1", kind="restock", reason="unknown_sku", skus=("A",)
    )
    s.handle(saga, failed, T0, TIMINGS)
    assert (saga.status, saga.parked_step) == (Status.NEEDS_ATTENTION, Step.STOCK)
    assert "unknown_sku" in (saga.reason or "")
    operator = s.retry(saga, T0, TIMINGS)
    assert saga.status == Status.INSPECTED
    assert [type(m) for m in operator.messages] == [RestockReturnedItems]


# --- refund ------------------------------------------------------------------------------------


def test_payment_refunded_closes_the_return_and_a_duplicate_is_ignored():
    saga = refunding()
    decision = s.handle(saga, refunded(), T0, TIMINGS)
    assert saga.status == Status.CLOSED
    assert decision.transitions == [
        (Status.REFUNDING, Status.REFUNDED),
        (Status.REFUNDED, Status.CLOSED),
    ]
    assert (saga.refund_status, saga.refunded_amount, saga.step) == (
        RefundStatus.REFUNDED,
        D("30.00"),
        None,
    )
    duplicate = s.handle(saga, refunded(), T0, TIMINGS)
    assert (duplicate.transitions, duplicate.messages, saga.refunded_amount) == ([], [], D("30.00"))
    late_failure = s.handle(saga, refund_failed(), T0, TIMINGS)
    assert (late_failure.transitions, saga.status) == ([], Status.CLOSED)


def test_a_failed_refund_is_retried_with_the_same_key_then_parked_in_needs_attention():
    saga = refunding()
    now = T0
    keys = {saga.refund_key}
    for attempt in (1, 2):
        s.handle(saga, refund_failed(), now, TIMINGS)
        assert saga.status == Status.REFUNDING
        assert saga.deadline_at == now + TIMINGS.refund_retry_backoff * 2 ** (attempt - 1)
        now = saga.deadline_at
        decision = s.on_deadline(saga, now, TIMINGS)
        [again] = decision.messages
        assert isinstance(again, RefundPayment)
        keys.add(again.idempotency_key)
        assert saga.attempt == attempt + 1
    decision = s.handle(saga, refund_failed(), now, TIMINGS)
    assert keys == {"ret_1:refund"}
    assert (saga.status, saga.parked_step, saga.refund_status) == (
        Status.NEEDS_ATTENTION,
        Step.REFUND,
        RefundStatus.FAILED,
    )
    assert [type(m) for m in decision.messages] == [OperatorAlert], "no refund sent again"
    assert s.on_deadline(saga, now + timedelta(hours=1), TIMINGS).messages == []


def test_an_unanswered_refund_is_resent_at_its_deadline_then_parked():
    saga = refunding()
    now = T0
    for _ in range(TIMINGS.refund_max_attempts - 1):
        now += TIMINGS.refund_timeout
        assert [type(m) for m in s.on_deadline(saga, now, TIMINGS).messages] == [RefundPayment]
    s.on_deadline(saga, now + TIMINGS.refund_timeout, TIMINGS)
    assert saga.status == Status.NEEDS_ATTENTION


def test_a_final_refusal_by_payment_parks_at_once():
    saga = refunding()
    s.handle(saga, refund_failed("idempotency_key_conflict"), T0, TIMINGS)
    assert (saga.status, saga.refund_status) == (Status.NEEDS_ATTENTION, RefundStatus.FAILED)


def test_a_late_refund_success_after_parking_closes_the_return():
    saga = refunding()
    s.handle(saga, refund_failed("idempotency_key_conflict"), T0, TIMINGS)
    decision = s.handle(saga, refunded(), T0, TIMINGS)
    assert (saga.status, saga.refund_status) == (Status.CLOSED, RefundStatus.REFUNDED)
    assert "late_answer_resumed" in events(decision)


def test_an_operator_retry_resends_the_refund_with_the_same_key_and_fresh_attempts():
    saga = refunding()
    s.handle(saga, refund_failed("no_authorization"), T0, TIMINGS)
    decision = s.retry(saga, T0, TIMINGS)
    [refund] = decision.messages
    assert isinstance(refund, RefundPayment) and refund.idempotency_key == "ret_1:refund"
    assert (saga.status, saga.attempt, saga.refund_status) == (
        Status.REFUNDING,
        1,
        RefundStatus.REFUNDING,
    )
    with pytest.raises(ActionRefused) as refused:
        s.retry(saga, T0, TIMINGS)
    assert refused.value.code == "not_needs_attention"


def test_a_refund_for_a_channel_paid_order_is_recorded_for_the_channel():
    saga = approved(paid_by_channel=True, channel="amazon")
    received(saga, ("A", 2, R))
    decision = s.handle(saga, restocked(("A", 2)), T0, TIMINGS)
    [request] = decision.messages
    assert isinstance(request, ChannelRefundRequested)
    assert (request.channel, request.amount, request.idempotency_key) == (
        "amazon",
        D("30.00"),
        "ret_1:refund",
    )
    assert (saga.status, saga.refund_status) == (
        Status.CLOSED,
        RefundStatus.TO_BE_EXECUTED_BY_CHANNEL,
    )
    assert not any(isinstance(m, RefundPayment) for m in decision.messages)


def test_nothing_to_refund_closes_without_payment():
    saga = approved()
    received(saga, ("A", 2, X), value="0.00")
    decision = s.handle(saga, written_off(("A", 2)), T0, TIMINGS)
    assert (saga.status, saga.refund_status, decision.messages) == (
        Status.CLOSED,
        RefundStatus.NOT_NEEDED,
        [],
    )


# --- exchange ----------------------------------------------------------------------------------


def exchanging(price: str = "12.50") -> ReturnSaga:
    saga = approved(exchange=(ExchangeItem(sku="A", quantity=2, unit_price=D(price)),))
    received(saga, ("A", 2, R))
    decision = s.handle(saga, restocked(("A", 2)), T0, TIMINGS)
    [command] = decision.messages
    assert isinstance(command, CreateReplacementOrder)
    assert (command.return_id, command.original_order_id) == ("ret_1", "ord_1")
    assert [(li.sku, li.quantity, li.unit_price) for li in command.lines] == [("A", 2, D(price))]
    assert (saga.status, saga.step, saga.exchange_status) == (
        Status.EXCHANGING,
        Step.REPLACEMENT,
        ExchangeStatus.CREATING,
    )
    return saga


def created(total: str, status: str = "RESERVING_STOCK") -> ReplacementOrderCreated:
    return ReplacementOrderCreated(
        return_id="ret_1",
        order_id="ord_2",
        original_order_id="ord_1",
        status=status,
        currency="EUR",
        total=D(total),
    )


def test_the_exchange_waits_until_the_replacement_reserved_its_stock_then_refunds_the_rest():
    saga = exchanging()
    waiting = s.handle(saga, created("25.00"), T0, TIMINGS)
    assert (saga.status, saga.replacement_order_id, waiting.messages) == (
        Status.EXCHANGING,
        "ord_2",
        [],
    )
    placed = s.on_replacement_status(saga, "ord_2", "CONFIRMED", T0, TIMINGS)
    assert saga.exchange_status == ExchangeStatus.PLACED
    [refund] = placed.messages
    assert isinstance(refund, RefundPayment) and refund.amount == D("5.00")
    done = s.handle(saga, refunded("5.00"), T0, TIMINGS)
    assert done.transitions == [
        (Status.REFUNDING, Status.EXCHANGED),
        (Status.EXCHANGED, Status.CLOSED),
    ]
    assert (saga.refunded_amount, saga.amount_due) == (D("5.00"), D(0))


def test_a_replacement_worth_the_credit_closes_as_exchanged_without_a_refund():
    saga = exchanging()
    decision = s.handle(saga, created("30.00", status="CONFIRMED"), T0, TIMINGS)
    assert decision.messages == []
    assert (saga.status, saga.refund_status, saga.amount_due) == (
        Status.CLOSED,
        RefundStatus.NOT_NEEDED,
        D(0),
    )
    assert (Status.EXCHANGING, Status.EXCHANGED) in decision.transitions


def test_a_dearer_replacement_records_the_difference_to_be_charged():
    saga = exchanging("20.00")
    s.handle(saga, created("47.60"), T0, TIMINGS)
    decision = s.on_replacement_status(saga, "ord_2", "FULFILLING", T0, TIMINGS)
    assert decision.messages == []
    assert (saga.status, saga.refund_amount, saga.amount_due) == (
        Status.CLOSED,
        D(0),
        D("17.60"),
    )


@pytest.mark.parametrize("status", ["REJECTED", "CANCELLED"])
def test_a_replacement_that_fails_refunds_the_whole_credit(status: str):
    saga = exchanging()
    s.handle(saga, created("30.00"), T0, TIMINGS)
    decision = s.on_replacement_status(saga, "ord_2", status, T0, TIMINGS)
    assert saga.exchange_status == ExchangeStatus.FAILED
    [refund] = decision.messages
    assert isinstance(refund, RefundPayment) and refund.amount == D("30.00")


def test_a_refused_replacement_refunds_the_whole_credit():
    saga = exchanging()
    refusal = ReplacementOrderRefused(
        return_id="ret_1", original_order_id="ord_1", reason="order_not_found"
    )
    decision = s.handle(saga, refusal, T0, TIMINGS)
    assert saga.exchange_status == ExchangeStatus.FAILED
    assert [type(m) for m in decision.messages] == [RefundPayment]


def test_a_status_seen_before_the_creation_answer_waits_for_the_total():
    saga = exchanging()
    early = s.on_replacement_status(saga, "ord_2", "CONFIRMED", T0, TIMINGS)
    assert (early.messages, saga.status) == ([], Status.EXCHANGING)
    answered = s.handle(saga, created("25.00"), T0, TIMINGS)
    assert saga.replacement_status == "CONFIRMED", "the answer does not undo what was seen"
    assert [type(m) for m in answered.messages] == [RefundPayment]


def test_the_replacement_step_is_resent_at_its_deadline_and_a_repeat_answer_is_harmless():
    saga = exchanging()
    decision = s.on_deadline(saga, T0 + TIMINGS.replacement_timeout, TIMINGS)
    assert [type(m) for m in decision.messages] == [CreateReplacementOrder]
    s.handle(saga, created("25.00"), T0, TIMINGS)
    repeat = s.handle(saga, created("25.00"), T0, TIMINGS)
    assert events(repeat) == []
    assert saga.status == Status.EXCHANGING


def test_a_replacement_cancelled_after_the_exchange_closed_needs_attention():
    saga = exchanging()
    s.handle(saga, created("30.00", status="CONFIRMED"), T0, TIMINGS)
    assert saga.status == Status.CLOSED
    decision = s.on_replacement_status(saga, "ord_2", "CANCELLED", T0, TIMINGS)
    assert saga.status == Status.NEEDS_ATTENTION
    assert "ord_2" in (saga.reason or "")
    assert decision.transitions == [(Status.CLOSED, Status.NEEDS_ATTENTION)]


def test_a_replacement_cancelled_while_refunding_parks_the_return_after_the_refund():
    saga = exchanging()
    s.handle(saga, created("25.00", status="CONFIRMED"), T0, TIMINGS)
    assert saga.status == Status.REFUNDING
    s.on_replacement_status(saga, "ord_2", "CANCELLED", T0, TIMINGS)
    assert saga.status == Status.REFUNDING
    s.handle(saga, refunded("5.00"), T0, TIMINGS)
    assert (saga.status, saga.refund_status) == (Status.NEEDS_ATTENTION, RefundStatus.REFUNDED)


def test_status_events_of_another_order_are_ignored():
    saga = exchanging()
    s.handle(saga, created("25.00"), T0, TIMINGS)
    decision = s.on_replacement_status(saga, "ord_9", "CONFIRMED", T0, TIMINGS)
    assert (decision.messages, saga.replacement_status) == ([], "RESERVING_STOCK")
