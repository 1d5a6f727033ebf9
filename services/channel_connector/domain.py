"""The connector's decisions, pure: which channel lines a shipment fulfils, when a failed push is
tried again, which polled orders are new, what a stock level pushes. No I/O here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class PushKind(StrEnum):
    SHIPMENT = "shipment"
    CANCELLATION = "cancellation"
    REFUND = "refund"
    FETCH_ORDER = "fetch_order"


class PushStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Quantity:
    sku: str
    quantity: int


def quantities_from(items: Iterable[Mapping[str, object]] | None) -> tuple[Quantity, ...]:
    """Quantities as the connector keeps them in JSON (`[{"sku", "quantity"}]`)."""
    return tuple(Quantity(str(item["sku"]), int(str(item["quantity"]))) for item in items or ())


def quantities_json(items: Iterable[Quantity]) -> list[dict[str, object]]:
    return [{"sku": item.sku, "quantity": item.quantity} for item in items]


# --- shipments: our SKUs and quantities onto the channel's lines ---------------------------


@dataclass(frozen=True)
class ChannelLine:
    """One line of the channel's order: its id there, the SKU, and how many units of it the
    channel still expects to be shipped."""

    line_id: str
    sku: str
    open_quantity: int


class UnmatchedShipment(ValueError):
    """The channel's order has fewer open units of a SKU than the shipment carries."""

    def __init__(self, sku: str, missing: int) -> None:
        super().__init__(
            f"the channel's order has {missing} unit(s) of {sku} fewer open than shipped"
        )
        self.sku = sku
        self.missing = missing


def assign_to_channel_lines(
    shipped: Iterable[Quantity], lines: Sequence[ChannelLine]
) -> list[tuple[str, int]]:
    """(channel line id, quantity) for a shipment: each SKU's units fill the channel's open
    lines of that SKU in the channel's order. Raises UnmatchedShipment when they do not fit."""
    open_by_line = {line.line_id: line.open_quantity for line in lines}
    assigned: dict[str, int] = {}
    for item in shipped:
        remaining = item.quantity
        for line in lines:
            if remaining == 0:
                break
            if line.sku != item.sku or open_by_line[line.line_id] <= 0:
                continue
            take = min(remaining, open_by_line[line.line_id])
            open_by_line[line.line_id] -= take
            assigned[line.line_id] = assigned.get(line.line_id, 0) + take
            remaining -= take
        if remaining:
            raise UnmatchedShipment(item.sku, remaining)
    return [(line.line_id, assigned[line.line_id]) for line in lines if line.line_id in assigned]


# --- retries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    initial_s: float
    max_s: float


@dataclass(frozen=True)
class AfterFailure:
    status: PushStatus
    next_attempt_at: datetime | None


def after_failure(
    attempts: int,
    policy: RetryPolicy,
    now: datetime,
    *,
    retryable: bool,
    retry_after_s: float | None = None,
) -> AfterFailure:
    """A push failed on its `attempts`-th try: dead when the channel refused it for good or the
    attempts are spent; otherwise tried again after the channel's Retry-After, or after an
    exponential backoff (initial * 2^(attempts-1), capped)."""
    if not retryable or attempts >= policy.max_attempts:
        return AfterFailure(PushStatus.DEAD, None)
    backoff = min(policy.max_s, policy.initial_s * 2 ** max(0, attempts - 1))
    delay = max(backoff, retry_after_s or 0.0)
    return AfterFailure(PushStatus.PENDING, now + timedelta(seconds=delay))


# --- polling ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolledOrder:
    """An order as the channel's API returned it: its id, when it last changed there, and the
    payload order-intake's adapter for the channel reads (JSON text)."""

    external_id: str
    updated_at: datetime
    payload: str


def new_versions(
    orders: Sequence[PolledOrder], seen: set[tuple[str, datetime]]
) -> list[PolledOrder]:
    """The polled orders not handed on before (the same order at the same last-updated time is
    seen again when pages overlap the cursor), each version once, oldest change first."""
    fresh: dict[tuple[str, datetime], PolledOrder] = {}
    for order in orders:
        key = (order.external_id, order.updated_at)
        if key not in seen:
            fresh.setdefault(key, order)
    return sorted(fresh.values(), key=lambda order: (order.updated_at, order.external_id))


def next_cursor(previous: datetime | None, orders: Sequence[PolledOrder]) -> datetime | None:
    """The cursor after a page: the latest last-updated time handed on (never moves back)."""
    latest = max((order.updated_at for order in orders), default=None)
    if latest is None:
        return previous
    return latest if previous is None else max(previous, latest)


def poll_from(cursor: datetime | None, overlap: timedelta, first_poll_from: datetime) -> datetime:
    """Where the next poll asks from: the cursor less an overlap (channels index an update a
    little after its timestamp, and several orders share a second), or, for an account never
    polled, `first_poll_from`."""
    return first_poll_from if cursor is None else cursor - overlap


# --- cancellations ---------------------------------------------------------------------------


def unshipped(ordered: Iterable[Quantity], shipped: Iterable[Quantity]) -> list[Quantity]:
    """What of an order has not shipped (what a cancellation on the channel covers)."""
    left: dict[str, int] = {}
    for item in ordered:
        left[item.sku] = left.get(item.sku, 0) + item.quantity
    for item in shipped:
        left[item.sku] = left.get(item.sku, 0) - item.quantity
    return [Quantity(sku, quantity) for sku, quantity in left.items() if quantity > 0]
