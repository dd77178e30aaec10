"""Source lines quoted by diagnostics never show the value of a secret-named key."""

from __future__ import annotations

import pytest

from gym_compile.compiler import compile_config
from gym_compile.diagnostics.text import render_text
from gym_compile.options import Options
from gym_compile.secretscan import mask_line


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("policy_api_key: hunter2xyz", "policy_api_key: ***"),
        ("policy_api_key: !!int hunter2xyz  # note", "policy_api_key: ***"),
        ('"db_password": "a b c"', '"db_password": ***'),
        ("- hf_token: abc123", "- hf_token: ***"),
        ("x: {hf_token: abc123, model: m}", "x: {hf_token: ***, model: m}"),
        ("      api_key: ${policy_api_key}", "      api_key: ${policy_api_key}"),
        ("      api_key: Bearer ${token}", "      api_key: ***"),
        ("max_output_tokens: 12", "max_output_tokens: 12"),
        ("keyboard: qwerty", "keyboard: qwerty"),
        ("notes: sk-proj-Abcdefghijklmnopqrstuv0123456789", "notes: sk-***"),
    ],
)
def test_mask_line(line: str, shown: str) -> None:
    assert mask_line(line) == shown


def test_a_failing_env_yaml_line_is_shown_masked(tmp_path) -> None:
    env = tmp_path / "env.yaml"
    env.write_text("policy_api_key: !!int hunter2xyz\npolicy_api_key: hunter2xyz\n")
    result = compile_config([], [], Options(env=env, env_required=True))
    text = render_text(result.diagnostics)
    assert "GYM006" in text and "GYM002" in text and "policy_api_key: ***" in text
    assert "hunter2xyz" not in text


def test_a_password_in_a_url_makes_it_a_secret(tmp_path) -> None:
    from tests.conftest import EXAMPLES

    env = tmp_path / "env.yaml"
    env.write_text(
        "policy_base_url: https://proxyuser:hunter2pass@proxy.example/v1\npolicy_api_key: k-123456789\n"
        "policy_model_name: m\n"
    )
    configs = [
        EXAMPLES / "simple_weather/simple_weather.yaml",
        EXAMPLES / "simple_weather/openai_model.yaml",
    ]
    result = compile_config(
        configs,
        [f"+output_jsonl_fpath={tmp_path / 'r.jsonl'}"],
        Options(env=env, env_required=True),
    )
    assert result.plan is not None, result.diagnostics
    assert result.plan["servers"]["policy_model"]["config"]["base_url"] == {
        "$secret": "policy_base_url"
    }
    assert (
        "hunter2pass" not in str(result.plan)
        and mask_line("u: https://a:hunter2pass@h/v1") == "u: https://a:***@h/v1"
    )
