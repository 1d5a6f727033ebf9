"""The returns saga (DESIGN.md §4, end), as a pure state machine.

    REQUESTED → APPROVED → RECEIVED → INSPECTED → [EXCHANGING] → [REFUNDING] → REFUNDED /
    EXCHANGED → CLOSED

`ReturnSaga` is the persisted state of one return. Every input (the request, an operator's
approve/refuse/retry, the receipt, an answer from inventory, order-intake or payment, a passed
deadline) goes through one function that mutates the saga and returns a `Decision`: the
commands to send, the status transitions and the timeline entries. The handler layer loads the
saga under a row lock, calls the domain, and saves saga, timeline and outbox in one transaction.

| status | on | goes to | sends |
|---|---|---|---|
| REQUESTED | policy allows, nothing to review | APPROVED | — |
| REQUESTED | operator approves / refuses | APPROVED / REFUSED | — |
| APPROVED | operator refuses | REFUSED | — |
| APPROVED | goods received (condition per line) | RECEIVED → INSPECTED | RestockReturnedItems (resellable), WriteOffReturnedItems (damaged) |
| INSPECTED | every stock answer in | EXCHANGING (exchange asked) or settle | CreateReplacementOrder |
| EXCHANGING | the replacement order reserved its stock (CONFIRMED or later) | settle: refund credit minus replacement total | — |
| EXCHANGING | the replacement order REJECTED / CANCELLED / refused | settle: refund the whole credit | — |
| settle | refund > 0, paid by card | REFUNDING | RefundPayment (key `<return_id>:refund`) |
| settle | refund > 0, paid by the channel | REFUNDED → CLOSED | ChannelRefundRequested |
| settle | nothing to refund | EXCHANGED / → CLOSED | — |
| REFUNDING | PaymentRefunded | REFUNDED (EXCHANGED) → CLOSED | — |
| REFUNDING | PaymentRefundFailed, tries left | same, retry after a backoff | RefundPayment, same key |
| REFUNDING | PaymentRefundFailed, last try or a final refusal | NEEDS_ATTENTION | — |
| any waiting step | deadline passed, tries left | same, attempt n+1 | the same command(s) |
| any waiting step | last try passed | NEEDS_ATTENTION | — |
| NEEDS_ATTENTION | the late answer of the parked step | resumes as if in time | the next step's command |
| NEEDS_ATTENTION | operator retries | the parked step, attempts reset | the step's command(s), same keys |
| any | a duplicate or late answer already applied | unchanged | nothing |

Never two refunds: there is one refund per return and it always carries the same idempotency
key, so payment answers a re-sent command with the refund it already made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from services.returns.domain.policy import Condition, Credit
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
    ReplacementLine,
    RestockReturnedItems,
    WriteOffReturnedItems,
)
from shared.envelope import Contract
from shared.money import ZERO
from shared.platform.saga import decisions


class Status(StrEnum):
    REQUESTED = "REQUESTED"
    APPROVED = "APPROVED"
    REFUSED = "REFUSED"
    RECEIVED = "RECEIVED"
    INSPECTED = "INSPECTED"
    EXCHANGING = "EXCHANGING"
    REFUNDING = "REFUNDING"
    REFUNDED = "REFUNDED"
    EXCHANGED = "EXCHANGED"
    CLOSED = "CLOSED"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"


class Step(StrEnum):
    STOCK = "stock"
    REPLACEMENT = "replacement"
    REFUND = "refund"


class RefundStatus(StrEnum):
    PENDING = "pending"
    REFUNDING = "refunding"
    REFUNDED = "refunded"
    TO_BE_EXECUTED_BY_CHANNEL = "to_be_executed_by_channel"
    NOT_NEEDED = "not_needed"
    FAILED = "failed"
    NONE = "none"


class ExchangeStatus(StrEnum):
    REQUESTED = "requested"
    CREATING = "creating"
    PLACED = "placed"
    FAILED = "failed"


class StockTask(StrEnum):
    RESTOCK = "restock"
    WRITE_OFF = "write_off"


# Order statuses of a replacement order: its stock is reserved / it will not happen.
REPLACEMENT_PLACED = frozenset(
    {"CONFIRMED", "FULFILLING", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED", "COMPLETED"}
)
REPLACEMENT_FAILED = frozenset({"REJECTED", "CANCELLED", "CANCELLING"})

# Refusals by payment that a retry under the same key cannot change.
FINAL_REFUND_FAILURES = frozenset(
    {
        "idempotency_key_conflict",
        "currency_mismatch",
        "invalid_amount",
        "invalid_currency",
        "no_authorization",
    }
)

TERMINAL = frozenset({Status.REFUSED, Status.CLOSED})


@dataclass(frozen=True)
class SagaTimings:
    stock_timeout: timedelta = timedelta(seconds=30)
    replacement_timeout: timedelta = timedelta(seconds=60)
    refund_timeout: timedelta = timedelta(seconds=30)
    max_attempts: int = 3
    refund_max_attempts: int = 4
    refund_retry_backoff: timedelta = timedelta(seconds=5)

    def timeout(self, step: Step) -> timedelta:
        return {
            Step.STOCK: self.stock_timeout,
            Step.REPLACEMENT: self.replacement_timeout,
            Step.REFUND: self.refund_timeout,
        }[step]

    def attempts(self, step: Step) -> int:
        return self.refund_max_attempts if step == Step.REFUND else self.max_attempts


class ReturnLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    sku: str
    quantity: int
    reason: str


class ExchangeItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    sku: str
    quantity: int
    unit_price: Decimal


class ReceivedItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    sku: str
    quantity: int
    condition: Condition
    refund: Decimal = ZERO


class ReturnSaga(BaseModel):
    """Everything the saga needs to decide, persisted as one JSON document per return."""

    return_id: str
    order_id: str
    # The order whose payment is refunded: the original order when this order is a replacement.
    refund_order_id: str
    channel: str
    currency: str
    lines: tuple[ReturnLine, ...]
    exchange: tuple[ExchangeItem, ...] = ()
    paid_by_channel: bool = False
    refund_estimate: Decimal = ZERO

    status: Status = Status.REQUESTED
    revision: int = 0
    review_reason: str | None = None
    reason: str | None = None

    location: str | None = None
    received: tuple[ReceivedItem, ...] = ()
    received_at: datetime | None = None
    credit_items: Decimal = ZERO
    credit_shipping: Decimal = ZERO
    stock_pending: tuple[StockTask, ...] = ()

    exchange_status: ExchangeStatus | None = None
    replacement_order_id: str | None = None
    replacement_status: str | None = None
    replacement_total: Decimal | None = None
    replacement_lost: bool = False

    refund_status: RefundStatus = RefundStatus.PENDING
    refund_amount: Decimal | None = None
    refunded_amount: Decimal = ZERO
    amount_due: Decimal = ZERO
    last_refund_failure: str | None = None

    step: Step | None = None
    attempt: int = 0
    deadline_at: datetime | None = None
    parked_step: Step | None = None

    @property
    def refund_key(self) -> str:
        return f"{self.return_id}:refund"

    @property
    def credit(self) -> Decimal:
        return self.credit_items + self.credit_shipping

    @property
    def next_deadline(self) -> datetime | None:
        return self.deadline_at

    def units(self) -> dict[str, int]:
        """Units per SKU this return claims: what came back once received, else what was asked."""
        claimed: dict[str, int] = {}
        for item in self.received if self.received_at is not None else self.lines:
            claimed[item.sku] = claimed.get(item.sku, 0) + item.quantity
        return claimed


@dataclass(frozen=True)
class TimelineEntry:
    event: str
    status: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Decision(decisions.Decision[TimelineEntry]):
    """What to send and record after one saga input, and the status transitions it made."""

    transitions: list[tuple[Status | None, Status]] = field(default_factory=list)


class ActionRefused(decisions.Refused):
    """An operator or API action the return's state does not allow."""


