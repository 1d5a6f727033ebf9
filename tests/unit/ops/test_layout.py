"""Fitting the `oms` tables to the terminal's width (shared/ops/layout.py), without a terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

from shared.ops.layout import blocks, column_widths, fit_columns, table_width

HEADERS = ("order", "status", "channel", "note", "updated")
ROW = ("ord_" + "0" * 32, "NEEDS_ATTENTION", "web", "x" * 30, "2025-01-02 10:00:09.000")
KEEP = ("order", "status")
IMPORTANCE = ("channel", "note", "updated")


def _rendered_width(widths: list[int]) -> int:
    table = Table()
    for n in range(len(widths)):
        table.add_column(str(n))
    table.add_row(*(Text("x" * w) for w in widths))
    out = io.StringIO()
    Console(file=out, width=500).print(table)
    return max(len(line) for line in out.getvalue().splitlines())


@pytest.mark.parametrize("widths", [[1], [5, 7], [36, 19, 3, 11, 23]])
def test_table_width_is_what_rich_draws(widths: list[int]) -> None:
    assert table_width(widths) == _rendered_width(widths)


def test_everything_shows_when_it_fits() -> None:
    need = table_width(column_widths(HEADERS, [ROW]))
    fit = fit_columns(HEADERS, [ROW], need, keep=KEEP, importance=IMPORTANCE)
    assert fit.columns == [0, 1, 2, 3, 4] and fit.dropped == []


def test_the_least_important_columns_go_first_and_a_narrow_one_may_stay() -> None:
    widths = column_widths(HEADERS, [ROW])
    # Room for order, status, channel and updated, not for note as well.
    width = table_width([widths[0], widths[1], widths[2], widths[4]])
    fit = fit_columns(HEADERS, [ROW], width, keep=KEEP, importance=IMPORTANCE)
    # note (more important than updated) does not fit; updated, narrower, does.
    assert fit.columns == [0, 1, 2, 4]
    assert fit.dropped == ["note"]
    fit = fit_columns(HEADERS, [ROW], width - 1, keep=KEEP, importance=IMPORTANCE)
    assert fit.columns == [0, 1, 2] and fit.dropped == ["note", "updated"]


def test_below_the_key_columns_width_it_is_blocks() -> None:
    widths = column_widths(HEADERS, [ROW])
    width = table_width(widths[:2])
    assert fit_columns(HEADERS, [ROW], width, keep=KEEP, importance=IMPORTANCE).columns == [0, 1]
    fit = fit_columns(HEADERS, [ROW], width - 1, keep=KEEP, importance=IMPORTANCE)
    assert fit.blocks and fit.columns is None


def test_every_column_is_kept_or_ranked() -> None:
    with pytest.raises(ValueError):
        fit_columns(HEADERS, [ROW], 80, keep=KEEP, importance=("channel", "note"))
    with pytest.raises(ValueError):
        fit_columns(HEADERS, [ROW], 80, keep=KEEP, importance=(*IMPORTANCE, "nope"))


def test_blocks_keep_every_value_whole_within_the_width() -> None:
    reason = "compensation not confirmed in time: payment, then the provider timed out " * 2
    rows = [
        ("ord_" + "a" * 32, "NEEDS_ATTENTION", "", reason.strip()),
        ("ord_" + "b" * 32, "SHIPPED", "web", ""),
    ]
    lines = blocks(("order", "status", "channel", "reason"), rows, 60, heading=("order", "status"))
    assert all(len(line) <= 60 for line in lines), lines
    assert lines[0] == "ord_" + "a" * 32 + "  NEEDS_ATTENTION"
    # The long reason wraps under itself; its words are all there, in order.
    start = next(i for i, line in enumerate(lines) if line.startswith("  reason   "))
    continued = lines[start + 1 : lines.index("")]
    assert continued and all(line.startswith(" " * 11) for line in continued)
    assert " ".join(line.strip() for line in [lines[start], *continued]).removeprefix(
        "reason "
    ).strip() == " ".join(reason.split())
    # Empty values are left out; a blank line separates the blocks.
    assert "  channel  web" in lines and not any(line.startswith("  reason") for line in lines[-2:])
    assert lines.count("") == 1
