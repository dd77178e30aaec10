"""The one diagnostic type every stage reports with, and the errors that carry them."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]
CMDLINE = "<command line>"


@dataclass(frozen=True, order=True)
class Location:
    """Where a value was written: a file position, or an override on the command line."""

    file: str
    line: int = 0
    col: int = 0
    label: str = ""  # the override text, for CMDLINE locations
    span: int = field(default=0, compare=False)  # caret width; 0 = guess from the source line

    def __str__(self) -> str:
        if self.file == CMDLINE:
            return f"{CMDLINE}:{self.label}"
        if self.line:
            return f"{self.file}:{self.line}:{self.col}"
        return self.file


@dataclass(frozen=True)
class Related:
    """A second place a diagnostic points at (e.g. where a variable is defined)."""

    location: Location
    message: str


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    location: Location | None = None
    path: str = ""  # JSON path of the offending value, e.g. $.policy_model.responses_api_models
    severity: Severity = "error"
    hints: tuple[str, ...] = ()
    related: tuple[Related, ...] = field(default=())

    def sort_key(self) -> tuple:
        loc = self.location or Location("")
        return (loc.file == CMDLINE, loc.file, loc.line, loc.col, self.code, self.message)


class CompileError(Exception):
    """Raised by a stage that cannot go on; the facade turns it into a report, never a traceback."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__(f"{len(self.diagnostics)} problem(s)")


class FileMissing(CompileError):
    """A file that does not exist: callers that treat absence differently test the type, not text."""


def json_path(parts: Iterable[object]) -> str:
    """('a', 0, 'b') -> '$.a[0].b': the notation every diagnostic uses."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{part!r}]"
    return out


def parse_json_path(text: str) -> tuple[object, ...]:
    """'$.a[0].b' (as json_path writes it) -> ('a', 0, 'b'); also accepts 'a.b.0.c'."""
    key = text.strip().removeprefix("$").lstrip(".")
    out: list[object] = []
    for index, quoted, word in re.findall(r"\[(\d+)\]|\['([^']*)'\]|([^.\[\]]+)", key):
        if index:
            out.append(int(index))
        elif quoted:
            out.append(quoted)
        else:
            out.append(int(word) if word.isdigit() else word)
    return tuple(out)


def closest(word: str, candidates: Iterable[str]) -> list[str]:
    """Up to three candidates close enough to be what was meant (typos, not guesses)."""
    return difflib.get_close_matches(word, sorted(set(candidates)), n=3, cutoff=0.75)


def did_you_mean(word: str, candidates: Iterable[str]) -> tuple[str, ...]:
    """A hint naming the closest candidates, or nothing when none is close."""
    close = closest(word, candidates)
    if not close:
        return ()
    return ("did you mean " + " or ".join(f"'{c}'" for c in close) + "?",)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)


def unique(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Drops repeats (a file included by several linted files is checked once per includer)."""
    seen: set[tuple[object, ...]] = set()
    out: list[Diagnostic] = []
    for d in diagnostics:
        key = (d.code, d.location, d.path, d.message, d.severity)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
