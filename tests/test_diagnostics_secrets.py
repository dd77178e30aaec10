"""Secrets: literals in config files are warned about (GYM060) and never printed in any output."""

from __future__ import annotations

from pathlib import Path

import pytest

from gym_compile.compiler import compile_config
from gym_compile.secretscan import looks_secret, mask_text, secret_key_name

KEY = "sk-proj-Abcdefghijklmnopqrstuv0123456789"


@pytest.mark.parametrize(
    "text, secret",
    [
        (KEY, True),
        ("sk-abcdefghijklmnopqrstu0", True),
        ("nvapi-abcdefghijklmnopqrstuvwxyz", True),
        ("hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", True),
        ("Bearer abcdefghijklmnop0123456789", True),
        ("sk-...", False),
        ("sk-your-openai-api-key-here", False),
        ("my-task-generation-pipeline-v2", False),
        ("data/hf_cache_train_split_v2.jsonl", False),
        ("https://api.openai.com/v1", False),
    ],
)
def test_secret_shapes(text, secret):
    assert looks_secret(text) is secret
    assert (mask_text(f"x: {text}") != f"x: {text}") is secret


def test_secret_key_names_are_whole_segments():
    assert all(
        map(
            secret_key_name,
            ["policy_api_key", "hf_token", "apiKey", "db_password", "client-secret"],
        )
    )
    assert not any(map(secret_key_name, ["max_output_tokens", "keyboard", "monkey", "model"]))


def test_literals_anywhere_in_config_files_are_warned_but_env_yaml_is_their_place(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    Path("env.yaml").write_text(f"policy_api_key: {KEY}\n")
    Path("c.yaml").write_text(
        "policy_model:\n  responses_api_models:\n    openai_model:\n"
        "      api_key: ${policy_api_key}\n      model: gpt\n"
        f"      default_headers: {{X-Extra: 'Bearer abcdefghijklmnop0123456789'}}\n"
        "judge_model:\n  responses_api_models:\n    openai_model:\n"
        "      api_key: plain-looking-literal\n      model: gpt\n"
        f"notes: [{KEY}]\n"
    )
    result = compile_config([Path("c.yaml")], [])
    found = {
        (d.location.line, d.code, d.severity) for d in result.diagnostics if d.code == "GYM060"
    }
    assert found == {(6, "GYM060", "warning"), (10, "GYM060", "warning"), (12, "GYM060", "warning")}
    assert result.plan is not None  # warnings do not stop a compile
    assert result.plan["secrets"]["policy_api_key"] == {
        "source": "env_file",
        "key": "policy_api_key",
    }
    assert KEY not in str(result.plan)
