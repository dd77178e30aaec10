"""Golden tests: every folder under tests/cases/{negative,positive}/ is one gym-compile run.

A case folder holds config files, `args` (the command line after `gym-compile`, shell-quoted) and
`expected.txt` (what the user sees, stdout and stderr, with the case directory shown as <case>).
The case runs in a copy of its folder, so relative paths print as users type them.
Regenerate goldens with GYM_UPDATE_GOLDEN=1 pytest tests/test_diagnostics_cases.py, then read each diff.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from gym_compile.cli import main
from gym_compile.secretscan import looks_secret

CASES = Path(__file__).parent / "cases"
UPDATE = os.environ.get("GYM_UPDATE_GOLDEN") == "1"


def _cases(kind: str) -> list[Path]:
    return (
        sorted(p for p in (CASES / kind).iterdir() if p.is_dir()) if (CASES / kind).is_dir() else []
    )


def run_case(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    work = tmp_path / case.name
    shutil.copytree(case, work, ignore=shutil.ignore_patterns("expected.txt"))
    monkeypatch.chdir(work)
    for var in ("GITHUB_ACTIONS", "GYM_COMPILE_DEBUG", "GYM_CASE_UNSET", "NEMO_GYM_EXTRA_ROOTS"):
        monkeypatch.delenv(var, raising=False)
    args = shlex.split((work / "args").read_text(encoding="utf-8"))
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    output = result.output.replace(str(work), "<case>").replace(str(tmp_path), "<tmp>")
    assert not looks_secret(output), "a secret reached the output"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, output


def check_golden(case: Path, output: str) -> None:
    golden = case / "expected.txt"
    if UPDATE or not golden.exists():
        golden.write_text(output, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"wrote a new golden {golden}: review it, then run again")
    assert output == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", _cases("negative"), ids=lambda p: p.name)
def test_negative_case(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = run_case(case, tmp_path, monkeypatch)
    assert "Traceback" not in output and "internal error" not in output
    assert code == 1, output
    check_golden(case, output)


@pytest.mark.parametrize("case", _cases("positive"), ids=lambda p: p.name)
def test_positive_case(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = run_case(case, tmp_path, monkeypatch)
    assert "Traceback" not in output and "error[" not in output
    assert code == 0, output
    check_golden(case, output)


def test_there_are_cases() -> None:
    assert len(_cases("negative")) >= 25 and len(_cases("positive")) >= 3
