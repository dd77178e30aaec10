"""Renderers: text (caret, notes, masking, limits), JSON, GitHub workflow commands, SARIF 2.1.0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from gym_compile.compiler import compile_config
from gym_compile.diagnostics import CMDLINE, Diagnostic, Location, Related
from gym_compile.diagnostics.ci import github_line, to_github, to_json
from gym_compile.diagnostics.sarif import to_sarif
from gym_compile.diagnostics.text import render_text

# The parts of the SARIF 2.1.0 schema (OASIS, sarif-schema-2.1.0.json) that gym-compile emits, written
# by hand from the spec: required members, enums, minimums, and no members the spec does not define.
_MESSAGE = {
    "type": "object",
    "properties": {"text": {"type": "string"}, "markdown": {"type": "string"}},
    "anyOf": [{"required": ["text"]}, {"required": ["id"]}],
}
_MULTIFORMAT = {
    "type": "object",
    "required": ["text"],
    "additionalProperties": False,
    "properties": {"text": {"type": "string"}, "markdown": {"type": "string"}},
}
_PHYSICAL = {
    "type": "object",
    "additionalProperties": False,
    "required": ["artifactLocation"],
    "properties": {
        "artifactLocation": {
            "type": "object",
            "additionalProperties": False,
            "required": ["uri"],
            "properties": {
                "uri": {"type": "string", "format": "uri-reference"},
                "uriBaseId": {"type": "string"},
            },
        },
        "region": {
            "type": "object",
            "additionalProperties": False,
            "required": ["startLine"],
            "properties": {
                "startLine": {"type": "integer", "minimum": 1},
                "startColumn": {"type": "integer", "minimum": 1},
                "endColumn": {"type": "integer", "minimum": 1},
            },
        },
    },
}
_LOCATION = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer", "minimum": -1},
        "physicalLocation": _PHYSICAL,
        "message": _MESSAGE,
    },
}
SARIF_MINIMAL = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["version", "runs"],
    "additionalProperties": False,
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"enum": ["2.1.0"]},
        "runs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["tool"],
                "additionalProperties": False,
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "additionalProperties": False,
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name"],
                                "additionalProperties": False,
                                "properties": {
                                    "name": {"type": "string"},
                                    "version": {"type": "string"},
                                    "semanticVersion": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id"],
                                            "additionalProperties": False,
                                            "properties": {
                                                "id": {"type": "string"},
                                                "name": {"type": "string"},
                                                "shortDescription": _MULTIFORMAT,
                                                "fullDescription": _MULTIFORMAT,
                                                "help": _MULTIFORMAT,
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "additionalProperties": False,
                                                    "properties": {
                                                        "level": {
                                                            "enum": [
                                                                "none",
                                                                "note",
                                                                "warning",
                                                                "error",
                                                            ]
                                                        }
                                                    },
                                                },
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    },
                    "originalUriBaseIds": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {"uri": {"type": "string", "format": "uri"}},
                        },
                    },
                    "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
                    "invocations": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["executionSuccessful"],
                            "properties": {
                                "executionSuccessful": {"type": "boolean"},
                                "exitCode": {"type": "integer"},
                            },
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["message"],
                            "additionalProperties": False,
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": -1},
                                "level": {"enum": ["none", "note", "warning", "error"]},
                                "message": _MESSAGE,
                                "locations": {"type": "array", "items": _LOCATION},
                                "relatedLocations": {"type": "array", "items": _LOCATION},
                            },
                        },
                    },
                },
            },
        },
    },
}


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "env.yaml").write_text("policy_base_url: api.openai.com/v1\n")
    path = tmp_path / "model.yaml"
    path.write_text(
        "policy_model:\n"
        "  responses_api_models:\n"
        "    openai_model:\n"
        "      base_url: ${policy_base_url}\n"
        "      api_key: sk-abcdefghijklmnopqrstuvwxyz012345\n"
        '      model: "gpt-${size}-mini"\n'
        "      max_concurent_requests: 4\n"
    )
    return path


def _diagnostics(config: Path, *overrides: str) -> list[Diagnostic]:
    return compile_config([Path(config.name)], list(overrides)).diagnostics


def test_text_points_inside_strings_and_at_both_sites_of_an_interpolated_value(config):
    text = render_text(_diagnostics(config))
    assert "model.yaml:6:19: error[GYM020]" in text  # the ${size} inside the quoted string
    assert "      |                   ^^^^^^^" in text
    assert (
        "model.yaml:4:17: error[GYM034]" in text
        and "note: env.yaml:1:18: value of 'policy_base_url'" in text
    )
    assert "sk-abcdefghij" not in text and "api_key: sk-***" in text  # secrets never reach a log


def test_text_is_sorted_and_limited(config):
    diagnostics = _diagnostics(config, "+zzz=1")
    text = render_text(diagnostics, limit=2)
    heads = [line for line in text.splitlines() if "[GYM" in line]
    assert len(heads) == 2 and heads[0].startswith("model.yaml:4:")
    assert f"... and {len(diagnostics) - 2} more (use -v to show all)" in text
    assert (
        render_text(diagnostics)
        .splitlines()[-1]
        .startswith(f"{len(diagnostics) - 1} errors, 1 warning")
    )


def test_source_lines_follow_the_working_directory(tmp_path, monkeypatch):
    """The same relative name in two directories is two files (the line cache is keyed by absolute path)."""
    for name, line in (("a", "x: ${one}"), ("b", "x: ${two}")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "c.yaml").write_text(line + "\n")
        monkeypatch.chdir(tmp_path / name)
        assert line in render_text(compile_config([Path("c.yaml")], []).diagnostics)


def test_json_is_structured(config):
    items = json.loads(to_json(_diagnostics(config, "+zzz=1")))
    first = items[0]
    assert set(first) == {
        "code",
        "severity",
        "message",
        "path",
        "file",
        "line",
        "column",
        "override",
        "location",
        "hints",
        "related",
    }
    cmdline = [i for i in items if i["override"]]
    assert cmdline and cmdline[0]["file"] is None and cmdline[0]["override"] == "+zzz=1"
    assert "sk-abcdefghij" not in json.dumps(items)


def test_github_workflow_commands_escape_their_data():
    d = Diagnostic(
        "GYM030",
        "unknown key 'a,b'",
        Location("dir/x,y.yaml", 3, 7),
        "$.a",
        hints=("100% sure\nreally",),
    )
    assert github_line(d) == (
        "::error file=dir/x%2Cy.yaml,line=3,col=7,title=GYM030::$.a: unknown key 'a,b'"
        "%0Ahint: 100%25 sure%0Areally"
    )
    w = Diagnostic("GYM011", "not used", Location(CMDLINE, label="+x=1"), severity="warning")
    assert github_line(w) == "::warning title=GYM011::<command line>:+x=1: not used"
    assert to_github([]).splitlines() == ["0 errors"]


def test_sarif_is_valid_and_points_at_files(config):
    diagnostics = _diagnostics(config, "+zzz=1") + [
        Diagnostic("GYM001", "whole file", Location("odd name.yaml")),
        Diagnostic(
            "GYM043",
            "clash",
            Location("a.yaml", 2, 3),
            related=(Related(Location("b.yaml", 4, 5), "here"),),
        ),
    ]
    log = to_sarif(diagnostics, exit_code=1)
    validator = Draft7Validator(SARIF_MINIMAL, format_checker=Draft7Validator.FORMAT_CHECKER)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(log)]
    assert not errors, errors
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    by_code = {r["ruleId"]: r for r in run["results"]}
    region = by_code["GYM020"]["locations"][0]["physicalLocation"]
    assert region["artifactLocation"] == {"uri": "model.yaml", "uriBaseId": "%SRCROOT%"}
    assert region["region"] == {"startLine": 6, "startColumn": 19, "endColumn": 26}
    assert by_code["GYM060"]["level"] == "warning"
    assert "locations" not in by_code["GYM011"]  # a command-line override has no file
    assert by_code["GYM001"]["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "odd%20name.yaml", "uriBaseId": "%SRCROOT%"}
    }
    assert by_code["GYM043"]["relatedLocations"][0]["message"]["text"] == "here"
    assert "sk-abcdefghij" not in json.dumps(log)
