"""gym_run.servers.builtin.judge (equivalence_llm_judge): verdict parsing, sandboxed prompt templates, the judge
over real HTTP (scripted endpoint and stand-in), and the judge example compiled and run."""

from __future__ import annotations

import json

import aiohttp
import pytest
from gym_run.collect.runner import run_job
from gym_run.endpoint.client import OpenAIClient
from gym_run.errors import PlanError
from gym_run.messages import extract
from gym_run.servers.builtin.judge import EquivalenceLLMJudge, parse_verdict
from gym_run.servers.builtin.models import ModelServer
from gym_run.servers.builtin.prompts import load_prompt_template
from gym_run.standin.server import _judge_answer, respond

from gym_compile.compiler import compile_config
from gym_compile.options import Options
from gym_compile.schema_catalog import server_validator
from tests.conftest import EXAMPLES
from tests.runtime_helpers import assistant_message, read_jsonl, response_body, start_endpoint

EQ, NE = "[[A=B]]", "[[A!=B]]"


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


def verify_body(answer: str | None, expected="Paris", question="Capital of France?", **extra):
    output = [assistant_message(answer)] if answer is not None else []
    return {
        "responses_create_params": {"input": [{"role": "user", "content": question}]},
        "response": {"id": "resp_p", "object": "response", "output": output},
        "expected_answer": expected,
        **extra,
    }


async def judge_on(aiohttp_server, session, answer_text, **config):
    """A judge whose model is a scripted endpoint answering `answer_text`."""
    endpoint, url = await start_endpoint(
        aiohttp_server,
        lambda body, i: response_body(
            [assistant_message(answer_text)], input_tokens=50, output_tokens=3, model="gpt-judge"
        ),
    )
    model = ModelServer(
        "judge_model", OpenAIClient(session, base_url=url, api_key="sk-j", model="gpt-judge")
    )
    return endpoint, EquivalenceLLMJudge("judge", {"judge_model_server": {}, **config}, model)


@pytest.mark.parametrize(
    "text,verdict",
    [
        ("[[A=B]]", EQ),
        ("[[A!=B]]", NE),
        ("Reasoning... [[A!=B]]", NE),
        ("[[A=B]] ... not [[A!=B]]", EQ),  # NeMo Gym: the first label wins
        ("they match", None),
        ("", None),
    ],
)
def test_parse_verdict_default_labels(text, verdict):
    assert parse_verdict(text, EQ, NE) == verdict


def test_parse_verdict_when_one_label_contains_the_other():
    assert parse_verdict("NOT EQUAL", "EQUAL", "NOT EQUAL") == "NOT EQUAL"
    assert parse_verdict("EQUAL", "EQUAL", "NOT EQUAL") == "EQUAL"
    assert parse_verdict("so: EQUAL (earlier I said NOT EQUAL)", "EQUAL", "NOT EQUAL") == "EQUAL"
    assert parse_verdict("SAME", "SAME", "NOT SAME") == "SAME"


def test_extract_uses_the_last_match_and_its_first_group():
    assert extract("Answer: 1\nAnswer: 2", r"Answer: (\d)") == "2"
    assert extract("no match here", r"Answer: (\d)") == "no match here"
    assert extract("text", "(unbalanced") == "text"


def test_prompt_templates_are_sandboxed_and_strict(tmp_path):
    with pytest.raises(PlanError, match="UndefinedError"):
        load_prompt_template("Q: {{ questoin }}")
    with pytest.raises(PlanError, match="SecurityError"):
        load_prompt_template("{{ question.__class__.__mro__[1].__subclasses__() }}")
    nemo = load_prompt_template("Q={question}; E={expected_answer}; G={generated_answer}")
    assert (
        nemo.render(question="q", expected_answer="e", generated_answer="{g}") == "Q=q; E=e; G={g}"
    )
    path = tmp_path / "judge.txt"
    path.write_text("Is {generated_answer} the same as {expected_answer}?", encoding="utf-8")
    assert (
        load_prompt_template(str(path)).render(generated_answer="x", expected_answer="y")
        == "Is x the same as y?"
    )
    assert "<expected_answer>" in load_prompt_template("judge_equivalence.j2").render(
        question="q", expected_answer="e", generated_answer="g", equal_label=EQ, not_equal_label=NE
    )
    with pytest.raises(FileNotFoundError):
        load_prompt_template("no_such_template.j2")


