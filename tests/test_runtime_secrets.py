"""gym_run.secrets: where each secret is read, who wins, and errors that never show a value."""

from __future__ import annotations

import pytest
from gym_run.errors import SecretError
from gym_run.secrets import referenced_secrets, resolve_secrets, substitute_secrets

from tests.runtime_helpers import openai_spec, weather_plan


def _plan(tmp_path, source, key, env_file=None, **ref):
    model = openai_spec("https://api.openai.com/v1", api_key={"$secret": "policy_api_key"})
    secrets = {"policy_api_key": {"source": source, "key": key, **ref}}
    return weather_plan(tmp_path, model=model, secrets=secrets, env_file=env_file)


def test_env_file(tmp_path):
    env = tmp_path / "env.yaml"
    env.write_text("policy_api_key: sk-from-file\nother: 1\n")
    plan = _plan(tmp_path, "env_file", "policy_api_key", env_file=str(env))
    assert resolve_secrets(plan, environ={}) == {"policy_api_key": "sk-from-file"}


def test_environment_variable_wins_over_env_file(tmp_path):
    env = tmp_path / "env.yaml"
    env.write_text("policy_api_key: sk-from-file\n")
    plan = _plan(tmp_path, "env_file", "policy_api_key", env_file=str(env))
    assert resolve_secrets(plan, environ={"POLICY_API_KEY": "sk-from-env"}) == {
        "policy_api_key": "sk-from-env"
    }


def test_empty_environment_variable_does_not_override(tmp_path):
    env = tmp_path / "env.yaml"
    env.write_text("policy_api_key: sk-from-file\n")
    plan = _plan(tmp_path, "env_file", "policy_api_key", env_file=str(env))
    assert resolve_secrets(plan, environ={"POLICY_API_KEY": ""}) == {
        "policy_api_key": "sk-from-file"
    }


def test_environment_source(tmp_path):
    plan = _plan(tmp_path, "environment", "MY_KEY")
    assert resolve_secrets(plan, environ={"MY_KEY": "sk-env"}) == {"policy_api_key": "sk-env"}
    with pytest.raises(SecretError, match="environment variable MY_KEY is not set"):
        resolve_secrets(plan, environ={})


def test_config_source(tmp_path):
    config = tmp_path / "model.yaml"
    config.write_text(
        "policy_model:\n  responses_api_models:\n    openai_model:\n      api_key: sk-literal\n"
    )
    plan = _plan(
        tmp_path,
        "config",
        "policy_model.responses_api_models.openai_model.api_key",
        file=str(config),
    )
    assert resolve_secrets(plan, environ={}) == {"policy_api_key": "sk-literal"}


def test_missing_names_every_place_looked(tmp_path):
    env = tmp_path / "env.yaml"
    env.write_text("policy_base_url: https://x\npolicy_model_name: m\n")
    plan = _plan(tmp_path, "env_file", "policy_api_key", env_file=str(env))
    with pytest.raises(SecretError) as info:
        resolve_secrets(plan, environ={})
    message = info.value.message
    assert "POLICY_API_KEY" in message and str(env) in message and "'policy_api_key'" in message
    assert info.value.exit_code == 4


def test_missing_env_file(tmp_path):
    plan = _plan(tmp_path, "env_file", "policy_api_key", env_file=str(tmp_path / "env.yaml"))
    with pytest.raises(SecretError, match="env.yaml does not exist"):
        resolve_secrets(plan, environ={})


def test_value_never_in_error(tmp_path):
    env = tmp_path / "env.yaml"
    env.write_text("policy_api_key:\n  nested: sk-secret-value\n")
    plan = _plan(tmp_path, "env_file", "policy_api_key", env_file=str(env))
    with pytest.raises(SecretError) as info:
        resolve_secrets(plan, environ={})
    assert "sk-secret-value" not in info.value.message


def test_substitute_replaces_only_markers():
    config = {
        "api_key": {"$secret": "k"},
        "headers": [{"$secret": "k"}],
        "other": {"$secret": "k", "x": 1},
    }
    assert referenced_secrets(config) == {"k"}
    out = substitute_secrets(config, {"k": "v"})
    assert out == {"api_key": "v", "headers": ["v"], "other": {"$secret": "k", "x": 1}}
    assert config["api_key"] == {"$secret": "k"}
