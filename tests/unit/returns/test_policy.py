"""The return policy: may it be returned, and what is refunded."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.returns.domain.policy import (
    Accepted,
    Condition,
    ExchangeRequest,
    OrderFacts,
    OrderLine,
    ReceivedUnits,
    RefundShipping,
    Refused,
    RequestedLine,
    ReturnPolicy,
    credit_for,
    evaluate,
    order_value,
)
from shared.money import split

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
D = Decimal


def order(
    *lines: tuple[str, int, str],
    total: str,
    shipping: str = "0",
    channel: str = "web",
    delivered_days_ago: float | None = 1,
) -> OrderFacts:
    order_lines = tuple(OrderLine(sku, qty, D(price), D(price) * qty) for sku, qty, price in lines)
    return OrderFacts(
        order_id="ord_1",
        channel=channel,
        currency="EUR",
        status="COMPLETED" if delivered_days_ago is not None else "FULFILLING",
        total=D(total),
        lines=order_lines,
        delivered_at=None
        if delivered_days_ago is None
        else NOW - timedelta(days=delivered_days_ago),
        subtotal=sum((li.line_total for li in order_lines), D(0)),
        discount=D(0),
        shipping=D(shipping),
    )


# 2 x 12.50 + 1 x 30.00 = 55.00, free shipping, 19% tax: 65.45
BIG = order(("A", 2, "12.50"), ("B", 1, "30.00"), total="65.45")
# 1 x 10.00 + shipping 4.95 = 14.95, 19% tax 2.84: 17.79
SMALL = order(("A", 1, "10.00"), total="17.79", shipping="4.95")


def ask(*lines: tuple[str, int], reason: str = "no_longer_needed") -> list[RequestedLine]:
    return [RequestedLine(sku, qty, reason) for sku, qty in lines]


def refused(outcome: Accepted | Refused) -> Refused:
    assert isinstance(outcome, Refused), outcome
    return outcome


# --- may it be returned ------------------------------------------------------------------------


def test_a_delivered_order_within_the_window_is_approved_without_review():
    outcome = evaluate(BIG, ask(("A", 2)), [], {}, NOW, ReturnPolicy())
    assert isinstance(outcome, Accepted)
    assert outcome.review_reason is None
    assert outcome.estimate == D("29.75")


def test_what_never_shipped_cannot_be_returned():
    """The order's second A and its B were cancelled after the first A had shipped."""
    partly = replace(BIG, shipped={"A": 1})
    assert partly.delivered_by_sku() == {"A": 1, "B": 0}
    too_many = refused(evaluate(partly, ask(("A", 2)), [], {}, NOW, ReturnPolicy()))
    assert (too_many.code, too_many.details["returnable"]) == ("quantity_exceeds_delivered", 1)
    never = refused(evaluate(partly, ask(("B", 1)), [], {}, NOW, ReturnPolicy()))
    assert (never.code, never.details["returnable"]) == ("quantity_exceeds_delivered", 0)
    one = evaluate(partly, ask(("A", 1)), [], {}, NOW, ReturnPolicy())
    assert isinstance(one, Accepted)
    assert one.estimate == evaluate(BIG, ask(("A", 1)), [], {}, NOW, ReturnPolicy()).estimate
    assert BIG.delivered_by_sku() == {"A": 2, "B": 1}, "not told what shipped: every line"


def test_unknown_order_is_order_not_found():
    assert refused(evaluate(None, ask(("A", 1)), [], {}, NOW, ReturnPolicy())).code == (
        "order_not_found"
    )


def test_an_order_not_delivered_is_refused():
    pending = order(("A", 1, "10.00"), total="11.90", delivered_days_ago=None)
    outcome = refused(evaluate(pending, ask(("A", 1)), [], {}, NOW, ReturnPolicy()))
    assert outcome.code == "not_delivered"
    assert outcome.details["order_status"] == "FULFILLING"


@pytest.mark.parametrize(
    ("channel", "days_ago", "allowed"),
    [
        ("web", 29.9, True),
        ("web", 30.1, False),
        ("amazon", 13, True),
        ("amazon", 14.5, False),
        ("phone", 0.001, False),  # a 0-day window: nothing after delivery
        ("app", 44, True),  # not listed: the default window
        ("app", 46, False),
    ],
)
def test_the_return_window_is_per_channel(channel: str, days_ago: float, allowed: bool):
    policy = ReturnPolicy(
        window_days=45, window_days_by_channel={"web": 30, "amazon": 14, "phone": 0}
    )
    delivered = order(
        ("A", 1, "10.00"), total="11.90", channel=channel, delivered_days_ago=days_ago
    )
    outcome = evaluate(delivered, ask(("A", 1)), [], {}, NOW, policy)
    if allowed:
        assert isinstance(outcome, Accepted)
    else:
        assert refused(outcome).code == "outside_return_window"
        assert outcome.details["window_days"] == policy.window(channel).days


