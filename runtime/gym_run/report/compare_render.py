"""A Comparison in, what people read out: an aligned text table for a terminal, or a
self-contained HTML page (inline CSS and SVG, autoescaped, no scripts, no URLs).

Both come from one list of rows (`metric_rows`), so text and HTML never disagree: label, A, B,
B - A, and whether the change is good (reward up, tokens/cost/latency down) or bad.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gym_run.report.compare import Comparison, Side, TaskRow
from gym_run.report.page import seconds, write_page
from gym_run.report.svgchart import PALETTE, stacked_bar_chart


@dataclass
class MetricRow:
    label: str
    a: str
    b: str
    delta: str
    verdict: str  # "better", "worse" or "" (no change, or no direction)


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _usd(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"${value:,.4f}" if value < 100 else f"${value:,.2f}"


def _row(
    label: str,
    a: float | None,
    b: float | None,
    show: Any,
    *,
    higher_is_better: bool | None,
    delta_show: Any = None,
    relative: bool = False,
) -> MetricRow:
    if a is None or b is None or a == b:
        return MetricRow(label, show(a), show(b), "", "")
    change = b - a
    text = (delta_show or show)(abs(change))
    text = ("+" if change > 0 else "-" if change < 0 else "") + text
    if relative and a:
        text += f" ({100 * change / a:+.1f}%)"
    verdict = ""
    if higher_is_better is not None and abs(change) > 1e-12:
        verdict = "better" if (change > 0) == higher_is_better else "worse"
    return MetricRow(label, show(a), show(b), text, verdict)


def _field(side: Side, name: str, stat: str = "mean") -> float | None:
    value = ((side.aggregate.get("fields") or {}).get(name) or {}).get(stat)
    return float(value) if isinstance(value, (int, float)) else None


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _count(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


Getter = Callable[[Side], float | None]
UP: dict[str, Any] = {"higher_is_better": True}
DOWN: dict[str, Any] = {"higher_is_better": False}
DOWN_RELATIVE: dict[str, Any] = {"higher_is_better": False, "relative": True}


def _outcome(key: str) -> Getter:
    return lambda side: side.aggregate["outcome"][key]


def _pass_k(side: Side) -> dict[str, float]:
    return (side.aggregate.get("repeats") or {}).get("pass@k") or {}


def _pass_at(k: str) -> Getter:
    return lambda side: _pass_k(side).get(k)


def _usage(key: str) -> Getter:
    return lambda side: float(side.usage[key])


def _latency(q: float) -> Getter:
    return lambda side: side.latency.quantile(q)


def _failed_row(ra: dict[str, Any], rb: dict[str, Any]) -> MetricRow:
    more = rb["failed"] - ra["failed"]
    return MetricRow(
        "rollouts (failed)",
        f"{ra['final']:,} ({ra['failed']:,})",
        f"{rb['final']:,} ({rb['failed']:,})",
        f"{more:+,} failed" if more else "",
        ("worse" if more > 0 else "better") if more else "",
    )


def metric_rows(c: Comparison) -> list[MetricRow]:
    """One row per figure: (label, how to read it from a side, how to show it, which way is good)."""
    a, b = c.a, c.b
    pass_k = set(_pass_k(a)) | set(_pass_k(b))
    table: list[tuple[str, Getter, Callable[[float | None], str], dict[str, Any]]] = [
        ("mean reward (ok rollouts)", lambda side: _field(side, "reward"), _num, UP),
        ("mean reward (failed as 0)", _outcome("reward_mean"), _num, UP),
        (
            "pass rate",
            _outcome("pass_rate"),
            _percent,
            {**UP, "delta_show": lambda v: f"{100 * v:.1f} pts"},
        ),
        *((f"pass@{k}", _pass_at(k), _num, UP) for k in sorted(pass_k, key=int) if k != "1"),
        ("tokens", _usage("total_tokens"), _count, DOWN_RELATIVE),
        ("  input", _usage("input_tokens"), _count, DOWN_RELATIVE),
        ("  output", _usage("output_tokens"), _count, DOWN_RELATIVE),
        ("tokens per rollout", lambda side: _field(side, "total_tokens"), _count, DOWN_RELATIVE),
        ("cost", lambda side: side.cost, _usd, DOWN_RELATIVE),
        ("latency p50", _latency(0.5), seconds, DOWN),
        ("latency p95", _latency(0.95), seconds, DOWN),
    ]
    rows = [_failed_row(a.aggregate["rollouts"], b.aggregate["rollouts"])]
    return rows + [_row(label, get(a), get(b), show, **how) for label, get, show, how in table]


def task_summary(c: Comparison) -> str:
    if not c.tasks:
        return "tasks: none in both runs"
    text = (
        f"tasks: {c.tasks:,} in both; B better on {c.better:,}, worse on {c.worse:,}, "
        f"same on {c.same:,}; mean change {c.deltas.mean:+.3f}"
    )
    interval = c.interval()
    if interval is not None:
        text += f" (95% interval {interval[0]:+.3f} to {interval[1]:+.3f})"
    if c.only_a or c.only_b:
        text += f"; only in A: {c.only_a:,}, only in B: {c.only_b:,}"
    return text


def _task_line(row: TaskRow) -> str:
    mark = "  (different prompts)" if row.mismatch else ""
    return (
        f"  task {row.task:>5}  {_num(row.a)} -> {_num(row.b)}  {row.delta or 0:+.3f}  "
        f"{row.question[:60]}{mark}"
    )


def _failures(side: Side) -> str:
    failures = side.aggregate.get("failures") or {}
    return ", ".join(f"{cls} {n:,}" for cls, n in failures.items()) or "none"


def comparison_text(c: Comparison, *, top: int = 5) -> str:
    rows = metric_rows(c)
    width = max(len(r.label) for r in rows)
    wa = max(len(r.a) for r in rows + [MetricRow("", "A", "", "", "")])
    wb = max(len(r.b) for r in rows + [MetricRow("", "", "B", "", "")])
    lines = [f"A: {c.a.path}", f"B: {c.b.path}", ""]
    lines.append(f"{'':<{width}}  {'A':>{wa}}  {'B':>{wb}}  B - A")
    for r in rows:
        flag = {"better": "  better", "worse": "  worse"}.get(r.verdict, "")
        lines.append(f"{r.label:<{width}}  {r.a:>{wa}}  {r.b:>{wb}}  {r.delta}{flag}".rstrip())
    lines += ["", task_summary(c)]
    if c.input_mismatch:
        lines.append(
            f"warning: {c.input_mismatch:,} tasks were asked different prompts in A and B "
            "(compare runs of the same dataset)"
        )
    for title, found in (("worse in B", c.regressions), ("better in B", c.improvements)):
        if found:
            more = f" (of {len(found)} largest)" if len(found) > top else ""
            lines.append(f"{title}{more}:")
            lines += [_task_line(row) for row in found[:top]]
    lines.append(f"failures: A {_failures(c.a)}; B {_failures(c.b)}")
    for side, name in ((c.a, "A"), (c.b, "B")):
        if side.bad_lines:
            lines.append(f"warning: {side.bad_lines} lines of {name} are not rollout records")
    return "\n".join(lines)


def _delta_chart(c: Comparison) -> str | None:
    """How many tasks changed by how much (B - A), in 11 bins from -1 to +1 of the reward range."""
    rows = [r for r in c.rows if r.delta is not None]
    if not rows:
        return None
    lo = min(min(r.delta for r in rows if r.delta is not None), -1e-9)
    hi = max(max(r.delta for r in rows if r.delta is not None), 1e-9)
    span = max(abs(lo), abs(hi))
    bins = 11
    counts = [0.0] * bins
    for r in rows:
        assert r.delta is not None
        counts[min(bins - 1, int((r.delta + span) / (2 * span) * bins))] += 1
    labels = [f"{-span + (i + 0.5) * 2 * span / bins:+.2f}" for i in range(bins)]
    return stacked_bar_chart(
        labels,
        [("", counts, PALETTE[0])],
        title=f"Change in mean reward per task (B - A), {len(rows):,} tasks",
        x_label="B - A",
        y_label="tasks",
        counts=True,
    )


def render_compare_html(c: Comparison, out_path: str, *, title: str | None = None) -> None:
    write_page(
        "compare.html.j2",
        out_path,
        title=title or f"Compare: {os.path.basename(c.a.path)} vs {os.path.basename(c.b.path)}",
        a=os.path.abspath(c.a.path),
        b=os.path.abspath(c.b.path),
        metrics=metric_rows(c),
        summary=task_summary(c),
        mismatch=c.input_mismatch,
        chart=_delta_chart(c),
        regressions=c.regressions,
        improvements=c.improvements,
        rows=c.rows,
        shown=len(c.rows),
        total=c.tasks + c.only_a + c.only_b,
        failures_a=_failures(c.a),
        failures_b=_failures(c.b),
        fmt=_num,
    )
