"""Renders diagnostics for machines: JSON for scripts, workflow commands for GitHub Actions annotations."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from gym_compile.diagnostics import CMDLINE, Diagnostic, Location
from gym_compile.diagnostics.text import summary
from gym_compile.secretscan import mask_text


def _loc_json(loc: Location | None) -> dict[str, Any]:
    if loc is None or loc.file == CMDLINE:
        return {
            "file": None,
            "line": None,
            "column": None,
            "override": mask_text(loc.label) if loc else None,
        }
    return {"file": loc.file, "line": loc.line or None, "column": loc.col or None, "override": None}


def to_json(diagnostics: Iterable[Diagnostic]) -> str:
    """A list sorted like the text output; the shape is documented in docs/lint.md."""
    out = []
    for d in sorted(diagnostics, key=Diagnostic.sort_key):
        out.append(
            {
                "code": d.code,
                "severity": d.severity,
                "message": mask_text(d.message),
                "path": d.path,
                **_loc_json(d.location),
                "location": mask_text(str(d.location)) if d.location else None,
                "hints": [mask_text(h) for h in d.hints],
                "related": [
                    {
                        **_loc_json(r.location),
                        "location": mask_text(str(r.location)),
                        "message": mask_text(r.message),
                    }
                    for r in d.related
                ],
            }
        )
    return json.dumps(out, indent=2)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_line(d: Diagnostic) -> str:
    """`::error file=F,line=L,col=C,title=GYMxxx::message`: GitHub shows it on the file's diff."""
    props: list[str] = []
    loc = d.location
    prefix = ""
    if loc is not None and loc.file == CMDLINE:
        prefix = f"{loc}: "
    elif loc is not None and loc.file:
        props.append(f"file={_escape_property(loc.file)}")
        if loc.line:
            props.append(f"line={loc.line}")
            if loc.col:
                props.append(f"col={loc.col}")
    props.append(f"title={_escape_property(d.code)}")
    body = prefix + (f"{d.path}: " if d.path else "") + d.message
    body += "".join(f"\nhint: {h}" for h in d.hints)
    body += "".join(f"\nnote: {r.location}: {r.message}" for r in d.related)
    kind = "error" if d.severity == "error" else "warning"
    return f"::{kind} {','.join(props)}::{_escape_data(mask_text(body))}"


def to_github(diagnostics: Iterable[Diagnostic]) -> str:
    items = sorted(diagnostics, key=Diagnostic.sort_key)
    return "\n".join([github_line(d) for d in items] + [summary(items)])