# --- entry points --------------------------------------------------------------------------


def open_return(saga: ReturnSaga, review_reason: str | None, now: datetime) -> Decision:
    """The return was requested and the policy allows it: approve it, or hold it for review."""
    decision = Decision()
    decision.transitions.append((None, Status.REQUESTED))
    _note(
        saga,
        decision,
        "requested",
        lines=[line.model_dump(mode="json") for line in saga.lines],
        exchange=[item.model_dump(mode="json") for item in saga.exchange],
        refund_estimate=str(saga.refund_estimate),
    )
    if saga.exchange:
        saga.exchange_status = ExchangeStatus.REQUESTED
    if review_reason is None:
        _set_status(saga, Status.APPROVED, decision)
        _note(saga, decision, "approved", by="policy")
    else:
        saga.review_reason = review_reason
        _note(saga, decision, "manual_review", reason=review_reason)
    return decision


def approve(saga: ReturnSaga, now: datetime, *, by: str = "operator") -> Decision:
    if saga.status != Status.REQUESTED:
        raise ActionRefused(
            "not_awaiting_review", f"return {saga.return_id} is {saga.status}, not REQUESTED"
        )
    decision = Decision()
    _set_status(saga, Status.APPROVED, decision)
    _note(saga, decision, "approved", by=by)
    return decision


