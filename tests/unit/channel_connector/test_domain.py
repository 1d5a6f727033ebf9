"""The connector's pure rules: shipments onto channel lines, retries, poll cursors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.channel_connector.domain import (
    ChannelLine,
    PolledOrder,
    PushStatus,
    Quantity,
    RetryPolicy,
    UnmatchedShipment,
    after_failure,
    assign_to_channel_lines,
    new_versions,
    next_cursor,
    poll_from,
    unshipped,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_a_shipment_fills_the_open_lines_of_each_sku_in_the_channels_order() -> None:
    lines = [
        ChannelLine("a", "MUG", 1),
        ChannelLine("b", "LAMP", 2),
        ChannelLine("c", "MUG", 3),
        ChannelLine("d", "MUG", 0),
    ]
    assigned = assign_to_channel_lines([Quantity("MUG", 3), Quantity("LAMP", 1)], lines)
    assert assigned == [("a", 1), ("b", 1), ("c", 2)]


def test_more_shipped_than_the_channel_has_open_is_refused_naming_the_sku() -> None:
    with pytest.raises(UnmatchedShipment) as refused:
        assign_to_channel_lines([Quantity("MUG", 3)], [ChannelLine("a", "MUG", 2)])
    assert (refused.value.sku, refused.value.missing) == ("MUG", 1)
    with pytest.raises(UnmatchedShipment):
        assign_to_channel_lines([Quantity("SOCK", 1)], [ChannelLine("a", "MUG", 2)])


def test_failures_back_off_exponentially_honour_retry_after_and_die_when_spent() -> None:
    policy = RetryPolicy(max_attempts=4, initial_s=2, max_s=10)
    assert after_failure(1, policy, NOW, retryable=True).next_attempt_at == NOW + timedelta(
        seconds=2
    )
    assert after_failure(3, policy, NOW, retryable=True).next_attempt_at == NOW + timedelta(
        seconds=8
    )
    assert after_failure(
        2, policy, NOW, retryable=True, retry_after_s=60
    ).next_attempt_at == NOW + timedelta(seconds=60)
    assert after_failure(4, policy, NOW, retryable=True).status is PushStatus.DEAD
    assert after_failure(1, policy, NOW, retryable=False).status is PushStatus.DEAD


def test_an_order_version_already_handed_on_is_not_handed_on_again() -> None:
    t = NOW
    orders = [
        PolledOrder("2", t + timedelta(seconds=1), "{}"),
        PolledOrder("1", t, "{}"),
        PolledOrder("1", t, "{}"),
        PolledOrder("1", t + timedelta(seconds=5), "{}"),
    ]
    fresh = new_versions(orders, {("2", t + timedelta(seconds=1))})
    assert [(o.external_id, o.updated_at) for o in fresh] == [
        ("1", t),
        ("1", t + timedelta(seconds=5)),
    ]


def test_the_cursor_only_moves_forward_and_polls_overlap_it() -> None:
    older = [PolledOrder("1", NOW - timedelta(hours=1), "{}")]
    assert next_cursor(NOW, older) == NOW
    assert next_cursor(None, older) == NOW - timedelta(hours=1)
    assert next_cursor(NOW, []) == NOW
    assert poll_from(NOW, timedelta(minutes=2), NOW - timedelta(days=1)) == NOW - timedelta(
        minutes=2
    )
    assert poll_from(None, timedelta(minutes=2), NOW - timedelta(days=1)) == NOW - timedelta(days=1)


def test_a_cancellation_covers_what_has_not_shipped() -> None:
    ordered = [Quantity("MUG", 3), Quantity("LAMP", 1), Quantity("MUG", 1)]
    assert unshipped(ordered, [Quantity("MUG", 2), Quantity("LAMP", 1)]) == [Quantity("MUG", 2)]
    assert unshipped(ordered, [Quantity("MUG", 4), Quantity("LAMP", 1)]) == []
