"""The transfer state machine decided on plain values: ship, receive, cancel."""

from __future__ import annotations

import pytest

from services.inventory.stock.domain import StockChange
from services.inventory.transfers.domain import (
    Change,
    Refusal,
    Refused,
    Repeat,
    Status,
    Transfer,
    TransferLine,
    cancel,
    receive,
    ship,
)


def transfer(status: Status = Status.REQUESTED, *lines: TransferLine) -> Transfer:
    return Transfer(
        "tr-1", "east", "west", status, lines or (TransferLine("A", 5), TransferLine("B", 2))
    )


def applied(decision: object) -> Change:
    assert isinstance(decision, Change), decision
    return decision


# --- ship -----------------------------------------------------------------------------------


def test_shipping_takes_every_line_off_the_source_and_puts_it_in_transit():
    change = applied(ship(transfer(), {"A": 5, "B": 9}))
    assert change.status is Status.IN_TRANSIT
    assert change.stock_changes == (
        StockChange("A", "east", -5, 0, "transfer_out"),
        StockChange("B", "east", -2, 0, "transfer_out"),
    )
    assert [transfer(change.status, *change.lines).in_transit(ln) for ln in change.lines] == [5, 2]


@pytest.mark.parametrize("free", [{"A": 4, "B": 9}, {"B": 9}, {"A": -3, "B": 9}])
def test_shipping_never_takes_more_than_the_free_stock_and_names_the_sku(free: dict[str, int]):
    refused = ship(transfer(), free)
    assert isinstance(refused, Refused)
    assert refused.code is Refusal.INSUFFICIENT_STOCK
    assert refused.details["sku"] == "A"
    assert refused.details["requested"] == 5
    assert refused.details["available"] == max(0, free.get("A", 0))


@pytest.mark.parametrize("status", [Status.IN_TRANSIT, Status.PARTIALLY_RECEIVED, Status.RECEIVED])
def test_shipping_a_shipped_transfer_again_is_a_repeat(status: Status):
    assert ship(transfer(status), {}) == Repeat()


def test_a_cancelled_transfer_cannot_ship():
    refused = ship(transfer(Status.CANCELLED), {"A": 99, "B": 99})
    assert isinstance(refused, Refused) and refused.code is Refusal.TRANSFER_CANCELLED


# --- receive --------------------------------------------------------------------------------


def test_a_partial_receipt_puts_units_on_hand_at_the_destination():
    change = applied(receive(transfer(Status.IN_TRANSIT), [("A", 3)]))
    assert change.status is Status.PARTIALLY_RECEIVED
    assert change.lines == (TransferLine("A", 5, received=3), TransferLine("B", 2))
    assert change.stock_changes == (StockChange("A", "west", 3, 0, "transfer_in"),)


def test_the_last_units_to_arrive_make_it_received():
    partly = transfer(Status.PARTIALLY_RECEIVED, TransferLine("A", 5, 3), TransferLine("B", 2))
    change = applied(receive(partly, [("A", 2), ("B", 2)]))
    assert change.status is Status.RECEIVED
    assert all(line.outstanding == 0 for line in change.lines)


@pytest.mark.parametrize(
    ("already", "arriving"), [(0, 6), (3, 3), (5, 1)], ids=["all", "rest", "received"]
)
def test_no_more_is_received_than_is_in_transit(already: int, arriving: int):
    status = Status.PARTIALLY_RECEIVED if already else Status.IN_TRANSIT
    shipped = transfer(status, TransferLine("A", 5, already), TransferLine("B", 2))
    refused = receive(shipped, [("A", arriving)])
    assert isinstance(refused, Refused)
    assert refused.code is Refusal.OVER_RECEIPT
    assert refused.details["in_transit"] == 5 - already


def test_a_receipt_needs_a_shipped_transfer_of_that_sku():
    for status, code in [
        (Status.REQUESTED, Refusal.NOT_SHIPPED),
        (Status.CANCELLED, Refusal.TRANSFER_CANCELLED),
    ]:
        refused = receive(transfer(status), [("A", 1)])
        assert isinstance(refused, Refused) and refused.code is code
    done = transfer(Status.RECEIVED, TransferLine("A", 5, 5))
    refused = receive(done, [("A", 1)])
    assert isinstance(refused, Refused) and refused.code is Refusal.TRANSFER_RECEIVED
    refused = receive(transfer(Status.IN_TRANSIT), [("Z", 1)])
    assert isinstance(refused, Refused) and refused.code is Refusal.SKU_NOT_IN_TRANSFER


def test_a_receipt_names_each_sku_once_with_a_positive_quantity():
    with pytest.raises(ValueError, match="twice"):
        receive(transfer(Status.IN_TRANSIT), [("A", 1), ("A", 1)])
    with pytest.raises(ValueError, match="positive"):
        receive(transfer(Status.IN_TRANSIT), [("A", 0)])


# --- cancel ---------------------------------------------------------------------------------


def test_cancelling_a_requested_transfer_moves_nothing():
    change = applied(cancel(transfer()))
    assert change.status is Status.CANCELLED
    assert change.stock_changes == ()


def test_cancelling_in_transit_puts_what_has_not_arrived_back_at_the_source():
    partly = transfer(Status.PARTIALLY_RECEIVED, TransferLine("A", 5, 3), TransferLine("B", 2, 2))
    change = applied(cancel(partly))
    assert change.status is Status.CANCELLED
    assert change.stock_changes == (StockChange("A", "east", 2, 0, "transfer_returned"),)
    assert change.lines == (TransferLine("A", 5, 3, returned=2), TransferLine("B", 2, 2))
    cancelled = transfer(change.status, *change.lines)
    assert [cancelled.in_transit(line) for line in cancelled.lines] == [0, 0]


def test_cancelling_again_is_a_repeat_and_a_received_transfer_stays_received():
    assert cancel(transfer(Status.CANCELLED)) == Repeat()
    refused = cancel(transfer(Status.RECEIVED, TransferLine("A", 5, 5)))
    assert isinstance(refused, Refused) and refused.code is Refusal.TRANSFER_RECEIVED


def test_units_are_conserved_along_any_path():
    """Whatever happens, shipped = received + returned + in transit, line by line."""
    shipped = transfer(Status.REQUESTED, TransferLine("A", 7))
    step = applied(ship(shipped, {"A": 7}))
    current = transfer(step.status, *step.lines)
    moved = {"east": sum(c.on_hand_delta for c in step.stock_changes), "west": 0}
    for arriving in (2, 3):
        step = applied(receive(current, [("A", arriving)]))
        current = transfer(step.status, *step.lines)
        moved["west"] += sum(c.on_hand_delta for c in step.stock_changes)
    step = applied(cancel(current))
    current = transfer(step.status, *step.lines)
    moved["east"] += sum(c.on_hand_delta for c in step.stock_changes)
    assert moved == {"east": -5, "west": 5}
    [line] = current.lines
    assert (line.received, line.returned, current.in_transit(line)) == (5, 2, 0)
