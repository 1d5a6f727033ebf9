"""Rendering customer e-mails from the templates in `templates/` (pure: no I/O but reading the
template files once).

A template is `<kind>.txt`: a `Subject:` line, a blank line, then the body, with `$name`
placeholders (`string.Template`). `render` builds every placeholder's text from the
`CustomerNotification` and, when it is known, the order (lines, totals, address, fulfilments).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from string import Template
from typing import Any

from shared.contracts.common import Customer
from shared.money import round_money

TEMPLATES = Path(__file__).with_name("templates")
KINDS = (
    "confirmed",
    "rejected",
    "cancelled",
    "delayed",
    "shipped",
    "delivered",
    "items_unavailable",
    "rest_cancelled",
    "backordered",
)
FALLBACK = "update"
# Reasons told in plain words only, without the code (it would tip off a fraudster).
UNEXPLAINED = frozenset({"fraud_rejected"})


@dataclass(frozen=True)
class Email:
    subject: str
    body: str


@functools.cache
def _template(kind: str) -> tuple[Template, Template]:
    name = kind if kind in KINDS else FALLBACK
    text = (TEMPLATES / f"{name}.txt").read_text()
    first, _, body = text.partition("\n")
    if not first.startswith("Subject:"):
        raise ValueError(f"template {name}.txt must start with a Subject: line")
    return Template(first.removeprefix("Subject:").strip()), Template(body.lstrip("\n"))


def render(
    kind: str,
    order_id: str,
    customer: Customer,
    data: Mapping[str, Any],
    order: Mapping[str, Any] | None = None,
) -> Email:
    """The e-mail for one notification. `order`: what the e-mail shows of the stored order
    (store.order_for_notification), if it is known."""
    subject, body = _template(kind)
    context = _context(kind, order_id, customer, data, order)
    return Email(subject.substitute(context), body.substitute(context).rstrip() + "\n")


def describe_reason(reason: str | None) -> str:
    """A saga reason (`unknown_sku: SKU-9`, `payment declined: card_declined`) in plain words,
    keeping the original for reference."""
    if not reason:
        return "no reason was given"
    code, _, rest = reason.partition(":")
    rest = rest.strip()
    plain = {
        "unknown_sku": f"we do not sell {rest or 'an item you ordered'}",
        "insufficient_stock": f"we do not have enough stock of {rest or 'an item you ordered'}",
        "order_released": "the items were released before they could be reserved",
        "backorder_expired": "the items you ordered did not arrive in time",
        # Never tell the customer the order failed a fraud check: only that it was not accepted.
        "fraud_rejected": "we could not accept this order",
    }.get(code.strip())
    if plain is not None:
        return plain if code.strip() in UNEXPLAINED else f"{plain} ({reason})"
    if reason.startswith("payment declined"):
        return f"your payment was declined ({rest or reason})"
    return reason


def _context(
    kind: str,
    order_id: str,
    customer: Customer,
    data: Mapping[str, Any],
    order: Mapping[str, Any] | None,
) -> dict[str, str]:
    currency = str(order["currency"]) if order else str(data.get("currency") or "")
    context: dict[str, str] = {
        "kind": kind,
        "order_id": order_id,
        "greeting": f"Hello {customer.name}," if customer.name else "Hello,",
        "reason": describe_reason(data.get("reason")),
        "short_lines": _short_lines(data.get("short_lines") or ()),
        "carrier": str(data.get("carrier") or "the carrier"),
        "tracking_number": str(data.get("tracking_number") or "not given"),
        "tracking_link": _tracking_link(data.get("tracking_url")),
        "lines": "",
        "subtotal": "",
        "shipping": "",
        "tax": "",
        "total": _money(data.get("total"), currency),
        "address": "",
        "shipped_lines": _parcel_lines(data.get("lines")),
        "unavailable_lines": _unit_lines(data.get("lines")),
        "cancelled_lines": _unit_lines(data.get("lines")),
        "not_charged": _money(data.get("amount"), currency) or "nothing",
        "not_charged_note": _not_charged_note(data, currency),
        "note": _note(kind, data),
        "backordered_lines": _backordered_lines(data.get("lines") if kind == "backordered" else ()),
        "expected": _expected(data.get("expected_on")),
    }
    if kind == "delayed":
        stage = data.get("stage")
        context["reason"] = (
            "delivery is taking longer than expected"
            if stage == "delivery"
            else "shipping is taking longer than expected"
        )
    if order:
        context["lines"] = "\n".join(
            f"  {line['quantity']} x {line['sku']} at {_money(line['unit_price'], currency)}"
            f" = {_money(line['line_total'], currency)}"
            for line in order["lines"]
        )
        for name in ("subtotal", "shipping", "tax", "total"):
            context[name] = _money(order[name], currency)
        context["address"] = _address(order.get("shipping_address") or {})
        if not context["shipped_lines"]:  # notices from before parcels name the fulfilment only
            context["shipped_lines"] = _shipped_lines(order, data.get("fulfilment_id"))
    return context


def _note(kind: str, data: Mapping[str, Any]) -> str:
    """What the customer must know when a cancel raced a shipment (see the order saga)."""
    if kind == "shipped" and data.get("cancel_too_late"):
        return (
            "Your cancellation came too late for this parcel: it had already left us. "
            "Once it arrives you can return it for a refund.\n"
        )
    if kind == "shipped" and data.get("more_to_follow"):
        return "The rest of your order follows in another parcel; we will write again.\n"
    if kind == "rest_cancelled" and data.get("too_late"):
        return (
            "You had asked to cancel the whole order, but those parcels had left before\n"
            "the cancellation reached the warehouse.\n\n"
        )
    if kind == "cancelled" and data.get("partial"):  # notices from before `rest_cancelled`
        return (
            "Part of your order had already shipped and could not be stopped; "
            "only the part not yet shipped is cancelled.\n"
        )
    return ""


def _backordered_lines(lines: Sequence[Mapping[str, Any]] | None) -> str:
    rows = []
    for line in lines or ():
        when = line.get("expected_on")
        kind = "pre-order" if line.get("kind") == "preorder" else "backorder"
        rows.append(
            f"  {line.get('quantity')} x {line.get('sku')} ({kind},"
            f" {'expected ' + str(when) if when else 'date not known yet'})"
        )
    return "\n".join(rows)


def _expected(expected_on: Any) -> str:
    if not expected_on:
        return "We do not know the date yet; we will write again as soon as we do."
    return f"We expect to ship it after {expected_on}."


def _money(value: Any, currency: str) -> str:
    if value is None or value == "":
        return ""
    amount = Decimal(str(value))
    if currency:
        return f"{round_money(amount, currency)} {currency}"
    return str(amount)


def _short_lines(short_lines: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for line in short_lines:
        available = int(line.get("available") or 0)
        detail = (
            "not available"
            if available == 0
            else f"you ordered {line.get('requested')}, we have {available}"
        )
        if line.get("component"):  # a kit (bundle) short of one of its items
            detail += f" ({line['component']} is short)"
        rows.append(f"  - {line.get('sku')}: {detail}")
    return ("\n" + "\n".join(rows) + "\n") if rows else ""


def _address(address: Mapping[str, Any]) -> str:
    lines = [
        address.get("line1"),
        address.get("line2"),
        " ".join(str(p) for p in (address.get("postal_code"), address.get("city")) if p),
        address.get("region"),
        address.get("country"),
    ]
    return "\n".join(f"  {line}" for line in lines if line)


def _tracking_link(url: Any) -> str:
    return f"\nTrack it:        {url}" if url else ""


def _not_charged_note(data: Mapping[str, Any], currency: str) -> str:
    """What the customer pays for units cancelled from the order: nothing, or — paid where the
    order was placed (a marketplace) — settled there."""
    amount = _money(data.get("amount"), currency) or "nothing"
    if data.get("paid_externally"):
        return f"Their share of the order's total, {amount}, is settled where you paid."
    return f"You are not charged for them: {amount} less than the order's total."


def _unit_lines(lines: Any) -> str:
    """Units the notice names, one `  n x SKU` row each."""
    return "\n".join(f"  {line['quantity']} x {line['sku']}" for line in lines or ())


def _parcel_lines(lines: Any) -> str:
    """The lines the notice names (a shipped notice: what is in this parcel)."""
    rows = [f"  {line['quantity']} x {line['sku']}" for line in lines or ()]
    return "In this parcel:\n" + "\n".join(rows) if rows else ""


def _shipped_lines(order: Mapping[str, Any], fulfilment_id: Any) -> str:
    saga = order.get("saga") or {}
    fulfilment = (saga.get("fulfilments") or {}).get(fulfilment_id) if fulfilment_id else None
    if not fulfilment:
        return ""
    rows = [f"  {line['quantity']} x {line['sku']}" for line in fulfilment.get("lines") or ()]
    return "In this parcel:\n" + "\n".join(rows) if rows else ""
