"""The orders the orders-list benchmark writes (bench/orders_list.py), generated without I/O."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench.orders_list import CHANNELS, DAYS, generate, parse_args
from services.order_intake.domain.saga import Status

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_the_same_seed_gives_the_same_orders_and_another_seed_others() -> None:
    assert generate(200, now=NOW, seed=3) == generate(200, now=NOW, seed=3)
    assert generate(200, now=NOW, seed=3) != generate(200, now=NOW, seed=4)


def test_orders_spread_over_channels_statuses_and_days_like_a_shop() -> None:
    orders = generate(20_000, now=NOW)
    assert len({o.order_id for o in orders}) == len(orders)
    assert all(o.order_id.startswith("ord_") and len(o.order_id) == 36 for o in orders)
    channels = Counter(o.channel for o in orders)
    assert set(channels) == {name for name, _ in CHANNELS}
    assert channels["web"] > channels["amazon"] > channels["otto"] > 0
    statuses = Counter(o.status for o in orders)
    assert set(statuses) <= set(Status.__members__)
    for status in ("COMPLETED", "DELIVERED", "SHIPPED", "CANCELLED", "NEEDS_ATTENTION"):
        assert statuses[status] > 0, status
    assert statuses["COMPLETED"] > statuses["CANCELLED"] > statuses["NEEDS_ATTENTION"]
    assert all(NOW - timedelta(days=DAYS) <= o.created_at <= NOW for o in orders)
    assert all(o.created_at <= o.updated_at <= NOW for o in orders)
    # Newer days are busier; yesterday's orders are in flight, old ones no longer.
    last_week = sum(o.created_at > NOW - timedelta(days=7) for o in orders)
    assert last_week > len(orders) * 7 / DAYS
    in_flight = {"RECEIVED", "RESERVING_STOCK", "AUTHORIZING_PAYMENT", "CONFIRMED", "FULFILLING"}
    old = [o for o in orders if o.created_at < NOW - timedelta(days=60)]
    assert not any(o.status in in_flight for o in old)
    # Channel orders carry the channel's id, unique per channel; web orders none.
    external = [(o.channel, o.external_id) for o in orders if o.external_id]
    assert len(external) == len(set(external)) == len(orders) - channels["web"]
    # Repeat customers: fewer e-mails than orders, some with many orders.
    emails = Counter(o.email for o in orders)
    assert len(emails) < len(orders) and emails.most_common(1)[0][1] >= 50


def test_totals_add_up() -> None:
    for order in generate(500, now=NOW):
        lines = sum(Decimal(line["line_total"]) for line in order.lines)
        assert 1 <= len(order.lines) <= 3
        assert order.subtotal == lines
        assert order.total == order.subtotal + order.shipping + order.tax


def test_arguments_are_checked() -> None:
    assert parse_args([]).orders == 100_000
    args = parse_args(["--orders", "1000", "--samples", "3", "--json", "out.json"])
    assert (args.orders, args.samples, args.json_path) == (1000, 3, "out.json")
