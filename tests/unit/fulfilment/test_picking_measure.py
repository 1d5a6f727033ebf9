"""The walking measurement: deterministic, and its table."""

from __future__ import annotations

import pytest

from services.fulfilment.picking.measure import format_table, main, measure
from services.fulfilment.warehouse.generate import generate_orders, generate_warehouse


def test_measurement_is_deterministic_and_batched_picking_walks_less() -> None:
    warehouse = generate_warehouse(seed=7)
    orders = generate_orders(warehouse, 100, seed=11)
    rows = measure(warehouse, orders)
    assert rows == measure(warehouse, orders)
    single, batch, zone_local, zone_depot, waves = rows
    assert single.lists == 100 and batch.lists == 13
    for row in (batch, zone_local, zone_depot, waves):
        assert row.aisles.metres < single.aisles.metres
        assert row.manhattan.metres < single.manhattan.metres
        assert row.short_lines == single.short_lines
    assert all(row.manhattan.metres <= row.aisles.metres for row in rows)


def test_main_prints_a_markdown_table(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--orders", "20", "--batch", "4"])
    out = capsys.readouterr().out
    assert "320 bins in 4 zones" in out
    assert "| single_order | 20 |" in out
    assert "| batch (4 totes) |" in out
    assert format_table(()).count("\n") == 1
