"""A YAML syntax error, as PyYAML reports it, -> one GYM001 diagnostic that points where a person
should look (the open construct rather than the end of the file) with a hint for the usual causes
(a tab in the indentation, an unquoted ${...} inside a flow collection, a second document)."""

from __future__ import annotations

import re

import yaml

from gym_compile.diagnostics import Diagnostic, Location


def syntax_diagnostic(exc: yaml.MarkedYAMLError, file: str, text: str) -> Diagnostic:
    lines = text.splitlines()
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "syntax error"
    context = exc.context
    if (
        mark is not None
        and mark.line >= len(lines)
        and exc.context_mark is not None
        and exc.context_mark.line < len(lines)
    ):
        mark = (
            exc.context_mark
        )  # the end of the file says little; where the open construct starts says more
        context = f"{context} that starts here" if context else None
    loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
    if mark is not None and mark.line >= len(lines) and lines:
        loc = Location(file, len(lines), len(lines[-1]) + 1, span=1)
        context = f"{context}, at the end of the file" if context else "at the end of the file"
    hints: tuple[str, ...] = ()
    offending = lines[mark.line] if mark and mark.line < len(lines) else ""
    tab = offending.find("\t", 0, (mark.column + 1) if mark else 0)
    if tab >= 0:
        problem = "a tab character is used for indentation"
        hints = ("YAML indents with spaces only: replace the tab with spaces",)
        loc = Location(file, loc.line, tab + 1, span=1)
    else:
        if context:
            problem = f"{problem} ({context})"
        if "${" in offending and re.search(r"[{\[][^}\]]*\$\{", offending):
            hints = ('inside {...} or [...] a ${...} must be quoted: name: "${var}"',)
        elif "another document" in problem:
            hints = (
                "a config file is one YAML document: remove the second '---', or split the file",
            )
    return Diagnostic("GYM001", f"YAML syntax error: {problem}", loc, hints=hints)
