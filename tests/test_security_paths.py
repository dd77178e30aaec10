"""Every path a config names resolves, and a bad one is a located GYM003/GYM050.

Paths are found where NeMo Gym finds them (its roots: the working directory, the NeMo Gym tree),
then against the file that names them (tests/test_nemo_paths.py has the NeMo Gym side); the plan
holds absolute paths, so it runs the same from any directory.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from gym_compile.compiler import compile_config
from gym_compile.options import Options
from tests.conftest import EXAMPLES

AS_ROOT = os.geteuid() == 0
JUDGE = """judge_rs:
  resources_servers:
    equivalence_llm_judge:
      judge_model_server: {type: responses_api_models, name: policy_model}
      judge_prompt_template_fpath: PATH
"""


@pytest.fixture
def work(tmp_path: Path, monkeypatch) -> Path:
    shutil.copytree(EXAMPLES / "simple_weather", tmp_path / "cfg")
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _compile(work: Path, *extra: str, configs: tuple[str, ...] = ()):
    files = [
        work / "cfg/simple_weather.yaml",
        work / "cfg/stand_in_model.yaml",
        *(work / c for c in configs),
    ]
    return compile_config(files, list(extra), Options(env=None, default_env=False))


def _only(result, code: str):
    found = [d for d in result.diagnostics if d.severity == "error"]
    assert result.plan is None and [d.code for d in found] == [code], [
        str(d) for d in result.diagnostics
    ]
    return found[0]


def test_relative_paths_resolve_against_the_file_that_names_them(work: Path, monkeypatch) -> None:
    (work / "cfg" / "judge.j2").write_text("Q {{ question }} A {{ generated_answer }}\n")
    (work / "judge.yaml").write_text(JUDGE.replace("PATH", "cfg/judge.j2"))
    monkeypatch.chdir(work / "adir")  # somewhere else: the config's own directory decides
    result = _compile(work, "+agent_name=simple_weather_simple_agent", configs=("judge.yaml",))
    assert result.plan is not None, [str(d) for d in result.diagnostics]
    config = result.plan["servers"]["judge_rs"]["config"]
    assert config["judge_prompt_template_fpath"] == str(work / "cfg" / "judge.j2")
    assert result.plan["job"]["input"]["path"] == str(work / "cfg" / "data" / "example.jsonl")


def test_a_packaged_template_name_is_kept_for_the_runtime(work: Path) -> None:
    (work / "judge.yaml").write_text(JUDGE.replace("PATH", "judge_equivalence.j2"))
    result = _compile(work, configs=("judge.yaml",))
    assert result.plan is not None
    assert (
        result.plan["servers"]["judge_rs"]["config"]["judge_prompt_template_fpath"]
        == "judge_equivalence.j2"
    )


@pytest.mark.parametrize(
    ("target", "words"), [("nope.j2", "does not exist"), ("adir", "is a directory")]
)
def test_a_missing_or_directory_judge_template_is_located(
    work: Path, target: str, words: str
) -> None:
    (work / "judge.yaml").write_text(JUDGE.replace("PATH", target))
    d = _only(_compile(work, configs=("judge.yaml",)), "GYM003")
    assert words in d.message and str(work / target) not in d.message  # shown as the user wrote it
    assert (d.location.file, d.location.line, d.location.col) == ("judge.yaml", 5, 36)


def test_an_inline_or_file_template_field_is_checked_when_it_names_a_file(work: Path) -> None:
    (work / "judge.yaml").write_text(
        JUDGE.replace(
            "judge_prompt_template_fpath: PATH", "judge_prompt_template: prompts/missing.txt"
        )
    )
    d = _only(_compile(work, configs=("judge.yaml",)), "GYM003")
    assert "prompts/missing.txt does not exist" in d.message and d.location.line == 5


@pytest.mark.parametrize(
    ("include", "words"), [("nope.yaml", "file not found"), ("adir", "is a directory")]
)
def test_a_bad_include_is_located_where_config_paths_names_it(
    work: Path, include: str, words: str
) -> None:
    (work / "inc.yaml").write_text(f"config_paths: [{include}]\n")
    d = _only(_compile(work, configs=("inc.yaml",)), "GYM003")
    assert words in d.message and (d.location.file, d.location.line, d.location.col) == (
        "inc.yaml",
        1,
        16,
    )


@pytest.mark.parametrize(
    ("value", "words"), [("nope.jsonl", "does not exist"), ("adir", "is a directory")]
)
def test_a_bad_input_path_is_located(work: Path, value: str, words: str) -> None:
    d = _only(_compile(work, f"+input_jsonl_fpath={value}"), "GYM050")
    assert words in d.message and d.location.file == "<command line>"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("adir", "is a directory"),
        ("afile/rollouts.jsonl", "afile is a file, not a directory"),
        ("afile/deeper/rollouts.jsonl", "afile is a file, not a directory"),
    ],
)
def test_an_output_path_that_cannot_be_created_is_located(
    work: Path, value: str, words: str
) -> None:
    d = _only(_compile(work, f"+output_jsonl_fpath={value}"), "GYM003")
    assert words in d.message and d.path == "$.output_jsonl_fpath"


def test_an_output_path_in_a_config_file_resolves_against_it(work: Path) -> None:
    (work / "out.yaml").write_text("output_jsonl_fpath: results/r.jsonl\n")
    result = _compile(work, configs=("out.yaml",))
    assert result.plan is not None and result.plan["job"]["output"]["path"] == str(
        work / "results/r.jsonl"
    )


@pytest.mark.skipif(
    AS_ROOT, reason="root reads and writes files whatever their mode, so chmod 000 proves nothing"
)
def test_unreadable_files_and_unwritable_output_dirs_are_located(work: Path) -> None:
    locked = work / "locked"
    locked.mkdir()
    (work / "cfg" / "secret.j2").write_text("x")
    (work / "cfg" / "secret.j2").chmod(0)
    (work / "cfg" / "hidden.yaml").write_text("a: 1\n")
    (work / "cfg" / "hidden.yaml").chmod(0)
    locked.chmod(0o500)
    try:
        (work / "judge.yaml").write_text(JUDGE.replace("PATH", "cfg/secret.j2"))
        d = _only(_compile(work, configs=("judge.yaml",)), "GYM003")
        assert (
            d.message == "file cfg/secret.j2 is not readable (permission denied)"
            and d.location.line == 5
        )
        (work / "inc.yaml").write_text("config_paths: [cfg/hidden.yaml]\n")
        d = _only(_compile(work, configs=("inc.yaml",)), "GYM003")
        assert "not readable (permission denied)" in d.message and d.location.file == "inc.yaml"
        d = _only(_compile(work, "+output_jsonl_fpath=locked/r.jsonl"), "GYM003")
        assert d.message == "cannot create locked/r.jsonl: locked is not writable"
        (work / "cfg" / "data" / "example.jsonl").chmod(0)
        d = _only(_compile(work), "GYM050")
        assert "cannot read input file" in d.message and "Permission denied" in d.message
    finally:
        locked.chmod(0o700)


def test_a_plan_records_absolute_paths_so_it_runs_from_anywhere(work: Path, tmp_path: Path) -> None:
    result = _compile(work, "+output_jsonl_fpath=out/r.jsonl")
    assert result.plan is not None
    text = json.dumps(result.plan)
    for source in result.plan["sources"]:
        assert os.path.isabs(source["path"])
    assert str(tmp_path / "out" / "r.jsonl") in text
