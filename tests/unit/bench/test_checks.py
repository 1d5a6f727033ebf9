from decimal import Decimal

from bench.checks import (
    OperationRow,
    OrderRow,
    PaymentRow,
    StockRow,
    check_orders,
    check_payments,
    check_processed_once,
    check_stock,
)


def orders(*rows: tuple[str, str]) -> dict[str, OrderRow]:
    return {order_id: OrderRow(order_id, status, Decimal("10.00")) for order_id, status in rows}


def test_every_submitted_order_completed_passes():
    check = check_orders(
        ["a", "b"],
        orders(("a", "COMPLETED"), ("b", "COMPLETED")),
        settled_status="COMPLETED",
        rejections_allowed=False,
    )
    assert check.passed
    assert check.facts["status_COMPLETED"] == 2


def test_a_stuck_or_missing_order_fails():
    check = check_orders(
        ["a", "b", "c"],
        orders(("a", "COMPLETED"), ("b", "AUTHORIZING_PAYMENT")),
        settled_status="COMPLETED",
        rejections_allowed=False,
    )
    assert not check.passed
    assert any("1 submitted orders unknown" in p for p in check.problems)
    assert any("AUTHORIZING_PAYMENT" in p and "b" in p for p in check.problems)


def test_rejections_only_pass_when_stock_could_run_out():
    rows = orders(("a", "COMPLETED"), ("b", "REJECTED"))
    strict = check_orders(["a", "b"], rows, settled_status="COMPLETED", rejections_allowed=False)
    lenient = check_orders(["a", "b"], rows, settled_status="COMPLETED", rejections_allowed=True)
    assert not strict.passed and lenient.passed


def payment(order_id: str, status: str = "captured", captured: str = "10.00") -> PaymentRow:
    return PaymentRow(
        order_id, f"p-{order_id}-{status}", status, Decimal("10.00"), Decimal(captured)
    )


def test_one_authorisation_and_one_capture_per_order_passes():
    check = check_payments(
        orders(("a", "COMPLETED")),
        [payment("a")],
        [
            OperationRow("a", "authorize", "succeeded", None),
            OperationRow("a", "capture", "succeeded", "f1"),
        ],
    )
    assert check.passed, check.problems


def test_double_charge_is_caught_three_ways():
    check = check_payments(
        orders(("a", "COMPLETED")),
        [payment("a"), payment("a", status="authorized", captured="0")],
        [
            OperationRow("a", "authorize", "succeeded", None),
            OperationRow("a", "authorize", "succeeded", None),
            OperationRow("a", "capture", "succeeded", "f1"),
            OperationRow("a", "capture", "succeeded", "f1"),
        ],
    )
    text = " ".join(check.problems)
    assert "more than one authorisation" in text
    assert "authorised more than once" in text
    assert "captured more than once" in text


def test_capturing_more_than_authorised_or_not_the_total_fails():
    over = check_payments(orders(("a", "COMPLETED")), [payment("a", captured="12.00")], [])
    assert any("captured more than authorised" in p for p in over.problems)
    short = check_payments(orders(("a", "COMPLETED")), [payment("a", captured="5.00")], [])
    assert any("exactly their total" in p for p in short.problems)


def test_declined_attempts_do_not_count_as_authorisations():
    check = check_payments(
        orders(("a", "COMPLETED")),
        [payment("a", status="declined", captured="0"), payment("a")],
        [],
    )
    assert check.passed, check.problems


def test_stock_conserved_when_shipped_quantities_left_on_hand():
    initial = {("S1", "berlin"): 10, ("S1", "hamburg"): 5}
    shipped = {("S1", "berlin"): 4}
    final = [StockRow("S1", "berlin", 6, 0, 6), StockRow("S1", "hamburg", 5, 0, 5)]
    check = check_stock(initial, shipped, final, {})
    assert check.passed, check.problems
    assert check.facts["shipped"] == 4


def test_lost_stock_leftover_reservation_and_unbalanced_rows_fail():
    initial = {("S1", "berlin"): 10}
    final = [StockRow("S1", "berlin", 9, 2, 6)]
    check = check_stock(initial, {("S1", "berlin"): 2}, final, {})
    text = " ".join(check.problems)
    assert "not conserved" in text  # 10 - 2 != 9
    assert "available + reserved" in text  # 9 != 6 + 2
    assert "wrong reservation" in text  # 2 reserved, none expected


def test_open_orders_may_hold_their_reservation():
    final = [StockRow("S1", "berlin", 10, 3, 7)]
    check = check_stock({("S1", "berlin"): 10}, {}, final, {"S1": 3})
    assert check.passed, check.problems


def test_a_status_reached_in_two_messages_is_processed_twice():
    seen = {("a", "CONFIRMED"): {"m1"}, ("b", "CONFIRMED"): {"m2", "m3"}}
    check = check_processed_once(seen, {"a": 1, "b": 1}, {"a": 1, "b": 1})
    assert not check.passed
    assert "b:CONFIRMEDx2" in check.problems[0]


def test_one_fulfilment_per_location():
    check = check_processed_once({}, {"a": 2, "b": 1}, {"a": 1, "b": 1})
    assert not check.passed
    assert "a: 2 fulfilments for 1 locations" in check.problems[0]
    assert check_processed_once({}, {"a": 2}, {"a": 2}).passed


def test_backordered_orders_are_counted_and_one_left_waiting_is_lost() -> None:
    from bench.checks import OrderRow, check_backorders

    reached = {
        "o1": {"RESERVING_STOCK": (0, 0), "BACKORDERED": (1, 1), "COMPLETED": (9, 9)},
        "o2": {"RESERVING_STOCK": (0, 0), "BACKORDERED": (1, 1)},
        "o3": {"RESERVING_STOCK": (0, 0), "COMPLETED": (5, 5)},
    }
    orders = {
        "o1": OrderRow("o1", "COMPLETED", Decimal("1")),
        "o2": OrderRow("o2", "BACKORDERED", Decimal("1")),
        "o3": OrderRow("o3", "COMPLETED", Decimal("1")),
    }
    check = check_backorders(reached, orders, settled_status="COMPLETED")
    assert check.facts["backordered"] == 2
    assert not check.passed and "o2 (BACKORDERED)" in check.problems[0]
    orders["o2"] = OrderRow("o2", "COMPLETED", Decimal("1"))
    assert check_backorders(reached, orders, settled_status="COMPLETED").passed
