"""The order saga and short picks (a bin found empty on the floor): the missing units leave
their fulfilment and are re-allocated from other locations (ReallocateStock, AddFulfilment),
or cancelled from the order by policy or when no location has them — never captured; each step
has a deadline; duplicates and late answers change nothing they should not."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from decimal import Decimal

import pytest

from services.order_intake.domain import saga as s
from services.order_intake.domain.saga import (
    OrderSaga,
    SagaLine,
    SagaPolicy,
    ShortPickPolicy,
    ShortState,
    Status,
    Step,
)
from shared.contracts.common import Allocation, SkuQuantity
from shared.contracts.fulfilment import (
    FulfilmentCancelled,
    FulfilmentCreated,
    FulfilmentRef,
    FulfilmentsAdded,
    ShortPick,
)
from shared.contracts.inventory import (
    ShortPickWrittenOff,
    StockReallocated,
    StockReallocationFailed,
    StockReleased,
)
from shared.contracts.order_intake import (
    AddFulfilment,
    CancelFulfilment,
    CapturePayment,
    CommitStock,
    CustomerNotification,
    OperatorAlert,
    ReallocateStock,
    ReleaseStock,
    VoidPayment,
    WriteOffShortPick,
)
from shared.contracts.payment import PaymentCaptureFailed, PaymentVoided
from shared.money import quantum, round_money
from tests.unit.order_intake.test_saga import ORDER, POLICY, T0, at, kinds, new_saga
from tests.unit.order_intake.test_saga_parcels import (
    captured,
    delivered,
    of,
    one_fulfilment_saga,
    parcel,
)

SHIP_AVAILABLE = replace(POLICY, short_pick=ShortPickPolicy.SHIP_AVAILABLE)


def short_pick(
    sku: str = "A",
    missing: int = 1,
    *,
    fid: str = "f1",
    location: str = "berlin",
    bin_code: str = "A-01",
    short_id: str | None = "s1",
) -> ShortPick:
    return ShortPick(
        order_id=ORDER,
        fulfilment_id=fid,
        location=location,
        pick_list_id="pl-1",
        sku=sku,
        missing=missing,
        bin=bin_code,
        short_id=short_id,
    )


def reallocated(short_id: str = "s1", *allocations: Allocation) -> StockReallocated:
    return StockReallocated(
        order_id=ORDER,
        short_id=short_id,
        sku=allocations[0].sku if allocations else "A",
        location="berlin",
        written_off=sum(a.quantity for a in allocations),
        allocations=allocations,
    )


def to_hamburg(sku: str = "A", quantity: int = 1, line: str = "l1") -> Allocation:
    return Allocation(line_id=line, sku=sku, location="hamburg", quantity=quantity)


def added(short_id: str, fid: str, *lines: tuple[str, int]) -> FulfilmentsAdded:
    return FulfilmentsAdded(
        order_id=ORDER,
        short_id=short_id,
        fulfilments=(
            FulfilmentRef(
                fulfilment_id=fid,
                location="hamburg",
                lines=tuple(SkuQuantity(sku=sku, quantity=n) for sku, n in lines),
            ),
        ),
    )


def failed(short_id: str = "s1", sku: str = "A", requested: int = 1) -> StockReallocationFailed:
    return StockReallocationFailed(
        order_id=ORDER,
        short_id=short_id,
        sku=sku,
        location="berlin",
        written_off=requested,
        requested=requested,
        available=0,
        reason="insufficient_stock",
    )


def events(decision: s.Decision) -> list[str]:
    return [e.event for e in decision.timeline]


def notices_of(decision: s.Decision, kind: str) -> list[CustomerNotification]:
    return [n for n in of(decision, CustomerNotification) if n.kind == kind]


def captures_until_completed(saga: OrderSaga, *decisions: s.Decision) -> list[CapturePayment]:
    """The captures the decisions asked for, answered; every shipment delivered."""
    captures = [c for d in decisions for c in of(d, CapturePayment)]
    running = Decimal(0)
    for capture in captures:
        running += capture.amount
        answer = captured(capture.shipment_id, capture.amount, running, fid=capture.fulfilment_id)
        s.handle(saga, answer, T0, POLICY)
    for f in list(saga.fulfilments.values()):
        for shipment_id in list(f.shipments):
            s.handle(saga, delivered(f.fulfilment_id, shipment_id), T0, POLICY)
    return captures


# --- policy reallocate ----------------------------------------------------------------------


def test_a_short_is_reallocated_to_another_location_and_the_order_completes():
    saga = one_fulfilment_saga()  # f1 at berlin: 3 x A at 10, 1 x B at 5; total 33.33
    first = s.handle(saga, short_pick("A", 1), T0, POLICY)
    assert kinds(first) == [ReallocateStock]
    [command] = first.messages
    assert isinstance(command, ReallocateStock)
    assert (command.short_id, command.fulfilment_id, command.location) == ("s1", "f1", "berlin")
    assert (command.sku, command.quantity, command.bin) == ("A", 1, "A-01")
    assert "short_pick" in events(first) and "reallocating" in events(first)
    assert saga.status == Status.FULFILLING, "the status does not change"
    assert saga.step == Step.REALLOCATE_STOCK
    assert saga.deadline_at == T0 + POLICY.stock_timeout
    assert saga.fulfilments["f1"].unshipped() == {"A": 2, "B": 1}

    second = s.handle(saga, reallocated("s1", to_hamburg()), T0, POLICY)
    assert kinds(second) == [AddFulfilment]
    [add] = second.messages
    assert isinstance(add, AddFulfilment)
    assert add.short_id == "s1" and add.allocations == (to_hamburg(),)
    assert add.shipping_address == saga.shipping_address
    assert saga.step == Step.ADD_FULFILMENT
    assert saga.deadline_at == T0 + POLICY.fulfilment_timeout
    assert "stock_reallocated" in events(second)

    third = s.handle(saga, added("s1", "f9", ("A", 1)), T0, POLICY)
    assert third.messages == []
    assert "fulfilment_added" in events(third) and "step_finished" in events(third)
    assert saga.step is None and saga.deadline_at is None
    assert saga.shorts["s1"].state == ShortState.REALLOCATED
    assert saga.fulfilments["f9"].reallocated_for_short == "s1"

    # berlin ships what it has (complete), hamburg the re-allocated unit.
    from_berlin = s.handle(saga, parcel("p1", {"A": 2, "B": 1}, complete=True), T0, POLICY)
    assert saga.status == Status.PARTIALLY_SHIPPED
    assert saga.fulfilments["f1"].shipped
    from_hamburg = s.handle(
        saga, parcel("p9", {"A": 1}, fid="f9", location="hamburg", complete=True), T0, POLICY
    )
    assert saga.status == Status.SHIPPED
    [commit] = of(from_hamburg, CommitStock)
    assert (commit.fulfilment_id, commit.location) == ("f9", "hamburg")
    assert ReleaseStock not in kinds(from_hamburg), "nothing left reserved"
    captures = captures_until_completed(saga, from_berlin, from_hamburg)
    assert sum(c.amount for c in captures) == saga.total
    assert saga.status == Status.COMPLETED


def test_nothing_counts_as_shipped_while_a_short_waits_for_its_new_fulfilment():
    saga = one_fulfilment_saga()
    s.handle(saga, short_pick("A", 1), T0, POLICY)
    # The rest leaves before inventory has answered: the order is not shipped yet, and the
    # parcel captures its share, not the rest of the total.
    decision = s.handle(saga, parcel("p1", {"A": 2, "B": 1}, complete=True), T0, POLICY)
    assert saga.status == Status.PARTIALLY_SHIPPED
    [capture] = of(decision, CapturePayment)
    assert capture.amount == round_money(Decimal("33.33") * 25 / 35, "EUR") == Decimal("23.81")
    assert notices_of(decision, "shipped")[0].data["more_to_follow"] is True
    s.handle(saga, reallocated("s1", to_hamburg()), T0, POLICY)
    s.handle(saga, added("s1", "f9", ("A", 1)), T0, POLICY)
    last = s.handle(saga, parcel("p9", {"A": 1}, fid="f9", location="hamburg"), T0, POLICY)
    assert saga.status == Status.SHIPPED
    [rest] = of(last, CapturePayment)
    assert capture.amount + rest.amount == saga.total


def test_a_second_short_waits_until_the_first_is_settled():
    saga = at(new_saga(), Status.FULFILLING)  # f1: 2 x A at berlin, f2: 1 x B at hamburg
    s.handle(saga, short_pick("A", 1, short_id="s1"), T0, POLICY)
    waits = s.handle(
        saga, short_pick("B", 1, fid="f2", location="hamburg", short_id="s2"), T0, POLICY
    )
    assert waits.messages == [] and "short_waits" in events(waits)
    assert saga.shorts["s2"].state == ShortState.WAITING
    assert saga.fulfilments["f2"].ended_short and saga.fulfilments["f2"].cancelled
    s.handle(saga, reallocated("s1", to_hamburg()), T0, POLICY)
    decision = s.handle(saga, added("s1", "f9", ("A", 1)), T0, POLICY)
    assert kinds(decision) == [ReallocateStock]
    assert decision.messages[0].short_id == "s2"  # type: ignore[attr-defined]
    assert saga.step == Step.REALLOCATE_STOCK


def test_no_other_location_has_them_so_the_units_are_cancelled_and_never_captured():
    saga = one_fulfilment_saga()  # total 33.33 over 35 of goods
    s.handle(saga, short_pick("A", 1), T0, POLICY)
    decision = s.handle(saga, failed("s1", "A", 1), T0, POLICY)
    assert WriteOffShortPick not in kinds(decision), "inventory wrote them off already"
    [notice] = notices_of(decision, "items_unavailable")
    value = Decimal("33.33") - round_money(Decimal("33.33") * 25 / 35, "EUR")
    assert notice.data["lines"] == [{"sku": "A", "quantity": 1}]
    assert Decimal(notice.data["amount"]) == value == Decimal("9.52")
    assert saga.step is None and saga.status == Status.FULFILLING
    assert s.capture_target(saga) == saga.total - value
    last = s.handle(saga, parcel("p1", {"A": 2, "B": 1}, complete=True), T0, POLICY)
    assert saga.status == Status.SHIPPED
    assert ReleaseStock not in kinds(last), "the short units were written off, not released"
    captures = captures_until_completed(saga, last)
    assert sum(c.amount for c in captures) == saga.total - value
    assert saga.status == Status.COMPLETED


def test_a_failed_reallocation_after_the_rest_shipped_ships_the_order():
    saga = one_fulfilment_saga()
    s.handle(saga, short_pick("A", 1), T0, POLICY)
    rest = s.handle(saga, parcel("p1", {"A": 2, "B": 1}, complete=True), T0, POLICY)
    assert saga.status == Status.PARTIALLY_SHIPPED
    decision = s.handle(saga, failed("s1", "A", 1), T0, POLICY)
    assert saga.status == Status.SHIPPED
    assert saga.sla_deadline_at == T0 + POLICY.delivery_sla
    assert CapturePayment not in kinds(decision), "the parcel's share is already the target"
    captures = captures_until_completed(saga, rest)
    assert sum(c.amount for c in captures) == s.capture_target(saga) < saga.total
    assert saga.status == Status.COMPLETED


# --- policy ship_available --------------------------------------------------------------------


def test_ship_available_cancels_the_missing_units_writes_them_off_and_tells_the_customer():
    saga = one_fulfilment_saga()
    decision = s.handle(saga, short_pick("A", 2), T0, SHIP_AVAILABLE)
    assert kinds(decision) == [CustomerNotification, WriteOffShortPick]
    [write_off] = of(decision, WriteOffShortPick)
    assert (write_off.short_id, write_off.location, write_off.quantity) == ("s1", "berlin", 2)
    [notice] = notices_of(decision, "items_unavailable")
    assert notice.data["lines"] == [{"sku": "A", "quantity": 2}]
    assert saga.step is None and saga.status == Status.FULFILLING
    answer = ShortPickWrittenOff(
        order_id=ORDER, short_id="s1", sku="A", location="berlin", written_off=2
    )
    assert "stock_written_off" in events(s.handle(saga, answer, T0, SHIP_AVAILABLE))
    last = s.handle(saga, parcel("p1", {"A": 1, "B": 1}, complete=True), T0, SHIP_AVAILABLE)
    assert saga.status == Status.SHIPPED
    [capture] = of(last, CapturePayment)
    value = Decimal(notice.data["amount"])
    assert capture.amount == saga.total - value == round_money(Decimal("33.33") * 15 / 35, "EUR")


def test_a_fulfilment_with_every_unit_short_ends_and_the_rest_of_the_order_completes():
    saga = at(new_saga(), Status.FULFILLING)  # f1: 2 x A at berlin, f2: 1 x B at hamburg
    decision = s.handle(saga, short_pick("B", 1, fid="f2", location="hamburg"), T0, SHIP_AVAILABLE)
    assert "fulfilment_ended_short" in events(decision)
    assert saga.fulfilments["f2"].ended_short
    last = s.handle(saga, parcel(None, {"A": 2}, complete=True), T0, SHIP_AVAILABLE)
    assert saga.status == Status.SHIPPED
    captures = captures_until_completed(saga, last)
    assert [c.amount for c in captures] == [Decimal("20.00")]
    assert saga.status == Status.COMPLETED, "the ended fulfilment is not waited for"


def test_an_order_none_of_whose_units_can_ship_is_cancelled():
    saga = at(new_saga(), Status.FULFILLING)
    s.handle(
        saga, short_pick("B", 1, fid="f2", location="hamburg", short_id="s2"), T0, SHIP_AVAILABLE
    )
    decision = s.handle(saga, short_pick("A", 2, short_id="s1"), T0, SHIP_AVAILABLE)
    assert kinds(decision) == [CustomerNotification, WriteOffShortPick, CancelFulfilment]
    assert saga.status == Status.CANCELLING
    answer = FulfilmentCancelled(order_id=ORDER, reason="x", cancelled=("f1", "f2"))
    assert kinds(s.handle(saga, answer, T0, SHIP_AVAILABLE)) == [VoidPayment, ReleaseStock]
    s.handle(
        saga,
        PaymentVoided(order_id=ORDER, payment_id="p1", voided=True, reason="x"),
        T0,
        SHIP_AVAILABLE,
    )
    s.handle(saga, StockReleased(order_id=ORDER), T0, SHIP_AVAILABLE)
    assert saga.status == Status.CANCELLED
    assert saga.reason == "no unit of the order could be found"


# --- duplicates, late and odd answers -----------------------------------------------------------


def test_duplicates_change_nothing():
    saga = one_fulfilment_saga()
    s.handle(saga, short_pick("A", 1), T0, POLICY)
    again = s.handle(saga, short_pick("A", 1), T0, POLICY)
    assert again.messages == [] and saga.fulfilments["f1"].unshipped() == {"A": 2, "B": 1}
    s.handle(saga, reallocated("s1", to_hamburg()), T0, POLICY)
    assert s.handle(saga, reallocated("s1", to_hamburg()), T0, POLICY).messages == []
    s.handle(saga, added("s1", "f9", ("A", 1)), T0, POLICY)
    assert s.handle(saga, added("s1", "f9", ("A", 1)), T0, POLICY).messages == []
    assert s.handle(saga, failed("s1"), T0, POLICY).messages == []
    assert saga.shorts["s1"].state == ShortState.REALLOCATED
    assert len(saga.fulfilments) == 2


def test_a_short_pick_without_an_id_is_named_by_its_list_bin_and_sku():
    saga = one_fulfilment_saga()
    s.handle(saga, short_pick("A", 1, short_id=None), T0, POLICY)
    assert s.handle(saga, short_pick("A", 1, short_id=None), T0, POLICY).messages == []
    [recorded] = saga.shorts
    assert recorded == short_pick("A", 1, short_id=None).short_key


def test_a_short_of_an_unknown_or_finished_fulfilment_is_only_on_the_timeline():
    saga = one_fulfilment_saga()
    unknown = s.handle(saga, short_pick("A", 1, fid="nope"), T0, POLICY)
    assert unknown.messages == [] and events(unknown) == ["short_pick", "ignored"]
    s.handle(saga, parcel("p1", {"A": 3, "B": 1}, complete=True), T0, POLICY)
    late = s.handle(saga, short_pick("A", 1, short_id="s-late"), T0, POLICY)
    assert late.messages == [] and saga.shorts == {}


def test_a_short_of_more_than_is_left_parks_the_order():
    saga = one_fulfilment_saga()
    decision = s.handle(saga, short_pick("B", 2), T0, POLICY)
    assert kinds(decision) == [OperatorAlert]
    assert saga.status == Status.NEEDS_ATTENTION and saga.shorts == {}


def test_a_cancel_during_the_reallocation_waits_for_its_answer():
    saga = one_fulfilment_saga()
    s.handle(saga, short_pick("A", 1), T0, POLICY)
    asked = s.request_cancel(saga, "customer", T0, POLICY)
    assert asked.messages == [] and saga.cancel_requested == "customer"
    decision = s.handle(saga, reallocated("s1", to_hamburg()), T0, POLICY)
    assert kinds(decision) == [CancelFulfilment], "no AddFulfilment: the order is cancelled"
    assert saga.status == Status.CANCELLING
    answer = FulfilmentCancelled(order_id=ORDER, reason="customer", cancelled=("f1",))
    undo = s.handle(saga, answer, T0, POLICY)
    assert kinds(undo) == [VoidPayment, ReleaseStock], "the release takes hamburg's units too"


def test_a_short_while_cancelling_is_only_written_off():
    saga = one_fulfilment_saga()
    s.request_cancel(saga, "customer", T0, POLICY)
    assert saga.status == Status.CANCELLING
    decision = s.handle(saga, short_pick("A", 1), T0, POLICY)
    assert kinds(decision) == [WriteOffShortPick]
    assert saga.shorts["s1"].state == ShortState.CANCELLED


def test_a_late_reallocation_after_the_order_was_cancelled_is_released():
    saga = one_fulfilment_saga()
    s.handle(saga, short_pick("A", 1), T0, POLICY)
    for attempt in range(POLICY.max_attempts):
        s.on_deadline(saga, T0 + POLICY.stock_timeout * (attempt + 1), POLICY)
    assert saga.status == Status.NEEDS_ATTENTION
    s.operator_compensate(saga, T0, POLICY)
    assert saga.status == Status.CANCELLING
    answer = FulfilmentCancelled(order_id=ORDER, reason="x", cancelled=("f1",))
    s.handle(saga, answer, T0, POLICY)
    s.handle(
        saga, PaymentVoided(order_id=ORDER, payment_id="p1", voided=True, reason="x"), T0, POLICY
    )
    s.handle(saga, StockReleased(order_id=ORDER), T0, POLICY)
    assert saga.status == Status.CANCELLED
    late = s.handle(saga, reallocated("s1", to_hamburg()), T0, POLICY)
    assert kinds(late) == [ReleaseStock]


# --- deadlines ------------------------------------------------------------------------------


@pytest.mark.parametrize("step", [Step.REALLOCATE_STOCK, Step.ADD_FULFILMENT])
def test_a_short_step_re_sends_the_same_command_then_parks_the_order(step: Step):
    saga = one_fulfilment_saga()
    s.handle(saga, short_pick("A", 1), T0, POLICY)
    if step == Step.ADD_FULFILMENT:
        s.handle(saga, reallocated("s1", to_hamburg()), T0, POLICY)
    timeout = POLICY.timeout(step)
    sent = s._step_commands(saga, step)
    now = T0
    for attempt in range(2, POLICY.max_attempts + 1):
        now += timeout
        decision = s.on_deadline(saga, now, POLICY)
        assert decision.messages == sent, "the same command, the same short id"
        assert saga.attempt == attempt and saga.step == step
    now += timeout
    decision = s.on_deadline(saga, now, POLICY)
    assert kinds(decision) == [OperatorAlert]
    assert saga.status == Status.NEEDS_ATTENTION and saga.parked_step == step
    assert "1 x A short at berlin" in (saga.reason or "")
    service = "inventory" if step == Step.REALLOCATE_STOCK else "fulfilment"
    assert (saga.reason or "").startswith(service)

    # A late answer is applied underneath the parking; an operator's retry resumes.
    if step == Step.REALLOCATE_STOCK:
        late = s.handle(saga, reallocated("s1", to_hamburg()), now, POLICY)
        assert kinds(late) == [AddFulfilment]
        assert saga.status == Status.NEEDS_ATTENTION
        assert saga.parked_step == Step.ADD_FULFILMENT
    retry = s.operator_retry(saga, now, POLICY)
    assert kinds(retry) == [AddFulfilment]
    assert saga.status == Status.FULFILLING and saga.step == Step.ADD_FULFILMENT
    s.handle(saga, added("s1", "f9", ("A", 1)), now, POLICY)
    assert saga.step is None and saga.status == Status.FULFILLING


def test_an_old_saga_without_short_picks_loads():
    saga = one_fulfilment_saga()
    stored = saga.model_dump(mode="json")
    stored.pop("shorts")
    for f in stored["fulfilments"].values():
        for key in ("short", "ended_short", "reallocated_for_short"):
            f.pop(key)
    loaded = OrderSaga.model_validate(stored)
    assert loaded.shorts == {} and loaded.fulfilments["f1"].short == ()


def test_the_policy_comes_from_the_settings():
    from services.order_intake.orders.service import policy_from
    from services.order_intake.settings import OrderIntakeSettings

    assert policy_from(OrderIntakeSettings()).short_pick == ShortPickPolicy.REALLOCATE
    chosen = OrderIntakeSettings(saga_short_pick_policy="ship_available")
    assert policy_from(chosen).short_pick == ShortPickPolicy.SHIP_AVAILABLE


# --- property: never captured for goods not shipped --------------------------------------------


def _order(rng: random.Random, currency: str) -> tuple[OrderSaga, list[FulfilmentRef]]:
    lines = []
    for index in range(rng.randint(1, 4)):
        quantity = rng.randint(1, 5)
        unit = round_money(Decimal(rng.randint(1, 20_000)) / 100, currency)
        lines.append(
            SagaLine(
                line_id=f"l{index}",
                sku=f"S{rng.randint(0, 3)}",
                quantity=quantity,
                unit_price=unit,
                line_total=unit * quantity,
            )
        )
    subtotal = sum((li.line_total for li in lines), Decimal(0))
    total = round_money(
        max(subtotal + Decimal(rng.randint(-500, 3000)) / 100, Decimal(1)), currency
    )
    saga = new_saga(currency=currency, total=total, lines=tuple(lines))
    units = Counter[str]()
    for li in lines:
        units[li.sku] += li.quantity
    refs: list[FulfilmentRef] = []
    for index, (sku, quantity) in enumerate(sorted(units.items())):
        refs.append(
            FulfilmentRef(
                fulfilment_id=f"f{index}",
                location=f"loc{index % 2}",
                lines=(SkuQuantity(sku=sku, quantity=quantity),),
            )
        )
    return saga, refs


def _exact_share(saga: OrderSaga, units: dict[str, int]) -> Decimal:
    subtotal = sum((li.line_total for li in saga.lines), Decimal(0))
    by_sku: dict[str, tuple[Decimal, int]] = {}
    for li in saga.lines:
        value, quantity = by_sku.get(li.sku, (Decimal(0), 0))
        by_sku[li.sku] = (value + li.line_total, quantity + li.quantity)
    value = sum((by_sku[k][0] * n / by_sku[k][1] for k, n in units.items()), Decimal(0))
    return saga.total * value / subtotal


@pytest.mark.parametrize("currency", ["EUR", "JPY", "BHD"])
@pytest.mark.parametrize("policy", [POLICY, SHIP_AVAILABLE], ids=["reallocate", "ship_available"])
def test_captures_add_up_to_the_total_less_the_missing_units_value(
    currency: str, policy: SagaPolicy
):
    rng = random.Random(f"shorts-{currency}-{policy.short_pick}")
    for _ in range(150):
        saga, refs = _order(rng, currency)
        saga.status, saga.step = Status.CONFIRMED, Step.CREATE_FULFILMENT
        saga.stock_reserved = saga.payment_authorized = True
        s.handle(saga, FulfilmentCreated(order_id=ORDER, fulfilments=tuple(refs)), T0, policy)
        decisions: list[s.Decision] = []
        missing: Counter[str] = Counter()
        new = 0
        # Each fulfilment: maybe a short first, then what is left leaves in one or two parcels.
        for ref in refs:
            [line] = ref.lines
            short = rng.randint(0, line.quantity) if rng.random() < 0.6 else 0
            if short:
                short_id = f"s-{ref.fulfilment_id}"
                event = short_pick(
                    line.sku, short, fid=ref.fulfilment_id, location=ref.location, short_id=short_id
                )
                decisions.append(s.handle(saga, event, T0, policy))
                if policy.short_pick == ShortPickPolicy.REALLOCATE:
                    if rng.random() < 0.5:
                        decisions.append(
                            s.handle(saga, failed(short_id, line.sku, short), T0, policy)
                        )
                        missing[line.sku] += short
                    else:
                        new += 1
                        fid = f"n{new}"
                        there = Allocation(line_id="l0", sku=line.sku, location="x", quantity=short)
                        s.handle(saga, reallocated(short_id, there), T0, policy)
                        decisions.append(
                            s.handle(saga, added(short_id, fid, (line.sku, short)), T0, policy)
                        )
                        decisions.append(
                            s.handle(
                                saga,
                                parcel(f"{fid}-p", {line.sku: short}, fid=fid, location="x"),
                                T0,
                                policy,
                            )
                        )
                else:
                    missing[line.sku] += short
            left = line.quantity - short
            if left:
                first = rng.randint(1, left)
                for n, pid in ((first, "a"), (left - first, "b")):
                    if n:
                        event = parcel(
                            f"{ref.fulfilment_id}-{pid}",
                            {line.sku: n},
                            fid=ref.fulfilment_id,
                            location=ref.location,
                        )
                        decisions.append(s.handle(saga, event, T0, policy))
        context = f"{saga.total} {currency}, missing {dict(missing)}"
        captures = [c for d in decisions for c in of(d, CapturePayment)]
        if sum(missing.values()) == sum(li.quantity for li in saga.lines):
            assert saga.status == Status.CANCELLING and captures == [], context
            continue
        assert saga.status == Status.SHIPPED, context
        value = sum((sh.value or Decimal(0) for sh in saga.shorts.values()), Decimal(0))
        assert sum(c.amount for c in captures) == saga.total - value, context
        assert s.capture_target(saga) == saga.total - value, context
        if missing:
            # The missing units' value is their share of the total, give or take a rounding.
            exact = _exact_share(saga, dict(missing))
            assert abs(value - exact) <= quantum(currency) * len(saga.shorts), context
        else:
            assert value == 0 and sum(c.amount for c in captures) == saga.total, context
        assert all(c.amount > 0 for c in captures), context


def test_a_short_pick_while_parked_is_applied_underneath():
    saga = at(new_saga(), Status.FULFILLING)  # f1: 2 x A at berlin, f2: 1 x B at hamburg
    s.handle(saga, parcel(None, {"B": 1}, fid="f2", location="hamburg", complete=True), T0, POLICY)
    failure = s.handle(
        saga,
        PaymentCaptureFailed(order_id=ORDER, fulfilment_id="f2", reason="x"),
        T0,
        POLICY,
    )
    assert kinds(failure) == [OperatorAlert] and saga.status == Status.NEEDS_ATTENTION
    decision = s.handle(saga, short_pick("A", 1), T0, POLICY)
    assert kinds(decision) == [ReallocateStock], "parking never drops a fact"
    assert saga.status == Status.NEEDS_ATTENTION
    assert (saga.parked_from, saga.parked_step) == (Status.PARTIALLY_SHIPPED, Step.REALLOCATE_STOCK)
    assert saga.deadline_at is None, "an operator is on it"
    s.handle(saga, reallocated("s1", to_hamburg()), T0, POLICY)
    assert saga.parked_step == Step.ADD_FULFILMENT
