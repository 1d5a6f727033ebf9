"""The operations pages' forms, read into what the services' APIs take: pure functions, no I/O.

A form value the console can tell is wrong is refused here, naming the field (`FormError`), before
any service is asked; what only a service can judge (an unknown SKU, stock that would go below
zero, a return in the wrong state) is the service's refusal, shown as it comes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ADJUSTMENT_REASONS = ("receipt", "count", "damage", "loss", "return", "correction")
RELEASE_STRATEGIES = ("batch", "single_order", "zone", "wave")
CONDITIONS = ("resellable", "damaged")
MAX_ADJUSTMENT = 1_000_000_000
SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")

Form = Mapping[str, str]


class FormError(ValueError):
    """A form field the console refuses: which one, and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _text(form: Form, field: str, *, max_length: int, required: bool = True) -> str | None:
    value = (form.get(field) or "").strip()
    if not value:
        if required:
            raise FormError(field, "is required")
        return None
    if len(value) > max_length:
        raise FormError(field, f"at most {max_length} characters")
    return value


def _whole(form: Form, field: str, *, low: int, high: int, default: int | None = None) -> int:
    raw = (form.get(field) or "").strip()
    if not raw:
        if default is not None:
            return default
        raise FormError(field, "is required")
    if not re.fullmatch(r"[+-]?\d{1,12}", raw):
        raise FormError(field, f"must be a whole number, not {raw[:20]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise FormError(field, f"must be between {low} and {high}")
    return value


def _choice(form: Form, field: str, choices: Sequence[str], default: str | None = None) -> str:
    value = (form.get(field) or "").strip() or default
    if value is None or value not in choices:
        raise FormError(field, f"must be one of {', '.join(choices)}")
    return value


def sku(value: str) -> str:
    """A SKU as inventory writes it (the lookup box and the page's path)."""
    value = value.strip()
    if not SKU.match(value):
        raise FormError("sku", "letters, digits and . _ : - only, at most 64 characters")
    return value


def adjustment(sku_code: str, form: Form) -> dict[str, Any]:
    """inventory's `POST /v1/stock/adjustments` body."""
    delta = _whole(form, "delta", low=-MAX_ADJUSTMENT, high=MAX_ADJUSTMENT)
    if delta == 0:
        raise FormError("delta", "must not be zero")
    body: dict[str, Any] = {
        "sku": sku(sku_code),
        "location": _text(form, "location", max_length=64),
        "delta": delta,
        "reason": _choice(form, "reason", ADJUSTMENT_REASONS),
    }
    reference = _text(form, "reference", max_length=200, required=False)
    if reference:
        body["reference"] = reference
    return body


def release(form: Form) -> dict[str, Any]:
    """fulfilment's `POST /v1/locations/{code}/pick-lists` body."""
    return {
        "strategy": _choice(form, "strategy", RELEASE_STRATEGIES, default="batch"),
        "orders_per_batch": _whole(form, "orders_per_batch", low=1, high=100, default=8),
        "max_fulfilments": _whole(form, "max_fulfilments", low=1, high=5000, default=200),
    }


def refusal(form: Form) -> dict[str, Any]:
    """returns' `POST /v1/returns/{id}/refuse` body."""
    reason = _text(form, "reason", max_length=500, required=False)
    return {"reason": reason or "refused by an operator"}


@dataclass(frozen=True)
class ReturnLine:
    sku: str
    quantity: int


def receipt(form: Form, lines: Sequence[ReturnLine]) -> dict[str, Any]:
    """returns' `POST /v1/returns/{id}/receive` body from the counts per line: fields
    `resellable-<i>` and `damaged-<i>` for the return's line i (0 when left empty), and an
    optional `location`. At least one unit; never more of a SKU than the return holds."""
    received: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        counted = 0
        for condition in CONDITIONS:
            field = f"{condition}-{i}"
            quantity = _whole(form, field, low=0, high=line.quantity, default=0)
            counted += quantity
            if quantity:
                received.append({"sku": line.sku, "quantity": quantity, "condition": condition})
        if counted > line.quantity:
            raise FormError(
                f"damaged-{i}", f"{line.sku}: {counted} counted, the return holds {line.quantity}"
            )
    if not received:
        raise FormError("resellable-0", "count at least one unit received")
    body: dict[str, Any] = {"lines": received}
    location = _text(form, "location", max_length=64, required=False)
    if location:
        body["location"] = location
    return body


def offset_param(field: str, value: str | None) -> int | None:
    """An optional offset (a page's `before`): a whole number ≥ 0."""
    if value is None or not value.strip():
        return None
    return _whole({field: value}, field, low=0, high=2**62)


RETURN_STATUSES = (
    "REQUESTED",
    "APPROVED",
    "REFUSED",
    "RECEIVED",
    "INSPECTED",
    "EXCHANGING",
    "REFUNDING",
    "REFUNDED",
    "EXCHANGED",
    "CLOSED",
    "NEEDS_ATTENTION",
)


def return_status(value: str | None) -> str:
    """The returns list's filter (REQUESTED, those to approve, unless told)."""
    return _choice({"status": value or ""}, "status", RETURN_STATUSES, default="REQUESTED")


def location_param(value: str | None) -> str | None:
    """An optional location code (a page's filter)."""
    return _text({"location": value or ""}, "location", max_length=64, required=False)
