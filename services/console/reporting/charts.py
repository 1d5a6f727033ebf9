"""Charts drawn on the server as SVG, from series of numbers (pure: text in, text out).

Each chart is an `<svg role="img">` named by its `<title>` and described by its `<desc>`
(`aria-labelledby`), every bar and point carries its own `<title>` (a tooltip, and what a
screen reader reads on it), and the page puts a table of the same figures beside it. Colours
are the Okabe-Ito palette (told apart with colour blindness); every text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
WIDTH = 720
HEIGHT = 280
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 40, 44
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
MAX_X_LABELS = 12


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value` (1 for nothing)."""
    if value <= 0 or math.isnan(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-12 * power:
            return float(step * power)
    return 10.0 * power  # pragma: no cover - the loop ends at 10


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else str(int(value))


def _ticks(top: float, count: int = 4) -> list[float]:
    return [top * i / count for i in range(count + 1)]


def _label_every(count: int) -> int:
    return max(1, math.ceil(count / MAX_X_LABELS))


def _frame(chart_id: str, title: str, description: str, top: float, unit: str) -> list[str]:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"'
        f' viewBox="0 0 {WIDTH} {HEIGHT}" width="100%"'
        f' aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]
    for tick in _ticks(top):
        y = TOP + PLOT_HEIGHT - (tick / top) * PLOT_HEIGHT
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"'
            ' stroke="#ccc" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"{escape(_number(tick))}</text>"
        )
    parts.append(f'<text x="12" y="{TOP - 14}" font-size="11">{escape(unit)}</text>')
    return parts


def _legend(series: Sequence[Series]) -> list[str]:
    parts = []
    x = LEFT
    for index, s in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        parts.append(f'<rect x="{x}" y="8" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 16}" y="18" font-size="12">{escape(s.name)}</text>')
        x += 28 + 7 * len(s.name)
    return parts


def _x_labels(labels: Sequence[str], centre: Sequence[float]) -> list[str]:
    every = _label_every(len(labels))
    return [
        f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11">'
        f"{escape(label)}</text>"
        for index, (label, x) in enumerate(zip(labels, centre, strict=True))
        if index % every == 0
    ]


def _finish(
    parts: list[str], labels: Sequence[str], centre: Sequence[float], series: Sequence[Series]
) -> str:
    """The chart's SVG: its parts, then the x labels and the legend."""
    return "".join([*parts, *_x_labels(labels, centre), *_legend(series), "</svg>"])


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[Series],
    unit: str = "",
) -> str:
    """Stacked bars: one bar per label, one segment per series (a missing value is 0). Each
    segment's height is proportional to its value (`data-value` holds it)."""
    count = max(1, len(labels))
    totals = [
        sum((s.values[i] or 0) for s in series if i < len(s.values)) for i in range(len(labels))
    ]
    top = nice_max(max(totals, default=0))
    slot = PLOT_WIDTH / count
    bar_w = max(1.0, slot * 0.7)
    parts = _frame(chart_id, title, description, top, unit)
    centres = []
    for i, label in enumerate(labels):
        x = LEFT + i * slot + (slot - bar_w) / 2
        centres.append(x + bar_w / 2)
        base = float(TOP + PLOT_HEIGHT)
        for index, s in enumerate(series):
            value = (s.values[i] if i < len(s.values) else None) or 0
            if value <= 0:
                continue
            height = value / top * PLOT_HEIGHT
            base -= height
            parts.append(
                f'<rect class="bar" x="{x:.2f}" y="{base:.2f}" width="{bar_w:.2f}"'
                f' height="{height:.4f}" fill="{PALETTE[index % len(PALETTE)]}"'
                f" data-value={quoteattr(_number(value))}>"
                f"<title>{escape(f'{label}, {s.name}: {_number(value)}')}</title></rect>"
            )
    return _finish(parts, labels, centres, series)


def line_chart(
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[Series],
    unit: str = "",
) -> str:
    """Lines over the labels, one per series; a missing value breaks the line."""
    count = len(labels)
    values = [v for s in series for v in s.values if v is not None]
    top = nice_max(max(values, default=0))
    slot = PLOT_WIDTH / max(1, count)
    centres = [LEFT + i * slot + slot / 2 for i in range(count)]
    parts = _frame(chart_id, title, description, top, unit)
    for index, s in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        runs: list[list[tuple[float, float]]] = [[]]
        points = []
        for i, value in enumerate(s.values[:count]):
            if value is None:
                runs.append([])
                continue
            y = TOP + PLOT_HEIGHT - value / top * PLOT_HEIGHT
            runs[-1].append((centres[i], y))
            points.append(
                f'<circle class="point" cx="{centres[i]:.2f}" cy="{y:.2f}" r="3"'
                f' fill="{colour}" data-value={quoteattr(_number(value))}>'
                f"<title>{escape(f'{labels[i]}, {s.name}: {_number(value)}')}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                path = " ".join(f"{x:.2f},{y:.2f}" for x, y in run)
                parts.append(
                    f'<polyline class="line" points="{path}" fill="none" stroke="{colour}"'
                    ' stroke-width="2"/>'
                )
        parts += points
    return _finish(parts, labels, centres, series)
