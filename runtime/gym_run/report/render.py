"""A rollouts.jsonl file in, a report people look at out: self-contained HTML, or text for a terminal.

The HTML has no external URLs (inline CSS, inline SVG, one small inline script), is autoescaped
(rollouts hold model output, which is untrusted text), and lists each conversation in a <details>
block. Filtering by outcome works without JavaScript (radio buttons and CSS); the script adds
search, sorting and a state kept in the URL fragment (#q=paris&show=failed&sort=-latency).
"""

from __future__ import annotations

import os
from typing import Any

from gym_run.collect.summary import outcome_lines
from gym_run.endpoint.pricing import PriceTable
from gym_run.report.aggregate_view import aggregate_view
from gym_run.report.charts import charts
from gym_run.report.data import ReportData, collect_report, percentile
from gym_run.report.page import seconds, write_page
from gym_run.report.rowview import Budget, clip, cost_text, row_view, short
from gym_run.report.svgchart import fmt

ERRORS_HTML = 20
ERRORS_TEXT = 5
MAX_METRICS = 300


def _headline(data: ReportData) -> dict[str, str]:
    """Mean reward with failed rollouts counted as 0 (what a gate judges), the ok-only mean beside."""
    outcome = (data.aggregate or {}).get("outcome") or {}
    mean = outcome.get("reward_mean")
    ok_mean = data.reward_mean
    rate = outcome.get("pass_rate")
    return {
        "reward_mean": "n/a" if mean is None else f"{mean:.3f}",
        "reward_note": (
            f"{data.failed:,} failed counted as 0; ok only: "
            + ("n/a" if ok_mean is None else f"{ok_mean:.3f}")
            if data.failed
            else "no failed rollouts"
        ),
        "pass_rate": "n/a" if rate is None else f"{100 * rate:.1f}%",
        "pass_note": f"reward >= {data.pass_threshold:g}, failed = not passed",
    }


def summary(data: ReportData) -> dict[str, Any]:
    latencies = data.latency.values
    repeats = (data.aggregate or {}).get("repeats") or {}
    top_k = str(repeats.get("num_repeats", ""))
    pass_k = (repeats.get("pass@k") or {}).get(top_k)
    return {
        "rollouts": f"{data.rollouts:,}",
        "ok": f"{data.ok:,}",
        "failed": f"{data.failed:,}",
        **_headline(data),
        "pass_at_k": None if pass_k is None else (f"pass@{top_k}", f"{pass_k:.3f}"),
        "tokens": f"{data.usage['total_tokens']:,}",
        "cost": cost_text(data.cost_usd, data),
        "priced": data.cost_usd is not None,
        "latency_p50": seconds(percentile(latencies, 0.5)),
        "latency_p95": seconds(percentile(latencies, 0.95)),
        "model_calls": f"{data.model_calls:,}",
        "tool_calls": f"{data.tool_calls:,}",
        "verdicts": dict(sorted(data.verdicts.items())),
        "cache_hits": data.cache_hits,
    }


def render_html(
    rollouts_path: str,
    out_path: str,
    metrics: dict[str, Any] | None = None,
    *,
    prices: PriceTable | None = None,
    max_rows: int = 2000,
    title: str | None = None,
    data: ReportData | None = None,
) -> ReportData:
    """Writes the report to out_path (atomically) and returns the aggregates it shows.

    `prices` re-prices every rollout; without it the report shows the cost gym-run recorded.
    `data`: aggregates already collected (collect_report), else they are collected here."""
    data = data or collect_report(rollouts_path, prices=prices, max_rows=max_rows)
    budget = Budget()
    rows = [row_view(row, data, budget) for row in data.table]
    errors = data.errors.most_common()
    shown_errors = errors[:ERRORS_HTML]
    write_page(
        "report.html.j2",
        out_path,
        title=title or f"Rollouts report: {os.path.basename(rollouts_path)}",
        source=os.path.abspath(rollouts_path),
        s=summary(data),
        agg=aggregate_view(data.aggregate),
        hardest=_hardest(data),
        task_counts=[
            f"{(data.aggregate.get('tasks') or {}).get(k, 0):,}" for k in ("count", "none_passed")
        ],
        charts=charts(data),
        warnings=_warnings(data),
        has_expected=any(r["check"]["has_expected"] for r in rows),
        has_verdict=any(r["check"]["verdict"] for r in rows),
        models=[
            {"model": m, **u, "cost": _model_cost(m, data)}
            for m, u in sorted(data.usage_models.items())
        ],
        errors=shown_errors,
        errors_more=_more(errors, len(shown_errors)),
        metrics=_flat(metrics or {}),
        rows=rows,
        shown=len(rows),
        total=data.rollouts,
        head=len(data.shown.head),
        later_not_passed=data.shown.not_passed_after_head,
        cut_rows=budget.cut_rows,
        threshold=f"{data.pass_threshold:g}",
    )
    return data