def test_bad_template_config_is_a_plan_error():
    model = ModelServer("m", client=None)  # type: ignore[arg-type] - never called
    with pytest.raises(PlanError, match="not found"):
        EquivalenceLLMJudge("judge", {"judge_prompt_template_fpath": "missing.j2"}, model)
    with pytest.raises(PlanError, match="not both"):
        EquivalenceLLMJudge(
            "judge", {"judge_prompt_template": "x", "judge_prompt_template_fpath": "y"}, model
        )
    with pytest.raises(PlanError, match="same"):
        EquivalenceLLMJudge(
            "judge", {"judge_equal_label": "X", "judge_not_equal_label": "X"}, model
        )


def test_schema_refs_and_nemo_gym_fields():
    validator = server_validator("resources_servers", "equivalence_llm_judge")
    ok = {
        "judge_model_server": {"type": "responses_api_models", "name": "judge_model"},
        "domain": "knowledge",
    }
    assert not list(validator.iter_errors(ok))
    nemo_defaults = {
        "judge_endpoint_max_concurrency": 64,
        "judge_system_message": None,
        "question_extract_regex": None,
        "response_extract_regex": None,
        "check_twice_swap": True,
        "reward_if_swap_fails": -1.0,
        "use_per_record_regex": True,
        "extraction_length_threshold": None,
        "check_full_generation_on_fail": False,
        "reward_if_full_generation_succeeds": 0.0,
        "msg_extraction_failure": "[NO VALID ANSWER EXTRACTED]",
        "max_answer_chars": 4000,
        "judge_prompt_template_fpath": "prompt_templates/equivalence_llm_judge.txt",
        "value": "Improve knowledge-related benchmarks like GPQA / HLE",
        "num_workers": 2,
        "expose_tools_over_mcp": False,
        "name": "equivalence_llm_judge",
    }
    assert not list(validator.iter_errors({**ok, **nemo_defaults}))  # NeMo Gym's own config file
    assert list(validator.iter_errors({**ok, "check_twice_swap": "yes"}))
    assert list(validator.iter_errors({"domain": "knowledge"}))  # judge_model_server is required
    props = validator.schema["properties"]  # NeMo Gym 0.7.0's defaults
    assert props["check_full_generation_on_fail"]["default"] is True
    assert props["reward_if_full_generation_succeeds"]["default"] == 0.5
    assert props["extraction_length_threshold"]["default"] == 120


async def judge_scripted(aiohttp_server, session, verdicts, **config):
    """A judge whose model answers the given verdicts in turn, and the prompts it was sent."""
    endpoint, url = await start_endpoint(
        aiohttp_server,
        lambda body, i: response_body([assistant_message(verdicts[i])], input_tokens=10),
    )
    model = ModelServer(
        "judge_model", OpenAIClient(session, base_url=url, api_key="sk-j", model="gpt-judge")
    )
    template = "Q={question} E={expected_answer} G={generated_answer}"
    judge = EquivalenceLLMJudge(
        "judge", {"judge_model_server": {}, "judge_prompt_template": template, **config}, model
    )
    return endpoint, judge


def _prompts(endpoint):
    return [body["input"][-1]["content"] for body in endpoint.bodies]


async def test_swap_check_judges_again_with_the_answers_swapped(aiohttp_server, session):
    endpoint, judge = await judge_scripted(
        aiohttp_server, session, [EQ, NE], check_twice_swap=True, reward_if_swap_fails=-1.0
    )
    result = await judge.verify(verify_body("Paris"))
    assert result["reward"] == -1.0 and result["judge_verdict"] == "equal"
    assert len(result["judge_evaluations"]) == 2
    assert result["_judge_usage"]["judge_model"]["input_tokens"] == 20  # both calls counted
    endpoint, judge = await judge_scripted(aiohttp_server, session, [EQ, EQ], check_twice_swap=True)
    body = verify_body("It is Paris.", expected="Paris")
    assert (await judge.verify(body))["reward"] == 1.0
    assert _prompts(endpoint)[1] == "Q=Capital of France? E=It is Paris. G=Paris"


async def test_rescue_judges_the_whole_answer_after_a_per_row_regex(aiohttp_server, session):
    row = {"template_metadata": {"output_regex": r"ANSWER: (\w+)"}}
    nemo_defaults = {
        "check_full_generation_on_fail": True,
        "reward_if_full_generation_succeeds": 0.5,
    }
    endpoint, judge = await judge_scripted(aiohttp_server, session, [NE, EQ], **nemo_defaults)
    result = await judge.verify(verify_body("I think Paris. ANSWER: Lyon", **row))
    assert result["reward"] == 0.5
    assert _prompts(endpoint) == [
        "Q=Capital of France? E=Paris G=Lyon",
        "Q=Capital of France? E=Paris G=I think Paris. ANSWER: Lyon",
    ]
    endpoint, judge = await judge_scripted(
        aiohttp_server, session, [NE], check_full_generation_on_fail=False
    )
    assert (await judge.verify(verify_body("ANSWER: Lyon", **row)))["reward"] == 0.0
    assert len(endpoint.bodies) == 1
    endpoint, judge = await judge_scripted(aiohttp_server, session, [NE], **nemo_defaults)
    # no per-row regex: nothing to rescue
    assert (await judge.verify(verify_body("Lyon")))["reward"] == 0.0
    assert len(endpoint.bodies) == 1


