"""The pre-run estimate (streamed rows, stated method) and the compile-time budget check."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from gym_run.endpoint.pricing import Price, PriceTable

from gym_compile.canonical import canonical_json
from gym_compile.estimate import DEFAULT_MAX_OUTPUT_TOKENS, EstimateBuilder, check_budget, estimate
from tests.conftest import EXAMPLES
from tests.runtime_helpers import weather_row

GPT41 = Price("gpt-4.1", input=2.0, output=8.0, cached_input=0.5)


def plain_row(text: str, **params):
    return {"responses_create_params": {"input": [{"role": "user", "content": text}], **params}}


def tokens_of(row) -> int:
    params = row["responses_create_params"]
    request = {k: params[k] for k in ("instructions", "input", "tools") if params.get(k)}
    return math.ceil(len(canonical_json(request).decode()) / 4)


def test_plain_rows_one_call_each_and_repeats_multiply():
    rows = [
        plain_row("hi", max_output_tokens=100),
        plain_row("a longer question here", max_output_tokens=50),
    ]
    est = estimate(rows, num_repeats=3, price=GPT41)
    per_rollout = tokens_of(rows[0]) + tokens_of(rows[1])
    assert (est.rows, est.rollouts, est.model_calls) == (2, 6, 6)
    assert est.input_tokens == est.input_tokens_upper == per_rollout * 3
    assert est.output_tokens_upper == (100 + 50) * 3
    assert est.usd_low == pytest.approx(est.input_tokens * 2.0 / 1e6)
    assert est.usd_high == pytest.approx(
        (est.input_tokens * 2.0 + est.output_tokens_upper * 8.0) / 1e6
    )
    assert est.method == "chars/4" and not any("assumed to write" in a for a in est.assumptions)


def test_tool_rows_assume_two_calls_and_regrowth():
    row = weather_row()
    est = estimate([row], price=GPT41)
    assert est.model_calls == 2
    assert est.input_tokens == 2 * tokens_of(row)
    # the answer call re-reads the tool call's output: one max output more on input
    assert est.input_tokens_upper == est.input_tokens + DEFAULT_MAX_OUTPUT_TOKENS
    assert est.output_tokens_upper == 2 * DEFAULT_MAX_OUTPUT_TOKENS
    assert any("1024 tokens per call" in a for a in est.assumptions)
    assert estimate([row], max_steps=1).model_calls == 1
    assert estimate([row], calls_per_rollout=5).model_calls == 5
    assert estimate([row], params_override={"tool_choice": "none"}).model_calls == 1


def test_job_params_override_the_rows_max_output_tokens():
    est = estimate(
        [plain_row("x", max_output_tokens=9000)], params_override={"max_output_tokens": 10}
    )
    assert est.output_tokens_upper == 10


def test_rows_are_streamed_and_limit_stops_reading():
    read = []

    def rows():
        for i in range(1_000_000):
            read.append(i)
            yield plain_row(f"q{i}")

    est = estimate(rows(), limit=3)
    assert est.rows == 3 and len(read) == 4  # the 4th row is pulled to see the limit is reached


def test_custom_counter_and_method_are_reported():
    est = estimate([plain_row("abc")], count_tokens=lambda text: 7, method="tiktoken o200k_base")
    assert est.input_tokens == 7 and est.method == "tiktoken o200k_base"
    assert "tiktoken o200k_base" in est.assumptions[0]


def test_no_price_gives_no_usd_and_example_dataset_estimates():
    path = EXAMPLES / "simple_weather" / "data" / "example.jsonl"
    with open(path, encoding="utf-8") as fh:
        est = estimate(
            (json.loads(line) for line in fh),
            price=PriceTable.load().price_for("gpt-4.1-2025-04-14"),
        )
    assert est.rows == 5 and est.model_calls == 10
    assert 0 < est.usd_low < est.usd_high < 0.2
    assert estimate([plain_row("x")]).usd_low is None


def test_budget_check_fails_on_the_upper_bound():
    est = estimate([plain_row("x" * 4000, max_output_tokens=1000)], num_repeats=10, price=GPT41)
    # input 10,000+ tokens (~$0.02), high adds 10,000 output tokens ($0.08)
    assert check_budget(None, est) == []
    assert check_budget({"max_usd": 1.0, "max_tokens": 10**6}, est) == []
    assert check_budget({"max_usd": None, "max_tokens": None}, est) == []
    [err] = check_budget({"max_usd": 0.001}, est)
    assert (
        err.severity == "error" and err.key == "max_usd" and "needs at least $0.02" in err.message
    )
    [high] = check_budget({"max_usd": 0.05}, est)  # only the high end is over: still an error
    assert (
        high.severity == "error"
        and "may need up to $0.10" in high.message
        and "over max_usd=0.05" in high.message
    )
    [tok] = check_budget({"max_tokens": 15_000}, est)
    assert (
        tok.severity == "error" and tok.key == "max_tokens" and "up to 20,100 tokens" in tok.message
    )
    assert (
        check_budget({"max_tokens": est.tokens_upper}, est) == []
    )  # exactly at the limit is within it
    assert check_budget({"max_tokens": 5_000}, est)[0].message.startswith("the run needs at least")


def test_builder_streams_like_estimate_and_states_the_model():
    rows = [plain_row("q" * 40, max_output_tokens=10), weather_row()]
    builder = EstimateBuilder(limit=1)
    for row in rows:
        builder.add(row)  # read_input feeds every row; the limit is the builder's to apply
    est = builder.result(num_repeats=2, price=GPT41, model="gpt-4.1")
    assert est == replace(estimate(rows, limit=1, num_repeats=2, price=GPT41), model="gpt-4.1")
    assert (est.rows, est.rollouts) == (1, 2) and est.as_dict()["model"] == "gpt-4.1"
    assert any("judge" in a for a in est.assumptions)


def test_budget_with_unpriced_model_says_it_cannot_check():
    est = estimate([plain_row("x")], price=None)
    [problem] = check_budget({"max_usd": 5}, est, model="stand-in-1")
    assert problem.severity == "warning" and "stand-in-1 has no price" in problem.message