def _hardest(data: ReportData) -> list[dict[str, Any]]:
    """The lowest-scoring tasks, when some task did not pass every rollout."""
    tasks = data.hardest_tasks()
    if "repeats" not in data.aggregate or not any(t["passed"] < t["rollouts"] for t in tasks):
        return []  # one rollout per task: the rollouts table's "not passed" filter says it all
    return [
        {
            **t,
            "reward_mean": fmt(t["reward_mean"]),
            "rewards": " ".join(fmt(r) for r in t["rewards"]),
            "prompt": clip(t["prompt"], 160),
        }
        for t in tasks
    ]


def _more(errors: list[tuple[str, int]], shown: int) -> str:
    """ "3 more error groups (41 rollouts)" when not every group is listed."""
    rest = errors[shown:]
    if not rest:
        return ""
    groups = "group" if len(rest) == 1 else "groups"
    return f"{len(rest):,} more error {groups} ({sum(n for _, n in rest):,} rollouts)"


def _warnings(data: ReportData) -> list[str]:
    """The cost line already says "n/a (stand-in-1 has no price)"; unknown models keep their hint."""
    return [w for w in data.warnings if not w.startswith("cost: n/a (")]


def _model_cost(model: str, data: ReportData) -> str:
    cost = data.cost_models.get(model)
    return f"n/a ({model} has no price)" if cost is None else cost_text(cost, data)


def _flat(doc: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """metrics.json as key/value lines in JSON's spelling (null, false), without the aggregate
    block the page shows above, at most MAX_METRICS of them."""
    out: list[tuple[str, str]] = []
    for key, value in doc.items():
        if key == "aggregate" and prefix in ("", "_gym."):
            continue
        if isinstance(value, dict) and value:
            out += _flat(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", short(value, 300)))
        if len(out) >= MAX_METRICS:
            return out[:MAX_METRICS]
    return out


def render_text(
    rollouts_path: str,
    metrics: dict[str, Any] | None = None,
    *,
    prices: PriceTable | None = None,
    data: ReportData | None = None,
) -> str:
    """A few lines for a terminal; `data` reuses aggregates from render_html."""
    data = data or collect_report(rollouts_path, prices=prices, max_rows=0)
    s = summary(data)
    u = data.usage
    lines = [f"rollouts: {s['rollouts']} ({s['ok']} ok, {s['failed']} failed) in {rollouts_path}"]
    if data.rewards and data.reward_min is not None and data.reward_max is not None:
        spread = ", ".join(f"{fmt(v)} x{n:,}" for v, n in sorted(data.rewards.items())[:6])
        more = "" if len(data.rewards) <= 6 else f", ... ({len(data.rewards)} distinct values)"
        mean = "n/a" if data.reward_mean is None else f"{data.reward_mean:.3f}"
        lines.append(
            f"reward (ok rollouts): mean {mean} (min {fmt(data.reward_min)}, "
            f"max {fmt(data.reward_max)}); {spread}{more}"
        )
    if data.aggregate:
        outcome = outcome_lines(data.aggregate)
        lines += outcome if data.failed else outcome[1:]
    lines.append(
        f"tokens: {u['input_tokens']:,} in ({u['cached_input_tokens']:,} cached), "
        f"{u['output_tokens']:,} out ({u['reasoning_tokens']:,} reasoning), {u['total_tokens']:,} total; "
        f"{s['model_calls']} model calls, {s['tool_calls']} tool calls"
    )
    lines.append(f"cost: {s['cost']}")
    lines.append(f"latency: p50 {s['latency_p50']}, p95 {s['latency_p95']}")
    if data.verdicts:
        lines.append("judge: " + ", ".join(f"{k} {n:,}" for k, n in sorted(data.verdicts.items())))
    if data.cache_hits:
        lines.append(f"cache: {data.cache_hits:,} rollouts replayed from the response cache")
    run = (metrics or {}).get("_gym") or {}
    if run.get("wall_time_s") is not None:
        lines.append(f"wall time: {run['wall_time_s']} s ({run.get('rollouts_per_s')} rollouts/s)")
    errors = data.errors.most_common()
    for message, n in errors[:ERRORS_TEXT]:
        lines.append(f"error x{n:,}: {clip(message, 200)}")
    if more := _more(errors, ERRORS_TEXT):
        lines.append(f"... {more}; the HTML report lists up to {ERRORS_HTML}")
    lines += [f"warning: {w}" for w in _warnings(data)]
    return "\n".join(lines)
