"""gym-run reverify: re-score an existing rollouts file with a changed verifier, never calling the
policy (a real endpoint on 127.0.0.1 counts its requests), into a new file, resumably."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from gym_run.cli import cli as gym_run
from gym_run.collect.reverify import reverify_job
from gym_run.collect.runner import run_job
from gym_run.errors import OutputExistsError

from gym_compile.compiler import compile_config
from gym_compile.options import Options
from tests.runtime_helpers import (
    assistant_message,
    read_jsonl,
    response_body,
    start_endpoint,
    write_jsonl,
)

QUESTIONS = [
    ("capital of France?", "paris"),
    ("CAPITAL of France?", "PARIS"),
    ("of Italy?", "Rome"),
]


def policy(body: dict[str, Any], _index: int) -> Any:
    """Answers "The answer is: Paris." to everything, 400 to a prompt asking to fail."""
    from aiohttp import web

    if "fail" in json.dumps(body["input"]):
        return web.json_response(
            {"error": {"message": "bad prompt", "type": "invalid_request_error"}}, status=400
        )
    return response_body([assistant_message("The answer is: Paris.")], input_tokens=20)


def compile_plan(
    tmp_path: Path,
    base_url: str,
    *,
    case_sensitive: bool,
    repeats: int = 2,
    rows: list[dict[str, Any]] | None = None,
    name: str = "plan",
) -> dict[str, Any]:
    rows = rows or [
        {"responses_create_params": {"input": q}, "expected_answer": a} for q, a in QUESTIONS
    ] + [{"responses_create_params": {"input": "please fail"}, "expected_answer": "x"}]
    write_jsonl(tmp_path / f"{name}.rows.jsonl", rows)
    (tmp_path / "env.yaml").write_text(
        f"policy_base_url: {base_url}\npolicy_api_key: sk-test-123\n", encoding="utf-8"
    )
    (tmp_path / f"{name}.yaml").write_text(
        "policy_model:\n  responses_api_models:\n    openai_model:\n"
        "      base_url: ${policy_base_url}\n      api_key: ${policy_api_key}\n"
        "      model: gpt-test\n      retry: {max_attempts: 1}\n"
        "matcher:\n  resources_servers:\n    answer_match:\n      domain: knowledge\n"
        f"      case_sensitive: {str(case_sensitive).lower()}\n"
        "agent:\n  responses_api_agents:\n    simple_agent:\n"
        "      resources_server: {type: resources_servers, name: matcher}\n"
        "      model_server: {type: responses_api_models, name: policy_model}\n"
        f"      datasets: [{{name: qa, type: example, jsonl_fpath: {name}.rows.jsonl}}]\n",
        encoding="utf-8",
    )
    result = compile_config(
        [tmp_path / f"{name}.yaml"],
        [f"+output_jsonl_fpath={tmp_path / 'old.jsonl'}", f"+num_repeats={repeats}"],
        Options(env=tmp_path / "env.yaml"),
    )
    assert result.ok, [str(d) for d in result.diagnostics]
    assert result.plan is not None
    (tmp_path / f"{name}.json").write_text(json.dumps(result.plan), encoding="utf-8")
    return result.plan


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def collected(tmp_path: Path, aiohttp_server: Any) -> tuple[Any, str]:
    endpoint, url = await start_endpoint(aiohttp_server, policy)
    plan = compile_plan(tmp_path, url, case_sensitive=True)
    await run_job(plan, show_progress=False)
    assert len(endpoint.bodies) == 8  # 4 rows x 2 repeats (2 of them refused with a 400)
    return endpoint, url


async def test_a_changed_verifier_rescores_without_calling_the_policy(tmp_path, aiohttp_server):
    endpoint, url = await collected(tmp_path, aiohttp_server)
    old = tmp_path / "old.jsonl"
    before = digest(old)
    assert [r.get("reward") for r in read_jsonl(old)] == [0.0] * 6 + [None, None]

    fixed = compile_plan(tmp_path, url, case_sensitive=False, name="fixed")
    calls = len(endpoint.bodies)
    (tmp_path / "env.yaml").unlink()  # the policy's key is gone: reverify does not need it
    result, changed = await reverify_job(fixed, str(old), str(tmp_path / "new.jsonl"))
    assert len(endpoint.bodies) == calls  # the policy was not called once
    assert digest(old) == before  # the old file is untouched
    records = read_jsonl(tmp_path / "new.jsonl")
    assert [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in records] == [
        (t, r) for t in range(4) for r in range(2)
    ]
    assert [r.get("reward") for r in records] == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, None, None]
    assert changed == {"up": 4, "down": 0, "same": 2}
    prefix = fixed["content_hash"][7:19]
    assert all(r["_gym"]["id"].startswith(prefix) for r in records)
    first = records[0]["_gym"]
    assert first["reverify"]["reward_before"] == 0.0
    assert first["reverify"]["from"].split(":")[1:] == ["0", "0"]
    # the policy's tokens stay with the rollout but are not paid for again
    assert first["usage_by_server"]["policy_model"]["input_tokens"] == 20
    assert first["reverify"]["carried_usage_by_server"]["policy_model"]["input_tokens"] == 20
    assert result.metrics["_gym"]["budget"]["spent_tokens"] == 0
    # a failed rollout is carried over as failed, with its error
    carried = records[6]["_gym"]
    assert carried["status"] == "failed" and carried["reverify"]["carried"] is True
    assert carried["error"]["status"] == 400
    agg = result.metrics["_gym"]["aggregate"]
    assert agg["outcome"]["reward_mean"] == pytest.approx(4 / 8)
    assert agg["reverified_from"] == str(old)
    assert agg["repeats"]["pass@k"]["2"] == pytest.approx(2 / 4)


async def test_reverify_resumes_without_rescoring_what_is_done(tmp_path, aiohttp_server):
    _endpoint, url = await collected(tmp_path, aiohttp_server)
    fixed = compile_plan(tmp_path, url, case_sensitive=False, name="fixed")
    new = tmp_path / "new.jsonl"
    await reverify_job(fixed, str(tmp_path / "old.jsonl"), str(new))
    lines = new.read_bytes().splitlines(keepends=True)
    new.write_bytes(b"".join(lines[:3]) + lines[3][:20])  # a kill mid-write
    with pytest.raises(OutputExistsError, match="--resume"):
        await reverify_job(fixed, str(tmp_path / "old.jsonl"), str(new))
    result, changed = await reverify_job(
        fixed, str(tmp_path / "old.jsonl"), str(new), existing="append"
    )
    assert sum(changed.values()) == 3  # rows 3..5 re-scored now; 6, 7 are carried failures
    records = read_jsonl(new)
    assert len(records) == 8
    assert len({r["_gym"]["id"] for r in records}) == 8
    assert result.run["from_before"] == 3 and result.run["torn_bytes_removed"] == 20


async def test_a_changed_dataset_row_is_not_rescored_against_the_wrong_prompt(
    tmp_path, aiohttp_server
):
    _endpoint, url = await collected(tmp_path, aiohttp_server)
    rows = [{"responses_create_params": {"input": q}, "expected_answer": a} for q, a in QUESTIONS]
    rows[1]["responses_create_params"]["input"] = "another question"
    changed_plan = compile_plan(tmp_path, url, case_sensitive=False, rows=rows, name="changed")
    result, _ = await reverify_job(
        changed_plan, str(tmp_path / "old.jsonl"), str(tmp_path / "n.jsonl")
    )
    records = read_jsonl(tmp_path / "n.jsonl")
    assert len(records) == 6  # the old task 3 is outside this plan's three rows
    mismatched = [r for r in records if r["_ng_task_index"] == 1]
    assert {r["_gym"]["error"]["class"] for r in mismatched} == {"InputMismatch"}
    assert result.counts["failed"] == 2


async def test_reverify_cli_gates_junit_and_refuses_to_overwrite_its_input(
    tmp_path, aiohttp_server
):
    _endpoint, url = await collected(tmp_path, aiohttp_server)
    compile_plan(tmp_path, url, case_sensitive=False, name="fixed")
    old, new, plan = tmp_path / "old.jsonl", tmp_path / "new.jsonl", tmp_path / "fixed.json"

    def invoke(*args: str) -> Any:  # in a thread: the CLI runs its own event loop
        return CliRunner().invoke(gym_run, list(args), prog_name="gym-run")

    same = await asyncio.to_thread(invoke, "reverify", str(plan), str(old), "-o", str(old))
    assert same.exit_code == 2 and "being re-verified" in same.output
    junit = tmp_path / "r.xml"
    ran = await asyncio.to_thread(
        invoke,
        "reverify",
        str(plan),
        str(old),
        "-o",
        str(new),
        "--fail-under",
        "0.6",
        "--junit",
        str(junit),
    )
    assert ran.exit_code == 6, ran.output
    assert "gate: reward 0.5000 >= 0.6: FAILED" in ran.output
    assert "re-verified now: 6 (reward up 4, down 0, same 2)" in ran.output
    assert 'tests="8" failures="2" errors="2"' in junit.read_text()
    again = await asyncio.to_thread(
        invoke, "reverify", str(plan), str(old), "-o", str(new), "--resume", "--fail-under", "0.5"
    )
    assert again.exit_code == 3, again.output  # gate holds; the 2 carried failures remain