async def test_equal_verdict_records_evaluation_and_separate_usage(aiohttp_server, session):
    endpoint, judge = await judge_on(
        aiohttp_server,
        session,
        "[[A=B]]",
        judge_responses_create_params={"temperature": 0.0},
        judge_system_message="Be strict.",
    )
    result = await judge.verify(verify_body("It's Paris."))
    assert (
        result["reward"] == 1.0
        and result["judge_verdict"] == "equal"
        and not result["judge_unparseable"]
    )
    assert result["_judge_usage"] == {
        "judge_model": {
            "input_tokens": 50,
            "cached_input_tokens": 2,
            "output_tokens": 3,
            "reasoning_tokens": 1,
            "total_tokens": 53,
        }
    }
    [sent] = endpoint.bodies
    assert sent["temperature"] == 0.0 and sent["model"] == "gpt-judge"
    assert sent["input"][0] == {"role": "system", "content": "Be strict."}
    prompt = sent["input"][1]["content"]
    assert "<question>\nCapital of France?\n</question>" in prompt
    assert "<generated_answer>\nIt's Paris.\n</generated_answer>" in prompt
    assert result["judge_evaluations"][0]["verdict_label"] == EQ
    assert result["judge_evaluations"][0]["response"]["model"] == "gpt-judge"


async def test_unparseable_verdict_scores_zero_and_is_counted(aiohttp_server, session):
    _, judge = await judge_on(aiohttp_server, session, "They look the same to me.")
    for _ in range(2):
        result = await judge.verify(verify_body("Paris"))
        assert (
            result["reward"] == 0.0
            and result["judge_verdict"] is None
            and result["judge_unparseable"] is True
        )
    assert judge.counts["unparseable"] == 2


async def test_no_final_answer_means_no_judge_call(aiohttp_server, session):
    endpoint, judge = await judge_on(aiohttp_server, session, "[[A=B]]")
    result = await judge.verify(verify_body(None))
    assert result["reward"] == 0.0 and endpoint.bodies == [] and result["_judge_usage"] == {}
    with pytest.raises(ValueError, match="expected_answer"):
        await judge.verify({k: v for k, v in verify_body("x").items() if k != "expected_answer"})
    meta = verify_body("Paris", expected=None)
    del meta["expected_answer"]
    meta["metadata"] = {"expected_answer": "Paris"}
    assert (await judge.verify(meta))["expected_answer"] == "Paris"


async def test_per_row_regex_extracts_the_judged_answer(aiohttp_server, session):
    endpoint, judge = await judge_on(aiohttp_server, session, "[[A=B]]")
    await judge.verify(
        verify_body(
            "thinking... ANSWER: Paris", template_metadata={"output_regex": r"ANSWER: (\w+)"}
        )
    )
    assert (
        "<generated_answer>\nParis\n</generated_answer>"
        in endpoint.bodies[0]["input"][0]["content"]
    )


@pytest.mark.parametrize(
    "expected,generated,same",
    [
        ("Paris", "The capital is Paris.", True),
        ("paris", "PARIS", True),
        ("1,000", "about 1000 people", True),
        ("New York", "york, new", False),
        ("Mars", "You said: Which planet is red?", False),
        ("3.5", "3.50", False),  # the stand-in is literal about numbers; a real judge is not
        ("the Eiffel Tower", "eiffel tower", True),
    ],
)
def test_stand_in_judges_rendered_prompts(expected, generated, same):
    template = load_prompt_template("judge_equivalence.j2")
    prompt = template.render(
        question="q",
        expected_answer=expected,
        generated_answer=generated,
        equal_label="YES",
        not_equal_label="NO",
    )
    assert _judge_answer(prompt) == ("YES" if same else "NO")
    answer = respond({"model": "stand-in-1", "input": [{"role": "user", "content": prompt}]})
    assert answer["output"][0]["content"][0]["text"] == ("YES" if same else "NO")


def test_stand_in_ignores_prompts_that_are_not_judge_prompts():
    assert _judge_answer("what's it like in sf?") is None
    assert _judge_answer("<expected_answer>\nx\n</expected_answer> but no generated block") is None


