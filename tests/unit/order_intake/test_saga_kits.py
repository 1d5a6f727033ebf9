"""The order saga with kits: inventory reserves a kit's components (StockReserved names the
kit and its composition), fulfilment ships those components, and the saga values them as the
kit's share: parcels of components capture exactly the total, a component short cancels its
share of the kit's value."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal

import pytest

from services.order_intake.domain import saga as s
from services.order_intake.domain.saga import (
    OrderSaga,
    SagaLine,
    SagaPolicy,
    ShortPickPolicy,
    Status,
)
from shared.contracts.common import Allocation, ShortLine, SkuQuantity
from shared.contracts.fulfilment import FulfilmentCreated, FulfilmentRef
from shared.contracts.inventory import ShortPickWrittenOff, StockReservationFailed, StockReserved
from shared.contracts.order_intake import CapturePayment, CustomerNotification
from shared.contracts.payment import PaymentAuthorized
from shared.money import round_money
from tests.unit.order_intake.test_saga import ORDER, POLICY, T0, new_saga
from tests.unit.order_intake.test_saga_parcels import of, parcel
from tests.unit.order_intake.test_saga_short_picks import (
    captures_until_completed,
    notices_of,
    short_pick,
)

SHIP_AVAILABLE = replace(POLICY, short_pick=ShortPickPolicy.SHIP_AVAILABLE)


def line(line_id: str, sku: str, quantity: int, unit_price: str) -> SagaLine:
    price = Decimal(unit_price)
    return SagaLine(
        line_id=line_id,
        sku=sku,
        quantity=quantity,
        unit_price=price,
        line_total=price * quantity,
    )


def kit_part(
    kit_line: str, kit: str, component: str, per_kit: int, location: str, quantity: int
) -> Allocation:
    return Allocation(
        line_id=f"{kit_line}/{component}",
        sku=component,
        location=location,
        quantity=quantity,
        kit_sku=kit,
        kit_line_id=kit_line,
        per_kit=per_kit,
    )


def fulfilling(
    lines: tuple[SagaLine, ...],
    allocations: tuple[Allocation, ...],
    total: str,
    policy: SagaPolicy = POLICY,
) -> OrderSaga:
    """A saga of the lines reserved as the allocations say, authorised, with one fulfilment per
    location (`f-<location>`) of the allocated SKUs."""
    saga = new_saga(total=Decimal(total), lines=lines)
    s.start(saga, T0, policy)
    s.handle(saga, StockReserved(order_id=ORDER, allocations=allocations), T0, policy)
    authorised = PaymentAuthorized(
        order_id=ORDER, payment_id="p1", amount=saga.total, currency="EUR", gateway_reference="g"
    )
    s.handle(saga, authorised, T0, policy)
    per_location: dict[str, dict[str, int]] = {}
    for a in allocations:
        units = per_location.setdefault(a.location, {})
        units[a.sku] = units.get(a.sku, 0) + a.quantity
    refs = tuple(
        FulfilmentRef(
            fulfilment_id=f"f-{location}",
            location=location,
            lines=tuple(SkuQuantity(sku=sku, quantity=n) for sku, n in sorted(units.items())),
        )
        for location, units in sorted(per_location.items())
    )
    s.handle(saga, FulfilmentCreated(order_id=ORDER, fulfilments=refs), T0, policy)
    assert saga.status == Status.FULFILLING
    return saga


def gift_order(policy: SagaPolicy = POLICY) -> OrderSaga:
    """1 x GIFT at 30 (2 x MUG + 1 x SPOON) and 1 x TEA at 10, subtotal 40, total 44.44
    (shipping and tax); the mugs and the tea at berlin, the spoon at hamburg."""
    return fulfilling(
        (line("l1", "GIFT", 1, "30"), line("l2", "TEA", 1, "10")),
        (
            kit_part("l1", "GIFT", "MUG", 2, "berlin", 2),
            kit_part("l1", "GIFT", "SPOON", 1, "hamburg", 1),
            Allocation(line_id="l2", sku="TEA", location="berlin", quantity=1),
        ),
        "44.44",
        policy,
    )


def test_the_saga_learns_each_kits_composition_from_the_reservation():
    saga = gift_order()
    assert saga.kits == {"GIFT": {"MUG": 2, "SPOON": 1}}
    assert s.ordered_units(saga) == {"MUG": 2, "SPOON": 1, "TEA": 1}
    # A kit unit's value is split over its component units by their count: 10 a piece here.
    assert s._value_of(saga, {"MUG": 1}) == Decimal(10)
    assert s._value_of(saga, {"MUG": 2, "SPOON": 1, "TEA": 1}) == Decimal(40)


def test_an_order_without_kits_is_valued_as_before():
    saga = new_saga()
    s.start(saga, T0, POLICY)
    allocations = (
        Allocation(line_id="l1", sku="A", location="berlin", quantity=2),
        Allocation(line_id="l2", sku="B", location="hamburg", quantity=1),
    )
    s.handle(saga, StockReserved(order_id=ORDER, allocations=allocations), T0, POLICY)
    assert saga.kits == {}
    assert s.ordered_units(saga) == {"A": 2, "B": 1}


def test_a_saga_stored_before_kits_loads_without_them():
    stored = new_saga().model_dump(mode="json")
    stored.pop("kits")
    assert OrderSaga.model_validate(stored).kits == {}


def test_two_parcels_of_components_capture_exactly_the_total():
    saga = gift_order()
    first = s.handle(saga, parcel("p1", {"MUG": 2, "TEA": 1}, fid="f-berlin"), T0, POLICY)
    [capture] = of(first, CapturePayment)
    # The mugs are 20 of the kit's 30, the tea 10: 30 of 40.
    assert capture.amount == round_money(Decimal("44.44") * 30 / 40, "EUR") == Decimal("33.33")
    assert saga.status == Status.PARTIALLY_SHIPPED  # f-berlin done; f-hamburg to come
    last = s.handle(
        saga, parcel("p2", {"SPOON": 1}, fid="f-hamburg", location="hamburg"), T0, POLICY
    )
    captures = captures_until_completed(saga, first, last)
    assert [c.amount for c in captures] == [Decimal("33.33"), Decimal("11.11")]
    assert sum(c.amount for c in captures) == saga.total
    assert saga.status == Status.COMPLETED


def test_a_short_component_cancels_its_share_of_the_kits_value():
    saga = gift_order(SHIP_AVAILABLE)
    decision = s.handle(saga, short_pick("MUG", 1, fid="f-berlin"), T0, SHIP_AVAILABLE)
    [notice] = notices_of(decision, "items_unavailable")
    # One mug is 10 of 40: a quarter of 44.44.
    assert notice.data["lines"] == [{"sku": "MUG", "quantity": 1}]
    assert Decimal(notice.data["amount"]) == Decimal("44.44") - round_money(
        Decimal("44.44") * 30 / 40, "EUR"
    )
    assert s.capture_target(saga) == Decimal("33.33")
    written_off = ShortPickWrittenOff(
        order_id=ORDER, short_id="s1", sku="MUG", location="berlin", written_off=1
    )
    s.handle(saga, written_off, T0, SHIP_AVAILABLE)
    first = s.handle(
        saga, parcel("p1", {"MUG": 1, "TEA": 1}, fid="f-berlin", complete=True), T0, SHIP_AVAILABLE
    )
    last = s.handle(
        saga,
        parcel("p2", {"SPOON": 1}, fid="f-hamburg", location="hamburg", complete=True),
        T0,
        SHIP_AVAILABLE,
    )
    captures = captures_until_completed(saga, first, last)
    assert sum(c.amount for c in captures) == Decimal("33.33")
    assert saga.status == Status.COMPLETED


def test_a_kit_bought_alongside_its_bare_component_shares_the_components_value():
    # 2 x GIFT at 30 (2 x MUG + 1 x SPOON: 10 a unit) and 2 x MUG at 4 on their own: the 6
    # mugs average (40 + 8) / 6 = 8.
    saga = fulfilling(
        (line("l1", "GIFT", 2, "30"), line("l2", "MUG", 2, "4")),
        (
            kit_part("l1", "GIFT", "MUG", 2, "berlin", 4),
            kit_part("l1", "GIFT", "SPOON", 1, "berlin", 2),
            Allocation(line_id="l2", sku="MUG", location="berlin", quantity=2),
        ),
        "68.00",
    )
    assert s.ordered_units(saga) == {"MUG": 6, "SPOON": 2}
    assert s._value_of(saga, {"MUG": 1}) == Decimal(8)
    assert s._value_of(saga, s.ordered_units(saga)) == Decimal(68)


@pytest.mark.parametrize("seed", range(40))
def test_parcels_of_kit_components_always_capture_exactly_the_total(seed: int):
    rng = random.Random(seed)
    composition = {sku: rng.randint(1, 3) for sku in rng.sample(["A", "B", "C", "D"], 3)}
    kits_ordered = rng.randint(1, 3)
    lines = (
        line("l1", "KIT", kits_ordered, f"{rng.randint(100, 9999)}.{rng.randint(0, 99):02d}"),
        line("l2", "E", rng.randint(1, 3), f"{rng.randint(1, 99)}.{rng.randint(0, 99):02d}"),
    )
    allocations = (
        *(
            kit_part("l1", "KIT", sku, n, "berlin", n * kits_ordered)
            for sku, n in composition.items()
        ),
        Allocation(line_id="l2", sku="E", location="berlin", quantity=lines[1].quantity),
    )
    subtotal = sum((li.line_total for li in lines), Decimal(0))
    total = round_money(subtotal * Decimal(rng.choice(["0.9", "1", "1.19", "1.07"])), "EUR")
    saga = fulfilling(lines, allocations, str(total))
    units = [sku for a in allocations for sku in [a.sku] * a.quantity]
    rng.shuffle(units)
    decisions = []
    parcel_number = 0
    while units:
        parcel_number += 1
        cut = rng.randint(1, len(units))
        take, units = units[:cut], units[cut:]
        take_units: dict[str, int] = {}
        for sku in take:
            take_units[sku] = take_units.get(sku, 0) + 1
        decisions.append(
            s.handle(saga, parcel(f"p{parcel_number}", take_units, fid="f-berlin"), T0, POLICY)
        )
    captures = captures_until_completed(saga, *decisions)
    assert all(c.amount >= 0 for c in captures)
    assert sum(c.amount for c in captures) == total
    assert saga.status == Status.COMPLETED


def test_a_kit_short_of_a_component_is_rejected_naming_the_kit_and_the_component():
    saga = new_saga(lines=(line("l1", "GIFT", 3, "10"),), total=Decimal("30"))
    s.start(saga, T0, POLICY)
    refusal = StockReservationFailed(
        order_id=ORDER,
        reason="insufficient_stock",
        short_lines=(
            ShortLine(line_id="l1", sku="GIFT", requested=3, available=1, component="MUG"),
        ),
    )
    decision = s.handle(saga, refusal, T0, POLICY)
    assert saga.status == Status.REJECTED
    assert saga.reason == "insufficient_stock: GIFT"
    [notice] = [m for m in decision.messages if isinstance(m, CustomerNotification)]
    assert notice.data["short_lines"] == [
        {"sku": "GIFT", "line_id": "l1", "requested": 3, "available": 1, "component": "MUG"}
    ]
