"""What the orders pages and the attention queue decide without I/O: reading the search form,
the query order-intake is asked, the rows of the attention queue and their actions, and when
an action's progress is over."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

# Order-intake's saga statuses, offered in the search form (the service checks what is sent).
ORDER_STATUSES = (
    "RECEIVED",
    "RESERVING_STOCK",
    "BACKORDERED",
    "AUTHORIZING_PAYMENT",
    "AWAITING_CUSTOMER_ACTION",
    "CONFIRMED",
    "ON_HOLD",
    "FULFILLING",
    "PARTIALLY_SHIPPED",
    "SHIPPED",
    "DELIVERED",
    "COMPLETED",
    "CANCELLING",
    "CANCELLED",
    "REJECTED",
    "NEEDS_ATTENTION",
)
PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50
ACTIONS = ("retry", "compensate", "release")
# An action's progress is polled this long at most; then the row says where the order stands.
PROGRESS_GIVE_UP_S = 120.0
BAD_OUTCOMES = frozenset({"NEEDS_ATTENTION", "REJECTED"})

_STATUS = re.compile(r"^[A-Z_]{1,40}$")
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


class BadInput(ValueError):
    """A search or action parameter that cannot be used; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class OrderSearch:
    order_id: str | None = None
    email: str | None = None
    channel: str | None = None
    status: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    limit: int = DEFAULT_PAGE_SIZE
    cursor: str | None = None

    @property
    def filtered(self) -> bool:
        return any(
            (self.email, self.channel, self.status, self.date_from, self.date_to, self.cursor)
        )

    def api_params(self) -> dict[str, Any]:
        """The query for order-intake's `GET /v1/orders` (dates as whole UTC days: from the
        first day's midnight, inclusive, to the midnight after the last day, exclusive)."""
        params: dict[str, Any] = {"limit": self.limit}
        if self.email:
            params["customer_email"] = self.email
        if self.channel:
            params["channel"] = self.channel
        if self.status:
            params["status"] = self.status
        if self.date_from:
            params["created_from"] = f"{self.date_from.isoformat()}T00:00:00Z"
        if self.date_to:
            params["created_to"] = f"{(self.date_to + timedelta(days=1)).isoformat()}T00:00:00Z"
        if self.cursor:
            params["cursor"] = self.cursor
        return params

    def query(self, **changes: Any) -> str:
        """This search as the page's query string (e.g. the next page's link)."""
        search = replace(self, **changes)
        pairs = {
            "email": search.email,
            "channel": search.channel,
            "status": search.status,
            "date_from": search.date_from.isoformat() if search.date_from else None,
            "date_to": search.date_to.isoformat() if search.date_to else None,
            "limit": search.limit if search.limit != DEFAULT_PAGE_SIZE else None,
            "cursor": search.cursor,
        }
        return urlencode({k: v for k, v in pairs.items() if v not in (None, "")})


def order_search(params: Mapping[str, str]) -> OrderSearch:
    """The search form's fields, checked (BadInput names the first one that is wrong)."""

    def text(name: str, max_length: int) -> str | None:
        value = (params.get(name) or "").strip()
        if len(value) > max_length:
            raise BadInput(name, f"at most {max_length} characters")
        return value or None

    order_id = text("order_id", 100)
    if order_id is not None and not _ID.match(order_id):
        raise BadInput("order_id", "an order id has letters, digits, _ . : - only")
    email = text("email", 320)
    if email is not None and "@" not in email:
        raise BadInput("email", "the customer's whole e-mail address (it is matched exactly)")
    status = text("status", 40)
    if status is not None:
        status = status.upper()
        if not _STATUS.match(status):
            raise BadInput("status", f"one of {', '.join(ORDER_STATUSES)}")
    date_from, date_to = _date(params, "date_from"), _date(params, "date_to")
    if date_to is not None and date_to >= date.max:
        raise BadInput("date_to", "a date before 9999-12-31")
    if date_from and date_to and date_to < date_from:
        raise BadInput("date_to", "must not be before date_from")
    raw_limit = (params.get("limit") or "").strip()
    try:
        limit = int(raw_limit) if raw_limit else DEFAULT_PAGE_SIZE
    except ValueError as exc:
        raise BadInput("limit", "a number of orders per page") from exc
    if not 1 <= limit <= max(PAGE_SIZES):
        raise BadInput("limit", f"between 1 and {max(PAGE_SIZES)}")
    return OrderSearch(
        order_id=order_id,
        email=email,
        channel=text("channel", 50),
        status=status,
        date_from=date_from,
        date_to=date_to,
        limit=limit,
        cursor=text("cursor", 500),
    )