def refuse(saga: ReturnSaga, reason: str, now: datetime, *, by: str = "operator") -> Decision:
    if saga.status == Status.REFUSED:
        decision = Decision()
        _note(saga, decision, "refuse_repeated", reason=reason)
        return decision
    if saga.status not in {Status.REQUESTED, Status.APPROVED}:
        raise ActionRefused(
            "cannot_refuse",
            f"return {saga.return_id} is {saga.status}: goods already received, it cannot be"
            " refused any more",
        )
    decision = Decision()
    saga.reason = reason
    saga.refund_status = RefundStatus.NONE
    if saga.exchange_status is not None:
        saga.exchange_status = ExchangeStatus.FAILED
    _set_status(saga, Status.REFUSED, decision)
    _note(saga, decision, "refused", reason=reason, by=by)
    return decision


def check_receipt(saga: ReturnSaga, received: list[ReceivedItem]) -> None:
    """Raise ActionRefused unless the goods may be received against this return now."""
    if saga.status == Status.REQUESTED:
        raise ActionRefused(
            "not_approved", f"return {saga.return_id} waits for an operator's approval"
        )
    if saga.status == Status.REFUSED:
        raise ActionRefused("return_refused", f"return {saga.return_id} was refused")
    if saga.status != Status.APPROVED:
        raise ActionRefused(
            "already_received", f"the goods of return {saga.return_id} were already received"
        )
    approved: dict[str, int] = {}
    for line in saga.lines:
        approved[line.sku] = approved.get(line.sku, 0) + line.quantity
    counted: dict[str, int] = {}
    for item in received:
        if item.sku not in approved:
            raise ActionRefused("sku_not_in_return", f"{item.sku} is not part of this return")
        counted[item.sku] = counted.get(item.sku, 0) + item.quantity
    for sku, quantity in counted.items():
        if quantity > approved[sku]:
            raise ActionRefused(
                "quantity_exceeds_return",
                f"{quantity} x {sku} received, but the return covers {approved[sku]}",
            )


def is_same_receipt(saga: ReturnSaga, received: list[ReceivedItem]) -> bool:
    """A repeat of the receipt already recorded (the same units in the same conditions)."""

    def key(items: Any) -> dict[tuple[str, str], int]:
        totals: dict[tuple[str, str], int] = {}
        for item in items:
            k = (item.sku, str(item.condition))
            totals[k] = totals.get(k, 0) + item.quantity
        return totals

    return saga.received_at is not None and key(saga.received) == key(received)


def receive(
    saga: ReturnSaga,
    received: list[ReceivedItem],
    location: str,
    credit: Credit,
    now: datetime,
    timings: SagaTimings,
) -> Decision:
    """The goods arrived and were inspected: restock / write off, then refund or exchange."""
    check_receipt(saga, received)
    decision = Decision()
    refunds: dict[tuple[str, Condition], Decimal] = {
        (line.sku, line.condition): line.amount for line in credit.lines
    }
    merged: dict[tuple[str, Condition], int] = {}
    for item in received:
        merged[(item.sku, item.condition)] = merged.get((item.sku, item.condition), 0) + (
            item.quantity
        )
    saga.received = tuple(
        ReceivedItem(
            sku=sku,
            quantity=quantity,
            condition=condition,
            refund=refunds.get((sku, condition), ZERO),
        )
        for (sku, condition), quantity in sorted(merged.items())
    )
    saga.received_at = now
    saga.location = location
    saga.credit_items = credit.items
    saga.credit_shipping = credit.shipping
    _set_status(saga, Status.RECEIVED, decision)
    _note(saga, decision, "received", location=location, units=sum(merged.values()))
    _set_status(saga, Status.INSPECTED, decision)
    _note(
        saga,
        decision,
        "inspected",
        lines=[
            {"sku": i.sku, "quantity": i.quantity, "condition": str(i.condition)}
            for i in saga.received
        ],
        credit=str(saga.credit),
        shipping=str(saga.credit_shipping),
    )
    tasks = []
    if any(i.condition == Condition.RESELLABLE for i in saga.received):
        tasks.append(StockTask.RESTOCK)
    if any(i.condition == Condition.DAMAGED for i in saga.received):
        tasks.append(StockTask.WRITE_OFF)
    saga.stock_pending = tuple(tasks)
    _begin_step(saga, Step.STOCK, now, timings, decision)
    return decision