def test_a_sku_the_order_does_not_contain_is_refused():
    outcome = refused(evaluate(BIG, ask(("Z", 1)), [], {}, NOW, ReturnPolicy()))
    assert (outcome.code, outcome.details["skus"]) == ("sku_not_in_order", ["Z"])


def test_non_returnable_skus_are_refused():
    policy = ReturnPolicy(non_returnable_skus=frozenset({"B"}))
    outcome = refused(evaluate(BIG, ask(("A", 1), ("B", 1)), [], {}, NOW, policy))
    assert (outcome.code, outcome.details["skus"]) == ("not_returnable", ["B"])
    assert isinstance(evaluate(BIG, ask(("A", 1)), [], {}, NOW, policy), Accepted)


def test_quantity_is_at_most_delivered_minus_what_earlier_returns_claim():
    policy = ReturnPolicy()
    outcome = refused(evaluate(BIG, ask(("A", 3)), [], {}, NOW, policy))
    assert outcome.code == "quantity_exceeds_delivered"
    assert outcome.details["returnable"] == 2
    assert isinstance(evaluate(BIG, ask(("A", 1)), [], {"A": 1}, NOW, policy), Accepted)
    again = refused(evaluate(BIG, ask(("A", 1)), [], {"A": 2}, NOW, policy))
    assert (again.code, again.details["returnable"], again.details["already_returned"]) == (
        "quantity_exceeds_delivered",
        0,
        2,
    )


def test_exchange_items_are_priced_from_the_order_a_proposed_price_goes_to_review():
    policy = ReturnPolicy()
    same = evaluate(BIG, ask(("A", 1)), [ExchangeRequest("A", 1)], {}, NOW, policy)
    assert isinstance(same, Accepted) and same.review_reason is None
    assert [(e.sku, e.quantity, e.unit_price) for e in same.exchange] == [("A", 1, D("12.50"))]
    other = evaluate(BIG, ask(("A", 1)), [ExchangeRequest("C", 1, D("9.99"))], {}, NOW, policy)
    assert isinstance(other, Accepted)
    assert [(e.sku, e.unit_price) for e in other.exchange] == [("C", D("9.99"))]
    assert "priced by the request" in (other.review_reason or "")
    unknown = refused(evaluate(BIG, ask(("A", 1)), [ExchangeRequest("C", 1)], {}, NOW, policy))
    assert (unknown.code, unknown.details["sku"]) == ("exchange_price_unknown", "C")


def test_the_caller_cannot_price_an_exchange():
    """Regression (issue 12, defect 4): a replacement of 100,000 units at 0 was accepted and
    counted as paid. A SKU of the order is priced from the order; a different price is refused;
    replacements worth more than the refund wait for an operator."""
    policy = ReturnPolicy()
    free = evaluate(BIG, ask(("A", 1)), [ExchangeRequest("B", 100_000, D("0"))], {}, NOW, policy)
    assert refused(free).code == "exchange_price_mismatch"
    many = evaluate(BIG, ask(("A", 1)), [ExchangeRequest("B", 100_000)], {}, NOW, policy)
    assert isinstance(many, Accepted)
    assert [(e.sku, e.unit_price) for e in many.exchange] == [("B", D("30.00"))]
    assert "worth more than the refund" in (many.review_reason or "")


def test_manual_review_by_reason_or_value():
    policy = ReturnPolicy(manual_review_reasons=frozenset({"other"}), manual_review_above=D(50))
    by_reason = evaluate(BIG, ask(("A", 1), reason="other"), [], {}, NOW, policy)
    assert isinstance(by_reason, Accepted) and "other" in (by_reason.review_reason or "")
    by_value = evaluate(BIG, ask(("A", 2), ("B", 1)), [], {}, NOW, policy)
    assert isinstance(by_value, Accepted) and "65.45" in (by_value.review_reason or "")
    small = evaluate(BIG, ask(("A", 1)), [], {}, NOW, policy)
    assert isinstance(small, Accepted) and small.review_reason is None


# --- what is refunded --------------------------------------------------------------------------


