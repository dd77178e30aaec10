"""A plan is run exactly as compiled, or refused saying what differs; sources that changed are named.

Decided: an input file changed since compile is refused (the rows were checked and counted at
compile time); a config file or env.yaml changed since compile is a warning naming the file (the
plan already holds every value they gave; env.yaml is where secrets are read now).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from gym_run.errors import EXIT_BAD_PLAN, PlanError
from gym_run.plan import load_plan

from gym_compile.canonical import content_hash
from gym_compile.compiler import compile_config
from gym_compile.options import Options
from gym_compile.plan import write_plan
from tests.conftest import EXAMPLES


@pytest.fixture
def compiled(tmp_path: Path) -> Path:
    """simple_weather + the stand-in + an env.yaml, compiled in a scratch copy."""
    work = tmp_path / "work"
    shutil.copytree(EXAMPLES / "simple_weather", work)
    (work / "env.yaml").write_text("shared_note: hello\n")
    configs = [work / "simple_weather.yaml", work / "stand_in_model.yaml"]
    result = compile_config(
        configs, [f"+output_jsonl_fpath={tmp_path / 'out.jsonl'}"], Options(env=work / "env.yaml")
    )
    assert result.plan is not None, result.diagnostics
    write_plan(result.plan, tmp_path / "plan.json")
    return tmp_path / "plan.json"


def _rewrite(path: Path, change) -> None:
    plan = json.loads(path.read_text())
    change(plan)
    path.write_text(json.dumps(plan))


def test_an_unchanged_plan_loads_without_notes(compiled: Path) -> None:
    notes: list[str] = []
    assert load_plan(compiled, warn=notes.append)["job"]["input"]["rows"] == 5
    assert notes == []


def test_a_changed_config_file_is_named_in_a_warning_and_the_plan_still_runs(
    compiled: Path, capsys
) -> None:
    config = compiled.parent / "work" / "stand_in_model.yaml"
    config.write_text(config.read_text() + "# edited\n")
    plan = load_plan(compiled)
    assert plan["servers"]["policy_model"]["implementation"] == "stand_in_model"
    err = capsys.readouterr().err
    assert f"gym-run: warning: config file {config} changed since compile (sha256 " in err
    assert "recompile to pick up the change" in err


def test_a_changed_env_file_and_a_deleted_config_are_warnings(compiled: Path) -> None:
    work = compiled.parent / "work"
    (work / "env.yaml").write_text("shared_note: changed\n")
    (work / "simple_weather.yaml").unlink()
    notes: list[str] = []
    load_plan(compiled, warn=notes.append)
    assert any(
        f"env file {work / 'env.yaml'} changed since compile" in n
        and "secrets are read from it now" in n
        for n in notes
    )
    assert any(
        f"config file {work / 'simple_weather.yaml'} cannot be read any more" in n for n in notes
    )


def test_a_changed_input_is_refused_naming_the_file_and_both_hashes(compiled: Path) -> None:
    data = compiled.parent / "work" / "data" / "example.jsonl"
    before = json.loads(compiled.read_text())["job"]["input"]["sha256"]
    data.write_text(data.read_text() + data.read_text().splitlines()[0] + "\n")
    with pytest.raises(PlanError) as caught:
        load_plan(compiled)
    message = caught.value.message
    assert (
        f"input {data} changed since compile (sha256 {before[:12]}… -> " in message
        and "recompile" in message
    )
    assert caught.value.exit_code == EXIT_BAD_PLAN


def test_an_edited_plan_is_refused(compiled: Path) -> None:
    _rewrite(compiled, lambda p: p["job"].update(concurrency=999))
    with pytest.raises(PlanError, match="was edited after compiling; recompile"):
        load_plan(compiled)


def test_a_resealed_plan_with_another_secret_source_still_loads_only_if_consistent(
    compiled: Path,
) -> None:
    """Hash and schema together: a hand-made plan must still be a valid plan."""

    def change(plan):
        plan["secrets"] = {"x": {"source": "nowhere", "key": "x"}}
        plan["content_hash"] = content_hash(plan)

    _rewrite(compiled, change)
    with pytest.raises(PlanError, match=r"not a valid gym-compile plan"):
        load_plan(compiled)


@pytest.mark.parametrize(
    ("version", "words"),
    [
        (2, "made by a newer gym-compile (format 2); upgrade gym-run"),
        (99, "made by a newer gym-compile (format 99)"),
        (0, "older than the format 1 this gym-run reads; recompile"),
        ("1", "no integer format_version"),
        (None, "no integer format_version"),
    ],
)
def test_format_versions_get_a_clear_message(compiled: Path, version, words: str) -> None:
    def change(plan):
        plan["format_version"] = version
        plan["content_hash"] = content_hash(plan)

    _rewrite(compiled, change)
    with pytest.raises(PlanError) as caught:
        load_plan(compiled)
    assert words in caught.value.message
