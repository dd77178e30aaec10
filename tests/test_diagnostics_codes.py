"""The code catalogue is complete and the one source of explain-code, docs/diagnostics.md and SARIF rules."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from gym_compile.cli import main
from gym_compile.diagnostics import codes
from gym_compile.diagnostics.sarif import to_sarif

REPO = Path(__file__).resolve().parent.parent
CODE = re.compile(r"\bGYM\d{3}\b")


def _codes_used_in_the_compiler() -> set[str]:
    used: set[str] = set()
    for path in (REPO / "gym_compile").glob("**/*.py"):
        if path.name != "codes.py":
            used |= set(CODE.findall(path.read_text(encoding="utf-8")))
    return used


def test_every_code_used_is_documented_and_every_documented_code_is_used():
    used = _codes_used_in_the_compiler()
    assert used - set(codes.CATALOGUE) == set(), (
        "codes used but missing from gym_compile/diagnostics/codes.py"
    )
    assert set(codes.CATALOGUE) - used == set(), "codes documented but never reported"


def test_catalogue_entries_are_complete_and_names_unique():
    names = [c.name for c in codes.CATALOGUE.values()]
    assert len(names) == len(set(names))
    for c in codes.CATALOGUE.values():
        assert re.fullmatch(r"GYM\d{3}", c.code)
        assert re.fullmatch(r"[a-z0-9-]+", c.name)
        assert c.title and c.explanation.endswith(".") and c.fix
        assert c.severity in ("error", "warning")


def test_docs_page_is_generated_from_the_catalogue():
    page = (REPO / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    assert page == codes.markdown(), (
        "regenerate: gym-compile explain-code --markdown > docs/diagnostics.md"
    )


def test_sarif_rules_come_from_the_catalogue():
    rules = to_sarif([])["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(codes.CATALOGUE)
    assert all(r["help"]["text"].startswith(codes.CATALOGUE[r["id"]].explanation) for r in rules)


def test_explain_code_prints_the_entry_and_accepts_short_forms():
    runner = CliRunner()
    for arg in ("GYM020", "gym20", "20"):
        result = runner.invoke(main, ["explain-code", arg])
        assert result.exit_code == 0
        assert result.output.startswith(
            "GYM020 (undefined-variable, error): Undefined interpolation variable"
        )
        assert "Example fix:" in result.output


def test_explain_code_lists_all_codes_without_an_argument():
    result = CliRunner().invoke(main, ["explain-code"])
    assert result.exit_code == 0
    assert len(result.output.splitlines()) == len(codes.CATALOGUE)


def test_unknown_code_is_a_usage_error_with_a_suggestion():
    result = CliRunner().invoke(main, ["explain-code", "GYM0200"])
    assert result.exit_code == 2
    assert "unknown diagnostic code" in result.output
    result = CliRunner().invoke(main, ["explain-code", "GYM02"])
    assert result.exit_code == 0 and "GYM002" in result.output
