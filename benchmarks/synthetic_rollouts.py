"""Rollout records like a mixed evaluation writes them, generated: the report's benchmark input.

Three kinds of task take turns: simple_weather (a tool call, then an answer), an answer_match
question (expected vs extracted answer) and an LLM-judged one (verdicts, judge usage). Rewards,
tokens, latencies and costs vary; about 4% of rollouts fail, in five error classes; some are
replayed from the response cache. Deterministic for a seed, written in one pass (flat memory).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

CITIES = ("sf", "new york", "paris", "tokyo", "lagos", "lima", "oslo", "cairo")
QUESTIONS = (
    ("What is 17 * 3?", "51"),
    ("What is the capital of France?", "Paris"),
    ("How many legs has a spider?", "8"),
    ("Which planet is known as the red planet?", "Mars"),
    ("What is the square root of 144?", "12"),
)
ERRORS = (
    ("ModelCallError", "HTTP 429 from https://api.example.com/v1: Rate limit reached; 5 attempts"),
    ("RolloutTimeout", "rollout exceeded rollout_timeout_s=120"),
    ("ModelCallError", "HTTP 500 from https://api.example.com/v1: internal error; 5 attempts"),
    ("ToolError", "get_weather answered HTTP 502"),
    ("ValueError", "judge: the row has no 'expected_answer' to judge against"),
    ("ModelCallError", "timed out waiting for https://api.example.com/v1"),
)
PRICE_IN, PRICE_OUT = 2.0 / 1e6, 8.0 / 1e6  # gpt-4.1, USD per token


def _usage(inp: int, out: int, cached: int = 0) -> dict[str, int]:
    return {
        "input_tokens": inp,
        "cached_input_tokens": cached,
        "output_tokens": out,
        "reasoning_tokens": 0,
        "total_tokens": inp + out,
    }


def _message(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def record(task: int, rollout: int, rng: random.Random, *, priced: bool = True) -> dict[str, Any]:
    """One final record of task `task`, repeat `rollout`."""
    kind = task % 3
    difficulty = (task * 7919 % 100) / 100  # a task's own pass chance, so tasks differ
    ok = rng.random() > 0.04
    gym: dict[str, Any] = {
        "id": f"5eed0c0ffee0:{task}:{rollout}",
        "status": "ok" if ok else "failed",
    }
    row: dict[str, Any]
    if kind == 0:
        city = CITIES[task % len(CITIES)]
        row = {
            "responses_create_params": {
                "input": [
                    {"role": "developer", "content": "You are a helpful personal assistant."},
                    {"role": "user", "content": f"what's it like in {city}?"},
                ],
                "tools": [{"type": "function", "name": "get_weather", "strict": True}],
            }
        }
        output = [
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": json.dumps({"city": city}),
                "status": "completed",
            },
            {
                "type": "function_call_output",
                "call_id": "call_1",
                "output": json.dumps({"city": city, "weather_description": f"{city} is cold."}),
            },
            _message(f"The weather in {city} is cold."),
        ]
        extra: dict[str, Any] = {"reward": 1.0 if rng.random() < 0.9 else 0.0}
        calls, tools = 2, 1
    else:
        question, answer = QUESTIONS[task % len(QUESTIONS)]
        right = rng.random() < difficulty
        said = answer if right else str(rng.randint(1, 99))
        row = {
            "responses_create_params": {"input": [{"role": "user", "content": question}]},
            "expected_answer": answer,
        }
        output = [_message(f"Let me think. The answer is {said}.")]
        calls, tools = 1, 0
        if kind == 1:
            extra = {"reward": float(right), "extracted_answer": said}
        else:
            extra = {
                "judge_verdict": "equal" if right else "not_equal",
                "judge_unparseable": False,
                "reward": float(right),
            }
    inp = int(rng.lognormvariate(5.5, 0.6))
    out = int(rng.lognormvariate(3.5, 0.8)) + 1
    cached = inp // 2 if rng.random() < 0.3 else 0
    usage = _usage(inp, out, cached)
    latency = rng.lognormvariate(0.2, 0.7)
    cost = (inp * PRICE_IN + out * PRICE_OUT) if priced else None
    record: dict[str, Any] = {**row, "_ng_task_index": task, "_ng_rollout_index": rollout}
    if ok:
        record["response"] = {
            "id": f"resp_{task}_{rollout}",
            "object": "response",
            "model": "gpt-4.1-2025-04-14",
            "output": output,
            "usage": {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out},
        }
        record.update(extra)
        gym.update(
            usage=usage,
            usage_by_server={"policy_model": usage},
            model_by_server={"policy_model": "gpt-4.1-2025-04-14"},
            cost_by_server={"policy_model": cost},
            cost_usd=cost,
            model_calls=calls,
            tool_calls=tools,
            latency_s=round(latency, 4),
            retries=int(rng.random() < 0.1),
            cache_hit=rng.random() < 0.05,
        )
    else:
        cls, message = ERRORS[rng.randrange(len(ERRORS))]
        gym["error"] = {"class": cls, "message": message, "status": None, "attempts": 5}
    record["_gym"] = gym
    return record


def write_rollouts(
    path: Path, n: int, *, repeats: int = 4, seed: int = 0, priced: bool = True
) -> Path:
    """n records, task-major (aabbcc, as gym-run writes a final set)."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            task, rollout = divmod(i, repeats)
            fh.write(json.dumps(record(task, rollout, rng, priced=priced)) + "\n")
    return path
