"""Short picks in fulfilment's pure rules: the missing units leave the fulfilment's line, a
fulfilment with nothing left ends without shipping, and the fulfilments of re-allocated units
get ids of their own (from the order, the location and the short)."""

from __future__ import annotations

import pytest

from services.fulfilment.domain import (
    Line,
    ShortBeyondLine,
    fulfilment_id_for,
    nothing_to_ship,
    plan_fulfilments,
    record_short,
)
from shared.contracts.common import Allocation
from shared.contracts.fulfilment import ShortPick, short_pick_id


def test_a_short_takes_units_off_its_line_only():
    lines = (Line("A", 3), Line("B", 1))
    after = record_short(lines, "A", 2)
    assert after == (Line("A", 3, 2), Line("B", 1))
    assert [line.to_ship for line in after] == [1, 1]
    assert not nothing_to_ship(after)
    assert nothing_to_ship(record_short(record_short(after, "A", 1), "B", 1))


@pytest.mark.parametrize(("sku", "missing"), [("A", 4), ("C", 1)])
def test_a_short_beyond_the_line_is_refused(sku: str, missing: int):
    with pytest.raises(ShortBeyondLine):
        record_short((Line("A", 3, 0), Line("B", 1)), sku, missing)
    with pytest.raises(ValueError):
        record_short((Line("A", 3),), "A", 0)


def test_re_allocated_units_get_fulfilments_of_their_own():
    allocations = [
        Allocation(line_id="l1", sku="A", location="hamburg", quantity=1),
        Allocation(line_id="l2", sku="A", location="hamburg", quantity=2),
    ]
    [first] = plan_fulfilments("o-1", allocations)
    [added] = plan_fulfilments("o-1", allocations, short_id="s-1")
    assert first.fulfilment_id == fulfilment_id_for("o-1", "hamburg")
    assert added.fulfilment_id == fulfilment_id_for("o-1", "hamburg", "s-1")
    assert added.fulfilment_id not in {
        first.fulfilment_id,
        fulfilment_id_for("o-1", "hamburg", "s-2"),
    }
    assert added.lines == (Line("A", 3),)


def test_a_short_pick_is_named_by_its_fulfilment_list_bin_and_sku():
    short = ShortPick(
        order_id="o-1",
        fulfilment_id="f-1",
        location="berlin",
        pick_list_id="pl-1",
        sku="A",
        missing=1,
        bin="A-01",
    )
    assert short.short_key == short_pick_id("f-1", "pl-1", "A-01", "A")
    assert short.short_key != short_pick_id("f-1", "pl-1", "A-03", "A")
    assert short.model_copy(update={"short_id": "given"}).short_key == "given"
