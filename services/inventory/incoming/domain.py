"""Purchase order rules as plain Python: what a receipt does to the order's lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

OPEN = "open"
RECEIVED = "received"
CANCELLED = "cancelled"


@dataclass(frozen=True)
class PurchaseLine:
    sku: str
    quantity: int
    received: int = 0

    @property
    def outstanding(self) -> int:
        return max(self.quantity - self.received, 0)


class ReceiptRefused(Exception):
    def __init__(self, code: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail: dict[str, Any] = detail


@dataclass(frozen=True)
class ReceiptPlan:
    lines: tuple[PurchaseLine, ...]
    status: str


def receive(status: str, lines: Sequence[PurchaseLine], received: Mapping[str, int]) -> ReceiptPlan:
    """The order's lines after a receipt. Only SKUs on the order, and only while it is open;
    more than ordered is accepted (suppliers over-deliver; the stock is there). The order is
    received once every line has all its units."""
    if status != OPEN:
        raise ReceiptRefused(
            "purchase_order_closed", f"the purchase order is {status}", po_status=status
        )
    by_sku = {line.sku: line for line in lines}
    unknown = sorted(set(received) - set(by_sku))
    if unknown:
        raise ReceiptRefused(
            "not_on_purchase_order",
            f"not on the purchase order: {', '.join(unknown)}",
            skus=unknown,
        )
    updated = tuple(
        replace(line, received=line.received + received.get(line.sku, 0)) for line in lines
    )
    done = all(line.outstanding == 0 for line in updated)
    return ReceiptPlan(updated, RECEIVED if done else OPEN)
