"""NeMo Gym's path rules: config_paths, datasets, inputs and server files are found where NeMo Gym
finds them (extra roots, the working directory, the NeMo Gym tree), then next to the file that
names them; two different candidates warn; a missing file lists every place looked."""

from __future__ import annotations

from pathlib import Path

import pytest

from gym_compile.compiler import compile_config
from gym_compile.options import Options
from gym_compile.searchpath import search

ROW = '{"responses_create_params": {"input": "hi"}}\n'
MODEL = "policy_model:\n  responses_api_models:\n    stand_in_model:\n      model: stand-in-1\n"


def _tree(root: Path) -> Path:
    """A NeMo Gym-like tree: configs name files from the root, as NeMo Gym's own configs do."""
    env = root / "resources_servers" / "example_simple_weather"
    (env / "configs").mkdir(parents=True)
    (env / "data").mkdir()
    (root / "responses_api_models" / "stand_in" / "configs").mkdir(parents=True)
    (env / "data" / "example.jsonl").write_text(ROW * 3)
    (root / "responses_api_models" / "stand_in" / "configs" / "model.yaml").write_text(MODEL)
    (env / "configs" / "weather.yaml").write_text(
        "config_paths: [responses_api_models/stand_in/configs/model.yaml]\n"
        "example_simple_weather:\n  resources_servers:\n    example_simple_weather:\n"
        "      domain: agent\n"
        "weather_agent:\n  responses_api_agents:\n    simple_agent:\n"
        "      resources_server: {type: resources_servers, name: example_simple_weather}\n"
        "      model_server: {type: responses_api_models, name: policy_model}\n"
        "      datasets:\n"
        "      - {name: example, type: example, jsonl_fpath: "
        "resources_servers/example_simple_weather/data/example.jsonl}\n"
        "      - {name: train, type: train, license: MIT, jsonl_fpath: "
        "resources_servers/example_simple_weather/data/train.jsonl,\n"
        "         source: {type: huggingface, repo_id: nvidia/weather}}\n"
    )
    return env / "configs" / "weather.yaml"


def _compile(config: Path, *overrides: str):
    return compile_config([config], list(overrides), Options(default_env=False))


@pytest.mark.parametrize("where", ["root", "elsewhere"])
def test_a_nemo_gym_config_compiles_from_the_root_and_from_anywhere(tmp_path, monkeypatch, where):
    config = _tree(tmp_path / "Gym")
    cwd = tmp_path / "Gym" if where == "root" else tmp_path
    monkeypatch.chdir(cwd)
    result = _compile(config, "+agent_name=weather_agent", "+output_jsonl_fpath=out.jsonl")
    assert result.ok, result.diagnostics
    job = result.plan["job"]
    assert job["input"]["rows"] == 3  # the example set: the train set is not needed on disk
    assert job["input"]["path"] == str(
        tmp_path / "Gym" / "resources_servers/example_simple_weather/data/example.jsonl"
    )


def test_no_job_asked_for_is_a_servers_only_plan(tmp_path, monkeypatch):
    config = _tree(tmp_path / "Gym")
    monkeypatch.chdir(tmp_path / "Gym")
    result = _compile(config)
    assert result.ok, result.diagnostics
    assert result.plan["job"] is None and len(result.plan["servers"]) == 3


def test_the_job_input_that_is_downloaded_on_demand_says_how_to_get_it(tmp_path, monkeypatch):
    config = _tree(tmp_path / "Gym")
    monkeypatch.chdir(tmp_path / "Gym")
    result = _compile(
        config, "+input_jsonl_fpath=resources_servers/example_simple_weather/data/train.jsonl"
    )
    (d,) = [d for d in result.diagnostics if d.severity == "error"]
    assert d.code == "GYM050" and "train dataset 'train'" in d.message
    assert d.location.file == "<command line>"
    assert any(
        "gym dataset download +repo_id=nvidia/weather +split=train "
        "+output_fpath=resources_servers/example_simple_weather/data/train.jsonl" in h
        for h in d.hints
    ), d.hints
    assert any(h.startswith("looked for") and "NeMo Gym tree of" in h for h in d.hints)


def test_a_missing_example_set_lists_every_place_looked(tmp_path, monkeypatch):
    config = _tree(tmp_path / "Gym")
    (tmp_path / "Gym/resources_servers/example_simple_weather/data/example.jsonl").unlink()
    monkeypatch.chdir(tmp_path)
    result = _compile(config)
    (d,) = [d for d in result.diagnostics if d.severity == "error"]
    assert d.code == "GYM050" and d.location.line == 12
    looked = [h for h in d.hints if h.startswith("looked for")]
    assert any("(current directory)" in h for h in looked)
    assert any("NeMo Gym tree of" in h for h in looked)
    assert any("next to" in h for h in looked)


