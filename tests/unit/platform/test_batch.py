"""The typed context the handlers of one consumer batch share."""

from __future__ import annotations

from shared.contracts.inventory import AvailabilityChanged
from shared.platform.batch import Batch, BatchKey

PENDING = BatchKey[list[str]]("test.pending")
OTHER = BatchKey[list[str]]("test.pending")  # the same name, another slot


def _message(sku: str) -> AvailabilityChanged:
    return AvailabilityChanged(sku=sku, on_hand=1, reserved=0, available=1)


def test_slots_are_typed_keys_and_two_keys_never_share_one():
    batch = Batch()
    assert batch.get(PENDING) is None
    batch.setdefault(PENDING, []).append("a")
    batch.setdefault(PENDING, []).append("b")
    assert batch.get(PENDING) == ["a", "b"]
    assert batch.get(OTHER) is None, "a slot is its key object, not its name"
    batch.set(OTHER, ["c"])
    assert batch.pop(PENDING) == ["a", "b"]
    assert batch.pop(PENDING) is None
    assert batch.get(OTHER) == ["c"]


def test_messages_position_and_what_is_still_to_come():
    messages = [_message("A"), _message("B"), _message("C")]
    batch = Batch(messages)
    batch.position = 1
    assert list(batch.upcoming) == messages[1:]
    assert list(Batch().upcoming) == []


async def test_deferred_writes_run_once_per_key_in_order_before_commit():
    batch = Batch()
    ran: list[str] = []

    async def write(name: str) -> None:
        ran.append(name)
        if name == "first":
            # A write may defer another one (it runs in the same pass).
            batch.before_commit("late", lambda: write("late"))

    batch.before_commit(PENDING, lambda: write("first"))
    batch.before_commit(PENDING, lambda: write("ignored"))  # registered once per key
    batch.before_commit("second", lambda: write("second"))
    await batch.run_before_commit()
    assert ran == ["first", "second", "late"]
    await batch.run_before_commit()
    assert ran == ["first", "second", "late"], "each write runs once"
