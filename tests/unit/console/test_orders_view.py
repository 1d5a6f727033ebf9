"""The orders pages' rules: the search form read and turned into order-intake's query, the
attention queue's rows and actions, and when an action's progress is over."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qs

import pytest

from services.console.web.orders_view import (
    PROGRESS_GIVE_UP_S,
    BadInput,
    action_progress,
    attention_rows,
    check_action,
    order_search,
)


def test_the_search_becomes_order_intakes_query_with_whole_utc_days() -> None:
    search = order_search(
        {
            "email": " Ada@Example.com ",
            "channel": "web",
            "status": "needs_attention",
            "date_from": "2025-03-01",
            "date_to": "2025-03-31",
            "limit": "25",
        }
    )
    assert search.status == "NEEDS_ATTENTION" and search.email == "Ada@Example.com"
    assert search.api_params() == {
        "limit": 25,
        "customer_email": "Ada@Example.com",
        "channel": "web",
        "status": "NEEDS_ATTENTION",
        "created_from": "2025-03-01T00:00:00Z",
        "created_to": "2025-04-01T00:00:00Z",
    }
    assert search.filtered


def test_the_next_pages_link_keeps_the_filters() -> None:
    search = order_search({"channel": "web", "date_from": "2025-03-01"})
    assert parse_qs(search.query(cursor="abc==")) == {
        "channel": ["web"],
        "date_from": ["2025-03-01"],
        "cursor": ["abc=="],
    }
    assert parse_qs(order_search({"cursor": "abc", "limit": "100"}).query(cursor=None)) == {
        "limit": ["100"]
    }
    empty = order_search({})
    assert not empty.filtered and empty.api_params() == {"limit": 50}
    assert empty.date_from is None and isinstance(
        order_search({"date_to": "2025-01-02"}).date_to, date
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date_from": "01/03/2025"}, "date_from"),
        ({"date_from": "2025-03-02", "date_to": "2025-03-01"}, "date_to"),
        ({"date_to": "9999-12-31"}, "date_to"),
        ({"email": "ada"}, "email"),
        ({"email": "a@" + "x" * 400}, "email"),
        ({"status": "not a status"}, "status"),
        ({"limit": "lots"}, "limit"),
        ({"limit": "1000"}, "limit"),
        ({"order_id": "ord/../x"}, "order_id"),
    ],
)
def test_bad_search_fields_are_named(params: dict[str, str], field: str) -> None:
    with pytest.raises(BadInput) as refused:
        order_search(params)
    assert refused.value.field == field and str(refused.value).startswith(f"{field}: ")


def test_the_queue_lists_stuck_orders_oldest_first_then_held_ones_each_once() -> None:
    stuck = [
        {
            "order_id": "ord_b",
            "channel": "web",
            "status": "AUTHORIZING_PAYMENT",
            "stuck_because": "deadline_overdue",
            "reason": None,
            "step": "authorize_payment",
            "attempt": 3,
            "overdue_s": 42.0,
            "updated_at": "2025-03-01T10:00:00+00:00",
        },
        {
            "order_id": "ord_a",
            "channel": "app",
            "status": "NEEDS_ATTENTION",
            "stuck_because": "needs_attention",
            "reason": "payment: no answer",
            "updated_at": "2025-03-01T09:00:00+00:00",
        },
    ]
    held = [
        {"order_id": "ord_c", "channel": "web", "status": "ON_HOLD", "updated_at": "x"},
        {"order_id": "ord_a", "channel": "app", "status": "ON_HOLD", "updated_at": "y"},
    ]
    rows = attention_rows(stuck, held)
    assert [(r.order_id, r.because, r.actions) for r in rows] == [
        ("ord_a", "needs_attention", ("retry", "compensate")),
        ("ord_b", "deadline_overdue", ("retry", "compensate")),
        ("ord_c", "on_hold", ("release",)),
    ]
    assert rows[1].step == "authorize_payment" and rows[1].overdue_s == 42.0
    # A viewer's queue comes from the plain listing (no stuck_because): parked orders.
    [parked] = attention_rows([{"order_id": "ord_d", "status": "NEEDS_ATTENTION"}], [])
    assert parked.because == "needs_attention"


def test_progress_waits_while_the_order_is_in_the_watched_state_with_a_step_in_flight() -> None:
    working = action_progress("retry", "AUTHORIZING_PAYMENT", "AUTHORIZING_PAYMENT", "x", 3)
    assert not working.done and working.outcome == "working"
    moved_on = action_progress("retry", "AUTHORIZING_PAYMENT", "FULFILLING", "y", 5)
    assert moved_on.done and moved_on.outcome == "ok" and "FULFILLING" in moved_on.message
    parked_again = action_progress("retry", "AUTHORIZING_PAYMENT", "NEEDS_ATTENTION", None, 5)
    assert parked_again.done and parked_again.outcome == "bad"
    settled = action_progress("release", "FULFILLING", "FULFILLING", None, 1)
    assert settled.done and settled.outcome == "ok", "nothing in flight: the action is over"
    slow = action_progress(
        "compensate", "CANCELLING", "CANCELLING", "compensate", PROGRESS_GIVE_UP_S
    )
    assert slow.done and slow.outcome == "slow" and "still CANCELLING" in slow.message


def test_only_the_three_actions() -> None:
    assert check_action("release") == "release"
    with pytest.raises(BadInput):
        check_action("reject")
