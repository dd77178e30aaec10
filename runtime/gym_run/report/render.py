"""A rollouts.jsonl file in, a report people look at out: self-contained HTML, or text for a terminal.

The HTML has no external URLs (inline CSS, inline SVG, no JavaScript), is autoescaped (rollouts
hold model output, which is untrusted text), and lists each conversation in a <details> block.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from gym_compile.assets import templates_dir
from gym_compile.atomic import atomic_file
from gym_run.collect.summary import outcome_lines
from gym_run.endpoint.pricing import PriceTable
from gym_run.messages import message_text
from gym_run.report.aggregate_view import aggregate_view
from gym_run.report.data import ReportData, collect_report, percentile, usage_by_model
from gym_run.report.svgchart import PALETTE, bar_chart, fmt, histogram, stacked_bar_chart

MAX_TEXT = 4000


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return (
        text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit:,} more characters)"
    )


def cost_text(cost: float | None, data: ReportData) -> str:
    if cost is not None:
        return f"${cost:,.4f}" if cost < 100 else f"${cost:,.2f}"
    models = sorted(data.unpriced_models) or ["a model"]
    return f"n/a ({', '.join(models)} {'has' if len(models) == 1 else 'have'} no price)"


def _item(item: Any) -> dict[str, str]:
    """One input/output item as {kind, label, text} for the conversation view."""
    if not isinstance(item, dict):
        return {
            "kind": "other",
            "label": "item",
            "text": clip(json.dumps(item, ensure_ascii=False)),
        }
    kind = item.get("type", "message")
    if kind == "message" or (
        kind not in ("function_call", "function_call_output", "reasoning") and "role" in item
    ):
        role = str(item.get("role", "message"))
        return {"kind": role, "label": role, "text": clip(message_text(item))}
    if kind == "function_call":
        return {
            "kind": "tool-call",
            "label": f"tool call: {item.get('name', '?')}",
            "text": clip(str(item.get("arguments", ""))),
        }
    if kind == "function_call_output":
        output = item.get("output")
        return {
            "kind": "tool-output",
            "label": "tool output",
            "text": clip(
                output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
            ),
        }
    if kind == "reasoning":
        summary = " ".join(
            s.get("text", "") for s in item.get("summary") or [] if isinstance(s, dict)
        )
        return {"kind": "reasoning", "label": "reasoning", "text": clip(summary or "(no summary)")}
    return {"kind": "other", "label": str(kind), "text": clip(json.dumps(item, ensure_ascii=False))}


def row_view(
    index: int, record: dict[str, Any], cost: float | None, data: ReportData
) -> dict[str, Any]:
    gym = record.get("_gym") or {}
    params = record.get("responses_create_params") or {}
    raw_input = params.get("input")
    items = (
        [{"role": "user", "content": raw_input}] if isinstance(raw_input, str) else raw_input or []
    )
    conversation = [_item(i) for i in items]
    if isinstance(params.get("instructions"), str):
        conversation.insert(
            0, {"kind": "system", "label": "instructions", "text": clip(params["instructions"])}
        )
    output = (record.get("response") or {}).get("output") or []
    answers = [
        message_text(o) for o in output if isinstance(o, dict) and o.get("role") == "assistant"
    ]
    tokens = sum(u.get("total_tokens", 0) for u in usage_by_model(record).values())
    error = gym.get("error") or {}
    reward = record.get("reward")
    judged = [_judged(e) for e in record.get("judge_evaluations") or [] if isinstance(e, dict)]
    return {
        "index": index,
        "id": gym.get("id", ""),
        "task": record.get("_ng_task_index"),
        "rollout": record.get("_ng_rollout_index"),
        "status": gym.get("status", "?"),
        "reward": fmt(reward) if isinstance(reward, (int, float)) else "",
        "tokens": f"{tokens:,}",
        "cost": ""
        if gym.get("status") != "ok"
        else (cost_text(cost, data) if cost is not None else "n/a"),
        "latency": f"{gym['latency_s']:.3f}"
        if isinstance(gym.get("latency_s"), (int, float))
        else "",
        "tool_calls": gym.get("tool_calls", ""),
        "verdict": record.get("judge_verdict")
        or ("unparseable" if record.get("judge_unparseable") else ""),
        "cache_hit": bool(gym.get("cache_hit")),
        "expected": _short(record.get("expected_answer")),
        "conversation": conversation + [_item(o) for o in output] + judged,
        "final_answer": clip(answers[-1]) if answers else "",
        "grade": ""
        if not isinstance(reward, (int, float))
        else "good"
        if reward >= 1
        else "bad"
        if reward <= 0
        else "partial",
        "error": f"{error.get('class', 'Error')}: {error.get('message', '')}" if error else "",
    }


def _judged(evaluation: dict[str, Any]) -> dict[str, str]:
    """The judge's reply and the label read from it (or that none could be)."""
    output = (evaluation.get("response") or {}).get("output") or []
    said = "\n".join(
        message_text(o) for o in output if isinstance(o, dict) and o.get("type") == "message"
    )
    label = evaluation.get("verdict_label")
    return {
        "kind": "judge",
        "label": f"judge: {label}" if label else "judge: no verdict label found",
        "text": clip(said or "(no text)"),
    }


def _short(value: Any) -> str:
    if value is None:
        return ""
    return clip(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False), 300)