def handle(saga: ReturnSaga, event: Contract, now: datetime, timings: SagaTimings) -> Decision:
    """Apply an answer from inventory, order-intake or payment."""
    decision = Decision()
    if isinstance(event, ReturnedItemsRestocked | ReturnedItemsWrittenOff):
        _on_stock_done(saga, event, now, timings, decision)
    elif isinstance(event, ReturnedStockFailed):
        _on_stock_failed(saga, event, decision)
    elif isinstance(event, ReplacementOrderCreated):
        _on_replacement_created(saga, event, now, timings, decision)
    elif isinstance(event, ReplacementOrderRefused):
        _on_replacement_refused(saga, event, now, timings, decision)
    elif isinstance(event, PaymentRefunded):
        _on_refunded(saga, event, decision)
    elif isinstance(event, PaymentRefundFailed):
        _on_refund_failed(saga, event, now, timings, decision)
    else:
        _note(saga, decision, "ignored", message=event.TYPE)
    return decision


def on_replacement_status(
    saga: ReturnSaga, order_id: str, status: str, now: datetime, timings: SagaTimings
) -> Decision:
    """The replacement order's saga moved (an OrderStatusChanged of the linked order)."""
    decision = Decision()
    if saga.replacement_order_id is not None and order_id != saga.replacement_order_id:
        _note(saga, decision, "ignored", message="OrderStatusChanged", order_id=order_id)
        return decision
    saga.replacement_order_id = order_id
    saga.replacement_status = status
    _replacement_progress(saga, now, timings, decision)
    return decision


def on_deadline(saga: ReturnSaga, now: datetime, timings: SagaTimings) -> Decision:
    decision = Decision()
    step = saga.step
    if step is None or saga.deadline_at is None or saga.deadline_at > now:
        return decision
    if saga.attempt < timings.attempts(step):
        saga.attempt += 1
        saga.deadline_at = now + timings.timeout(step)
        _note(saga, decision, "deadline_passed_retry", step=str(step), attempt=saga.attempt)
        decision.send(*_step_commands(saga, step))
        return decision
    _note(saga, decision, "deadline_passed_give_up", step=str(step), attempts=saga.attempt)
    waited_for = {
        Step.STOCK: "inventory did not confirm the restock / write-off",
        Step.REPLACEMENT: "the replacement order was not placed in time",
        Step.REFUND: "the refund did not succeed"
        + (f" ({saga.last_refund_failure})" if saga.last_refund_failure else ""),
    }[step]
    _needs_attention(saga, f"{waited_for} after {saga.attempt} tries", decision)
    return decision


def retry(saga: ReturnSaga, now: datetime, timings: SagaTimings) -> Decision:
    """An operator resumes a parked return: its step again, with fresh attempts, same keys."""
    if saga.status != Status.NEEDS_ATTENTION or saga.parked_step is None:
        raise ActionRefused(
            "not_needs_attention", f"return {saga.return_id} is {saga.status}: nothing to retry"
        )
    decision = Decision()
    step = saga.parked_step
    _note(saga, decision, "operator_retry", step=str(step))
    saga.parked_step = None
    saga.reason = None
    _set_status(saga, _STEP_STATUS[step], decision)
    if step == Step.REFUND:
        saga.refund_status = RefundStatus.REFUNDING
    _begin_step(saga, step, now, timings, decision)
    return decision


# --- stock -----------------------------------------------------------------------------------