def test_split_adds_up_exactly_and_favours_the_largest_remainders():
    assert split(D("10.00"), [D(1), D(1), D(1)], "EUR") == [D("3.34"), D("3.33"), D("3.33")]
    assert split(D("17.79"), [D("10.00"), D("4.95")], "EUR") == [D("11.90"), D("5.89")]
    assert split(D("5"), [D(0), D(0)], "EUR") == [D(0), D(5)]
    assert split(D("100"), [D(1), D(2)], "JPY") == [D("33"), D("67")]


def test_order_value_splits_the_paid_total_into_goods_per_sku_and_shipping():
    value = order_value(BIG)
    assert value.goods_by_sku == {"A": D("29.75"), "B": D("35.70")}
    assert value.shipping == D(0)
    small = order_value(SMALL)
    assert (small.goods_by_sku["A"], small.shipping) == (D("11.90"), D("5.89"))


def units(*lines: tuple[str, int, Condition]) -> list[ReceivedUnits]:
    return [ReceivedUnits(sku, qty, condition) for sku, qty, condition in lines]


R, X = Condition.RESELLABLE, Condition.DAMAGED


def test_a_full_return_refunds_the_paid_total():
    credit = credit_for(
        SMALL,
        units(("A", 1, R)),
        {},
        credited_before={},
        shipping_refunded_before=False,
        policy=ReturnPolicy(),
    )
    assert (credit.items, credit.shipping, credit.total) == (D("11.90"), D("5.89"), D("17.79"))


def test_returns_in_parts_add_up_to_the_goods_then_shipping_with_the_last():
    three = order(
        ("A", 3, "10.00"), total="40.41", shipping="4.95"
    )  # (30 + 4.95) * 1.19 - rounding
    policy = ReturnPolicy()
    value = order_value(three)
    refunds = []
    for before in range(3):
        credit = credit_for(
            three,
            units(("A", 1, R)),
            {},
            credited_before={"A": before},
            shipping_refunded_before=False,
            policy=policy,
        )
        refunds.append(credit)
    assert [c.shipping for c in refunds] == [D(0), D(0), value.shipping]
    assert sum((c.items for c in refunds), D(0)) == value.goods_by_sku["A"]
    assert sum((c.total for c in refunds), D(0)) == three.total


@pytest.mark.parametrize(
    ("rule", "first", "last"),
    [
        (RefundShipping.NEVER, D(0), D(0)),
        (RefundShipping.ALWAYS, D("5.89"), D(0)),
        (RefundShipping.FULL_RETURN_ONLY, D(0), D("5.89")),
    ],
)
def test_the_shipping_refund_rule(rule: RefundShipping, first: Decimal, last: Decimal):
    two = order(("A", 1, "5.00"), ("B", 1, "5.00"), total="17.79", shipping="4.95")
    policy = ReturnPolicy(refund_shipping=rule)
    first_credit = credit_for(
        two,
        units(("A", 1, R)),
        {},
        credited_before={},
        shipping_refunded_before=False,
        policy=policy,
    )
    last_credit = credit_for(
        two,
        units(("B", 1, R)),
        {},
        credited_before={"A": 1},
        shipping_refunded_before=first_credit.shipping > 0,
        policy=policy,
    )
    assert (first_credit.shipping, last_credit.shipping) == (first, last)


def test_damaged_units_are_refunded_the_configured_percent_unless_the_seller_was_at_fault():
    policy = ReturnPolicy(damaged_refund_percent=D(50))
    credit = credit_for(
        BIG,
        units(("A", 1, R), ("A", 1, X)),
        {"A": "changed_mind"},
        credited_before={},
        shipping_refunded_before=False,
        policy=policy,
    )
    by_condition = {line.condition: line.amount for line in credit.lines}
    # 29.75 for 2 units: the damaged one 14.88 (rounded half up), half of it 7.44
    assert by_condition == {R: D("14.87"), X: D("7.44")}
    at_fault = credit_for(
        BIG,
        units(("A", 1, X)),
        {"A": "defective"},
        credited_before={},
        shipping_refunded_before=False,
        policy=policy,
    )
    assert at_fault.items == D("14.88")


def test_nothing_is_credited_twice_beyond_what_was_bought():
    credit = credit_for(
        BIG,
        units(("A", 5, R)),
        {},
        credited_before={"A": 1},
        shipping_refunded_before=False,
        policy=ReturnPolicy(),
    )
    assert [(line.quantity, line.amount) for line in credit.lines] == [(1, D("14.87"))]