def _date(params: Mapping[str, str], name: str) -> date | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise BadInput(name, "a date as YYYY-MM-DD") from exc


# --- the attention queue -------------------------------------------------------------------------


@dataclass(frozen=True)
class AttentionRow:
    order_id: str
    channel: str
    status: str
    because: str  # needs_attention, deadline_overdue, on_hold
    reason: str | None
    step: str | None
    attempt: int | None
    overdue_s: float | None
    since: str  # the order's last change (ISO 8601)
    actions: tuple[str, ...]


ACTIONS_FOR = {
    "needs_attention": ("retry", "compensate"),
    "deadline_overdue": ("retry", "compensate"),
    "on_hold": ("release",),
}


def attention_rows(
    stuck: Sequence[Mapping[str, Any]], held: Sequence[Mapping[str, Any]]
) -> list[AttentionRow]:
    """The queue: stuck orders (order-intake's stuck list, or for a user who may not operate
    the NEEDS_ATTENTION listing) oldest change first, then the orders waiting in ON_HOLD,
    each order once."""
    rows: list[AttentionRow] = []
    seen: set[str] = set()
    for order in sorted(stuck, key=lambda o: str(o.get("updated_at") or "")):
        because = str(order.get("stuck_because") or "needs_attention")
        rows.append(
            AttentionRow(
                order_id=str(order["order_id"]),
                channel=str(order.get("channel") or ""),
                status=str(order.get("status") or ""),
                because=because,
                reason=order.get("reason"),
                step=order.get("step"),
                attempt=order.get("attempt"),
                overdue_s=order.get("overdue_s"),
                since=str(order.get("updated_at") or ""),
                actions=ACTIONS_FOR.get(because, ()),
            )
        )
        seen.add(str(order["order_id"]))
    for order in sorted(held, key=lambda o: str(o.get("updated_at") or "")):
        if str(order["order_id"]) in seen:
            continue
        rows.append(
            AttentionRow(
                order_id=str(order["order_id"]),
                channel=str(order.get("channel") or ""),
                status=str(order.get("status") or "ON_HOLD"),
                because="on_hold",
                reason=None,
                step=None,
                attempt=None,
                overdue_s=None,
                since=str(order.get("updated_at") or ""),
                actions=ACTIONS_FOR["on_hold"],
            )
        )
    return rows


# --- an action's progress ------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    done: bool
    status: str
    outcome: str  # working, ok, bad, slow
    message: str


def action_progress(
    action: str, watched: str, status: str, step: str | None, elapsed_s: float
) -> Progress:
    """Where an action stands: the order still in the state the action left it in with a step
    in flight is working; once it leaves that state, or nothing is in flight any more, the
    action's outcome is its status (NEEDS_ATTENTION or REJECTED: it did not go through)."""
    if status == watched and step is not None:
        if elapsed_s >= PROGRESS_GIVE_UP_S:
            return Progress(
                True,
                status,
                "slow",
                f"{action}: still {status} ({step}) after {int(elapsed_s)} s;"
                " see the order's timeline",
            )
        return Progress(False, status, "working", f"{action}: {status}, waiting on {step}…")
    outcome = "bad" if status in BAD_OUTCOMES else "ok"
    return Progress(True, status, outcome, f"{action}: now {status}")


def check_action(action: str) -> str:
    if action not in ACTIONS:
        raise BadInput("action", f"one of {', '.join(ACTIONS)}")
    return action


def check_status(name: str, value: str) -> str:
    if not _STATUS.match(value):
        raise BadInput(name, "an order status")
    return value
