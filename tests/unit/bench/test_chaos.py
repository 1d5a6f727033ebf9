"""The invariants a chaos run is judged by (bench/chaos.py), on hand-made outcomes."""

from __future__ import annotations

from decimal import Decimal

from bench.chaos import ChaosPayment, DeadLetter, check_chaos
from bench.checks import OrderRow

D = Decimal


def order(order_id: str, status: str, reason: str | None = None) -> OrderRow:
    return OrderRow(order_id, status, D("30.00"), external_id=f"ext-{order_id}", reason=reason)


GOOD = {
    "o1": order("o1", "COMPLETED"),
    "o2": order("o2", "CANCELLED", "payment did not answer in time"),
    "o3": order("o3", "NEEDS_ATTENTION", "capture failed after shipment (f): expired"),
}
PAYMENTS = [
    ChaosPayment("o1", D("30.00"), D("0")),
    ChaosPayment("o2", D("0"), D("0")),
    ChaosPayment("o3", D("0"), D("0")),
]
SHIPPED = {"o1": D("30.00"), "o3": D("30.00")}


def test_a_clean_run_passes_and_counts_what_happened():
    check = check_chaos(
        {"o1", "o2", "o3"}, GOOD, PAYMENTS, SHIPPED, {"o3": 0}, [DeadLetter("x", "r", "e", "t@1")]
    )
    assert check.passed, check.problems
    assert check.facts["parked"] == 1 and check.facts["lost"] == 0
    assert check.facts["dead_letters"] == 1


def test_every_broken_invariant_is_named():
    orders = {
        **GOOD,
        "o4": order("o4", "FULFILLING"),
        "o5": order("o5", "NEEDS_ATTENTION"),
        "o6": OrderRow("o6", "COMPLETED", D("30.00"), external_id="ext-o1"),
    }
    payments = [
        *PAYMENTS,
        ChaosPayment("o1", D("30.00"), D("0")),  # charged twice
        ChaosPayment("o6", D("10.00"), D("20.00")),  # refunded more than captured
        ChaosPayment("o2", D("5.00"), D("0")),
    ]
    check = check_chaos(
        {"o1", "o2", "o3", "o4", "o5", "o6", "lost"},
        orders,
        payments,
        {**SHIPPED, "o6": D("30.00")},
        {"o2": 1},
        [DeadLetter("inventory", None, None, "t@7")],
    )
    text = "\n".join(check.problems)
    for expected in (
        "1 accepted orders lost",
        "1 orders created twice",
        "1 orders neither terminal nor parked",
        "1 parked orders without a reason",
        "orders with more than one payment",
        "whose capture is not what shipped",
        "1 orders refunded more than captured",
        "1 terminal orders still hold reservations",
        "1 dead letters without a reason or error",
    ):
        assert expected in text, text