async def test_judge_example_compiles_and_runs_offline(tmp_path):
    configs = sorted((EXAMPLES / "judge_example").glob("*.yaml"))
    result = compile_config(
        configs,
        [f"+output_jsonl_fpath={tmp_path / 'rollouts.jsonl'}"],
        Options(env=tmp_path / "no-env.yaml"),
    )
    assert result.ok, [str(d) for d in result.diagnostics]
    job = await run_job(result.plan, show_progress=False)
    records = read_jsonl(job.rollouts_path)
    assert [r["reward"] for r in records] == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert [r["judge_verdict"] for r in records] == ["equal", "not_equal"] * 3
    for record in records:
        assert record["_gym"]["status"] == "ok" and record["judge_unparseable"] is False
        by_server = record["_gym"]["usage_by_server"]
        judge_usage, policy_usage = by_server["judge_model"], by_server["policy_model"]
        assert judge_usage["input_tokens"] > 0 and judge_usage["output_tokens"] > 0
        # the policy's usage is the policy's alone: one call, far fewer tokens than the judge prompt
        assert record["_gym"]["model_calls"] == 1
        assert policy_usage["input_tokens"] < judge_usage["input_tokens"]
        assert (
            record["_gym"]["usage"]["total_tokens"]
            == policy_usage["total_tokens"] + judge_usage["total_tokens"]
        )
        assert "_judge_usage" not in record  # folded into _gym.usage_by_server
    assert json.loads(open(job.metrics_path).read())["reward"] == 0.5


JUDGE = "equivalence_llm_judge.resources_servers.equivalence_llm_judge"


def judge_example_through_the_clis(tmp_path, *overrides):
    """`gym-compile examples/judge_example/*.yaml +agent_name=... -o plan.json && gym-run plan.json`,
    as the README says."""
    from click.testing import CliRunner
    from gym_run.cli import cli as gym_run

    from gym_compile.cli import main as gym_compile

    configs = [str(p) for p in sorted((EXAMPLES / "judge_example").glob("*.yaml"))]
    (tmp_path / "env.yaml").write_text("{}\n", encoding="utf-8")
    plan = tmp_path / "plan.json"
    compiled = CliRunner().invoke(
        gym_compile,
        [
            *configs,
            f"+output_jsonl_fpath={tmp_path / 'judged.jsonl'}",
            *overrides,
            "--env",
            str(tmp_path / "env.yaml"),
            "-o",
            str(plan),
        ],
    )
    assert compiled.exit_code == 0, compiled.output
    ran = CliRunner().invoke(gym_run, [str(plan)], prog_name="gym-run")
    metrics = json.loads((tmp_path / "judged.metrics.json").read_text())
    return compiled.output, ran, metrics


def test_judge_example_through_the_clis_counts_verdicts_and_usage_apart(tmp_path):
    compiled, ran, metrics = judge_example_through_the_clis(tmp_path)
    assert "estimate (chars/4): 6 rollouts, 6 model calls" in compiled
    assert ran.exit_code == 0, ran.output
    gym = metrics["_gym"]
    assert gym["judge"] == {"equal": 3, "not_equal": 3, "unparseable": 0}
    assert metrics["reward"] == 0.5
    by_server = gym["usage_by_server"]
    assert set(by_server) == {"policy_model", "judge_model"}
    assert by_server["judge_model"]["total_tokens"] > by_server["policy_model"]["total_tokens"] > 0
    assert gym["usage"]["total_tokens"] == sum(u["total_tokens"] for u in by_server.values())
    assert gym["cost"]["by_server"] == {"judge_model": None, "policy_model": None}
    lines = ran.output.splitlines()
    assert "judge: equal 3, not_equal 3, unparseable 0" in lines
    assert (
        f"tokens by server: judge_model {by_server['judge_model']['total_tokens']}, "
        f"policy_model {by_server['policy_model']['total_tokens']}"
    ) in lines
    assert (
        ran.output.count("stand-in-1 has no price") == 1
    )  # two unpriced servers, one model: one warning


def test_unparseable_verdicts_are_counted(tmp_path):
    # A prompt the stand-in does not read as a judge prompt: it answers "You said: ...", no label.
    _, ran, metrics = judge_example_through_the_clis(
        tmp_path,
        f"+{JUDGE}.judge_prompt_template='Compare {{expected_answer}} with {{generated_answer}}'",
    )
    assert ran.exit_code == 0, ran.output
    assert metrics["_gym"]["judge"] == {"equal": 0, "not_equal": 0, "unparseable": 6}
    assert metrics["reward"] == 0.0 and "judge: equal 0, not_equal 0, unparseable 6" in ran.output
