"""The SVG charts: well-formed, named for assistive technology, bars proportional to their
values, text escaped; the CSV tables: the page's figures, formulas defused."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import date
from decimal import Decimal

import pytest

from services.console.reporting import charts, domain
from services.console.reporting.charts import Series
from services.console.reporting.domain import KpiFacts, KpiFilter, ReasonCount, ShipPromise
from services.console.reporting.tables import TABLE_NAMES, Table, display, kpi_tables, to_csv

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_a_bar_chart_is_well_formed_and_named() -> None:
    svg = charts.bar_chart(
        "c1", "Orders <by day>", "desc & more", ["03-01", "03-02"], [Series("web", [1, 2])]
    )
    root = parse(svg)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "c1-title c1-desc"
    assert root.find(f"{SVG}title").text == "Orders <by day>"  # type: ignore[union-attr]
    assert root.find(f"{SVG}desc").text == "desc & more"  # type: ignore[union-attr]


def test_bars_are_proportional_to_their_values_and_stack_by_series() -> None:
    labels = ["a", "b", "c", "d"]
    svg = charts.bar_chart(
        "c", "t", "d", labels, [Series("web", [10, 0, 35, 7]), Series("ebay", [5, 20, None, 3])]
    )
    bars = parse(svg).findall(f"{SVG}rect[@class='bar']")
    assert len(bars) == 6, "no bar for 0 or a missing value"
    ratios = {float(b.get("height", 0)) / float(b.get("data-value", 1)) for b in bars}
    assert max(ratios) - min(ratios) < 1e-6
    by_x: dict[str, list[ET.Element]] = {}
    for bar in bars:
        by_x.setdefault(bar.get("x", ""), []).append(bar)
    first = by_x[bars[0].get("x", "")]
    web, ebay = first
    assert float(ebay.get("y", 0)) + float(ebay.get("height", 0)) == pytest.approx(
        float(web.get("y", 0))
    ), "ebay's segment sits on web's"
    tallest = 35 * next(iter(ratios))
    assert tallest <= charts.HEIGHT - charts.TOP - charts.BOTTOM + 1e-6
    titles = [b.find(f"{SVG}title").text for b in bars]  # type: ignore[union-attr]
    assert "c, web: 35" in titles


def test_a_line_chart_breaks_where_a_value_is_missing() -> None:
    svg = charts.line_chart(
        "l", "t", "d", ["1", "2", "3", "4", "5"], [Series("p50", [1.5, 2, None, 4, 5])]
    )
    root = parse(svg)
    lines = root.findall(f"{SVG}polyline")
    assert [len(p.get("points", "").split()) for p in lines] == [2, 2]
    points = root.findall(f"{SVG}circle")
    assert [p.get("data-value") for p in points] == ["1.5", "2", "4", "5"]
    ys = [float(p.get("cy", 0)) for p in points]
    assert ys == sorted(ys, reverse=True), "higher values are drawn higher"


def test_text_is_escaped_and_empty_charts_still_draw() -> None:
    svg = charts.bar_chart("e", "t", "d", ["<b>"], [Series('"><script>', [1])])
    root = parse(svg)
    assert "<script>" not in svg
    assert any(t.text == '"><script>' for t in root.iter(f"{SVG}text"))
    empty = charts.line_chart("z", "t", "d", [], [Series("p50", [])])
    assert parse(empty).find(f"{SVG}polyline") is None


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (0.3, 0.5), (7, 10), (12, 20), (21, 25), (180, 200), (1000, 1000)]
)
def test_the_scale_ends_on_a_round_number(value: float, top: float) -> None:
    assert charts.nice_max(value) == pytest.approx(top)


def test_the_csv_defuses_formulas_and_writes_numbers_plainly() -> None:
    table = Table(
        "t",
        "T",
        ("reason", "orders", "share", "amount", "out"),
        [("=cmd()", 3, 0.5, Decimal("10.5000"), True), ("-x", 1, None, Decimal(0), False)],
    )
    rows = list(csv.reader(io.StringIO(to_csv(table))))
    assert rows == [
        ["reason", "orders", "share", "amount", "out"],
        ["'=cmd()", "3", "0.5", "10.5000", "true"],
        ["'-x", "1", "", "0", "false"],
    ]


def test_the_page_shows_rates_as_percentages() -> None:
    assert display(0.1234, "on_time_rate") == "12.3 %"
    assert display(12.345, "p50_hours") == "12.3"
    assert display(Decimal("1234.5"), "revenue") == "1,234.50"
    assert display(None) == "-"


def test_every_table_is_there_by_its_name() -> None:
    report = domain.build_report(
        KpiFacts([], [], [], [], [ReasonCount("x", 1)], 0, [], [], [], 0, [], [], []),
        KpiFilter(date(2026, 3, 1), date(2026, 3, 2)),
        ShipPromise(),
    )
    tables = kpi_tables(report)
    assert tuple(tables) == TABLE_NAMES
    assert tables["cancel_reasons"].rows == [("x", 1, 1.0)]
    assert len(tables["time_to_ship"].rows) == 2, "one row per day, empty ones too"
