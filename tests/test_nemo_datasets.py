"""Datasets by NeMo Gym's rules (every type and field, on every server, known or not), the job's
input, and everything else still checked when an implementation is unknown."""

from __future__ import annotations

from pathlib import Path

from gym_compile.compiler import compile_config
from gym_compile.options import Options

ROW = '{"responses_create_params": {"input": "hi"}}\n'
HEAD = (
    "policy_model:\n  responses_api_models:\n    stand_in_model:\n      model: stand-in-1\n"
    "weather:\n  resources_servers:\n    example_simple_weather:\n      domain: agent\n"
    "agent:\n  responses_api_agents:\n    simple_agent:\n"
    "      resources_server: {type: resources_servers, name: weather}\n"
    "      model_server: {type: responses_api_models, name: policy_model}\n"
    "      datasets:\n"
)


def _run(tmp_path: Path, datasets: str, *overrides: str, head: str = HEAD):
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "example.jsonl").write_text(ROW)
    (tmp_path / "c.yaml").write_text(head + datasets)
    return compile_config([tmp_path / "c.yaml"], list(overrides), Options(default_env=False))


def _codes(result) -> list[tuple[str, str]]:
    return sorted((d.code, d.severity) for d in result.diagnostics)


def test_every_nemo_gym_dataset_field_is_accepted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _run(
        tmp_path,
        "      - {name: example, type: example, jsonl_fpath: data/example.jsonl, num_repeats: 2,\n"
        "         license: MIT, prompt_config: null, taskset: null, prepare_dependencies: []}\n"
        "      - name: train\n        type: train\n        jsonl_fpath: data/train.jsonl\n"
        "        license: Apache 2.0\n"
        "        source: {type: gitlab, dataset_name: d, version: 0.0.1, artifact_fpath: t.jsonl}\n"
        "      - {name: val, type: validation, jsonl_fpath: data/val.jsonl, license: TBD,\n"
        "         source: {type: huggingface, repo_id: org/x}}\n"
        "      - {name: bench, type: benchmark, jsonl_fpath: data/b.jsonl,\n"
        "         prepare_script: benchmarks/b/prepare.py, prompt_config: p.yaml, agent: agent,\n"
        "         license: MIT}\n",
    )
    assert result.ok, result.diagnostics
    assert result.plan["job"] is None  # servers only; the sets made on demand are not needed


def test_nemo_gyms_rules_across_fields(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _run(
        tmp_path,
        "      - {name: t, type: train, jsonl_fpath: data/t.jsonl}\n"  # no license
        "      - {name: v, type: validation, jsonl_fpath: data/v.jsonl, license: MIT,\n"
        "         source: {type: huggingface, repo_id: a/b}, huggingface_identifier: {repo_id: a/b}}\n"
        "      - {name: b, type: benchmark, jsonl_fpath: data/b.jsonl}\n"  # no prepare_script
        "      - {name: e, type: example, jsonl_fpath: data/example.jsonl, licence: MIT}\n"
        "      - {name: l, type: train, jsonl_fpath: data/l.jsonl, license: CC-BY-SA-4.0}\n",
    )
    assert _codes(result) == [
        ("GYM030", "error"),  # licence
        ("GYM032", "error"),  # benchmark without prepare_script
        ("GYM033", "error"),  # a license NeMo Gym does not know
        ("GYM054", "error"),  # train without license
        ("GYM054", "error"),  # source twice
    ]
    typo = next(d for d in result.diagnostics if d.code == "GYM030")
    assert "did you mean 'license'?" in typo.hints


def test_deprecated_identifiers_warn_with_the_source_block(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _run(
        tmp_path,
        "      - {name: t, type: train, jsonl_fpath: data/t.jsonl, license: MIT,\n"
        "         gitlab_identifier: {dataset_name: d, version: 1.0.0, artifact_fpath: t.jsonl}}\n",
    )
    assert result.ok
    (w,) = result.diagnostics
    assert w.code == "GYM055" and w.severity == "warning"
    assert w.hints == (
        "source: {type: gitlab, dataset_name: d, version: 1.0.0, artifact_fpath: t.jsonl}",
    )


def test_job_input_defaults_to_the_example_set_and_a_prepared_one_says_how(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sets = (
        "      - {name: bench, type: benchmark, jsonl_fpath: data/b.jsonl,"
        " prepare_script: benchmarks/b/prepare.py}\n"
        "      - {name: example, type: example, jsonl_fpath: data/example.jsonl}\n"
    )
    result = _run(tmp_path, sets, "+agent_name=agent")
    assert result.ok and result.plan["job"]["input"]["rows"] == 1
    result = _run(tmp_path, sets, "+input_jsonl_fpath=data/b.jsonl")
    (d,) = [d for d in result.diagnostics if d.severity == "error"]
    assert d.code == "GYM050" and "benchmark dataset 'bench'" in d.message
    assert d.hints[0].endswith("run gym eval prepare --config c.yaml   (NeMo Gym)"), d.hints


def test_no_example_set_names_the_others(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _run(
        tmp_path,
        "      - {name: t, type: train, jsonl_fpath: data/t.jsonl, license: MIT}\n",
        "+limit=5",
    )
    (d,) = [d for d in result.diagnostics if d.severity == "error"]
    assert d.code == "GYM050" and "has no example dataset" in d.message
    assert d.hints == ("its other datasets: +input_jsonl_fpath=data/t.jsonl",)


def test_dataset_agent_pins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _run(
        tmp_path,
        "      - {name: e, type: example, jsonl_fpath: data/example.jsonl}\n"
        "      - {name: b, type: benchmark, jsonl_fpath: data/b.jsonl, prepare_script: p.py,"
        " agent: agnet}\n",
    )
    (d,) = [d for d in result.diagnostics if d.severity == "error"]
    assert d.code == "GYM045" and "pins agent 'agnet'" in d.message
    assert "did you mean 'agent'?" in d.hints


def test_unknown_implementations_still_get_references_ports_and_datasets_checked(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    head = (
        "policy_model:\n  responses_api_models:\n    stand_in_model:\n      model: stand-in-1\n"
        "      port: 9000\n"
        "mystery:\n  resources_servers:\n    no_such_server:\n      port: 9000\n"
        "      judge_model_server: {type: responses_api_models, name: polcy_model}\n"
        "      helper: {type: responses_api_models, name: weathr}\n"
        "weathr_x:\n  resources_servers:\n    example_simple_weather: {domain: agent}\n"
        "agent:\n  responses_api_agents:\n    other_agent:\n"
        "      resources_server: {type: resources_servers, name: mystery}\n"
        "      model_server: {type: responses_api_models, name: mystery}\n"
        "      datasets:\n"
    )
    result = _run(
        tmp_path,
        "      - {name: e, type: example, jsonl_fpath: data/missing.jsonl}\n"
        "      - {name: t, type: train, jsonl_fpath: data/t.jsonl}\n",
        head=head,
    )
    by_code: dict[str, list] = {}
    for d in result.diagnostics:
        by_code.setdefault(d.code, []).append(d)
    assert len(by_code["GYM036"]) == 2  # both unknown implementations reported, neither dropped
    assert "did you mean 'policy_model'?" in by_code["GYM040"][0].hints
    assert len(by_code["GYM040"]) == 2 and "weathr_x" in by_code["GYM040"][1].hints[0]
    assert by_code["GYM041"][0].message.startswith("'agent'.model_server must refer to")
    assert by_code["GYM043"][0].message == "'mystery' and 'policy_model' both use port 9000"
    assert by_code["GYM054"][0].message.startswith("train dataset 't' needs a license")
    assert by_code["GYM050"][0].location.line == 21