def _reward_chart(rewards: Counter[float]) -> str:
    title, x_label = "Reward distribution", "reward"
    if len(rewards) <= 12:
        bars = [(fmt(v), float(n)) for v, n in sorted(rewards.items())]
        return bar_chart(bars, title=title, x_label=x_label, y_label="rollouts", color=PALETTE[2])
    lo, hi, bins = min(rewards), max(rewards), 12
    width = (hi - lo) / bins
    counts = [0.0] * bins
    for value, n in rewards.items():
        counts[min(int((value - lo) / width), bins - 1)] += n
    labels = [fmt(lo + width * (i + 0.5)) for i in range(bins)]
    return stacked_bar_chart(
        labels,
        [("", counts, PALETTE[2])],
        title=title,
        x_label=x_label,
        y_label="rollouts",
        label_every=2,
        counts=True,
    )


def charts(data: ReportData) -> dict[str, str | None]:
    shown = [usage_by_model(r) for r in data.rows]
    totals = [
        {
            k: sum(u.get(k, 0) for u in m.values())
            for k in ("input_tokens", "cached_input_tokens", "output_tokens")
        }
        for m in shown
    ]
    labels = [str(i) for i in range(len(shown))]
    series = [
        (
            "input",
            [t["input_tokens"] - min(t["cached_input_tokens"], t["input_tokens"]) for t in totals],
            PALETTE[0],
        ),
        (
            "cached input",
            [min(t["cached_input_tokens"], t["input_tokens"]) for t in totals],
            PALETTE[4],
        ),
        ("output", [t["output_tokens"] for t in totals], PALETTE[1]),
    ]
    costs = data.row_costs
    cost_svg = None
    if any(c is not None for c in costs):
        cost_svg = stacked_bar_chart(
            labels,
            [("", [c or 0.0 for c in costs], PALETTE[3])],
            title="Cost per rollout (USD)",
            x_label="rollout (input order)",
            y_label="USD",
        )
    return {
        "reward": _reward_chart(data.rewards),
        "tokens": stacked_bar_chart(
            labels,
            series,
            title="Tokens per rollout",
            x_label="rollout (input order)",
            y_label="tokens",
        ),
        "cost": cost_svg,
        "latency": _latency_chart(data.latencies),
    }


def _latency_chart(latencies: list[float]) -> str:
    """Milliseconds when every rollout took under a second (the stand-in), else seconds."""
    fast = bool(latencies) and max(latencies) < 1
    values = [v * 1000 for v in latencies] if fast else latencies
    return histogram(
        values,
        title="Latency distribution",
        x_label=f"{'milliseconds' if fast else 'seconds'} per rollout",
        color=PALETTE[0],
    )


def summary(data: ReportData) -> dict[str, Any]:
    mean = data.reward_mean
    return {
        "rollouts": f"{data.rollouts:,}",
        "ok": f"{data.ok:,}",
        "failed": f"{data.failed:,}",
        "reward_mean": "n/a" if mean is None else f"{mean:.3f}",
        "tokens": f"{data.usage['total_tokens']:,}",
        "cost": cost_text(data.cost_usd, data),
        "latency_p50": _seconds(percentile(data.latencies, 0.5)),
        "latency_p95": _seconds(percentile(data.latencies, 0.95)),
        "model_calls": f"{data.model_calls:,}",
        "tool_calls": f"{data.tool_calls:,}",
        "verdicts": dict(sorted(data.verdicts.items())),
        "cache_hits": data.cache_hits,
    }


def _seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


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
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    html = env.get_template("report.html.j2").render(
        title=title or f"Rollouts report: {os.path.basename(rollouts_path)}",
        source=os.path.abspath(rollouts_path),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        s=summary(data),
        agg=aggregate_view(data.aggregate),
        charts=charts(data),
        warnings=_warnings(data),
        has_expected=any("expected_answer" in r for r in data.rows),
        has_verdict=any("judge_verdict" in r for r in data.rows),
        models=[
            {"model": m, **u, "cost": _model_cost(m, data)}
            for m, u in sorted(data.usage_models.items())
        ],
        errors=data.errors.most_common(10),
        metrics=_flat(metrics or {}),
        rows=[
            row_view(i, r, c, data)
            for i, (r, c) in enumerate(zip(data.rows, data.row_costs, strict=True))
        ],
        shown=len(data.rows),
        total=data.rollouts,
    )
    with atomic_file(out_path) as fh:
        fh.write(html)
    return data


def _warnings(data: ReportData) -> list[str]:
    """The cost line already says "n/a (stand-in-1 has no price)"; unknown models keep their hint."""
    return [w for w in data.warnings if not w.startswith("cost: n/a (")]


def _model_cost(model: str, data: ReportData) -> str:
    cost = data.cost_models.get(model)
    return f"n/a ({model} has no price)" if cost is None else cost_text(cost, data)


def _flat(doc: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in doc.items():
        if isinstance(value, dict):
            out += _flat(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", fmt(value) if isinstance(value, float) else str(value)))
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
    if data.rewards:
        spread = ", ".join(f"{fmt(v)} x{n:,}" for v, n in sorted(data.rewards.items())[:6])
        more = "" if len(data.rewards) <= 6 else f", ... ({len(data.rewards)} distinct values)"
        lines.append(
            f"reward: mean {s['reward_mean']} (min {fmt(min(data.rewards))}, "
            f"max {fmt(max(data.rewards))}); {spread}{more}"
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
    for message, n in data.errors.most_common(3):
        lines.append(f"error x{n:,}: {clip(message, 200)}")
    lines += [f"warning: {w}" for w in _warnings(data)]
    return "\n".join(lines)