def test_includes_follow_nemo_gym_then_the_including_file(tmp_path, monkeypatch):
    config = _tree(tmp_path / "Gym")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text(
        "config_paths: [resources_servers/example_simple_weather/configs/weather.yaml, extra.yaml]\n"
    )
    (tmp_path / "extra.yaml").write_text("agent_name: weather_agent\n")
    result = _compile(tmp_path / "mine.yaml", "+output_jsonl_fpath=out.jsonl")
    assert not result.ok  # the NeMo Gym tree is not a root here: the include is not found
    (d,) = [d for d in result.diagnostics if d.severity == "error"]
    assert d.code == "GYM003"
    result = compile_config(
        [tmp_path / "mine.yaml"],
        ["+output_jsonl_fpath=out.jsonl"],
        Options(default_env=False, nemo_gym_roots=(tmp_path / "Gym",)),
    )
    assert result.ok, result.diagnostics
    assert config.resolve() in [Path(s["path"]) for s in result.plan["sources"]]


def test_two_different_candidates_warn_and_nemo_gyms_wins(tmp_path, monkeypatch):
    config = _tree(tmp_path / "Gym")
    monkeypatch.chdir(tmp_path / "Gym")
    shadow = config.parent / "resources_servers/example_simple_weather/data"
    shadow.mkdir(parents=True)
    (shadow / "example.jsonl").write_text(ROW)  # next to the config: one row, not three
    result = _compile(config, "+agent_name=weather_agent")
    assert result.ok, result.diagnostics
    (w,) = [d for d in result.diagnostics if d.code == "GYM008"]
    assert w.severity == "warning" and "NeMo Gym tree of" in w.message and "next to" in w.message
    assert result.plan["job"]["input"]["rows"] == 3


def test_search_order_and_identical_candidates(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.txt").write_text("same")
    (tmp_path / "b" / "x.txt").write_text("same")
    from gym_compile.nemo.roots import Root

    roots = [Root(tmp_path / "a", "first"), Root(tmp_path / "b", "second")]
    found = search("x.txt", roots, None)
    assert found.exists and found.chosen.why == "first" and found.other is None
    (tmp_path / "b" / "x.txt").write_text("different")
    assert search("x.txt", roots, None).other.why == "second"
    absolute = search(str(tmp_path / "b" / "x.txt"), roots, None)
    assert [p.why for p in absolute.looked] == ["absolute path"]


def test_a_servers_own_file_is_found_in_its_folder_where_nemo_gym_runs_it(tmp_path, monkeypatch):
    root = tmp_path / "Gym"
    _tree(root)
    judge = root / "resources_servers" / "equivalence_llm_judge"
    (judge / "prompt_templates").mkdir(parents=True)
    (judge / "configs").mkdir()
    (judge / "prompt_templates" / "mine.txt").write_text("{question} {expected_answer}\n")
    config = judge / "configs" / "judge.yaml"
    config.write_text(
        MODEL
        + "judge:\n  resources_servers:\n    equivalence_llm_judge:\n      domain: knowledge\n"
        "      judge_model_server: {type: responses_api_models, name: policy_model}\n"
        "      judge_prompt_template_fpath: prompt_templates/mine.txt\n"
    )
    monkeypatch.chdir(tmp_path)  # not the root: the server's folder is where NeMo Gym runs it
    result = _compile(config)
    assert result.ok, result.diagnostics
    written = result.plan["servers"]["judge"]["config"]["judge_prompt_template_fpath"]
    assert written == str(judge / "prompt_templates" / "mine.txt")
    config.write_text(config.read_text().replace("mine.txt", "nope.txt"))
    (d,) = [d for d in _compile(config).diagnostics if d.severity == "error"]
    assert d.code == "GYM003" and "prompt_templates/nope.txt does not exist" in d.message
    looked = [h for h in d.hints if h.startswith("looked for")]
    assert "folder of resources_servers/equivalence_llm_judge" in looked[0]
    assert any("next to" in h for h in looked)


def test_env_yaml_may_hold_config_paths_as_in_nemo_gym(tmp_path, monkeypatch):
    config = _tree(tmp_path / "Gym")
    monkeypatch.chdir(tmp_path / "Gym")
    env = tmp_path / "Gym" / "env.yaml"
    env.write_text(f"config_paths: [{config.relative_to(tmp_path / 'Gym')}]\n")
    result = compile_config([], ["+agent_name=weather_agent"], Options(env=env, env_required=True))
    assert result.ok, result.diagnostics
    assert result.plan["job"]["agent"] == "weather_agent"
    # the command line's config_paths replace env.yaml's, as NeMo Gym merges them
    result = compile_config(
        [],
        ["+config_paths=[responses_api_models/stand_in/configs/model.yaml]"],
        Options(env=env, env_required=True),
    )
    assert result.ok and set(result.plan["servers"]) == {"policy_model"}