def _on_stock_done(
    saga: ReturnSaga,
    event: ReturnedItemsRestocked | ReturnedItemsWrittenOff,
    now: datetime,
    timings: SagaTimings,
    decision: Decision,
) -> None:
    task = StockTask.RESTOCK if isinstance(event, ReturnedItemsRestocked) else StockTask.WRITE_OFF
    if not _waiting_on(saga, Step.STOCK) or task not in saga.stock_pending:
        _note(saga, decision, "ignored", message=event.TYPE, reason="already applied")
        return
    saga.stock_pending = tuple(t for t in saga.stock_pending if t != task)
    _note(
        saga,
        decision,
        "restocked" if task == StockTask.RESTOCK else "written_off",
        location=event.location,
        lines=[line.model_dump() for line in event.lines],
    )
    if saga.stock_pending:
        return
    _resume_if_parked(saga, Status.INSPECTED, decision)
    _clear_step(saga)
    if saga.exchange:
        _set_status(saga, Status.EXCHANGING, decision)
        saga.exchange_status = ExchangeStatus.CREATING
        _begin_step(saga, Step.REPLACEMENT, now, timings, decision)
    else:
        _settle(saga, now, timings, decision)


def _on_stock_failed(saga: ReturnSaga, event: ReturnedStockFailed, decision: Decision) -> None:
    if saga.step != Step.STOCK:
        _note(saga, decision, "ignored", message=event.TYPE)
        return
    _note(saga, decision, "stock_failed", kind=event.kind, reason=event.reason, skus=event.skus)
    _needs_attention(saga, f"inventory refused the {event.kind}: {event.reason}", decision)


# --- exchange --------------------------------------------------------------------------------


def _on_replacement_created(
    saga: ReturnSaga,
    event: ReplacementOrderCreated,
    now: datetime,
    timings: SagaTimings,
    decision: Decision,
) -> None:
    if saga.replacement_total is None:
        _note(
            saga, decision, "replacement_created", order_id=event.order_id, total=str(event.total)
        )
    saga.replacement_order_id = event.order_id
    saga.replacement_total = event.total
    # The order's status events may already have told more than this answer (a re-sent
    # command answers with the status at that time).
    if saga.replacement_status not in REPLACEMENT_PLACED | REPLACEMENT_FAILED:
        saga.replacement_status = event.status
    _replacement_progress(saga, now, timings, decision)


def _on_replacement_refused(
    saga: ReturnSaga,
    event: ReplacementOrderRefused,
    now: datetime,
    timings: SagaTimings,
    decision: Decision,
) -> None:
    if not _waiting_on(saga, Step.REPLACEMENT):
        _note(saga, decision, "ignored", message=event.TYPE)
        return
    _note(saga, decision, "replacement_refused", reason=event.reason)
    saga.replacement_status = "REFUSED"
    _replacement_failed(saga, now, timings, decision)


def _replacement_progress(
    saga: ReturnSaga, now: datetime, timings: SagaTimings, decision: Decision
) -> None:
    status = saga.replacement_status
    if not _waiting_on(saga, Step.REPLACEMENT):
        if (
            status in REPLACEMENT_FAILED
            and saga.exchange_status == ExchangeStatus.PLACED
            and not saga.replacement_lost
        ):
            # The customer was credited for a replacement that will not come.
            saga.replacement_lost = True
            _note(saga, decision, "replacement_lost", order_status=status)
            if saga.status == Status.CLOSED:
                _needs_attention(
                    saga,
                    f"replacement order {saga.replacement_order_id} was {status} after the"
                    " exchange: refund its value to the customer",
                    decision,
                )
        return
    if saga.replacement_total is None:
        return  # the order's status was seen before its creation answer; wait for it
    if status in REPLACEMENT_PLACED:
        saga.exchange_status = ExchangeStatus.PLACED
        _note(saga, decision, "replacement_placed", order_id=saga.replacement_order_id)
        _resume_if_parked(saga, Status.EXCHANGING, decision)
        _clear_step(saga)
        _settle(saga, now, timings, decision)
    elif status in REPLACEMENT_FAILED:
        _note(saga, decision, "replacement_failed", order_status=status)
        _replacement_failed(saga, now, timings, decision)


def _replacement_failed(
    saga: ReturnSaga, now: datetime, timings: SagaTimings, decision: Decision
) -> None:
    saga.exchange_status = ExchangeStatus.FAILED
    _resume_if_parked(saga, Status.EXCHANGING, decision)
    _clear_step(saga)
    _settle(saga, now, timings, decision)


