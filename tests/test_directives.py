"""NeMo Gym's directives (_inherit_from, _copy, _delete_key, ${inherit_from:}, ${copy:}): the
results NeMo Gym's one-pass algorithm gives, locations that follow the values, and what is refused."""

from __future__ import annotations

from pathlib import Path

from gym_compile.compiler import compile_config
from gym_compile.inspect.explain import explain_key
from gym_compile.merge import merge
from gym_compile.options import Options

MODEL = "policy_model:\n  responses_api_models:\n    stand_in_model:\n      model: stand-in-1\n"
WEATHER = (
    "weather:\n  resources_servers:\n    example_simple_weather:\n      domain: agent\n"
    "agent:\n  responses_api_agents:\n    simple_agent:\n"
    "      resources_server: {type: resources_servers, name: weather}\n"
    "      model_server: {type: responses_api_models, name: policy_model}\n"
    "      max_steps: 3\n"
)


def _merged(tmp_path: Path, text: str, *extra: tuple[str, str]):
    for name, body in extra:
        (tmp_path / name).write_text(body)
    (tmp_path / "main.yaml").write_text(text)
    return merge([tmp_path / "main.yaml"], None, [], partial=True)


def test_inherit_moves_the_source_and_local_keys_win(tmp_path):
    m = _merged(
        tmp_path,
        "config_paths: [base.yaml]\n"
        "mine:\n  _inherit_from: agent\n  responses_api_agents:\n    simple_agent:\n      max_steps: 9\n",
        ("base.yaml", MODEL + WEATHER),
    )
    assert "agent" not in m.data  # moved, as NeMo Gym pops it
    agent = m.data["mine"]["responses_api_agents"]["simple_agent"]
    assert agent["max_steps"] == 9 and agent["resources_server"]["name"] == "weather"
    assert "_inherit_from" not in m.data["mine"]
    assert m.source.at(("mine", "responses_api_agents", "simple_agent", "max_steps")).file.endswith(
        "main.yaml"
    )
    taken = m.source.at(("mine", "responses_api_agents", "simple_agent", "model_server", "name"))
    assert taken is not None and taken.file.endswith("base.yaml") and taken.line == 13
    assert not m.diagnostics


def test_copy_keeps_the_source_and_string_forms_take_whole_values(tmp_path):
    m = _merged(
        tmp_path,
        MODEL + "judge_model:\n  _copy: policy_model\n"
        "steps: ${copy:policy_model.responses_api_models}\n"
        "moved: ${inherit_from:policy_model.responses_api_models.stand_in_model.model}\n",
    )
    # every directive takes the config as merged: the move does not reach the copies
    assert m.data["policy_model"] == {"responses_api_models": {"stand_in_model": {}}}
    assert m.data["judge_model"]["responses_api_models"]["stand_in_model"]["model"] == "stand-in-1"
    assert m.data["steps"] == {"stand_in_model": {"model": "stand-in-1"}}
    assert m.data["moved"] == "stand-in-1"
    assert not m.diagnostics
    assert m.source.at(("moved",)).line == 4  # where policy_model's model is written


def test_delete_key_before_and_after_the_merge(tmp_path):
    m = _merged(
        tmp_path,
        "base:\n  a: 1\n  b: 2\n  c: 3\n"
        'child:\n  _inherit_from: base\n  _delete_key: "a, x"\n  x: 1\n'
        'other:\n  _delete_key: "nothere"\n  k: 1\n',
    )
    assert m.data["child"] == {"b": 2, "c": 3}  # x deleted first, a after the inherit
    codes = [(d.code, d.severity) for d in m.diagnostics]
    assert codes == [("GYM028", "warning")]  # 'nothere': NeMo Gym ignores it


def test_delete_key_naming_what_the_inherit_does_not_bring_is_an_error(tmp_path):
    m = _merged(tmp_path, 'base:\n  a: 1\nchild:\n  _inherit_from: base\n  _delete_key: "zz"\n')
    assert [d.code for d in m.diagnostics] == ["GYM025"]
    assert "KeyError" in m.diagnostics[0].message


def test_missing_source_is_located_with_did_you_mean(tmp_path):
    m = _merged(tmp_path, MODEL + "judge:\n  _copy: policy_modle\n")
    (d,) = m.diagnostics
    assert d.code == "GYM025" and d.location.line == 6
    assert any("policy_model" in h for h in d.hints)


