"""PayPal's rules for the gateway, free of I/O: money as PayPal writes it, PayPal's error issues
as our decline codes, and how one refund is spread over the captures of an authorisation.

PayPal writes amounts as strings with the currency's decimals (`"10.50"`, `"1000"` for yen) and
refuses more decimals than the currency has (`DECIMAL_PRECISION`). Errors carry a `name` and a
list of `details[].issue` (`INSTRUMENT_DECLINED`, `AUTHORIZATION_VOIDED`, ...): the first issue
decides our decline code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

# PayPal's currencies without minor units (developer.paypal.com, "Currency codes").
_ZERO_DECIMAL_CURRENCIES = frozenset({"HUF", "JPY", "TWD"})


class AmountNotRepresentable(ValueError):
    """The amount has more decimals than PayPal allows for its currency, or is not positive."""


def decimals_of(currency: str) -> int:
    return 0 if currency.upper() in _ZERO_DECIMAL_CURRENCIES else 2


def format_money(amount: Decimal, currency: str) -> str:
    """`amount` as PayPal's `value` string: exactly the currency's decimals, never rounded."""
    places = decimals_of(currency)
    quantum = Decimal(1).scaleb(-places)
    formatted = amount.quantize(quantum)
    if formatted != amount or amount <= 0:
        raise AmountNotRepresentable(
            f"{amount} {currency.upper()} cannot be sent to PayPal ({places} decimals, positive)"
        )
    return f"{formatted:f}"


def money(amount: Decimal, currency: str) -> dict[str, str]:
    """PayPal's Money object."""
    return {"currency_code": currency.upper(), "value": format_money(amount, currency)}


def parse_money(value: str) -> Decimal:
    return Decimal(value)


# --- errors -----------------------------------------------------------------------------------

# PayPal's issue -> our decline code. Names follow the codes the test gateway and the payment
# domain already use where the meaning is the same; other issues keep PayPal's name, lower-cased.
_DECLINE_CODES = {
    "INSTRUMENT_DECLINED": "instrument_declined",
    "PAYER_ACTION_REQUIRED": "payer_action_required",
    "ORDER_NOT_APPROVED": "order_not_approved",
    "ORDER_ALREADY_AUTHORIZED": "order_already_authorized",
    "ORDER_EXPIRED": "order_expired",
    "TRANSACTION_REFUSED": "transaction_refused",
    "PAYER_CANNOT_PAY": "payer_cannot_pay",
    "AUTHORIZATION_VOIDED": "authorization_voided",
    "PREVIOUSLY_VOIDED": "already_voided",
    "AUTHORIZATION_EXPIRED": "authorization_expired",
    "AUTHORIZATION_ALREADY_CAPTURED": "already_captured",
    "PREVIOUSLY_CAPTURED": "already_captured",
    "CANNOT_BE_VOIDED": "cannot_be_voided",
    "MAX_CAPTURE_AMOUNT_EXCEEDED": "amount_exceeds_authorization",
    "MAX_CAPTURE_COUNT_EXCEEDED": "max_capture_count_exceeded",
    "REFUND_AMOUNT_EXCEEDED": "amount_exceeds_captured",
    "CAPTURE_FULLY_REFUNDED": "amount_exceeds_captured",
    "DECIMAL_PRECISION": "invalid_amount",
    "CANNOT_BE_ZERO_OR_NEGATIVE": "invalid_amount",
    "CURRENCY_MISMATCH": "currency_mismatch",
    "RESOURCE_NOT_FOUND": "unknown_reference",
    "INVALID_RESOURCE_ID": "unknown_reference",
}
_DECLINE_BY_STATUS = {400: "invalid_request", 403: "not_authorized", 404: "unknown_reference"}


