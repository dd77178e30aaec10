"""NeMo Gym 0.7.0, the newest release, under gym-run (nemo-gym==0.7.0 from PyPI in a cached Python
3.13 virtualenv, tests/nemo_venv.py): its example_single_tool_call with the environment server 0.7
added (`environment_servers/legacy_agent`, whose config class forbids extra keys), rewards from its
verifier, every record accepted by its pydantic models; its simpleqa judging through
`/v1/chat/completions` on gym-run's model server; and its genrm_compare, whose verifier compares the
rollouts of one prompt and so needs each row's `_ng_rollout_index`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from gym_run.collect.runner import run_job

from tests.nemo_venv import nemo_python, nemo_root
from tests.runtime_helpers import read_jsonl
from tests.test_nemo_chat_judge import run_simpleqa
from tests.test_nemo_run import CHECK, STAND_IN, compile_nemo

SINGLE = "resources_servers/example_single_tool_call"
GENRM = "resources_servers/genrm_compare"


@pytest.fixture(scope="module")
def nemo07() -> tuple[str, Path]:
    python = nemo_python("0.7.0")
    return str(python), nemo_root(python)


async def test_example_single_tool_call_of_0_7_runs_under_gym_run(nemo07, tmp_path):
    root = nemo07[1]
    plan = compile_nemo(
        nemo07,
        tmp_path,
        [root / SINGLE / "configs" / "example_single_tool_call.yaml", STAND_IN],
        "+agent_name=example_single_tool_call_simple_agent",
        f"+input_jsonl_fpath={root / SINGLE / 'data' / 'example.jsonl'}",
        "+num_repeats=2",
    )
    environment = plan["servers"]["example_single_tool_call_environment_server"]
    assert (environment["implementation"], environment["run"]) == ("legacy_agent", "nemo")
    assert "verified" not in environment["config"]  # its class forbids keys it does not name
    result = await run_job(plan, show_progress=False)
    assert result.counts["ok"] == 10, result.first_error
    records = read_jsonl(result.rollouts_path)
    assert all(r["reward"] == 1.0 for r in records)  # NeMo Gym 0.7's verify
    assert all(r["_gym"]["usage_by_server"]["policy_model"]["total_tokens"] > 0 for r in records)
    check = subprocess.run(
        [nemo07[0], "-c", CHECK, result.rollouts_path], capture_output=True, text=True, timeout=300
    )
    assert check.returncode == 0, check.stderr[-2000:]
    assert check.stdout.strip() == "10"


async def test_simpleqa_of_0_7_judges_through_chat_completions(nemo07, tmp_path):
    await run_simpleqa(nemo07, tmp_path)


async def test_genrm_compare_of_0_7_gets_the_rollout_indices_it_compares_by(nemo07, tmp_path):
    """NeMo Gym's collector sends each row with `_ng_task_index`/`_ng_rollout_index`;
    genrm_compare's verify answers 422 without them, and waits for all of a prompt's rollouts
    (here 2) before its judge compares them."""
    root = nemo07[1]
    models = tmp_path / "models.yaml"
    models.write_text(
        "genrm_model:\n  responses_api_models:\n    _delete_key: genrm_model\n"
        "    stand_in_model: {model: genrm-1}\n"
        "policy_model_reasoning_off:\n  responses_api_models:\n"
        "    stand_in_model: {model: stand-in-1}\n"
    )
    first = (root / GENRM / "data" / "example.jsonl").read_text().splitlines()[0]
    (tmp_path / "one.jsonl").write_text(first + "\n")
    plan = compile_nemo(
        nemo07,
        tmp_path,
        [root / GENRM / "configs" / "genrm_compare.yaml", STAND_IN, models],
        "+agent_name=genrm_simple_agent",
        f"+input_jsonl_fpath={tmp_path / 'one.jsonl'}",
        "+num_repeats=2",
        "genrm_compare_resources_server.resources_servers.genrm_compare.num_rollouts_per_prompt=2",
    )
    result = await run_job(plan, show_progress=False)
    assert result.counts["ok"] == 2, result.first_error
    assert all(isinstance(r["reward"], float) for r in read_jsonl(result.rollouts_path))
    assert result.metrics["_gym"]["calls"]["calls"] > 2  # the policy twice, then the judge
