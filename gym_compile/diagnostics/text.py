"""Renders diagnostics for people: gcc-style location, the source line with a caret, hints, notes."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import lru_cache

from gym_compile.diagnostics import CMDLINE, Diagnostic, Location
from gym_compile.secretscan import mask_line, mask_text

MAX_CARET = 60


@lru_cache(maxsize=64)
def _read_lines(path: str, mtime_ns: int) -> tuple[str, ...]:
    """Keyed by absolute path and mtime: the same relative name means another file after a chdir."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            return tuple(fh.read().splitlines())
    except OSError:
        return ()


def source_lines(file: str) -> tuple[str, ...]:
    try:
        path = os.path.abspath(file)
        return _read_lines(path, os.stat(path).st_mtime_ns)
    except OSError:
        return ()


def _guess_width(text: str, col: int) -> int:
    """Without a recorded span: a quoted scalar to its closing quote, else up to ': ', ' #' or the end."""
    rest = text[col - 1 :]
    if rest[:1] in ("'", '"'):
        end = rest.find(rest[0], 1)
        return end + 1 if end > 0 else len(rest)
    stops = r":\s|:$|\s#" + (r"|[,}\]]" if re.search(r"[{\[]", text[: col - 1]) else "")
    match = re.search(stops, rest)
    return len((rest[: match.start()] if match else rest).rstrip())


def snippet(loc: Location | None, indent: str = "") -> list[str]:
    """The line the location points at, secrets masked, with a caret under the offending part."""
    if loc is None:
        return []
    if loc.file == CMDLINE:
        label = mask_text(loc.label)
        return [
            f"{indent}      | {label}",
            f"{indent}      | " + "^" * max(1, min(len(label), MAX_CARET)),
        ]
    lines = source_lines(loc.file)
    if not loc.line or loc.line > len(lines):
        return []
    text = lines[loc.line - 1]
    col = max(loc.col, 1)
    width = loc.span or _guess_width(text, col)
    shown = mask_line(text)
    width = max(1, min(width, MAX_CARET, max(len(shown) - col + 1, 1)))
    return [f"{indent}{loc.line:5d} | {shown}", f"{indent}      | " + " " * (col - 1) + "^" * width]


def render_text(
    diagnostics: Iterable[Diagnostic], *, limit: int | None = None, snippets: bool = True
) -> str:
    """All diagnostics sorted by file and line; with a limit, the rest are counted."""
    items = sorted(diagnostics, key=Diagnostic.sort_key)
    shown = items if limit is None else items[:limit]
    out: list[str] = []
    for d in shown:
        out += render_one(d, snippets=snippets)
    if limit is not None and len(items) > limit:
        out.append(f"... and {len(items) - limit} more (use -v to show all)")
    out.append(summary(items))
    return "\n".join(out)


def render_one(d: Diagnostic, *, snippets: bool = True) -> list[str]:
    where = f"{d.location}: " if d.location else "gym-compile: "
    path = f" {d.path}:" if d.path else ""
    out = [mask_text(f"{where}{d.severity}[{d.code}]{path} {d.message}")]
    if snippets:
        out += snippet(d.location)
    out += [f"  hint: {mask_text(h)}" for h in d.hints]
    for r in d.related:
        out.append(mask_text(f"  note: {r.location}: {r.message}"))
        if snippets and r.location.file != CMDLINE:
            out += snippet(r.location, indent="  ")
    return out


def summary(diagnostics: list[Diagnostic]) -> str:
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    parts = [f"{errors} error{'s' * (errors != 1)}"]
    if warnings:
        parts.append(f"{warnings} warning{'s' * (warnings != 1)}")
    return ", ".join(parts)