@dataclass(frozen=True)
class PayPalError:
    """An error answer of PayPal's (status and body), as far as the gateway needs it."""

    status: int
    name: str | None
    issue: str | None
    description: str | None
    debug_id: str | None = None

    @classmethod
    def from_body(cls, status: int, body: object) -> PayPalError:
        """PayPal's error object: `{name, message, debug_id, details: [{issue, description}]}`;
        the OAuth endpoints answer `{error, error_description}` instead."""
        if not isinstance(body, dict):
            return cls(status, None, None, None)
        details = body.get("details")
        first = details[0] if isinstance(details, list) and details else {}
        first = first if isinstance(first, dict) else {}
        return cls(
            status=status,
            name=_str_or_none(body.get("name") or body.get("error")),
            issue=_str_or_none(first.get("issue")),
            description=_str_or_none(
                first.get("description") or body.get("message") or body.get("error_description")
            ),
            debug_id=_str_or_none(body.get("debug_id")),
        )


def decline_code(error: PayPalError) -> str:
    """Our decline code for a definite refusal (a 4xx that no retry changes)."""
    if error.issue:
        return _DECLINE_CODES.get(error.issue, error.issue.lower())
    if error.status in _DECLINE_BY_STATUS:
        return _DECLINE_BY_STATUS[error.status]
    return (error.name or f"http_{error.status}").lower()


def decline_reason(error: PayPalError) -> str:
    text = error.description or error.name or f"PayPal answered {error.status}"
    return f"{text} (PayPal debug id {error.debug_id})" if error.debug_id else text


def is_ambiguous(status: int) -> bool:
    """Statuses after which PayPal may or may not have acted: retry with the same request id.
    409: a request with the same PayPal-Request-Id is still being processed."""
    return status >= 500 or status in (408, 409)


# --- refunds over captures --------------------------------------------------------------------


@dataclass(frozen=True)
class CaptureBalance:
    """One completed capture of the authorisation: what it took, what was refunded of it in
    all, and how much of that under the refund being made now (its idempotency key)."""

    capture_id: str
    captured: Decimal
    refunded: Decimal
    refunded_by_this_refund: Decimal

    @property
    def refundable(self) -> Decimal:
        return self.captured - self.refunded


@dataclass(frozen=True)
class RefundPiece:
    capture_id: str
    amount: Decimal


@dataclass(frozen=True)
class RefundPlan:
    """The refunds still to send (none when an earlier attempt made them all), or a refusal."""

    pieces: tuple[RefundPiece, ...] = ()
    refused: str | None = None


def plan_refund(amount: Decimal, captures: list[CaptureBalance]) -> RefundPlan:
    """Spread `amount` over the captures, oldest first, each up to what is left of it.

    A refund is one idempotency key on our side but may be several refunds on PayPal's (one
    per capture). Each piece is tagged with the key (`custom_id`), so a retry after an ambiguous
    failure counts what is already refunded under the key, leaves the captures it touched alone
    (their pieces are final: each request id is per key and capture and would only replay) and
    spreads only the rest."""
    done = sum((c.refunded_by_this_refund for c in captures), Decimal(0))
    remaining = amount - done
    if remaining <= 0:
        return RefundPlan()
    untouched = [c for c in captures if c.refunded_by_this_refund == 0 and c.refundable > 0]
    if sum((c.refundable for c in untouched), Decimal(0)) < remaining:
        return RefundPlan(refused="amount_exceeds_captured")
    pieces: list[RefundPiece] = []
    for capture in untouched:
        if remaining <= 0:
            break
        take = min(capture.refundable, remaining)
        pieces.append(RefundPiece(capture.capture_id, take))
        remaining -= take
    return RefundPlan(tuple(pieces))


def refund_request_id(idempotency_key: str, capture_id: str) -> str:
    """The PayPal-Request-Id of one piece of a refund: stable across retries of the key."""
    return request_id(f"{idempotency_key}:{capture_id}")


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


# PayPal keeps PayPal-Request-Id values up to 108 characters.
_MAX_REQUEST_ID = 108


def request_id(idempotency_key: str) -> str:
    """Our idempotency key as PayPal-Request-Id; a longer key is replaced by its digest (stable,
    so a retry still sends the same id)."""
    if len(idempotency_key) <= _MAX_REQUEST_ID:
        return idempotency_key
    return "sha256-" + hashlib.sha256(idempotency_key.encode()).hexdigest()
