"""Hostile YAML gets one located diagnostic, fast, under libyaml's C loader and PyYAML's pure one.

Before these limits, 25,000 nested "[" crashed the process in the C composer (a segfault) and a
few hundred raised RecursionError in the pure-Python one; `!!int abc` and 5,000-digit numbers
raised ValueError from deep inside the constructor.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gym_compile import loader
from gym_compile.cli import main
from gym_compile.diagnostics import CompileError
from gym_compile.loader import MAX_DEPTH, MAX_FILE_BYTES, load_yaml, parse_yaml

LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9)
)

# (name, text, code, line, col, words in the message)
HOSTILE = [
    ("billion laughs", LAUGHS, "GYM007", None, None, "once aliases are expanded"),
    (
        "100,000 nested [",
        "a: " + "[" * 100_000 + "]" * 100_000,
        "GYM007",
        1,
        3 + MAX_DEPTH,
        "nested deeper",
    ),
    ("100,000 unclosed [", "a: " + "[" * 100_000, "GYM007", 1, 3 + MAX_DEPTH, "nested deeper"),
    (
        "100,000 nested {",
        "a: " + "{b: " * 100_000 + "1" + "}" * 100_000,
        "GYM007",
        1,
        None,
        "nested deeper",
    ),
    (
        "30,000 nested block sequences",
        "a:\n" + "- " * 30_000 + "x\n",
        "GYM007",
        2,
        None,
        "nested deeper",
    ),
    (
        "600 indented mappings",
        "".join(" " * i + f"k{i}:\n" for i in range(600)),
        "GYM007",
        MAX_DEPTH + 1,
        None,
        "nested deeper",
    ),
    ("alias cycle", "a: &x [1, *x]\n", "GYM007", 1, 4, "cycle"),
    ("merge cycle", "a: &x\n  <<: *x\n", "GYM007", 1, 4, "cycle"),
    (
        "python tag",
        "a: !!python/object/apply:os.system ['echo hi']\n",
        "GYM006",
        1,
        4,
        "unsupported YAML tag",
    ),
    (
        "python tag on a key",
        "!!python/name:os.system : 1\n",
        "GYM006",
        1,
        1,
        "unsupported YAML tag",
    ),
    ("custom tag", "a: !include other.yaml\n", "GYM006", 1, 4, "unsupported YAML tag"),
    ("binary tag on a key", "!!binary a: 1\n", "GYM006", 1, 1, "unsupported YAML tag"),
    ("int tag on text", "a: !!int abc\n", "GYM006", 1, 4, "the value is not a valid !!int"),
    ("bool tag on text", "a: !!bool maybe\n", "GYM006", 1, 4, "not a valid !!bool"),
    ("merge tag as a value", "a: !!merge x\n", "GYM006", 1, 4, "not a valid !!merge"),
    ("5,000-digit number", "a: " + "1" * 5000 + "\n", "GYM006", 1, 4, "not a valid !!int"),
    ("NUL byte", "a: 1\nb: x\x00y\n", "GYM001", 2, 5, "control character"),
    ("two documents", "a: 1\n---\nb: 2\n", "GYM001", 2, 1, "another document"),
    ("document markers twice", "---\na: 1\n---\n", "GYM001", 3, 1, "another document"),
    ("a list", "- 1\n- 2\n", "GYM005", 1, 1, "top level is a list"),
    ("a scalar", "hello\n", "GYM005", 1, 1, "top level is a str"),
    ("duplicate key", "a: 1\na: 2\n", "GYM002", 2, 1, "duplicate key"),
    ("unclosed flow", "a: [1, 2\n", "GYM001", 1, 4, "flow sequence"),
    ("tab indentation", "a:\n\tb: 1\n", "GYM001", 2, 1, "tab"),
]


@pytest.fixture(params=["C", "pure"])
def which_loader(request, monkeypatch):
    """Both composers: libyaml's (when PyYAML was built with it) and PyYAML's own."""
    if request.param == "C":
        if not hasattr(yaml, "CSafeLoader"):
            pytest.skip("PyYAML was built without libyaml")
        monkeypatch.setattr(loader, "_Loader", yaml.CSafeLoader)
    else:
        monkeypatch.setattr(loader, "_Loader", yaml.SafeLoader)
    return request.param


@pytest.mark.parametrize(
    ("name", "text", "code", "line", "col", "words"), HOSTILE, ids=[h[0] for h in HOSTILE]
)
def test_hostile_yaml_gets_one_located_diagnostic(which_loader, name, text, code, line, col, words):
    started = time.monotonic()
    with pytest.raises(CompileError) as caught:
        parse_yaml(text, file="hostile.yaml", allow_empty=False)
    assert time.monotonic() - started < 10, f"{name} took too long"
    first = caught.value.diagnostics[0]
    assert first.code == code, first
    assert words in first.message, first.message
    assert first.location is not None and first.location.file == "hostile.yaml"
    assert first.location.line == (line or first.location.line) and first.location.line >= 1
    if col is not None:
        assert first.location.col == col, first.location


def test_a_bom_is_ignored_and_the_file_reads_normally(which_loader, tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert load_yaml(path).data == {"a": 1}


def test_empty_file_is_an_empty_mapping_or_a_diagnostic(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_bytes(b"")
    assert load_yaml(path).data == {}
    with pytest.raises(CompileError) as caught:
        load_yaml(path, allow_empty=False)
    assert (
        caught.value.diagnostics[0].code == "GYM005"
        and "empty" in caught.value.diagnostics[0].message
    )


def test_non_utf8_is_located_at_the_first_bad_byte(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("a: 1\nname: caf\xe9\n".encode("latin-1"))
    with pytest.raises(CompileError) as caught:
        load_yaml(path)
    first = caught.value.diagnostics[0]
    assert first.code == "GYM001" and "not UTF-8" in first.message and "0xe9" in first.message
    assert (first.location.line, first.location.col) == (2, 10)


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: the limit is checked before a byte is read
    with pytest.raises(CompileError) as caught:
        load_yaml(path)
    first = caught.value.diagnostics[0]
    assert first.code == "GYM007" and f"{MAX_FILE_BYTES}-byte limit" in first.message


def test_a_deep_file_through_the_cli_is_a_diagnostic_not_a_crash(tmp_path: Path, monkeypatch):
    """In a subprocess before the fix this was exit -11 (SIGSEGV); here the whole CLI path runs."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deep.yaml").write_text("a: " + "[" * 100_000 + "]" * 100_000)
    (tmp_path / "laughs.yaml").write_text(LAUGHS)
    (tmp_path / "two.yaml").write_text("a: 1\n---\nb: 2\n")
    result = CliRunner().invoke(main, ["deep.yaml", "laughs.yaml", "two.yaml", "-o", "plan.json"])
    assert result.exit_code == 1, result.output
    assert "deep.yaml:1:203: error[GYM007]" in result.output
    assert "laughs.yaml:1:1: error[GYM007]" in result.output
    assert "two.yaml:2:1: error[GYM001]" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "plan.json").exists()