def test_a_missing_source_value_makes_the_target_missing(tmp_path):
    m = _merged(tmp_path, "base: ???\nchild: ${copy:base}\n")
    assert m.data["child"] == "???"


def test_chains_are_not_followed_and_are_reported(tmp_path):
    """NeMo Gym takes the source as merged, so a directive inside it stays unapplied."""
    m = _merged(
        tmp_path,
        "root_cfg:\n  a: 1\nmiddle:\n  _inherit_from: root_cfg\n  b: 2\n"
        "leaf:\n  _inherit_from: middle\n",
    )
    assert m.data["leaf"] == {"_inherit_from": "root_cfg", "b": 2}
    assert [d.code for d in m.diagnostics] == ["GYM027"]
    assert m.diagnostics[0].related and m.diagnostics[0].related[0].location.line == 7


def test_both_directives_at_once_is_refused(tmp_path):
    m = _merged(tmp_path, "a:\n  x: 1\nb:\n  _inherit_from: a\n  _copy: a\n")
    assert "GYM026" in [d.code for d in m.diagnostics]


def test_diagnostics_inside_inherited_values_point_through_the_directive(tmp_path):
    (tmp_path / "base.yaml").write_text(MODEL + WEATHER.replace("max_steps: 3", "max_stepz: 3"))
    (tmp_path / "main.yaml").write_text(
        "config_paths: [base.yaml]\nmine:\n  _inherit_from: agent\n"
    )
    result = compile_config([tmp_path / "main.yaml"], [], Options(default_env=False))
    (d,) = [d for d in result.diagnostics if d.code == "GYM030"]
    assert d.location.file.endswith("base.yaml") and d.path.startswith("$.mine.")
    assert [r.location.line for r in d.related] == [3]
    assert "inherits this value from 'agent'" in d.related[0].message


def test_explain_says_which_directive_a_value_came_through(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.yaml").write_text(MODEL + WEATHER)
    (tmp_path / "main.yaml").write_text(
        "config_paths: [base.yaml]\nmine:\n  _inherit_from: agent\n"
    )
    out = explain_key(
        "mine.responses_api_agents.simple_agent.max_steps",
        [Path("main.yaml")],
        [],
        env=tmp_path / "no-env.yaml",
    )
    text = "\n".join(out.lines)
    assert "from: base.yaml:14" in text and "through: 'mine' inherits" in text, text


def test_an_instance_using_directives_compiles_and_is_not_dropped(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.jsonl").write_text('{"responses_create_params": {"input": "hi"}}\n')
    (tmp_path / "main.yaml").write_text(
        MODEL + WEATHER + "second:\n  _copy: agent\n"
        "  responses_api_agents:\n    simple_agent:\n      max_steps: 1\n"
    )
    result = compile_config(
        [tmp_path / "main.yaml"],
        ["+agent_name=second", f"+input_jsonl_fpath={tmp_path / 'data' / 'rows.jsonl'}"],
        Options(default_env=False),
    )
    assert result.ok, result.diagnostics
    assert {"agent", "second"} <= set(result.plan["servers"])
    assert result.plan["servers"]["second"]["config"]["max_steps"] == 1
    assert result.plan["job"]["agent"] == "second"


ENV_SERVER = (
    "env:\n  environment_servers:\n    legacy_agent:\n      entrypoint: app.py\n"
    "      agent_server: {type: responses_api_agents, name: agent}\n"
)


def test_environment_servers_follow_an_agent_moved_by_inherit(tmp_path):
    """NeMo Gym 0.7: a top-level move of an agent retargets the environment servers naming it."""
    m = _merged(tmp_path, MODEL + WEATHER + ENV_SERVER + "mine:\n  _inherit_from: agent\n")
    assert "agent" not in m.data and not m.diagnostics
    ref = m.data["env"]["environment_servers"]["legacy_agent"]["agent_server"]
    assert ref["name"] == "mine"


def test_an_agent_moved_into_two_names_leaves_its_environment_server_ambiguous(tmp_path):
    m = _merged(
        tmp_path,
        MODEL + WEATHER + ENV_SERVER + "a1:\n  _inherit_from: agent\na2: ${inherit_from:agent}\n",
    )
    (d,) = m.diagnostics
    assert d.code == "GYM029" and "(a1, a2)" in d.message and d.location.line == 19
