"""The order saga's state machine: every row of DESIGN.md §4's transition table, plus
duplicate, late and out-of-order events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.order_intake.domain import saga as s
from services.order_intake.domain.saga import (
    CancelRefused,
    Compensation,
    Decision,
    OrderSaga,
    SagaLine,
    SagaPolicy,
    Status,
)
from shared.contracts.common import Address, Allocation, Customer, ShortLine, SkuQuantity
from shared.contracts.fulfilment import (
    FulfilmentCancelled,
    FulfilmentCreated,
    FulfilmentDelivered,
    FulfilmentFailed,
    FulfilmentRef,
    FulfilmentShipped,
)
from shared.contracts.inventory import StockReleased, StockReservationFailed, StockReserved
from shared.contracts.order_intake import (
    AuthorizePayment,
    CancelFulfilment,
    CapturePayment,
    CommitStock,
    CreateFulfilment,
    CustomerNotification,
    OperatorAlert,
    ReleaseStock,
    ReserveStock,
    VoidPayment,
)
from shared.contracts.payment import (
    PaymentAuthorized,
    PaymentCaptured,
    PaymentCaptureFailed,
    PaymentDeclined,
    PaymentVoided,
)

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
POLICY = SagaPolicy()
ORDER = "ord_1"


def new_saga(**overrides: object) -> OrderSaga:
    fields: dict[str, object] = {
        "order_id": ORDER,
        "channel": "web",
        "currency": "EUR",
        "total": Decimal("30.00"),
        "lines": (
            SagaLine(
                line_id="l1",
                sku="A",
                quantity=2,
                unit_price=Decimal("10"),
                line_total=Decimal("20"),
            ),
            SagaLine(
                line_id="l2",
                sku="B",
                quantity=1,
                unit_price=Decimal("10"),
                line_total=Decimal("10"),
            ),
        ),
        "customer": Customer(email="c@example.com", name="C"),
        "shipping_address": Address(
            line1="1 Main St", city="Berlin", postal_code="10115", country="DE"
        ),
        "payment_token": "tok_visa",
    }
    fields.update(overrides)
    return OrderSaga.model_validate(fields)


def kinds(decision: Decision) -> list[type]:
    return [type(m) for m in decision.messages]


def notices(decision: Decision) -> list[str]:
    return [m.kind for m in decision.messages if isinstance(m, CustomerNotification)]


ALLOC = (
    Allocation(line_id="l1", sku="A", location="berlin", quantity=2),
    Allocation(line_id="l2", sku="B", location="hamburg", quantity=1),
)
REFS = (
    FulfilmentRef(fulfilment_id="f1", location="berlin", lines=(SkuQuantity(sku="A", quantity=2),)),
    FulfilmentRef(
        fulfilment_id="f2", location="hamburg", lines=(SkuQuantity(sku="B", quantity=1),)
    ),
)


def reserved() -> StockReserved:
    return StockReserved(order_id=ORDER, allocations=ALLOC)


def authorized() -> PaymentAuthorized:
    return PaymentAuthorized(
        order_id=ORDER,
        payment_id="p1",
        amount=Decimal("30.00"),
        currency="EUR",
        gateway_reference="g1",
    )


def shipped(fid: str, location: str, sku: str, qty: int) -> FulfilmentShipped:
    return FulfilmentShipped(
        order_id=ORDER,
        fulfilment_id=fid,
        location=location,
        lines=(SkuQuantity(sku=sku, quantity=qty),),
        carrier="dhl",
        tracking_number=f"T-{fid}",
        shipped_at=T0,
    )


def captured(fid: str, amount: str, total: str) -> PaymentCaptured:
    return PaymentCaptured(
        order_id=ORDER,
        fulfilment_id=fid,
        amount=Decimal(amount),
        currency="EUR",
        captured_total=Decimal(total),
    )


def at(saga: OrderSaga, status: Status) -> OrderSaga:
    """Drive a fresh saga to the given status along the happy path."""
    s.start(saga, T0, POLICY)
    if status == Status.RESERVING_STOCK:
        return saga
    s.handle(saga, reserved(), T0, POLICY)
    if status == Status.AUTHORIZING_PAYMENT:
        return saga
    s.handle(saga, authorized(), T0, POLICY)
    if status == Status.CONFIRMED:
        return saga
    s.handle(saga, FulfilmentCreated(order_id=ORDER, fulfilments=REFS), T0, POLICY)
    if status == Status.FULFILLING:
        return saga
    s.handle(saga, shipped("f1", "berlin", "A", 2), T0, POLICY)
    if status == Status.PARTIALLY_SHIPPED:
        return saga
    s.handle(saga, shipped("f2", "hamburg", "B", 1), T0, POLICY)
    assert saga.status == status == Status.SHIPPED
    return saga


# --- happy path ----------------------------------------------------------------------------


def test_order_stored_reserves_stock_with_a_deadline():
    saga = new_saga()
    decision = s.start(saga, T0, POLICY)
    assert saga.status == Status.RESERVING_STOCK
    assert kinds(decision) == [ReserveStock]
    command = decision.messages[0]
    assert isinstance(command, ReserveStock)
    assert [(li.line_id, li.sku, li.quantity) for li in command.lines] == [
        ("l1", "A", 2),
        ("l2", "B", 1),
    ]
    assert saga.deadline_at == T0 + POLICY.stock_timeout
    assert saga.step == s.Step.RESERVE_STOCK


def test_stock_reserved_authorizes_payment_for_the_total():
    saga = at(new_saga(), Status.RESERVING_STOCK)
    decision = s.handle(saga, reserved(), T0, POLICY)
    assert saga.status == Status.AUTHORIZING_PAYMENT
    assert kinds(decision) == [AuthorizePayment]
    command = decision.messages[0]
    assert isinstance(command, AuthorizePayment)
    assert command.amount == Decimal("30.00")
    assert command.idempotency_key == f"{ORDER}:authorize"
    assert saga.allocations == ALLOC


def test_stock_reserved_for_an_order_paid_on_the_channel_confirms_directly():
    saga = at(new_saga(paid_externally=True), Status.RESERVING_STOCK)
    decision = s.handle(saga, reserved(), T0, POLICY)
    assert saga.status == Status.CONFIRMED
    assert kinds(decision) == [CreateFulfilment, CustomerNotification]


def test_payment_authorized_confirms_and_creates_the_fulfilment():
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    decision = s.handle(saga, authorized(), T0, POLICY)
    assert saga.status == Status.CONFIRMED
    assert kinds(decision) == [CreateFulfilment, CustomerNotification]
    assert notices(decision) == ["confirmed"]
    create = decision.messages[0]
    assert isinstance(create, CreateFulfilment)
    assert create.allocations == ALLOC


def test_fulfilment_created_moves_to_fulfilling_with_a_shipping_sla():
    saga = at(new_saga(), Status.CONFIRMED)
    decision = s.handle(saga, FulfilmentCreated(order_id=ORDER, fulfilments=REFS), T0, POLICY)
    assert saga.status == Status.FULFILLING
    assert decision.messages == []
    assert saga.step is None and saga.deadline_at is None
    assert saga.sla_deadline_at == T0 + POLICY.ship_sla


def test_each_shipment_commits_stock_and_captures_its_share_the_last_takes_the_rest():
    saga = at(new_saga(), Status.FULFILLING)
    first = s.handle(saga, shipped("f1", "berlin", "A", 2), T0, POLICY)
    assert saga.status == Status.PARTIALLY_SHIPPED
    assert kinds(first) == [CommitStock, CapturePayment, CustomerNotification]
    capture = first.messages[1]
    assert isinstance(capture, CapturePayment)
    assert capture.amount == Decimal("20.00")
    assert capture.idempotency_key == f"{ORDER}:capture:f1"
    second = s.handle(saga, shipped("f2", "hamburg", "B", 1), T0, POLICY)
    assert saga.status == Status.SHIPPED
    last_capture = second.messages[1]
    assert isinstance(last_capture, CapturePayment)
    assert last_capture.amount == Decimal("10.00")
    assert saga.capture_requested == saga.total
    assert notices(second) == ["shipped"]


def test_shipped_order_completes_after_delivery_and_capture_in_any_order():
    saga = at(new_saga(), Status.SHIPPED)
    s.handle(saga, captured("f1", "20.00", "20.00"), T0, POLICY)
    s.handle(
        saga, FulfilmentDelivered(order_id=ORDER, fulfilment_id="f1", delivered_at=T0), T0, POLICY
    )
    assert saga.status == Status.SHIPPED
    s.handle(
        saga, FulfilmentDelivered(order_id=ORDER, fulfilment_id="f2", delivered_at=T0), T0, POLICY
    )
    assert saga.status == Status.DELIVERED, "delivered, but one capture still outstanding"
    s.handle(saga, captured("f2", "10.00", "30.00"), T0, POLICY)
    assert saga.status == Status.COMPLETED
    assert saga.captured_total == Decimal("30.00")


def test_delivery_notice_has_a_follow_up():
    saga = at(new_saga(), Status.SHIPPED)
    decision = s.handle(
        saga, FulfilmentDelivered(order_id=ORDER, fulfilment_id="f1", delivered_at=T0), T0, POLICY
    )
    notice = decision.messages[0]
    assert isinstance(notice, CustomerNotification)
    assert notice.kind == "delivered" and notice.data["follow_up"] is True


# --- failures and compensations -----------------------------------------------------------


def test_stock_short_rejects_naming_the_short_lines():
    saga = at(new_saga(), Status.RESERVING_STOCK)
    failed = StockReservationFailed(
        order_id=ORDER,
        reason="insufficient_stock",
        short_lines=(ShortLine(line_id="l1", sku="A", requested=2, available=1),),
    )
    decision = s.handle(saga, failed, T0, POLICY)
    assert saga.status == Status.REJECTED
    assert "A" in (saga.reason or "")
    assert notices(decision) == ["rejected"]
    assert ReleaseStock not in kinds(decision) and AuthorizePayment not in kinds(decision)
    assert saga.next_deadline is None


def test_payment_declined_releases_stock_then_cancels():
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    decision = s.handle(
        saga,
        PaymentDeclined(order_id=ORDER, reason="declined", decline_code="card_declined"),
        T0,
        POLICY,
    )
    assert saga.status == Status.CANCELLING
    assert kinds(decision) == [ReleaseStock]
    done = s.handle(saga, StockReleased(order_id=ORDER, released=ALLOC), T0, POLICY)
    assert saga.status == Status.CANCELLED
    assert "payment declined" in (saga.reason or "")
    assert notices(done) == ["cancelled"]


def test_cancel_while_fulfilling_undoes_everything_in_reverse_order():
    """Regression (issue 12, defect 2): the void and release wait until the fulfilment is
    confirmed cancelled; the goods may be leaving."""
    saga = at(new_saga(), Status.FULFILLING)
    decision = s.request_cancel(saga, "customer", T0, POLICY)
    assert saga.status == Status.CANCELLING
    assert kinds(decision) == [CancelFulfilment]
    early = s.handle(saga, PaymentVoided(order_id=ORDER, voided=True, reason="x"), T0, POLICY)
    assert early.messages == [] and Compensation.PAYMENT in saga.pending_compensations
    later = T0 + timedelta(seconds=5)
    confirmed = s.handle(
        saga,
        FulfilmentCancelled(order_id=ORDER, cancelled=("f1", "f2"), reason="customer"),
        later,
        POLICY,
    )
    assert kinds(confirmed) == [VoidPayment, ReleaseStock]
    assert saga.status == Status.CANCELLING
    assert saga.deadline_at == later + POLICY.compensation_timeout
    s.handle(saga, PaymentVoided(order_id=ORDER, voided=True, reason="customer"), T0, POLICY)
    s.handle(saga, StockReleased(order_id=ORDER, released=ALLOC), T0, POLICY)
    assert saga.status == Status.CANCELLED
    assert all(f.cancelled for f in saga.fulfilments.values())


def test_a_compensation_deadline_resends_only_the_current_stage():
    saga = at(new_saga(), Status.FULFILLING)
    s.request_cancel(saga, "customer", T0, POLICY)
    assert saga.deadline_at is not None
    retried = s.on_deadline(saga, saga.deadline_at + timedelta(seconds=1), POLICY)
    assert kinds(retried) == [CancelFulfilment]


def test_the_ship_that_wins_the_cancel_race_is_captured_committed_and_told():
    """Regression (issue 12, defect 2): cancel in FULFILLING, then both parcels ship before the
    fulfilment service sees the cancel: the shipments stand, paid and committed, no void."""
    saga = at(new_saga(), Status.FULFILLING)
    s.request_cancel(saga, "customer", T0, POLICY)
    first = s.handle(saga, shipped("f1", "berlin", "A", 2), T0, POLICY)
    assert kinds(first) == [CommitStock, CapturePayment, CustomerNotification]
    assert first.messages[2].data["cancel_too_late"] is True  # type: ignore[attr-defined]
    second = s.handle(saga, shipped("f2", "hamburg", "B", 1), T0, POLICY)
    assert kinds(second) == [CommitStock, CapturePayment, CustomerNotification]
    captures = [m for m in [*first.messages, *second.messages] if isinstance(m, CapturePayment)]
    assert sum(c.amount for c in captures) == saga.total
    answer = FulfilmentCancelled.model_validate(
        {"order_id": ORDER, "cancelled": [], "reason": "x", "already_shipped": ["f1", "f2"]}
    )
    decision = s.handle(saga, answer, T0, POLICY)
    assert VoidPayment not in kinds(decision) and ReleaseStock not in kinds(decision)
    assert saga.status == Status.SHIPPED
    assert "too late" in (saga.reason or "")
    s.handle(
        saga, FulfilmentDelivered(order_id=ORDER, fulfilment_id="f1", delivered_at=T0), T0, POLICY
    )
    s.handle(
        saga, FulfilmentDelivered(order_id=ORDER, fulfilment_id="f2", delivered_at=T0), T0, POLICY
    )
    s.handle(saga, captured("f1", str(captures[0].amount), str(captures[0].amount)), T0, POLICY)
    s.handle(saga, captured("f2", str(captures[1].amount), "30.00"), T0, POLICY)
    assert saga.status == Status.COMPLETED


def test_a_partly_won_race_keeps_the_shipment_and_releases_the_rest():
    saga = at(new_saga(), Status.FULFILLING)
    s.request_cancel(saga, "customer", T0, POLICY)
    first = s.handle(saga, shipped("f1", "berlin", "A", 2), T0, POLICY)
    (capture,) = [m for m in first.messages if isinstance(m, CapturePayment)]
    assert capture.amount == Decimal("20.00"), "only the shipped part's share"
    answer = FulfilmentCancelled.model_validate(
        {"order_id": ORDER, "cancelled": ["f2"], "reason": "x", "already_shipped": ["f1"]}
    )
    decision = s.handle(saga, answer, T0, POLICY)
    assert kinds(decision) == [ReleaseStock, CustomerNotification]
    assert notices(decision) == ["rest_cancelled"]
    assert saga.status == Status.SHIPPED
    assert saga.fulfilments["f2"].cancelled and not saga.fulfilments["f1"].cancelled
    assert s.capture_target(saga) == Decimal("20.00"), "f2's share is not captured"


@pytest.mark.parametrize(
    ("status", "answer", "expected"),
    [
        (Status.RESERVING_STOCK, "stock", [ReleaseStock]),
        (Status.AUTHORIZING_PAYMENT, "payment", [VoidPayment, ReleaseStock]),
        (Status.CONFIRMED, "fulfilment", [CancelFulfilment]),
    ],
)
def test_cancel_while_a_step_is_in_flight_is_applied_when_the_step_answers(
    status, answer, expected
):
    saga = at(new_saga(), status)
    decision = s.request_cancel(saga, "customer", T0, POLICY)
    assert saga.status == status, "the semantic lock holds the state"
    assert decision.messages == []
    assert saga.cancel_requested == "customer"
    step_answer = {
        "stock": reserved(),
        "payment": authorized(),
        "fulfilment": FulfilmentCreated(order_id=ORDER, fulfilments=REFS),
    }[answer]
    applied = s.handle(saga, step_answer, T0, POLICY)
    assert saga.status == Status.CANCELLING
    assert kinds(applied) == expected


def test_cancel_pending_when_reservation_fails_ends_cancelled_with_nothing_to_undo():
    saga = at(new_saga(), Status.RESERVING_STOCK)
    s.request_cancel(saga, "customer", T0, POLICY)
    decision = s.handle(
        saga, StockReservationFailed(order_id=ORDER, reason="insufficient_stock"), T0, POLICY
    )
    assert saga.status == Status.CANCELLED
    assert notices(decision) == ["cancelled"]


@pytest.mark.parametrize("status", [Status.SHIPPED])
def test_cancel_after_shipment_is_refused(status):
    saga = at(new_saga(), status)
    with pytest.raises(CancelRefused) as refused:
        s.request_cancel(saga, "customer", T0, POLICY)
    assert refused.value.code == "already_shipped"
    assert saga.status == status


def test_cancel_of_rejected_or_cancelled_orders():
    saga = at(new_saga(), Status.RESERVING_STOCK)
    s.handle(saga, StockReservationFailed(order_id=ORDER, reason="insufficient_stock"), T0, POLICY)
    with pytest.raises(CancelRefused, match="rejected"):
        s.request_cancel(saga, "customer", T0, POLICY)
    cancelled = at(new_saga(), Status.FULFILLING)
    s.request_cancel(cancelled, "customer", T0, POLICY)
    again = s.request_cancel(cancelled, "customer", T0, POLICY)
    assert again.messages == [], "a repeated cancel changes nothing"


def test_capture_failure_after_shipment_needs_attention():
    saga = at(new_saga(), Status.SHIPPED)
    decision = s.handle(
        saga, PaymentCaptureFailed(order_id=ORDER, fulfilment_id="f1", reason="expired"), T0, POLICY
    )
    assert saga.status == Status.NEEDS_ATTENTION
    assert kinds(decision) == [OperatorAlert]


def test_fulfilment_failure_before_shipping_cancels_with_void_and_release():
    saga = at(new_saga(), Status.FULFILLING)
    decision = s.handle(
        saga, FulfilmentFailed(order_id=ORDER, fulfilment_id="f1", reason="damaged"), T0, POLICY
    )
    assert saga.status == Status.CANCELLING
    assert kinds(decision) == [CancelFulfilment], "void and release once it is cancelled"


def test_fulfilment_failure_after_shipping_needs_attention():
    saga = at(new_saga(), Status.SHIPPED)
    s.handle(saga, FulfilmentFailed(order_id=ORDER, fulfilment_id="f1", reason="lost"), T0, POLICY)
    assert saga.status == Status.NEEDS_ATTENTION


def test_a_parked_order_still_ships_commits_and_captures():
    """Regression (issue 12, defect 1): two locations; f1 ships, a carrier exception on f1
    parks the order; f2 ships while parked: its stock is committed and its share captured,
    and an operator retry resumes the order as SHIPPED."""
    saga = at(new_saga(), Status.PARTIALLY_SHIPPED)
    s.handle(
        saga, FulfilmentFailed(order_id=ORDER, fulfilment_id="f1", reason="exception"), T0, POLICY
    )
    assert saga.status == Status.NEEDS_ATTENTION
    decision = s.handle(saga, shipped("f2", "hamburg", "B", 1), T0, POLICY)
    assert saga.status == Status.NEEDS_ATTENTION, "parking is kept"
    assert kinds(decision) == [CommitStock, CapturePayment, CustomerNotification]
    assert decision.messages[1].amount == Decimal("10.00")  # type: ignore[attr-defined]
    assert saga.parked_from == Status.SHIPPED
    assert "parked_status_changed" in [e.event for e in decision.timeline]
    s.handle(saga, captured("f2", "10.00", "30.00"), T0, POLICY)
    assert saga.fulfilments["f2"].captured
    resumed = s.operator_retry(saga, T0, POLICY)
    assert saga.status == Status.SHIPPED
    assert saga.parked_from is None and saga.attention_reasons == ()
    resent = [m.fulfilment_id for m in resumed.messages if isinstance(m, CapturePayment)]
    assert resent == ["f1"], "f1's capture was never confirmed; f2's was"


def test_a_parked_confirmed_order_records_its_late_fulfilment_and_shipment():
    """Regression (issue 12, defect 1, second path): fulfilment answered only after the
    create deadline gave up; it is recorded, the shipment is acted on, retry resumes."""
    saga = _parked_at_fulfilment()
    s.handle(saga, FulfilmentCreated(order_id=ORDER, fulfilments=REFS), T0, POLICY)
    assert saga.status == Status.NEEDS_ATTENTION
    assert set(saga.fulfilments) == {"f1", "f2"}
    assert saga.parked_from == Status.FULFILLING and saga.parked_step is None
    first = s.handle(saga, shipped("f1", "berlin", "A", 2), T0, POLICY)
    second = s.handle(saga, shipped("f2", "hamburg", "B", 1), T0, POLICY)
    assert kinds(first)[:2] == kinds(second)[:2] == [CommitStock, CapturePayment]
    assert saga.next_deadline is None, "nothing fires while an operator is on it"
    decision = s.operator_retry(saga, T0, POLICY)
    assert saga.status == Status.SHIPPED
    assert CreateFulfilment not in kinds(decision)


def test_a_second_park_keeps_the_first():
    """Regression (issue 12, defect 3): two failed captures for two fulfilments; retry
    resumes and re-sends both captures."""
    saga = at(new_saga(), Status.SHIPPED)
    s.handle(saga, PaymentCaptureFailed(order_id=ORDER, fulfilment_id="f1", reason="a"), T0, POLICY)
    s.handle(saga, PaymentCaptureFailed(order_id=ORDER, fulfilment_id="f2", reason="b"), T0, POLICY)
    assert saga.status == Status.NEEDS_ATTENTION
    assert saga.parked_from == Status.SHIPPED
    assert len(saga.attention_reasons) == 2
    assert "(f1)" in (saga.reason or "") and "(f2)" in (saga.reason or "")
    decision = s.operator_retry(saga, T0, POLICY)
    assert saga.status == Status.SHIPPED
    assert sorted(m.fulfilment_id for m in decision.messages if isinstance(m, CapturePayment)) == [  # type: ignore[attr-defined]
        "f1",
        "f2",
    ]


def test_a_capture_failure_for_an_unknown_or_captured_fulfilment_is_ignored():
    saga = at(new_saga(), Status.SHIPPED)
    s.handle(saga, captured("f1", "20.00", "20.00"), T0, POLICY)
    for fid in ("f1", "nope"):
        s.handle(
            saga, PaymentCaptureFailed(order_id=ORDER, fulfilment_id=fid, reason="x"), T0, POLICY
        )
    assert saga.status == Status.SHIPPED


# --- deadlines -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "command"),
    [
        (Status.RESERVING_STOCK, ReserveStock),
        (Status.AUTHORIZING_PAYMENT, AuthorizePayment),
        (Status.CONFIRMED, CreateFulfilment),
    ],
)
def test_passed_deadline_resends_the_same_command(status, command):
    saga = at(new_saga(), status)
    first_deadline = saga.deadline_at
    assert first_deadline is not None
    later = first_deadline + timedelta(seconds=1)
    decision = s.on_deadline(saga, later, POLICY)
    assert saga.status == status
    assert kinds(decision) == [command]
    assert saga.attempt == 2
    assert saga.deadline_at is not None and saga.deadline_at > later
    if command is AuthorizePayment:
        resent = decision.messages[0]
        assert isinstance(resent, AuthorizePayment)
        assert resent.idempotency_key == f"{ORDER}:authorize"


def test_deadline_not_yet_passed_does_nothing():
    saga = at(new_saga(), Status.RESERVING_STOCK)
    decision = s.on_deadline(saga, T0 + timedelta(seconds=1), POLICY)
    assert decision.messages == [] and saga.attempt == 1


def _exhaust(saga: OrderSaga) -> Decision:
    decision = Decision()
    moment = T0
    for _ in range(POLICY.max_attempts):
        assert saga.deadline_at is not None
        moment = saga.deadline_at + timedelta(seconds=1)
        decision = s.on_deadline(saga, moment, POLICY)
    return decision


def test_stock_never_answering_compensates_with_a_release():
    saga = at(new_saga(), Status.RESERVING_STOCK)
    decision = _exhaust(saga)
    assert saga.status == Status.CANCELLING
    assert kinds(decision) == [ReleaseStock]
    s.handle(saga, StockReleased(order_id=ORDER), T0, POLICY)
    assert saga.status == Status.CANCELLED


def test_payment_never_answering_voids_and_releases():
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    decision = _exhaust(saga)
    assert saga.status == Status.CANCELLING
    assert kinds(decision) == [VoidPayment, ReleaseStock]


def test_fulfilment_never_answering_parks_the_confirmed_order():
    saga = at(new_saga(), Status.CONFIRMED)
    decision = _exhaust(saga)
    assert saga.status == Status.NEEDS_ATTENTION
    assert kinds(decision) == [OperatorAlert]


def test_compensation_never_confirmed_needs_attention():
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    _exhaust(saga)
    assert saga.status == Status.CANCELLING
    retry = s.on_deadline(saga, saga.deadline_at + timedelta(seconds=1), POLICY)  # type: ignore[operator]
    assert kinds(retry) == [VoidPayment, ReleaseStock], "compensations are re-sent too"
    while saga.deadline_at is not None:
        s.on_deadline(saga, saga.deadline_at + timedelta(seconds=1), POLICY)
    assert saga.status == Status.NEEDS_ATTENTION
    assert saga.next_deadline is None


def test_shipping_sla_sends_a_delay_notice_and_alert_once_and_never_cancels():
    saga = at(new_saga(), Status.FULFILLING)
    assert saga.sla_deadline_at is not None
    late = saga.sla_deadline_at + timedelta(minutes=1)
    decision = s.on_deadline(saga, late, POLICY)
    assert saga.status == Status.FULFILLING
    assert kinds(decision) == [CustomerNotification, OperatorAlert]
    assert notices(decision) == ["delayed"]
    assert s.on_deadline(saga, late + timedelta(hours=1), POLICY).messages == []
    assert saga.next_deadline is None


def test_delivery_sla_after_shipping():
    saga = at(new_saga(), Status.SHIPPED)
    assert saga.sla_deadline_at == T0 + POLICY.delivery_sla
    decision = s.on_deadline(saga, saga.sla_deadline_at + timedelta(seconds=1), POLICY)
    assert notices(decision) == ["delayed"]
    assert decision.messages[0].data["stage"] == "delivery"  # type: ignore[attr-defined]
    assert saga.status == Status.SHIPPED


# --- late, duplicate and out-of-order events ------------------------------------------------


def test_late_stock_reserved_after_rejection_or_cancel_is_released():
    saga = at(new_saga(), Status.RESERVING_STOCK)
    _exhaust(saga)
    s.handle(saga, StockReleased(order_id=ORDER), T0, POLICY)
    assert saga.status == Status.CANCELLED
    decision = s.handle(saga, reserved(), T0, POLICY)
    assert kinds(decision) == [ReleaseStock]
    assert saga.status == Status.CANCELLED


def test_late_payment_authorized_after_give_up_is_voided():
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    _exhaust(saga)
    decision = s.handle(saga, authorized(), T0, POLICY)
    assert kinds(decision) == [VoidPayment]
    assert saga.status == Status.CANCELLING


def test_late_fulfilment_created_after_cancel_is_cancelled():
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    s.handle(
        saga, PaymentDeclined(order_id=ORDER, reason="x", decline_code="card_declined"), T0, POLICY
    )
    decision = s.handle(saga, FulfilmentCreated(order_id=ORDER, fulfilments=REFS), T0, POLICY)
    assert kinds(decision) == [CancelFulfilment]


def test_duplicate_answers_change_nothing():
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    snapshot = saga.model_copy(deep=True)
    duplicate = s.handle(saga, reserved(), T0, POLICY)
    assert duplicate.messages == [] and saga == snapshot
    saga = at(new_saga(), Status.SHIPPED)
    again = s.handle(saga, shipped("f1", "berlin", "A", 2), T0, POLICY)
    assert again.messages == []
    assert saga.capture_requested == saga.total


def test_out_of_order_answers_are_ignored():
    saga = at(new_saga(), Status.RESERVING_STOCK)
    decision = s.handle(saga, authorized(), T0, POLICY)
    assert decision.messages == [] and saga.status == Status.RESERVING_STOCK
    decision = s.handle(saga, shipped("f1", "berlin", "A", 2), T0, POLICY)
    assert decision.messages == [] and saga.status == Status.RESERVING_STOCK
    decision = s.handle(saga, StockReleased(order_id=ORDER), T0, POLICY)
    assert decision.messages == [] and saga.status == Status.RESERVING_STOCK


def test_delivery_before_capture_then_capture_completes():
    saga = at(new_saga(), Status.SHIPPED)
    for fid in ("f1", "f2"):
        s.handle(
            saga,
            FulfilmentDelivered(order_id=ORDER, fulfilment_id=fid, delivered_at=T0),
            T0,
            POLICY,
        )
    assert saga.status == Status.DELIVERED
    s.handle(saga, captured("f2", "10.00", "10.00"), T0, POLICY)
    s.handle(saga, captured("f1", "20.00", "30.00"), T0, POLICY)
    assert saga.status == Status.COMPLETED


def test_status_changes_are_on_the_timeline():
    saga = new_saga()
    decision = s.start(saga, T0, POLICY)
    events = [entry.event for entry in decision.timeline]
    assert events == ["order_received", "status_changed"]
    assert decision.timeline[1].detail == {"status": "RESERVING_STOCK", "previous": "RECEIVED"}


# --- operator actions ------------------------------------------------------------------------


def _parked_at_fulfilment() -> OrderSaga:
    saga = at(new_saga(), Status.CONFIRMED)
    _exhaust(saga)
    assert saga.status == Status.NEEDS_ATTENTION
    return saga


def test_stuck_means_parked_or_past_a_deadline():
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    assert not s.is_stuck(saga, T0)
    assert s.is_stuck(saga, saga.deadline_at + timedelta(seconds=1))  # type: ignore[operator]
    assert s.is_stuck(_parked_at_fulfilment(), T0)


def test_operator_retry_of_a_parked_step_resends_its_command():
    saga = _parked_at_fulfilment()
    decision = s.operator_retry(saga, T0, POLICY)
    assert saga.status == Status.CONFIRMED
    assert kinds(decision) == [CreateFulfilment]
    assert saga.attempt == 1 and saga.deadline_at == T0 + POLICY.fulfilment_timeout


def test_operator_retry_of_a_failed_capture_resends_the_capture():
    saga = at(new_saga(), Status.SHIPPED)
    s.handle(saga, PaymentCaptureFailed(order_id=ORDER, fulfilment_id="f1", reason="x"), T0, POLICY)
    decision = s.operator_retry(saga, T0, POLICY)
    assert saga.status == Status.SHIPPED
    assert kinds(decision) == [CapturePayment, CapturePayment]
    assert sum(m.amount for m in decision.messages) == saga.total  # type: ignore[attr-defined]


def test_operator_retry_with_nothing_to_retry_is_refused():
    saga = at(new_saga(), Status.FULFILLING)
    with pytest.raises(s.OperatorActionRefused):
        s.operator_retry(saga, T0, POLICY)


def test_operator_compensate_undoes_what_the_parked_step_may_have_done():
    saga = _parked_at_fulfilment()
    decision = s.operator_compensate(saga, T0, POLICY)
    assert saga.status == Status.CANCELLING
    assert kinds(decision) == [CancelFulfilment]
    assert saga.pending_compensations == (
        Compensation.FULFILMENT,
        Compensation.PAYMENT,
        Compensation.STOCK,
    )


def test_operator_compensate_resends_unconfirmed_compensations():
    saga = at(new_saga(), Status.AUTHORIZING_PAYMENT)
    _exhaust(saga)
    s.handle(saga, StockReleased(order_id=ORDER), T0, POLICY)
    while saga.deadline_at is not None:
        s.on_deadline(saga, saga.deadline_at + timedelta(seconds=1), POLICY)
    assert saga.status == Status.NEEDS_ATTENTION
    decision = s.operator_compensate(saga, T0, POLICY)
    assert saga.status == Status.CANCELLING
    assert kinds(decision) == [VoidPayment], "the void was never confirmed; stock already was"


def test_operator_compensate_after_shipment_is_refused():
    saga = at(new_saga(), Status.SHIPPED)
    s.handle(saga, PaymentCaptureFailed(order_id=ORDER, fulfilment_id="f1", reason="x"), T0, POLICY)
    with pytest.raises(s.OperatorActionRefused) as refused:
        s.operator_compensate(saga, T0, POLICY)
    assert refused.value.code == "already_shipped"