# --- refund ----------------------------------------------------------------------------------


def _settle(saga: ReturnSaga, now: datetime, timings: SagaTimings, decision: Decision) -> None:
    """Everything is back and the exchange decided: refund what the customer is owed."""
    credit = saga.credit
    if saga.exchange_status == ExchangeStatus.PLACED and saga.replacement_total is not None:
        difference = credit - saga.replacement_total
        saga.refund_amount = max(difference, ZERO)
        saga.amount_due = max(-difference, ZERO)
    else:
        saga.refund_amount = credit
    _note(
        saga,
        decision,
        "refund_decided",
        credit=str(credit),
        replacement_total=str(saga.replacement_total)
        if saga.exchange_status == ExchangeStatus.PLACED
        else None,
        refund=str(saga.refund_amount),
        amount_due=str(saga.amount_due),
    )
    if saga.refund_amount == ZERO:
        saga.refund_status = RefundStatus.NOT_NEEDED
        _close(saga, decision)
        return
    if saga.paid_by_channel:
        saga.refund_status = RefundStatus.TO_BE_EXECUTED_BY_CHANNEL
        decision.send(
            ChannelRefundRequested(
                return_id=saga.return_id,
                order_id=saga.refund_order_id,
                channel=saga.channel,
                amount=saga.refund_amount,
                currency=saga.currency,
                reason=f"return {saga.return_id}",
                idempotency_key=saga.refund_key,
            )
        )
        _note(saga, decision, "refund_recorded_for_channel", channel=saga.channel)
        _close(saga, decision)
        return
    saga.refund_status = RefundStatus.REFUNDING
    _set_status(saga, Status.REFUNDING, decision)
    _begin_step(saga, Step.REFUND, now, timings, decision)


def _on_refunded(saga: ReturnSaga, event: PaymentRefunded, decision: Decision) -> None:
    if saga.refund_status == RefundStatus.REFUNDED or not _waiting_on(saga, Step.REFUND):
        _note(saga, decision, "ignored", message=event.TYPE, reason="not waiting for a refund")
        return
    saga.refunded_amount = event.amount
    saga.refund_status = RefundStatus.REFUNDED
    saga.last_refund_failure = None
    _note(
        saga,
        decision,
        "refunded",
        amount=str(event.amount),
        refunded_total=str(event.refunded_total),
        attempt=saga.attempt,
    )
    _resume_if_parked(saga, Status.REFUNDING, decision)
    _clear_step(saga)
    _close(saga, decision)


def _on_refund_failed(
    saga: ReturnSaga,
    event: PaymentRefundFailed,
    now: datetime,
    timings: SagaTimings,
    decision: Decision,
) -> None:
    if saga.step != Step.REFUND:
        _note(saga, decision, "ignored", message=event.TYPE, reason=event.reason)
        return
    saga.last_refund_failure = event.reason
    if event.reason in FINAL_REFUND_FAILURES:
        _note(saga, decision, "refund_failed", reason=event.reason, attempt=saga.attempt)
        _needs_attention(saga, f"payment refused the refund: {event.reason}", decision)
        return
    if saga.attempt >= timings.refund_max_attempts:
        _note(saga, decision, "refund_failed", reason=event.reason, attempt=saga.attempt)
        _needs_attention(
            saga, f"the refund failed {saga.attempt} times (last: {event.reason})", decision
        )
        return
    backoff = timings.refund_retry_backoff * (2 ** (saga.attempt - 1))
    saga.deadline_at = now + backoff
    _note(
        saga,
        decision,
        "refund_failed_retry_scheduled",
        reason=event.reason,
        attempt=saga.attempt,
        retry_at=saga.deadline_at.isoformat(),
    )


# --- helpers ---------------------------------------------------------------------------------

_STEP_STATUS = {
    Step.STOCK: Status.INSPECTED,
    Step.REPLACEMENT: Status.EXCHANGING,
    Step.REFUND: Status.REFUNDING,
}


def _note(saga: ReturnSaga, decision: Decision, event: str, **detail: Any) -> None:
    decision.timeline.append(TimelineEntry(event, str(saga.status), detail))


def _set_status(saga: ReturnSaga, status: Status, decision: Decision) -> None:
    if saga.status != status:
        decision.transitions.append((saga.status, status))
        previous, saga.status = saga.status, status
        _note(saga, decision, "status_changed", previous=str(previous), status=str(status))


