"""An implementation gym-compile does not ship, compiled with a schema derived from its source:
the same located diagnostics as a built-in one, defaults in the plan, the cache, and the error
that says where the source was looked for."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from gym_compile.cli import main
from gym_compile.nemo.cache import cache_dir, cached_derive, clear_memo
from tests.nemo_fixtures import nemo_tree, server

APP = """
from typing import Literal, Optional

from pydantic import Field

from nemo_gym.base_resources_server import BaseResourcesServerConfig, SimpleResourcesServer
from nemo_gym.config_types import ModelServerRef


class WordleConfig(BaseResourcesServerConfig):
    judge_model_server: ModelServerRef
    max_guesses: int = Field(default=6, ge=1, description="Guesses per game.")
    word_list: Literal["easy", "hard"] = "easy"
    hint_text: Optional[str] = None


class WordleServer(SimpleResourcesServer):
    config: WordleConfig
"""

CONFIG = """
policy_model:
  responses_api_models:
    stand_in_model: {{}}
wordle:
  resources_servers:
    wordle:
      entrypoint: app.py
      domain: agent
      judge_model_server: {{type: responses_api_models, name: policy_model}}
{extra}
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("GYM_COMPILE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NEMO_GYM_EXTRA_ROOTS", raising=False)
    clear_memo()
    yield
    clear_memo()


@pytest.fixture
def gym(tmp_path):
    root = nemo_tree(tmp_path / "Gym")
    server(root, "wordle", APP, main="WordleServer")
    return root


def run(work: Path, *args: str) -> tuple[int, str]:
    old = os.getcwd()
    os.chdir(work)
    try:
        result = CliRunner().invoke(main, list(args))
    finally:
        os.chdir(old)
    return result.exit_code, result.output


def config(tmp_path: Path, extra: str = "", name: str = "c.yaml") -> Path:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    (work / name).write_text(CONFIG.format(extra=extra), encoding="utf-8")
    return work


def test_compiles_with_defaults_filled_from_the_derived_schema(tmp_path, gym):
    work = config(tmp_path)
    code, out = run(work, "c.yaml", "--nemo-gym-root", str(gym), "-o", "plan.json")
    assert code == 0, out
    server_cfg = json.loads((work / "plan.json").read_text())["servers"]["wordle"]["config"]
    assert server_cfg["max_guesses"] == 6 and server_cfg["word_list"] == "easy"
    assert server_cfg["entrypoint"] == "app.py"  # NeMo Gym's process needs its module


@pytest.mark.parametrize(
    "extra,code,message",
    [
        ("      max_gueses: 3", "GYM030", "unknown key 'max_gueses'"),
        ("      max_guesses: many", "GYM031", "expected integer, got a string"),
        ("      max_guesses: 0", "GYM034", "0 is less than the minimum of 1"),
        ("      word_list: medium", "GYM033", "'medium' is not one of: 'easy', 'hard'"),
        ("      hint_text: 3", "GYM031", "expected string or null"),
    ],
)
def test_same_located_diagnostics_as_a_built_in(tmp_path, gym, extra, code, message):
    work = config(tmp_path, extra)
    status, out = run(work, "c.yaml", "--nemo-gym-root", str(gym))
    assert status == 1
    assert "c.yaml:11:" in out and f"error[{code}]" in out and message in out, out
    if code == "GYM030":
        assert "did you mean 'max_guesses'?" in out


def test_missing_required_key_and_reference_checked(tmp_path, gym):
    work = tmp_path / "work"
    work.mkdir()
    (work / "c.yaml").write_text(
        "wordle:\n  resources_servers:\n    wordle:\n      entrypoint: app.py\n"
        "      domain: agent\n"
        "other:\n  resources_servers:\n    wordle:\n      entrypoint: app.py\n      domain: agent\n"
        "      judge_model_server: {type: responses_api_models, name: polcy_model}\n"
    )
    status, out = run(work, "c.yaml", "--nemo-gym-root", str(gym))
    assert status == 1
    assert "missing required key 'judge_model_server'" in out
    assert "c.yaml:11:" in out and "polcy_model" in out  # the reference is resolved by link


def test_source_not_found_says_where_it_looked_and_how_to_point_at_nemo_gym(tmp_path, gym):
    work = config(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"NEMO_GYM_EXTRA_ROOTS": str(tmp_path / "missing_root")}
    result = CliRunner(env=env).invoke(
        main, [str(work / "c.yaml"), "--nemo-gym-root", str(elsewhere)]
    )
    out = result.output
    assert result.exit_code == 1 and "error[GYM036]" in out and "c.yaml:7:5:" in out
    assert f"looked in {elsewhere}/resources_servers/wordle/app.py (--nemo-gym-root)" in out
    assert (
        "missing_root/resources_servers/wordle/app.py (NEMO_GYM_EXTRA_ROOTS, does not exist)" in out
    )
    assert "(current directory)" in out
    assert "pip install nemo-gym" in out and "--nemo-gym-root" in out


