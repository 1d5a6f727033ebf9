"""Fitting a table to the terminal's width (pure: no terminal, no I/O).

A list command has a few key columns and some that help. When the whole table fits, it is shown
as it is. When it does not, the helpful columns are dropped, least important first (a column
that fits may stay while a wider, more important one goes), and the key columns keep their full
width: an order id cut to `ord_01…` cannot be pasted into the next command. When even the key
columns do not fit side by side, each row is printed as a block of `label  value` lines instead,
its values wrapped under themselves, so that nothing is cut and no line is wider than the
terminal.

Widths are terminal cells (`rich.cells.cell_len`): a table drawn by rich with its default box
and padding takes `sum(width + 3) + 1` cells (a border and one space either side per column).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len

# Per column: its left border and one cell of padding either side; plus the right border.
COLUMN_OVERHEAD = 3
TABLE_OVERHEAD = 1


def table_width(widths: Sequence[int]) -> int:
    """Cells a rich table (default box, padding 1) with columns of these widths takes."""
    return sum(w + COLUMN_OVERHEAD for w in widths) + TABLE_OVERHEAD


def column_widths(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    """Each column's natural width: its widest cell or its header."""
    widths = [cell_len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(
                widths[i], max((cell_len(line) for line in cell.splitlines()), default=0)
            )
    return widths


@dataclass(frozen=True)
class Fit:
    """Which columns to show (indices, in the table's order), or None: print blocks."""

    columns: list[int] | None
    dropped: list[str]

    @property
    def blocks(self) -> bool:
        return self.columns is None


def fit_columns(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int,
    *,
    keep: Sequence[str],
    importance: Sequence[str],
) -> Fit:
    """The columns that fit in `width` cells: all of them if they fit; else the `keep` columns
    and then, most important first, every other one that still fits (`importance` lists the
    others, most important first). If the `keep` columns alone do not fit: blocks."""
    unknown = (set(keep) | set(importance)) - set(headers)
    if unknown or set(headers) - set(keep) - set(importance):
        raise ValueError(f"every column must be kept or ranked once: {sorted(unknown)}")
    widths = column_widths(headers, rows)
    if table_width(widths) <= width:
        return Fit(list(range(len(headers))), [])
    index = {h: i for i, h in enumerate(headers)}
    chosen = [index[h] for h in keep]
    if table_width([widths[i] for i in chosen]) > width:
        return Fit(None, [])
    for header in importance:
        candidate = [*chosen, index[header]]
        if table_width([widths[i] for i in candidate]) <= width:
            chosen = candidate
    shown = sorted(chosen)
    return Fit(shown, [h for i, h in enumerate(headers) if i not in shown])


def blocks(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int,
    *,
    heading: Sequence[str],
) -> list[str]:
    """One block per row: the `heading` columns' values on its first line, then one
    `label  value` line per other non-empty cell, long values wrapped under themselves; a blank
    line between blocks. No line is wider than `width` (unless a single word is, and the width
    is below the label's indent plus a few cells: then words are broken)."""
    index = {h: i for i, h in enumerate(headers)}
    others = [h for h in headers if h not in heading]
    label_width = max((cell_len(h) for h in others), default=0)
    indent = " " * (2 + label_width + 2)
    lines: list[str] = []
    for n, row in enumerate(rows):
        if n:
            lines.append("")
        first = "  ".join(row[index[h]] for h in heading if row[index[h]])
        lines += textwrap.wrap(first, width, subsequent_indent="  ") or [""]
        for header in others:
            value = row[index[header]]
            if not value:
                continue
            label = "  " + header + " " * (label_width - cell_len(header)) + "  "
            wrapped = textwrap.wrap(
                " ".join(value.split()),
                max(width, len(indent) + 8),
                initial_indent=label,
                subsequent_indent=indent,
                break_long_words=True,
                break_on_hyphens=False,
            )
            lines += wrapped
    return lines
