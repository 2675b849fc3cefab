"""Charts drawn on the server as SVG markup, so a page and its PDF pack show the same picture.

Every function is pure: numbers and labels in, an SVG string out, with no JavaScript and no
external assets. Every piece of text is escaped here, which is why the result is marked safe for
templates. Each drawn value also travels in a ``data-value`` attribute, so what a chart shows can
be checked without reading pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe

INK = "#17202e"
MUTED = "#5d6778"
GRID = "#e2e6ec"
ACCENT = "#1f4fd1"
BAND = "#e8eefc"
GOOD = "#137a4b"
BAD = "#b42318"
NEUTRAL = "#8a94a6"
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'


def _text(value) -> str:
    return escape(str(value), quote=True)


def _n(value: float) -> str:
    """A coordinate: short, stable text."""
    return f"{value:.2f}".rstrip("0").rstrip(".") or "0"


def _amount(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _signed(value: float, digits: int = 1) -> str:
    text = f"{value:+,.{digits}f}"
    return "±0" if text.lstrip("+-").strip("0.,") == "" else text


def _svg(width: float, height: float, title: str, body: list[str], css_class: str) -> SafeString:
    label = _text(title)
    return mark_safe(  # noqa: S308 - every text in ``body`` was escaped with _text()
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css_class}" viewBox="0 0 {_n(width)} {_n(height)}" '
        f'width="{_n(width)}" height="{_n(height)}" role="img" aria-label="{label}" {FONT} font-size="11">'
        f"<title>{label}</title>{''.join(body)}</svg>"
    )


def trend_chart(
    points: Sequence[tuple[str, float | None]],
    *,
    title: str,
    band: tuple[float, float] | None = None,
    band_label: str = "",
    low: float = 0.0,
    high: float = 100.0,
    width: int = 560,
    height: int = 200,
) -> SafeString:
    """A line over up to 8 periods (``(label, value or None)``, oldest first); None leaves a gap.

    ``band`` shades a range (a benchmark, say the segment's median to p75) across the plot.
    """
    points = list(points)[-8:]
    left, right, top, bottom = 34, 26, 12, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, v in points if v is not None]
    if band:
        values += list(band)
    low = min([low, *values]) if values else low
    high = max([high, *values]) if values else high
    span = (high - low) or 1.0

    def x(index: int) -> float:
        return left + (plot_w / 2 if len(points) == 1 else plot_w * index / (len(points) - 1))

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - low) / span)

    body = []
    for tick in (low, (low + high) / 2, high):
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_n(y(tick))}" y2="{_n(y(tick))}" stroke="{GRID}"/>'
            f'<text x="{left - 4}" y="{_n(y(tick) + 4)}" text-anchor="end" fill="{MUTED}">{_amount(tick, 0)}</text>'
        )
    if band:
        band_low, band_high = sorted(band)
        body.append(
            f'<rect class="band" x="{left}" y="{_n(y(band_high))}" width="{plot_w}" '
            f'height="{_n(max(y(band_low) - y(band_high), 1))}" fill="{BAND}" data-low="{band_low}" '
            f'data-high="{band_high}"><title>{_text(band_label)}</title></rect>'
        )
    segment: list[str] = []
    segments = []
    for index, (_, value) in enumerate(points):
        if value is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        segment.append(f"{_n(x(index))},{_n(y(value))}")
    if segment:
        segments.append(segment)
    for line in segments:
        body.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="{ACCENT}" stroke-width="2"/>')
    for index, (label, value) in enumerate(points):
        body.append(
            f'<text x="{_n(x(index))}" y="{height - 8}" text-anchor="middle" fill="{MUTED}">{_text(label)}</text>'
        )
        if value is None:
            continue
        body.append(
            f'<circle class="point" cx="{_n(x(index))}" cy="{_n(y(value))}" r="3.5" fill="{ACCENT}" '
            f'data-value="{value}"><title>{_text(label)}: {_amount(value)}</title></circle>'
        )
    if not values:
        body.append(
            f'<text x="{_n(width / 2)}" y="{_n(height / 2)}" text-anchor="middle" fill="{MUTED}">No scores yet</text>'
        )
    return _svg(width, height, title, body, "chart-trend")


def sparkline(values: Sequence[float | None], *, title: str, width: int = 120, height: int = 28) -> SafeString:
    """A tiny line without axes, for a card or a table cell; None leaves a gap."""
    present = [v for v in values if v is not None]
    body = []
    if present:
        low, high = min(present), max(present)
        span = (high - low) or 1.0
        count = len(values)

        def x(index: int) -> float:
            return 2 + (width - 4) * (index / (count - 1) if count > 1 else 0.5)

        def y(value: float) -> float:
            return 2 + (height - 4) * (1 - (value - low) / span) if high != low else height / 2

        line: list[str] = []
        for index, value in enumerate(values):
            if value is None:
                if len(line) > 1:
                    body.append(
                        f'<polyline points="{" ".join(line)}" fill="none" stroke="{ACCENT}" stroke-width="1.5"/>'
                    )
                line = []
                continue
            line.append(f"{_n(x(index))},{_n(y(value))}")
        if len(line) > 1:
            body.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="{ACCENT}" stroke-width="1.5"/>')
        last = max(i for i, v in enumerate(values) if v is not None)
        body.append(
            f'<circle cx="{_n(x(last))}" cy="{_n(y(values[last]))}" r="2.2" fill="{ACCENT}" '
            f'data-value="{values[last]}"/>'
        )
    return _svg(width, height, title, body, "chart-spark")


def waterfall_chart(
    *,
    start: float,
    terms: Sequence[tuple[str, float]],
    end: float,
    start_label: str,
    end_label: str,
    title: str,
    width: int = 560,
) -> SafeString:
    """The explained change: the start total, one floating bar per term, the end total.

    Bars run left to right with their labels; gains are green, losses red. Terms are drawn as
    given, so when they add up to ``end - start`` (the engine guarantees it) the last floating bar
    ends exactly where the end total begins.
    """
    rows = [("start", start_label, 0.0, start)]
    running = start
    for label, delta in terms:
        rows.append(("term", label, running, running + delta))
        running += delta
    rows.append(("end", end_label, 0.0, end))

    label_w, value_w, row_h, top = 190, 64, 24, 8
    plot_left, plot_right = label_w, width - value_w
    height = top * 2 + row_h * len(rows)
    extremes = [0.0, 100.0] + [v for _, _, a, b in rows for v in (a, b)]
    low, high = min(extremes), max(extremes)
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return plot_left + (plot_right - plot_left) * (value - low) / span

    body = [f'<line x1="{_n(x(0))}" x2="{_n(x(0))}" y1="{top}" y2="{height - top}" stroke="{GRID}"/>']
    for index, (kind, label, a, b) in enumerate(rows):
        y = top + index * row_h
        delta = b - a
        if kind == "term":
            colour = GOOD if delta > 0 else BAD if delta < 0 else NEUTRAL
            shown = _signed(delta, 2)
        else:
            colour, shown = ACCENT, _amount(b, 2)
        bar_x, bar_w = x(min(a, b)), max(abs(x(b) - x(a)), 1.5)
        name = _text(label)
        body.append(
            f'<g class="bar bar-{kind}" data-value="{delta if kind == "term" else b}">'
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" fill="{INK}">{name}</text>'
            f'<rect x="{_n(bar_x)}" y="{y + 4}" width="{_n(bar_w)}" height="{row_h - 8}" rx="2" fill="{colour}">'
            f"<title>{name}: {_text(shown)}</title></rect>"
            f'<text x="{width - 4}" y="{y + 16}" text-anchor="end" fill="{MUTED}">{_text(shown)}</text></g>'
        )
        if kind == "term" or kind == "start":
            body.append(
                f'<line x1="{_n(x(b))}" x2="{_n(x(b))}" y1="{y + row_h - 4}" y2="{y + row_h + 4}" '
                f'stroke="{MUTED}" stroke-dasharray="2 2"/>'
            )
    return _svg(width, height, title, body, "chart-waterfall")


def benchmark_bar(
    *, value: float | None, median: float | None, p75: float | None, title: str, width: int = 160, height: int = 22
) -> SafeString:
    """A horizontal bar of ``value`` with ticks at the segment's median and p75."""
    known = [v for v in (value, median, p75) if v is not None and math.isfinite(v)]
    high = max([*known, 0.0]) * 1.1 or 1.0
    low = min([*known, 0.0])
    span = (high - low) or 1.0

    def x(number: float) -> float:
        return 1 + (width - 2) * (number - low) / span

    body = [f'<rect x="1" y="6" width="{width - 2}" height="10" rx="2" fill="{GRID}"/>']
    if value is not None:
        body.append(
            f'<rect class="value" x="{_n(x(min(0.0, value)))}" y="6" width="{_n(abs(x(value) - x(0.0)))}" height="10" '
            f'rx="2" fill="{ACCENT}" data-value="{value}"><title>{_text(title)}: {_amount(value, 2)}</title></rect>'
        )
    for name, mark, colour in (("Segment median", median, INK), ("Segment 75th percentile", p75, GOOD)):
        if mark is None:
            continue
        body.append(
            f'<line class="mark" x1="{_n(x(mark))}" x2="{_n(x(mark))}" y1="2" y2="{height - 2}" stroke="{colour}" '
            f'stroke-width="2" data-value="{mark}"><title>{name}: {_amount(mark, 2)}</title></line>'
        )
    return _svg(width, height, title, body, "chart-benchmark")


def distribution_chart(
    rows: Sequence[tuple[str, int, int]],
    *,
    title: str,
    before_label: str = "Now",
    after_label: str = "Under the new rules",
    width: int = 560,
    height: int = 220,
) -> SafeString:
    """Counts per category before and after a change, as pairs of columns (``(label, before, after)``).

    The rating distribution of a period under the rules in force and under a proposed version,
    for instance. Each column carries its count in ``data-value`` and its side in ``data-side``.
    """
    rows = list(rows)
    left, right, top, bottom = 34, 12, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    high = max([1, *(count for _, before, after in rows for count in (before, after))])
    # Round the axis up to a tidy number so the ticks read as whole counts.
    step = max(1, math.ceil(high / 4))
    high = step * 4

    def y(count: float) -> float:
        return top + plot_h * (1 - count / high)

    body = []
    for tick in range(0, high + 1, step):
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_n(y(tick))}" y2="{_n(y(tick))}" stroke="{GRID}"/>'
            f'<text x="{left - 4}" y="{_n(y(tick) + 4)}" text-anchor="end" fill="{MUTED}">{tick}</text>'
        )
    legend_x = left
    for side, label, colour in (("before", before_label, NEUTRAL), ("after", after_label, ACCENT)):
        body.append(
            f'<rect x="{_n(legend_x)}" y="8" width="10" height="10" rx="2" fill="{colour}"/>'
            f'<text x="{_n(legend_x + 14)}" y="17" fill="{INK}" data-side="{side}">{_text(label)}</text>'
        )
        legend_x += 24 + 6.5 * len(label)
    group_w = plot_w / max(len(rows), 1)
    bar_w = min(36.0, group_w * 0.32)
    for index, (label, before, after) in enumerate(rows):
        centre = left + group_w * (index + 0.5)
        name = _text(label)
        for side, count, colour, x, legend in (
            ("before", before, NEUTRAL, centre - bar_w - 2, before_label),
            ("after", after, ACCENT, centre + 2, after_label),
        ):
            shown = f"{label}, {legend.lower()}: {count}"
            body.append(
                f'<g class="bar bar-{side}" data-side="{side}" data-label="{name}" data-value="{count}">'
                f'<rect x="{_n(x)}" y="{_n(y(count))}" width="{_n(bar_w)}" height="{_n(max(y(0) - y(count), 0))}" '
                f'rx="2" fill="{colour}"><title>{_text(shown)}</title></rect>'
                f'<text x="{_n(x + bar_w / 2)}" y="{_n(y(count) - 4)}" text-anchor="middle" fill="{MUTED}">'
                f"{count}</text></g>"
            )
        body.append(
            f'<text x="{_n(centre)}" y="{height - bottom + 16}" text-anchor="middle" fill="{INK}">{name}</text>'
        )
        if after != before:
            # Neutral ink: whether more partners in a band is good news depends on the band.
            body.append(
                f'<text x="{_n(centre)}" y="{height - bottom + 30}" text-anchor="middle" fill="{MUTED}">'
                f"{_signed(after - before, 0)}</text>"
            )
    return _svg(width, height, title, body, "chart-distribution")


