"""One rollout record in, what its row in the report shows out: the numbers the table sorts and
filters on, what the verifier compared (expected vs extracted answer, the judge's verdicts) and
the conversation, cut to a text budget so the page stays bounded however long rollouts are."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gym_run.messages import message_text
from gym_run.report.data import ReportData, Row, passed, usage_by_model
from gym_run.report.svgchart import fmt

MAX_TEXT = 4000  # characters of one message
MAX_ITEMS = 40  # items of one conversation: the first few and the last ones
PAGE_TEXT_BUDGET = 6_000_000  # characters of conversation text in the whole page
_SKIP_FIELDS = {"responses_create_params", "response", "judge_evaluations", "reward"}


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return (
        text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit:,} more characters)"
    )


@dataclass
class Budget:
    """Conversation characters left for the page; rows past it show their numbers only."""

    left: int = PAGE_TEXT_BUDGET
    cut_rows: int = 0


def cost_text(cost: float | None, data: ReportData) -> str:
    if cost is not None:
        return f"${cost:,.4f}" if cost < 100 else f"${cost:,.2f}"
    models = sorted(data.unpriced_models) or ["a model"]
    return f"n/a ({', '.join(models)} {'has' if len(models) == 1 else 'have'} no price)"


def _item(item: Any) -> dict[str, str]:
    """One input/output item as {kind, label, text} for the conversation view."""
    if not isinstance(item, dict):
        return {"kind": "other", "label": "item", "text": clip(_json(item))}
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
        text = output if isinstance(output, str) else _json(output)
        return {"kind": "tool-output", "label": "tool output", "text": clip(text)}
    if kind == "reasoning":
        summary = " ".join(
            s.get("text", "") for s in item.get("summary") or [] if isinstance(s, dict)
        )
        return {"kind": "reasoning", "label": "reasoning", "text": clip(summary or "(no summary)")}
    return {"kind": "other", "label": str(kind), "text": clip(_json(item))}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


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


def short(value: Any, limit: int = 300) -> str:
    """A field's value as the page shows it: JSON spellings (null, true), never Python's."""
    if isinstance(value, str):
        return clip(value, limit)
    if isinstance(value, float):
        return fmt(value)
    return clip(_json(value), limit)


def _conversation(record: Mapping[str, Any], budget: Budget) -> list[dict[str, str]]:
    params = record.get("responses_create_params") or {}
    raw = params.get("input")
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw or []
    output = (record.get("response") or {}).get("output") or []
    evaluations = [e for e in record.get("judge_evaluations") or [] if isinstance(e, dict)]
    views = [_item(i) for i in [*items, *output]] + [_judged(e) for e in evaluations]
    if isinstance(params.get("instructions"), str):
        views.insert(
            0, {"kind": "system", "label": "instructions", "text": clip(params["instructions"])}
        )
    if len(views) > MAX_ITEMS:
        head, tail = MAX_ITEMS // 5, MAX_ITEMS - MAX_ITEMS // 5
        gap = {
            "kind": "other",
            "label": "…",
            "text": f"{len(views) - head - tail:,} items left out",
        }
        views = views[:head] + [gap] + views[-tail:]
    size = sum(len(v["text"]) for v in views)
    if size > budget.left:
        budget.cut_rows += 1
        return []
    budget.left -= size
    return views


def verifier_view(record: Mapping[str, Any], threshold: float) -> dict[str, Any]:
    """What the verifier compared and said: expected and extracted answers, the judge's verdict,
    the reward against the pass threshold, and the record's other plain fields."""
    expected = record.get("expected_answer")
    if expected is None and isinstance(record.get("metadata"), dict):
        expected = record["metadata"].get("expected_answer")
    output = (record.get("response") or {}).get("output") or []
    answers = [
        message_text(o) for o in output if isinstance(o, dict) and o.get("role") == "assistant"
    ]
    extracted = "extracted_answer" in record
    if record.get("judge_unparseable"):
        verdict = "unparseable"
    else:
        verdict = record.get("judge_verdict") or ""
    labels = [
        str(e.get("verdict_label") or "no label")
        for e in record.get("judge_evaluations") or []
        if isinstance(e, dict)
    ]
    plain = [
        (key, short(value, 200))
        for key, value in record.items()
        if not key.startswith("_")
        and key not in _SKIP_FIELDS
        and (value is None or isinstance(value, (str, int, float, bool)))
    ][:12]
    return {
        "expected": "" if expected is None else short(expected),
        "has_expected": expected is not None,
        "answer": short(record["extracted_answer"])
        if extracted
        else short(answers[-1] if answers else ""),
        "answer_kind": "extracted answer" if extracted else "final answer",
        "final_answer": clip(answers[-1]) if answers else "",
        "verdict": verdict,
        "judge_labels": labels,
        "passed": passed(record, threshold),
        "fields": plain,
    }


def _grade(reward: float | None, passed: bool) -> str:
    if reward is None:
        return ""
    return "good" if passed else "bad" if reward <= 0 else "partial"


def row_view(row: Row, data: ReportData, budget: Budget) -> dict[str, Any]:
    record, gym = row.record, row.record.get("_gym") or {}
    tokens = sum(u.get("total_tokens", 0) for u in usage_by_model(record).values())
    error = gym.get("error") or {}
    raw = record.get("reward")
    reward = float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else None
    ok = gym.get("status") == "ok"
    latency = gym.get("latency_s")
    check = verifier_view(record, data.pass_threshold)
    return {
        "index": row.position,
        "id": gym.get("id", ""),
        "task": record.get("_ng_task_index"),
        "rollout": record.get("_ng_rollout_index"),
        "status": gym.get("status", "?"),
        "ok": ok,
        "reward": "" if reward is None else fmt(reward),
        "reward_sort": -1e308 if reward is None else reward,
        "tokens": f"{tokens:,}" if ok or tokens else "",
        "tokens_sort": tokens,
        "cost": "" if not ok else (cost_text(row.cost, data) if row.cost is not None else "n/a"),
        "cost_sort": row.cost if row.cost is not None else -1,
        "latency": f"{latency:.3f}" if isinstance(latency, (int, float)) else "",
        "latency_sort": latency if isinstance(latency, (int, float)) else -1,
        "tool_calls": gym.get("tool_calls", ""),
        "cache_hit": bool(gym.get("cache_hit")),
        "check": check,
        "conversation": _conversation(record, budget),
        "grade": _grade(reward, check["passed"]),
        "error": f"{error.get('class', 'Error')}: {error.get('message', '')}" if error else "",
    }
