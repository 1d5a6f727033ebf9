"""The correctness check after every run, as pure functions over what the run left behind.

A fast wrong answer is a failure: every submitted order must have settled (COMPLETED when the
warehouse simulator ran, FULFILLING when it did not; REJECTED only when the stock could run
out), nobody may be charged twice, stock must be conserved, and nothing may be processed twice.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

EXAMPLES = 5

# Statuses an order passes at most once on the happy path (the saga has no loops there).
ONCE_PER_ORDER = (
    "RESERVING_STOCK",
    "BACKORDERED",
    "AUTHORIZING_PAYMENT",
    "AWAITING_CUSTOMER_ACTION",
    "CONFIRMED",
    "FULFILLING",
    "SHIPPED",
    "DELIVERED",
    "COMPLETED",
    "REJECTED",
)


@dataclass(frozen=True)
class OrderRow:
    order_id: str
    status: str
    total: Decimal
    external_id: str | None = None
    reason: str | None = None  # why the saga parked or ended it


@dataclass(frozen=True)
class PaymentRow:
    order_id: str
    payment_id: str
    status: str
    amount: Decimal
    captured_total: Decimal


@dataclass(frozen=True)
class OperationRow:
    order_id: str
    kind: str
    outcome: str
    # What a capture was for: its shipment (parcel), or the fulfilment shipped whole.
    fulfilment_id: str | None


@dataclass(frozen=True)
class StockRow:
    sku: str
    location: str
    on_hand: int
    reserved: int
    available: int


@dataclass
class Check:
    name: str
    problems: list[str] = field(default_factory=list)
    facts: dict[str, int | str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems

    def problem(self, what: str, examples: Iterable[object] = ()) -> None:
        shown = list(examples)[:EXAMPLES]
        self.problems.append(f"{what}" + (f" (e.g. {', '.join(map(str, shown))})" if shown else ""))

    def as_dict(self) -> dict[str, object]:
        return {"passed": self.passed, "problems": self.problems, "facts": self.facts}


def check_orders(
    submitted: Iterable[str],
    orders: Mapping[str, OrderRow],
    *,
    settled_status: str,
    rejections_allowed: bool,
    also_allowed: Sequence[str] = (),
) -> Check:
    """Every submitted order exists and settled; none is stuck on its way. `also_allowed`:
    further end states a run may leave (a chaos run: cancelled, parked)."""
    check = Check("orders settled")
    submitted = set(submitted)
    missing = sorted(submitted - set(orders))
    if missing:
        check.problem(f"{len(missing)} submitted orders unknown to order-intake", missing)
    by_status = Counter(row.status for row in orders.values())
    check.facts.update({f"status_{status}": n for status, n in sorted(by_status.items())})
    allowed = {settled_status, *also_allowed} | ({"REJECTED"} if rejections_allowed else set())
    wrong = defaultdict(list)
    for row in orders.values():
        if row.status not in allowed:
            wrong[row.status].append(row.order_id)
    for status, ids in sorted(wrong.items()):
        check.problem(
            f"{len(ids)} orders ended {status}, expected {' or '.join(sorted(allowed))}", ids
        )
    return check


def check_backorders(
    reached: Mapping[str, Mapping[str, object]],
    orders: Mapping[str, OrderRow],
    *,
    settled_status: str,
    also_allowed: Sequence[str] = (),
) -> Check:
    """Every order that waited in BACKORDERED is counted, and none is lost: each went on and
    settled like the others once its stock was received."""
    check = Check("backorders settled")
    waited = sorted(order_id for order_id, statuses in reached.items() if "BACKORDERED" in statuses)
    check.facts["backordered"] = len(waited)
    allowed = {settled_status, *also_allowed}
    lost = [
        f"{order_id} ({orders[order_id].status if order_id in orders else 'unknown'})"
        for order_id in waited
        if order_id not in orders or orders[order_id].status not in allowed
    ]
    if lost:
        check.problem(
            f"{len(lost)} backordered orders did not settle as {' or '.join(sorted(allowed))}",
            lost,
        )
    return check


def plus(
    first: Mapping[tuple[str, str], int], second: Mapping[tuple[str, str], int]
) -> dict[tuple[str, str], int]:
    """Units per (sku, location) of both."""
    total = dict(first)
    for key, quantity in second.items():
        total[key] = total.get(key, 0) + quantity
    return total


def check_payments(
    orders: Mapping[str, OrderRow],
    payments: Sequence[PaymentRow],
    operations: Sequence[OperationRow],
    *,
    captured_status: str = "COMPLETED",
) -> Check:
    """No order is charged twice: at most one authorisation held per order, one successful
    authorise per order, one successful capture per shipment, captured <= authorised, and a
    completed order captured exactly its total."""
    check = Check("no double charge")
    holding = defaultdict(list)
    for payment in payments:
        if payment.status != "declined":
            holding[payment.order_id].append(payment)
    twice = [order_id for order_id, held in holding.items() if len(held) > 1]
    if twice:
        check.problem(f"{len(twice)} orders hold more than one authorisation", twice)
    over = [p.order_id for p in payments if p.captured_total > p.amount]
    if over:
        check.problem(f"{len(over)} payments captured more than authorised", over)
    authorisations = Counter(
        op.order_id for op in operations if op.kind == "authorize" and op.outcome == "succeeded"
    )
    repeated = [order_id for order_id, n in authorisations.items() if n > 1]
    if repeated:
        check.problem(f"{len(repeated)} orders authorised more than once", repeated)
    captures = Counter(
        (op.order_id, op.fulfilment_id)
        for op in operations
        if op.kind == "capture" and op.outcome == "succeeded"
    )
    recaptured = [key for key, n in captures.items() if n > 1]
    if recaptured:
        check.problem(f"{len(recaptured)} shipments captured more than once", recaptured)
    wrong_total = []
    for order in orders.values():
        if order.status != captured_status:
            continue
        held = holding.get(order.order_id, [])
        if len(held) != 1 or held[0].captured_total != order.total or held[0].amount != order.total:
            wrong_total.append(order.order_id)
    if wrong_total:
        check.problem(
            f"{len(wrong_total)} {captured_status} orders did not capture exactly their total",
            wrong_total,
        )
    check.facts.update(
        {
            "payments": len(payments),
            "authorisations": sum(authorisations.values()),
            "captures": sum(captures.values()),
        }
    )
    return check


def check_stock(
    initial_on_hand: Mapping[tuple[str, str], int],
    shipped: Mapping[tuple[str, str], int],
    final: Sequence[StockRow],
    expected_reserved: Mapping[str, int],
) -> Check:
    """Stock is conserved: for every SKU and location, initial on hand - shipped == final on
    hand; on hand == available + reserved, never negative; reserved per SKU is what the open
    orders still hold (0 when every order completed)."""
    check = Check("stock conserved")
    final_by_key = {(row.sku, row.location): row for row in final}
    keys = set(initial_on_hand) | set(final_by_key) | set(shipped)
    mismatched = []
    for key in sorted(keys):
        row = final_by_key.get(key)
        on_hand = row.on_hand if row else 0
        if initial_on_hand.get(key, 0) - shipped.get(key, 0) != on_hand:
            mismatched.append(
                f"{key[0]}@{key[1]}: {initial_on_hand.get(key, 0)} - {shipped.get(key, 0)}"
                f" != {on_hand}"
            )
    if mismatched:
        check.problem(f"{len(mismatched)} stock rows not conserved", mismatched)
    unbalanced = [
        f"{r.sku}@{r.location}"
        for r in final
        if r.on_hand != r.available + r.reserved or min(r.on_hand, r.reserved, r.available) < 0
    ]
    if unbalanced:
        check.problem(
            f"{len(unbalanced)} stock rows where on hand != available + reserved or negative",
            unbalanced,
        )
    reserved_by_sku: dict[str, int] = defaultdict(int)
    for row in final:
        reserved_by_sku[row.sku] += row.reserved
    wrong_reserved = [
        f"{sku}: {reserved_by_sku.get(sku, 0)} reserved, expected {expected_reserved.get(sku, 0)}"
        for sku in sorted(set(reserved_by_sku) | set(expected_reserved))
        if reserved_by_sku.get(sku, 0) != expected_reserved.get(sku, 0)
    ]
    if wrong_reserved:
        check.problem(f"{len(wrong_reserved)} SKUs with a wrong reservation", wrong_reserved)
    check.facts.update(
        {
            "stock_rows": len(final),
            "initial_on_hand": sum(initial_on_hand.values()),
            "shipped": sum(shipped.values()),
            "final_on_hand": sum(r.on_hand for r in final),
            "final_reserved": sum(r.reserved for r in final),
        }
    )
    return check


def check_processed_once(
    status_messages: Mapping[tuple[str, str], set[str]],
    fulfilments_per_order: Mapping[str, int],
    locations_per_order: Mapping[str, int],
) -> Check:
    """Nothing was processed twice: each order passed each happy-path status in one message
    (redeliveries of that same message are fine), and got one fulfilment per location its stock
    came from."""
    check = Check("processed once")
    repeated = [
        f"{order_id}:{status}x{len(ids)}"
        for (order_id, status), ids in status_messages.items()
        if status in ONCE_PER_ORDER and len(ids) > 1
    ]
    if repeated:
        check.problem(f"{len(repeated)} status changes happened more than once", repeated)
    wrong = [
        f"{order_id}: {n} fulfilments for {locations_per_order.get(order_id, 0)} locations"
        for order_id, n in fulfilments_per_order.items()
        if n != locations_per_order.get(order_id, 0)
    ]
    if wrong:
        check.problem(f"{len(wrong)} orders with a wrong number of fulfilments", wrong)
    check.facts["status_changes_seen"] = sum(len(ids) for ids in status_messages.values())
    return check
