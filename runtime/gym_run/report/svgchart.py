"""Numbers in, inline SVG out: the report's charts, with no JavaScript and no external assets.

A report must open from a file:// URL on an air-gapped machine and survive being attached to an
issue, so charts are drawn here as plain SVG text. Every label goes through html.escape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 600, 230
LEFT, RIGHT, TOP, BOTTOM = 58, 12, 28, 46
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2")
_TOOLTIP_LIMIT = 600  # per-bar <title> tooltips beyond this would bloat the page


def fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def axis(value: float, counts: bool = False) -> tuple[float, int]:
    """(axis maximum, intervals): a round step (1, 2, 2.5 or 5 x 10^k; whole for counts), 2-5 steps."""
    if value <= 0 or not math.isfinite(value):
        return (4.0, 4) if counts else (1.0, 4)
    raw = value / 4
    power = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if counts else (1, 2, 2.5, 5, 10)
    step = next(m * power for m in steps if m * power >= raw)
    if counts:
        step = max(1.0, round(step))
    intervals = max(2, math.ceil(value / step - 1e-9))
    return step * intervals, intervals


def _frame(
    title: str,
    x_label: str,
    y_label: str,
    y_max: float,
    legend: Sequence[tuple[str, str]],
    intervals: int = 4,
) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<text x="{LEFT}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for i in range(intervals + 1):
        y = TOP + plot_h - plot_h * i / intervals
        label = fmt(y_max * i / intervals)
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{label}</text>'
        )
    out.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 6}" text-anchor="middle" class="axis">'
        f"{escape(x_label)}</text>"
    )
    out.append(
        f'<text transform="translate(14 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle" '
        f'class="axis">{escape(y_label)}</text>'
    )
    x = WIDTH - RIGHT
    for name, color in reversed(legend):
        x -= 8 + 7 * len(name) + 14
        out.append(
            f'<rect x="{x}" y="7" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14}" y="16" class="tick">{escape(name)}</text>'
        )
    return out


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    color: str = PALETTE[0],
    counts: bool = True,
) -> str:
    """One labelled bar per category (reward values, histogram bins)."""
    return stacked_bar_chart(
        [label for label, _ in bars],
        [("", [v for _, v in bars], color)],
        title=title,
        x_label=x_label,
        y_label=y_label,
        label_every=1,
        counts=counts,
    )


def stacked_bar_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], str]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    label_every: int | None = None,
    counts: bool = False,
) -> str:
    """Bars stacked from `series` (name, values, color); thin bars for long series such as
    tokens per rollout. Only every `label_every`-th x label is drawn (default: about 10).
    counts: whole numbers, so the axis ticks are whole numbers too."""
    n = len(labels)
    totals = [sum(s[1][i] for s in series) for i in range(n)]
    y_max, intervals = axis(max(totals, default=0), counts)
    legend = [(name, color) for name, _, color in series if name]
    out = _frame(title, x_label, y_label, y_max, legend, intervals)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    if n == 0:
        out.append(
            f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" class="axis">'
            "no data</text></svg>"
        )
        return "".join(out)
    step = plot_w / n
    gap = step * 0.15 if n <= 60 else 0
    gap = max(gap, step - 90)  # a few categories: bars stay bar-shaped, not slabs
    every = label_every or max(1, math.ceil(n / 10))
    for i, label in enumerate(labels):
        x, base = LEFT + i * step, float(TOP + plot_h)
        tip = f"{label}: " + ", ".join(
            f"{name or y_label} {fmt(vals[i])}" for name, vals, _ in series
        )
        for _name, values, color in series:
            h = plot_h * values[i] / y_max
            if h <= 0:
                continue
            base -= h
            bar = (
                f'<rect x="{x + gap / 2:.2f}" y="{base:.2f}" width="{max(step - gap, 0.5):.2f}" '
                f'height="{h:.2f}" fill="{color}" class="bar"'
            )
            out.append(
                bar + (f"><title>{escape(tip)}</title></rect>" if n <= _TOOLTIP_LIMIT else "/>")
            )
        if i % every == 0:
            out.append(
                f'<text x="{x + step / 2:.2f}" y="{TOP + plot_h + 14}" text-anchor="middle" '
                f'class="tick">{escape(label)}</text>'
            )
    out.append("</svg>")
    return "".join(out)


def binned(
    values: Sequence[float], *, count: int = 12, tail: float | None = 0.99, scale: float = 1.0
) -> tuple[list[str], list[float]]:
    """(labels, counts) of equal-width bins from the minimum to the `tail` quantile; what lies
    above it goes to one last "> x" bin, so a few slow outliers do not squeeze every other value
    into the first bar. `scale` turns a sample's counts into estimates of the whole."""
    if not values:
        return [], []
    ordered = sorted(values)
    lo, hi = ordered[0], ordered[-1]
    if hi == lo:
        return [fmt(lo)], [len(values) * scale]
    cut = hi
    if tail is not None:
        q = ordered[min(len(ordered) - 1, round(tail * (len(ordered) - 1)))]
        if q > lo and hi - lo > 1.5 * (q - lo):  # a long tail: the body gets the bins
            cut = q
    width = (cut - lo) / count
    counts = [0.0] * (count + (cut < hi))
    for v in ordered:
        counts[count if v > cut else min(int((v - lo) / width), count - 1)] += scale
    labels = [fmt(lo + width * (i + 0.5)) for i in range(count)]
    if cut < hi:
        labels.append(f"> {fmt(cut)}")
    return labels, [round(c) if scale != 1.0 else c for c in counts]


def histogram(
    values: Sequence[float],
    *,
    bins: int = 12,
    title: str,
    x_label: str,
    y_label: str = "rollouts",
    color: str = PALETTE[0],
    tail: float | None = 0.99,
    scale: float = 1.0,
) -> str:
    """Equal-width bins (one bin when all values are equal), a long tail folded into a last bin."""
    labels, counts = binned(values, count=bins, tail=tail, scale=scale)
    return stacked_bar_chart(
        labels,
        [("", counts, color)],
        title=title,
        x_label=x_label,
        y_label=y_label,
        label_every=2 if len(labels) > 8 else 1,
        counts=True,
    )
