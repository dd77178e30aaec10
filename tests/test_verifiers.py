"""gym_run.servers.builtin.verifiers.answer_match: normalised exact match and multiple-choice letters, tricky cases,
and a whole run through the registry on the stand-in."""

from __future__ import annotations

import pytest
from gym_run.servers.builtin.verifiers import AnswerMatch, choice_letter, final_answer, normalise

from tests.runtime_helpers import assistant_message


def judged(text: str | None, expected, **config):
    output = (
        []
        if text is None
        else [
            {"type": "function_call", "name": "f", "arguments": "{}", "call_id": "c"},
            assistant_message(text),
        ]
    )
    body = {
        "responses_create_params": {"input": "q"},
        "expected_answer": expected,
        "response": {"id": "r", "object": "response", "output": output},
    }
    return AnswerMatch("match", config).verify(body)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Paris", "paris"),
        ("  Paris. ", "Paris"),
        ("**Paris**", "Paris"),
        ("The Eiffel Tower", "eiffel tower"),
        ("Answer: 42", "42"),
        ("I worked it out.\nThe final answer is 1,000.", "1000"),
        ("so x = \\boxed{3.50}", "3.5"),
        ("1000.0", 1000),
        ("Ｐａｒｉｓ", "Paris"),  # full-width letters (NFKC)
        ("Rome", ["Roma", "Rome"]),  # a list of accepted answers
    ],
)
async def test_exact_mode_matches(text, expected):
    result = await judged(text, expected)
    assert result["reward"] == 1.0, result["extracted_answer"]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Paris, France", "Paris"),
        ("42 apples", "42"),
        ("4.2", "42"),
        ("Answer: Lyon (not Paris)", "Paris"),
        ("", "Paris"),
        (None, "Paris"),
    ],
)
async def test_exact_mode_rejects(text, expected):
    result = await judged(text, expected)
    assert result["reward"] == 0.0


async def test_exact_mode_case_sensitive_and_extracted_answer():
    assert (await judged("paris", "Paris", case_sensitive=True))["reward"] == 0.0
    result = await judged("Let me think.\nAnswer: Paris", "Paris")
    assert result["extracted_answer"] == "Paris" and result["expected_answer"] == "Paris"
    assert (await judged(None, "Paris"))["extracted_answer"] is None
    regex = await judged(
        "<ans>Paris</ans> but maybe Lyon", "Paris", answer_regex=r"<ans>(.*?)</ans>"
    )
    assert regex["reward"] == 1.0


@pytest.mark.parametrize(
    "text,letter",
    [
        ("Answer: B", "B"),
        ("answer: (C)", "C"),
        ("The answer is **D**.", "D"),
        ("Final answer: [A]", "A"),
        ("I considered (A) and (B); the answer is C", "C"),  # the marker wins over mentions
        ("**B**", "B"),
        ("(B)", "B"),
        ("B.", "B"),
        (" b ", None),  # a lower-case bare letter is not an option letter
        ("It is (A) or maybe (C)", None),  # two candidates and no marker: no pick
        ("\\boxed{E}", "E"),
        ("Answer: Z", None),  # not one of the choices
        ("answer is a trick question", None),  # the article "a" is not option A
        ("Answer: A", "A"),
        ("I pick **C** because (C) is right", "C"),
    ],
)
def test_choice_letter(text, letter):
    assert choice_letter(text, "ABCDEFGHIJ") == letter


@pytest.mark.parametrize(
    "text,expected,reward",
    [
        ("Answer: B", "B", 1.0),
        ("Answer: B", "b", 1.0),
        ("Answer: B", "(B)", 1.0),
        ("Answer: B", "B) Paris", 1.0),
        ("Answer: C", "B", 0.0),
        ("(A) or (B)", "A", 0.0),
        ("Answer: E", "E", 0.0),  # E is not among choices ABCD
    ],
)
async def test_multiple_choice_mode(text, expected, reward):
    result = await judged(text, expected, mode="multiple_choice", choices="ABCD")
    assert result["reward"] == reward


async def test_missing_expected_answer_fails_the_rollout():
    body = {"responses_create_params": {"input": "q"}, "response": {"output": []}}
    with pytest.raises(ValueError, match="expected_answer"):
        await AnswerMatch("match", {}).verify(body)


def test_helpers():
    assert final_answer("blah\nAnswer: x\nmore\nAnswer: y") == "y"
    assert normalise("  The  QUICK, fox! ") == "quick, fox"
    assert normalise("-1,234.50") == "-1234.5" and normalise("007") == "7"
    assert normalise("a") == "a"  # a lone article is kept, not erased to nothing


async def test_answer_match_compiles_and_runs_on_the_stand_in(tmp_path):
    """A config naming answer_match, through gym-compile and the runtime (the stand-in echoes
    "You said: <question>", so the row that asks for "Answer: B" gets B)."""
    from gym_run.collect.runner import run_job

    from gym_compile.compiler import compile_config
    from gym_compile.options import Options
    from tests.runtime_helpers import read_jsonl, write_jsonl

    rows = [
        {"responses_create_params": {"input": text}, "expected_answer": expected}
        for text, expected in (("Answer: B", "B"), ("Answer: C", "B"), ("(A) or (D)?", "A"))
    ]
    write_jsonl(tmp_path / "rows.jsonl", rows)
    (tmp_path / "config.yaml").write_text(
        "policy_model:\n  responses_api_models:\n    stand_in_model: {}\n"
        "letters:\n  resources_servers:\n    answer_match:\n      domain: knowledge\n"
        "      mode: multiple_choice\n      choices: ABCD\n"
        "agent:\n  responses_api_agents:\n    simple_agent:\n"
        "      resources_server: {type: resources_servers, name: letters}\n"
        "      model_server: {type: responses_api_models, name: policy_model}\n"
        "      datasets: [{name: mc, type: example, jsonl_fpath: rows.jsonl}]\n",
        encoding="utf-8",
    )
    result = compile_config(
        [tmp_path / "config.yaml"],
        [f"+output_jsonl_fpath={tmp_path / 'out.jsonl'}"],
        Options(env=tmp_path / "none.yaml"),
    )
    assert result.ok, [str(d) for d in result.diagnostics]
    job = await run_job(result.plan, show_progress=False)
    records = read_jsonl(job.rollouts_path)
    assert [(r["reward"], r["extracted_answer"]) for r in records] == [
        (1.0, "B"),
        (0.0, "C"),
        (0.0, None),
    ]

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (tmp_path / "config.yaml").read_text().replace("multiple_choice", "fuzzy"), encoding="utf-8"
    )
    refused = compile_config([bad], [], Options(env=tmp_path / "none.yaml"))
    assert not refused.ok and any("fuzzy" in str(d) for d in refused.diagnostics)