def _waiting_on(saga: ReturnSaga, step: Step) -> bool:
    return saga.step == step or (saga.status == Status.NEEDS_ATTENTION and saga.parked_step == step)


def _resume_if_parked(saga: ReturnSaga, status: Status, decision: Decision) -> None:
    """A late answer of the step the return was parked on: carry on as if it came in time."""
    if saga.status == Status.NEEDS_ATTENTION:
        _note(saga, decision, "late_answer_resumed", step=str(saga.parked_step))
        saga.parked_step = None
        saga.reason = None
        if saga.refund_status == RefundStatus.FAILED:
            saga.refund_status = RefundStatus.REFUNDING
        _set_status(saga, status, decision)


def _begin_step(
    saga: ReturnSaga, step: Step, now: datetime, timings: SagaTimings, decision: Decision
) -> None:
    saga.step = step
    saga.attempt = 1
    saga.deadline_at = now + timings.timeout(step)
    decision.send(*_step_commands(saga, step))


def _clear_step(saga: ReturnSaga) -> None:
    saga.step = None
    saga.attempt = 0
    saga.deadline_at = None


def _step_commands(saga: ReturnSaga, step: Step) -> list[Contract]:
    if step == Step.STOCK:
        return _stock_commands(saga)
    if step == Step.REPLACEMENT:
        return [
            CreateReplacementOrder(
                return_id=saga.return_id,
                original_order_id=saga.order_id,
                lines=tuple(
                    ReplacementLine(sku=i.sku, quantity=i.quantity, unit_price=i.unit_price)
                    for i in saga.exchange
                ),
            )
        ]
    assert saga.refund_amount is not None
    return [
        RefundPayment(
            order_id=saga.refund_order_id,
            amount=saga.refund_amount,
            currency=saga.currency,
            reason=f"return {saga.return_id}",
            idempotency_key=saga.refund_key,
            return_id=saga.return_id,
        )
    ]


def _stock_commands(saga: ReturnSaga) -> list[Contract]:
    """Restock the resellable units, write off the damaged ones: what is still pending."""
    assert saga.location is not None

    def units(condition: Condition) -> dict[str, Any]:
        return {
            "return_id": saga.return_id,
            "order_id": saga.order_id,
            "location": saga.location,
            "lines": tuple(
                SkuQuantity(sku=i.sku, quantity=i.quantity)
                for i in saga.received
                if i.condition == condition
            ),
        }

    commands: list[Contract] = []
    if StockTask.RESTOCK in saga.stock_pending:
        commands.append(RestockReturnedItems(**units(Condition.RESELLABLE)))
    if StockTask.WRITE_OFF in saga.stock_pending:
        commands.append(
            WriteOffReturnedItems(
                **units(Condition.DAMAGED), reason=f"damaged on return {saga.return_id}"
            )
        )
    return commands


def _close(saga: ReturnSaga, decision: Decision) -> None:
    if saga.exchange_status == ExchangeStatus.PLACED:
        _set_status(saga, Status.EXCHANGED, decision)
    elif saga.refund_status in {RefundStatus.REFUNDED, RefundStatus.TO_BE_EXECUTED_BY_CHANNEL}:
        _set_status(saga, Status.REFUNDED, decision)
    if saga.replacement_lost:
        _needs_attention(
            saga,
            f"replacement order {saga.replacement_order_id} was {saga.replacement_status} after"
            " the exchange: refund its value to the customer",
            decision,
        )
        return
    _set_status(saga, Status.CLOSED, decision)
    _note(saga, decision, "closed", refund=str(saga.refund_amount), status=str(saga.refund_status))


def _needs_attention(saga: ReturnSaga, reason: str, decision: Decision) -> None:
    saga.parked_step = saga.step
    _clear_step(saga)
    saga.reason = reason
    if saga.parked_step == Step.REFUND:
        saga.refund_status = RefundStatus.FAILED
    _set_status(saga, Status.NEEDS_ATTENTION, decision)
    _note(saga, decision, "needs_attention", reason=reason)
    decision.send(
        OperatorAlert(
            order_id=saga.order_id,
            kind="return_needs_attention",
            message=f"return {saga.return_id}: {reason}",
        )
    )