def histogram_chart(
    bins: Sequence[tuple[float, float, int]],
    *,
    title: str,
    mark: float | None = None,
    mark_label: str = "",
    percent: bool = True,
    width: int = 560,
    height: int = 200,
) -> SafeString:
    """How many fall in each range of a value, as adjacent columns (``(low, high, count)``, in order).

    The completeness of a period's scores, for instance. ``mark`` draws a dashed line at a
    threshold, labelled ``mark_label``; columns whose range lies wholly below it are drawn in the
    warning colour. Edges are labelled as percentages of 1 when ``percent``. Each column carries
    its count in ``data-value`` and its range in ``data-low`` / ``data-high``.
    """
    bins = list(bins)
    left, right, top, bottom = 34, 12, 22, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    body = []
    if not bins:
        body.append(
            f'<text x="{_n(width / 2)}" y="{_n(height / 2)}" text-anchor="middle" fill="{MUTED}">Nothing to show</text>'
        )
        return _svg(width, height, title, body, "chart-histogram")
    low, high = float(bins[0][0]), float(bins[-1][1])
    span = (high - low) or 1.0
    most = max([1, *(count for _, _, count in bins)])
    step = max(1, math.ceil(most / 4))
    most = step * 4

    def x(value: float) -> float:
        return left + plot_w * (float(value) - low) / span

    def y(count: float) -> float:
        return top + plot_h * (1 - count / most)

    def edge(value: float) -> str:
        return f"{float(value) * 100:.0f}%" if percent else _amount(float(value), 1)

    for tick in range(0, most + 1, step):
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_n(y(tick))}" y2="{_n(y(tick))}" stroke="{GRID}"/>'
            f'<text x="{left - 4}" y="{_n(y(tick) + 4)}" text-anchor="end" fill="{MUTED}">{tick}</text>'
        )
    for bin_low, bin_high, count in bins:
        below = mark is not None and float(bin_high) <= float(mark)
        colour = BAD if below else ACCENT
        x0, x1 = x(bin_low), x(bin_high)
        shown = f"{edge(bin_low)}\u2013{edge(bin_high)}: {count}"
        body.append(
            f'<g class="bar{" bar-below" if below else ""}" data-low="{float(bin_low)}" data-high="{float(bin_high)}" '
            f'data-value="{count}">'
            f'<rect x="{_n(x0 + 1)}" y="{_n(y(count))}" width="{_n(max(x1 - x0 - 2, 1))}" '
            f'height="{_n(max(y(0) - y(count), 0))}" rx="2" fill="{colour}"><title>{_text(shown)}</title></rect>'
            + (
                f'<text x="{_n((x0 + x1) / 2)}" y="{_n(y(count) - 4)}" text-anchor="middle" '
                f'fill="{MUTED}">{count}</text>'
                if count
                else ""
            )
            + "</g>"
        )
    edges = [bins[0][0], *(bin_high for _, bin_high, _ in bins)]
    for value in edges:
        body.append(
            f'<text x="{_n(x(value))}" y="{height - 8}" text-anchor="middle" fill="{MUTED}">{_text(edge(value))}</text>'
        )
    if mark is not None and low <= float(mark) <= high:
        label = _text(mark_label or edge(mark))
        anchor = "end" if x(mark) > width / 2 else "start"
        offset = -4 if anchor == "end" else 4
        body.append(
            f'<g class="mark" data-value="{float(mark)}">'
            f'<line x1="{_n(x(mark))}" x2="{_n(x(mark))}" y1="{top - 8}" y2="{_n(y(0))}" stroke="{INK}" '
            f'stroke-width="1.5" stroke-dasharray="4 3"/>'
            f'<text x="{_n(x(mark) + offset)}" y="{top - 10}" text-anchor="{anchor}" fill="{INK}">{label}</text></g>'
        )
    return _svg(width, height, title, body, "chart-histogram")