def test_roots_from_the_environment_and_from_the_config_files_tree(tmp_path, gym):
    work = config(tmp_path)
    result = CliRunner(env={"NEMO_GYM_EXTRA_ROOTS": str(gym)}).invoke(main, [str(work / "c.yaml")])
    assert result.exit_code == 0, result.output
    inside = gym / "resources_servers" / "wordle" / "configs"
    inside.mkdir()
    (inside / "wordle.yaml").write_text(CONFIG.format(extra=""))
    status, out = run(tmp_path, str(inside / "wordle.yaml"), "-o", str(tmp_path / "p.json"))
    assert status == 0, out


def test_incomplete_schema_makes_unknown_keys_warnings(tmp_path, gym):
    server(
        gym,
        "wordle",
        APP.replace("BaseResourcesServerConfig):", "BaseResourcesServerConfig, ThirdParty):")
        + "from somepkg import ThirdParty\n",
        main="WordleServer",
    )
    work = config(tmp_path, "      colour_scheme: dark")
    status, out = run(work, "c.yaml", "--nemo-gym-root", str(gym), "-o", "plan.json")
    assert status == 0, out
    assert "warning[GYM091]" in out and "unknown key 'colour_scheme'" in out
    assert "not read: base class 'somepkg.ThirdParty'" in out
    plan = json.loads((work / "plan.json").read_text())
    assert plan["servers"]["wordle"]["config"]["colour_scheme"] == "dark"  # kept for NeMo Gym


def test_no_config_class_is_a_warning_and_the_fields_go_unchecked(tmp_path, gym):
    server(gym, "wordle", "print('no server here')\n")
    work = config(tmp_path, "      anything: 1")
    status, out = run(work, "c.yaml", "--nemo-gym-root", str(gym), "-o", "plan.json")
    assert status == 0 and "warning[GYM090]" in out and "no server class found" in out, out


def test_cache_is_read_and_invalidated_by_any_source_change(tmp_path, gym):
    app = gym / "resources_servers" / "wordle" / "app.py"
    first = cached_derive(app, "resources_servers", "wordle", [gym])
    entries = list(cache_dir().glob("*.json"))
    assert len(entries) == 1 and first.complete
    entry = json.loads(entries[0].read_text())
    entry["derived"]["schema"]["title"] = "from the cache"
    entries[0].write_text(json.dumps(entry))
    clear_memo()
    assert (
        cached_derive(app, "resources_servers", "wordle", [gym]).schema["title"] == "from the cache"
    )
    base = gym / "nemo_gym" / "base_resources_server.py"  # a file the derivation read
    base.write_text(base.read_text().replace("expose_tools_over_mcp", "expose_tools"))
    clear_memo()
    again = cached_derive(app, "resources_servers", "wordle", [gym])
    assert (
        again.schema["title"] != "from the cache" and "expose_tools" in again.schema["properties"]
    )
    for entry_file in cache_dir().glob("*.json"):
        entry_file.write_text("{not json")
    clear_memo()
    assert cached_derive(app, "resources_servers", "wordle", [gym]).complete  # silently derived


def test_unwritable_cache_falls_back_silently(tmp_path, gym, monkeypatch):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    monkeypatch.setenv("GYM_COMPILE_CACHE_DIR", str(blocker))
    app = gym / "resources_servers" / "wordle" / "app.py"
    assert cached_derive(app, "resources_servers", "wordle", [gym]).complete


def test_renamed_implementation_known_by_both_names(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    (work / "c.yaml").write_text(
        "weather:\n  resources_servers:\n    example_single_tool_call:\n"
        "      entrypoint: app.py\n      domain: agent\n"
    )
    status, out = run(work, "c.yaml", "-o", "plan.json")
    assert status == 0, out
    plan = json.loads((work / "plan.json").read_text())
    assert plan["servers"]["weather"]["implementation"] == "example_single_tool_call"


def test_runtime_differences_are_located_warnings(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    (work / "c.yaml").write_text(
        "m:\n  responses_api_models:\n    stand_in_model: {}\n"
        "r:\n  resources_servers:\n    example_simple_weather: {domain: agent}\n"
        "a:\n  responses_api_agents:\n    simple_agent:\n"
        "      resources_server: {type: resources_servers, name: r}\n"
        "      model_server: {type: responses_api_models, name: m}\n"
        "      skip_verification: true\n"
        "j:\n  resources_servers:\n    equivalence_llm_judge:\n"
        "      judge_model_server: {type: responses_api_models, name: m}\n"
    )
    status, out = run(work, "lint", "c.yaml")
    assert status == 0, out
    assert (
        "c.yaml:12:7: warning[GYM092]" in out
        and "always calls the resources server's /verify" in out
    )
    assert "c.yaml:15:5: warning[GYM092]" in out and "judge_prompt_template_fpath" in out
    assert out.count("GYM092") == 2


def test_schema_export_includes_derived_implementations(tmp_path, gym):
    status, out = run(tmp_path, "schema", "--out", "editor", "--nemo-gym-root", str(gym))
    assert status == 0, out
    schema = json.loads((tmp_path / "editor" / "gym-config.schema.json").read_text())
    wordle = schema["definitions"]["resources_servers.wordle"]
    assert wordle["properties"]["max_guesses"]["anyOf"][0]["default"] == 6
    assert "wordle" in schema["definitions"]["resources_servers"]["properties"]
    assert "equivalence_llm_judge" in schema["definitions"]["resources_servers"]["properties"]
