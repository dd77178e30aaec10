"""The understanding commands (explain, show, diff, schema) and the CLI's exit-code boundary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft7Validator

from gym_compile import cli
from gym_compile.cli import main

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "simple_weather"
SECRET = "sk-abcdefghijklmnopqrstuvwxyz0123"
MODEL = "policy_model.responses_api_models.openai_model"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(EXAMPLE, tmp_path, dirs_exist_ok=True)
    (tmp_path / "env.yaml").write_text(
        "policy_base_url: https://api.openai.com/v1\n"
        f"policy_api_key: {SECRET}\n"
        "policy_model_name: gpt-4.1-2025-04-14\n"
        "judge_api_key: not-a-secret-looking-value\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_explain_names_the_value_its_source_and_its_chain(work):
    code, out = run("explain", f"{MODEL}.base_url", "simple_weather.yaml", "openai_model.yaml")
    assert code == 0
    assert out.splitlines() == [
        f'{MODEL}.base_url = "https://api.openai.com/v1"',
        "  from: openai_model.yaml:6:17",
        "  written: ${policy_base_url}",
        '    ${policy_base_url} -> policy_base_url = "https://api.openai.com/v1"   (env.yaml:1:18 (env file))',
    ]


def test_explain_masks_secrets_by_schema_and_by_name(work):
    code, out = run("explain", f"$.{MODEL}.api_key", "simple_weather.yaml", "openai_model.yaml")
    assert code == 0 and SECRET not in out
    assert out.splitlines()[0] == f"{MODEL}.api_key = ***"
    assert "${policy_api_key} -> policy_api_key = ***" in out
    code, out = run("explain", "judge_api_key", "openai_model.yaml")
    assert out.splitlines()[0] == "judge_api_key = ***"


def test_explain_defaults_overrides_and_what_was_overridden(work):
    code, out = run("explain", f"{MODEL}.timeouts.read", "openai_model.yaml")
    assert (
        code == 0 and "= 600" in out and "from: default of responses_api_models/openai_model" in out
    )
    code, out = run("explain", f"{MODEL}.model", "openai_model.yaml", f"+{MODEL}.model=gpt-5")
    assert code == 0
    assert f'{MODEL}.model = "gpt-5"' in out and f"from: <command line>:+{MODEL}.model=gpt-5" in out
    assert 'earlier values (overridden):\n    openai_model.yaml:8:14: "${policy_model_name}"' in out


def test_explain_an_unknown_key_suggests_and_fails(work):
    code, out = run("explain", f"{MODEL}.modle", "openai_model.yaml")
    assert code == 1 and "is not set in this config" in out and "did you mean 'model'?" in out


def test_explain_shows_the_problems_of_the_key(work):
    (work / "env.yaml").write_text(
        "policy_base_url: ftp://x\npolicy_api_key: k\npolicy_model_name: m\n"
    )
    code, out = run("explain", f"{MODEL}.base_url", "openai_model.yaml")
    assert code == 0 and "problems with this key:" in out and "error[GYM034]" in out


def _compile(*args: str, out: str = "plan.json") -> dict:
    code, text = run(
        "simple_weather.yaml",
        "openai_model.yaml",
        "+agent_name=simple_weather_simple_agent",
        *args,
        "-o",
        out,
    )
    assert code == 0, text
    return json.loads(Path(out).read_text())


def test_show_renders_a_plan_for_people(work):
    _compile()
    code, out = run("show", "plan.json")
    assert code == 0
    assert "policy_model: responses_api_models/openai_model" in out
    assert "api_key = <secret policy_api_key>" in out and SECRET not in out
    assert (
        "agent       simple_weather_simple_agent" in out
        and "5 rows x 1 repeats, 256 at a time" in out
    )
    assert "policy_api_key: key policy_api_key of" in out and "$POLICY_API_KEY" in out


def test_show_flags_an_edited_plan_and_refuses_non_plans(work):
    plan = _compile()
    plan["job"]["concurrency"] = 99
    Path("edited.json").write_text(json.dumps(plan))
    code, out = run("show", "edited.json")
    assert code == 1 and "does NOT match the contents" in out and "edited after compiling" in out
    Path("junk.json").write_text("{not json")
    code, out = run("show", "junk.json")
    assert code == 1 and "junk.json:1:2: not JSON" in out


def test_diff_says_what_changed(work):
    _compile()
    assert run("diff", "plan.json", "plan.json") == (
        0,
        f"same plan ({json.loads(Path('plan.json').read_text())['content_hash']})\n",
    )
    _compile(f"+{MODEL}.model=gpt-5", "+num_repeats=3", out="b.json")
    (work / "data" / "example.jsonl").write_text('{"responses_create_params": {"input": "hi"}}\n')
    _compile(out="c.json")
    code, out = run("diff", "plan.json", "b.json")
    assert code == 1
    assert '  ~ policy_model\n      ~ model: "gpt-4.1-2025-04-14" -> "gpt-5"' in out
    assert "job:\n" in out and "\n  ~ num_repeats: 1 -> 3" in out
    assert (
        "\n  ~ estimate.rollouts: 5 -> 15" in out
    )  # the estimate follows: a reviewer sees the cost move
    code, out = run("diff", "plan.json", "c.json")
    assert code == 1 and "sources:\n  ~ input " in out and "\n  ~ input.rows: 5 -> 1" in out
    code, out = run("diff", "plan.json", "missing.json")
    assert code == 2 and "cannot read missing.json" in out


def test_schema_for_editors(work):
    code, out = run("schema", "--out", "schemas-out")
    target = work / "schemas-out" / "gym-config.schema.json"
    assert code == 0 and "# yaml-language-server: $schema=schemas-out/gym-config.schema.json" in out
    schema = json.loads(target.read_text())
    Draft7Validator.check_schema(schema)
    validator = Draft7Validator(schema)
    for name in ("simple_weather.yaml", "openai_model.yaml", "stand_in_model.yaml"):
        assert list(validator.iter_errors(yaml.safe_load(Path(name).read_text()))) == [], name
    typo = yaml.safe_load(Path("openai_model.yaml").read_text().replace("model: ${", "modle: ${"))
    assert any("modle" in e.message for e in validator.iter_errors(typo))
    nemo = {
        "m": {
            "responses_api_models": {
                "openai_model": {"openai_api_key": "${k}", "openai_model": "gpt"}
            }
        }
    }
    assert list(validator.iter_errors(nemo)) == []
    assert list(validator.iter_errors({"m": {"resource_servers": {}}}))  # a typo'd server type
    assert json.loads(run("schema")[1]) == schema


def test_compile_machine_formats_go_to_stdout(work):
    (work / "env.yaml").unlink()
    result = CliRunner().invoke(
        main, ["simple_weather.yaml", "openai_model.yaml", "--format", "sarif"]
    )
    assert result.exit_code == 1
    log = json.loads(result.stdout)
    assert {r["ruleId"] for r in log["runs"][0]["results"]} == {"GYM020"}


def test_unwritable_output_is_a_usage_error(work):
    Path("taken").write_text("")
    code, out = run("simple_weather.yaml", "stand_in_model.yaml", "-o", "taken/plan.json")
    assert code == 2 and "cannot write the plan to taken/plan.json" in out


def test_a_bug_is_a_short_internal_error_with_exit_2(work, monkeypatch):
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaput")

    monkeypatch.setattr(cli, "compile_config", boom)
    code, out = run("simple_weather.yaml")
    assert code == 2
    assert out.startswith("gym-compile: internal error: RuntimeError: kaput")
