"""The server-side SVG charts: what they draw, and that no label can inject markup."""

from __future__ import annotations

import re
from decimal import Decimal

from partnerhub.charts import benchmark_bar, sparkline, trend_chart, waterfall_chart


def bar_values(svg: str, kind: str) -> list[Decimal]:
    return [Decimal(v) for v in re.findall(rf'class="bar bar-{kind}" data-value="([^"]+)"', svg)]


def test_waterfall_bars_run_from_the_start_total_to_the_end_total():
    svg = waterfall_chart(
        start=78.25,
        terms=[("Customer satisfaction", 2.25), ("Pipeline created", 0.0), ("Training completion", 9.0)],
        end=89.5,
        start_label="FY2026-Q2",
        end_label="FY2026-Q3",
        title="Change",
    )
    (start,), (end,) = bar_values(svg, "start"), bar_values(svg, "end")
    terms = bar_values(svg, "term")
    assert len(terms) == 3
    assert start + sum(terms) == end == Decimal("89.5")
    assert "+2.25" in svg and "±0" in svg


def test_waterfall_colours_gains_and_losses_apart():
    svg = waterfall_chart(
        start=50, terms=[("Up", 5.0), ("Down", -3.0)], end=52, start_label="a", end_label="b", title="t"
    )
    assert svg.count("#137a4b") == 1 and svg.count("#b42318") == 1


def test_chart_functions_escape_every_label():
    evil = '<script>alert("x")</script>'
    charts = [
        waterfall_chart(start=1, terms=[(evil, 1.0)], end=2, start_label=evil, end_label=evil, title=evil),
        trend_chart([(evil, 10.0), ("b", None), ("c", 30.0)], title=evil, band=(20, 40), band_label=evil),
        sparkline([1.0, None, 3.0], title=evil),
        benchmark_bar(value=3, median=2, p75=4, title=evil),
    ]
    for svg in charts:
        assert "<script>" not in svg
        assert "&lt;script&gt;" in svg
        assert svg.startswith("<svg") and "javascript" not in svg.lower()


def test_trend_chart_leaves_a_gap_for_a_period_without_a_score():
    svg = trend_chart([("Q1", 60.0), ("Q2", None), ("Q3", 70.0), ("Q4", 72.0)], title="Total")
    assert svg.count("<polyline") == 2
    assert re.findall(r'class="point"[^>]*data-value="([^"]+)"', svg) == ["60.0", "70.0", "72.0"]


def test_trend_chart_shows_at_most_eight_periods_and_says_when_there_is_nothing():
    svg = trend_chart([(f"P{n}", float(n)) for n in range(10)], title="Total")
    assert svg.count('class="point"') == 8 and ">P1<" not in svg
    assert "No scores yet" in trend_chart([("Q1", None)], title="Total")


def test_benchmark_bar_marks_the_segment_median_and_p75():
    svg = benchmark_bar(value=310000.0, median=185000.0, p75=247500.0, title="Pipeline")
    assert re.findall(r'class="mark"[^>]*data-value="([^"]+)"', svg) == ["185000.0", "247500.0"]
    assert 'class="value"' not in benchmark_bar(value=None, median=1.0, p75=2.0, title="x")