LADDER = (
    "[&a [1,1,1,1,1,1,1,1,1,1], "
    + ", ".join(f"&{b} [{','.join(['*' + a] * 10)}]" for a, b in zip("abcde", "bcdef", strict=True))
    + ", [*f,*f,*f,*f,*f]]"
)


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("+x=" + "[" * 100_000, "nested deeper than 200 levels"),
        ("+x=!!int abc", "the value is not a valid !!int"),
        ("+x=!!float", "the value is not a valid !!float"),
        ("+x=!!python/name:os.system", "unsupported YAML tag"),
        ("+x=" + LADDER, "more than 1000000 values once aliases are expanded"),
    ],
)
def test_hostile_override_values_are_located_gym010(override: str, words: str) -> None:
    """Override values went through yaml.safe_load: RecursionError, ValueError, IndexError escaped."""
    from gym_compile.compiler import compile_config
    from gym_compile.options import Options

    result = compile_config([], [override], Options(env=None, default_env=False))
    found = [d for d in result.diagnostics if d.code == "GYM010"]
    assert found and words in found[0].message and found[0].location.file == "<command line>", (
        result.diagnostics
    )


@pytest.mark.parametrize("default", ["[" * 3000 + "]" * 3000, "!!int abc", "!!float"])
def test_hostile_interpolation_defaults_stay_text(default: str) -> None:
    from gym_compile.compiler import compile_config
    from gym_compile.options import Options

    result = compile_config(
        [], [f"+x=${{oc.env:GYM_SURELY_UNSET_VAR,{default}}}"], Options(env=None, default_env=False)
    )
    assert all(d.code.startswith("GYM0") for d in result.diagnostics)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "k: " + "[" * 100_000,
            "cannot be used at line 1 (GYM007: document nested deeper than 200 levels)",
        ),
        (
            "k: !!python/object/apply:os.system ['x']\n",
            "cannot be used at line 1 (GYM006: unsupported YAML tag",
        ),
        (
            "k: !!int secret-value-999\n",
            "cannot be used at line 1 (GYM006: the value is not a valid !!int)",
        ),
        (
            "k: sk-secret-value-123456\nk: again-secret-value\n",
            "cannot be used at line 2 (GYM002: duplicate key 'k')",
        ),
    ],
)
def test_a_hostile_env_file_at_run_time_is_a_secret_error_quoting_no_value(
    tmp_path, text: str, words: str
) -> None:
    """gym-run reads env.yaml with the compiler's loader (it used PyYAML's C composer directly)."""
    from gym_run.errors import SecretError
    from gym_run.secrets import resolve_secrets

    env = tmp_path / "env.yaml"
    env.write_text(text)
    plan = {
        "servers": {"m": {"config": {"api_key": {"$secret": "k"}}}},
        "env_file": str(env),
        "secrets": {"k": {"source": "env_file", "key": "k"}},
    }
    with pytest.raises(SecretError) as caught:
        resolve_secrets(plan, environ={})
    assert words in caught.value.message and "secret-value" not in caught.value.message
