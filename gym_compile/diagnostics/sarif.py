"""Renders diagnostics as a SARIF 2.1.0 log, for code-scanning dashboards (GitHub, Azure DevOps, IDEs)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from gym_compile import __version__
from gym_compile.diagnostics import CMDLINE, Diagnostic, Location
from gym_compile.diagnostics.codes import CATALOGUE, Code
from gym_compile.secretscan import mask_text

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SRCROOT = "%SRCROOT%"


def _rule(code: Code) -> dict[str, Any]:
    help_text = f"{code.explanation}\n\nExample fix:\n{code.fix}"
    return {
        "id": code.code,
        "name": code.name,
        "shortDescription": {"text": code.title},
        "fullDescription": {"text": code.explanation},
        "help": {
            "text": help_text,
            "markdown": f"{code.explanation}\n\nExample fix:\n\n```yaml\n{code.fix}\n```",
        },
        "defaultConfiguration": {"level": code.severity},
    }


def _uri(file: str) -> tuple[str, str | None]:
    """Relative paths stay relative to %SRCROOT% (the working directory), as code scanning wants."""
    path = PurePath(file)
    if path.is_absolute():
        return Path(file).as_uri(), None
    return quote(path.as_posix()), SRCROOT


def _physical(loc: Location) -> dict[str, Any]:
    uri, base = _uri(loc.file)
    artifact: dict[str, Any] = {"uri": uri}
    if base:
        artifact["uriBaseId"] = base
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if loc.line:
        region: dict[str, Any] = {"startLine": loc.line, "startColumn": max(loc.col, 1)}
        if loc.span:
            region["endColumn"] = max(loc.col, 1) + loc.span
        physical["region"] = region
    return physical


def _message(d: Diagnostic) -> str:
    text = f"{d.location}: " if d.location and d.location.file == CMDLINE else ""
    text += (f"{d.path}: " if d.path else "") + d.message
    text += "".join(f"\nhint: {h}" for h in d.hints)
    return mask_text(text)


def _result(d: Diagnostic, index: dict[str, int]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": d.code,
        "level": "error" if d.severity == "error" else "warning",
        "message": {"text": _message(d)},
    }
    if d.code in index:
        result["ruleIndex"] = index[d.code]
    if d.location is not None and d.location.file and d.location.file != CMDLINE:
        result["locations"] = [{"physicalLocation": _physical(d.location)}]
    related = [r for r in d.related if r.location.file and r.location.file != CMDLINE]
    if related:
        result["relatedLocations"] = [
            {
                "id": i,
                "physicalLocation": _physical(r.location),
                "message": {"text": mask_text(r.message)},
            }
            for i, r in enumerate(related)
        ]
    return result


def to_sarif(diagnostics: Iterable[Diagnostic], *, exit_code: int = 0) -> dict[str, Any]:
    """One run; every catalogue code is a rule, so rule indices are the same in every log."""
    codes = list(CATALOGUE.values())
    index = {c.code: i for i, c in enumerate(codes)}
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "gym-compile",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [_rule(c) for c in codes],
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": Path.cwd().as_uri() + "/"}},
                "columnKind": "unicodeCodePoints",
                "invocations": [{"executionSuccessful": True, "exitCode": exit_code}],
                "results": [
                    _result(d, index) for d in sorted(diagnostics, key=Diagnostic.sort_key)
                ],
            }
        ],
    }


def to_sarif_text(diagnostics: Iterable[Diagnostic], *, exit_code: int = 0) -> str:
    return json.dumps(to_sarif(diagnostics, exit_code=exit_code), indent=2)
