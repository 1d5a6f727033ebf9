"""The transfer state machine, as plain Python: what a ship, a receipt or a cancel does.

    requested ──ship──▶ in_transit ──receipt──▶ partially_received ──receipt──▶ received
        │                   │                          │
        └──cancel──▶ cancelled ◀──cancel (the units not received go back to the source)

Each decision is either a change (the new lines and status, and the stock changes to write to
the ledger), a repeat (nothing to do: the same ship or cancel was applied before), or a refusal
with a stable code. Shipping takes only free stock (on hand less reserved) at the source.
Cancelling in transit means the goods come back: the units not yet received are put back on
hand at the source (`transfer_returned`); what already arrived stays at the destination.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from services.inventory.stock.domain import StockChange

TRANSFER_OUT = "transfer_out"
TRANSFER_IN = "transfer_in"
TRANSFER_RETURNED = "transfer_returned"


class Status(StrEnum):
    REQUESTED = "requested"
    IN_TRANSIT = "in_transit"
    PARTIALLY_RECEIVED = "partially_received"
    RECEIVED = "received"
    CANCELLED = "cancelled"


SHIPPED = (Status.IN_TRANSIT, Status.PARTIALLY_RECEIVED)  # units are on their way


class Refusal(StrEnum):
    INSUFFICIENT_STOCK = "insufficient_stock"
    NOT_SHIPPED = "not_shipped"  # a receipt before the transfer shipped
    TRANSFER_CANCELLED = "transfer_cancelled"
    TRANSFER_RECEIVED = "transfer_received"
    OVER_RECEIPT = "over_receipt"
    SKU_NOT_IN_TRANSFER = "sku_not_in_transfer"


@dataclass(frozen=True)
class TransferLine:
    sku: str
    quantity: int
    received: int = 0
    returned: int = 0

    @property
    def outstanding(self) -> int:
        """Units neither received at the destination nor returned to the source."""
        return self.quantity - self.received - self.returned


@dataclass(frozen=True)
class Transfer:
    transfer_id: str
    from_location: str
    to_location: str
    status: Status
    lines: tuple[TransferLine, ...]

    def in_transit(self, line: TransferLine) -> int:
        return line.outstanding if self.status in SHIPPED else 0


@dataclass(frozen=True)
class Change:
    """Apply: the transfer's new status and lines, and the stock to move (one ledger row each)."""

    status: Status
    lines: tuple[TransferLine, ...]
    stock_changes: tuple[StockChange, ...]


@dataclass(frozen=True)
class Repeat:
    """Nothing to do: the transfer is already where the request would take it."""


@dataclass(frozen=True)
class Refused:
    code: Refusal
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)


Decision = Change | Repeat | Refused


def validate_lines(lines: Sequence[tuple[str, int]]) -> None:
    """A transfer or a receipt names each SKU once, with a positive quantity."""
    seen: set[str] = set()
    for sku, quantity in lines:
        if quantity <= 0:
            raise ValueError(f"the quantity of {sku} must be positive")
        if sku in seen:
            raise ValueError(f"{sku} appears twice")
        seen.add(sku)


def ship(transfer: Transfer, free_at_source: Mapping[str, int]) -> Decision:
    """Take every line's units off the source's free stock (`free_at_source`: on hand less
    reserved per SKU there); all or nothing."""
    if transfer.status is Status.CANCELLED:
        return _cancelled(transfer)
    if transfer.status is not Status.REQUESTED:
        return Repeat()
    for line in transfer.lines:
        free = max(0, free_at_source.get(line.sku, 0))
        if line.quantity > free:
            return Refused(
                Refusal.INSUFFICIENT_STOCK,
                f"{line.sku} at {transfer.from_location} has {free} free to ship (on hand less"
                f" reserved): the transfer needs {line.quantity}",
                {
                    "sku": line.sku,
                    "location": transfer.from_location,
                    "requested": line.quantity,
                    "available": free,
                },
            )
    return Change(
        Status.IN_TRANSIT,
        transfer.lines,
        tuple(
            StockChange(line.sku, transfer.from_location, -line.quantity, 0, TRANSFER_OUT)
            for line in transfer.lines
        ),
    )


def receive(transfer: Transfer, arrived: Sequence[tuple[str, int]]) -> Decision:
    """Units that arrived at the destination (part or all of what is in transit)."""
    validate_lines(arrived)
    if transfer.status is Status.REQUESTED:
        return Refused(
            Refusal.NOT_SHIPPED,
            f"transfer {transfer.transfer_id} has not shipped: nothing is in transit yet",
        )
    if transfer.status is Status.CANCELLED:
        return _cancelled(transfer)
    if transfer.status is Status.RECEIVED:
        return Refused(
            Refusal.TRANSFER_RECEIVED,
            f"transfer {transfer.transfer_id} was received in full",
        )
    by_sku = {line.sku: line for line in transfer.lines}
    for sku, quantity in arrived:
        line = by_sku.get(sku)
        if line is None:
            return Refused(
                Refusal.SKU_NOT_IN_TRANSFER,
                f"transfer {transfer.transfer_id} does not move {sku}",
                {"sku": sku},
            )
        if quantity > line.outstanding:
            return Refused(
                Refusal.OVER_RECEIPT,
                f"{quantity} of {sku} cannot be received: {line.outstanding} of the"
                f" {line.quantity} shipped are still in transit",
                {
                    "sku": sku,
                    "quantity": quantity,
                    "shipped": line.quantity,
                    "received": line.received,
                    "in_transit": line.outstanding,
                },
            )
    quantities = dict(arrived)
    lines = tuple(
        replace(line, received=line.received + quantities.get(line.sku, 0))
        for line in transfer.lines
    )
    done = all(line.outstanding == 0 for line in lines)
    return Change(
        Status.RECEIVED if done else Status.PARTIALLY_RECEIVED,
        lines,
        tuple(
            StockChange(sku, transfer.to_location, quantity, 0, TRANSFER_IN)
            for sku, quantity in arrived
        ),
    )


def cancel(transfer: Transfer) -> Decision:
    """Before shipping nothing moves; in transit, what has not arrived goes back on hand at the
    source. A received transfer cannot be cancelled (move the stock back with a new one)."""
    if transfer.status is Status.CANCELLED:
        return Repeat()
    if transfer.status is Status.RECEIVED:
        return Refused(
            Refusal.TRANSFER_RECEIVED,
            f"transfer {transfer.transfer_id} was received in full: transfer the stock back"
            " instead",
        )
    if transfer.status is Status.REQUESTED:
        return Change(Status.CANCELLED, transfer.lines, ())
    lines = tuple(
        replace(line, returned=line.returned + line.outstanding) for line in transfer.lines
    )
    return Change(
        Status.CANCELLED,
        lines,
        tuple(
            StockChange(line.sku, transfer.from_location, line.outstanding, 0, TRANSFER_RETURNED)
            for line in transfer.lines
            if line.outstanding > 0
        ),
    )


def _cancelled(transfer: Transfer) -> Refused:
    return Refused(Refusal.TRANSFER_CANCELLED, f"transfer {transfer.transfer_id} was cancelled")
