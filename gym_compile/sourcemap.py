"""Where a value of a config was written (a path tuple -> the location of its key and value) and
how a file is named in a message: what every stage uses to point at the line that is wrong."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gym_compile.diagnostics import Location, printable

Path_ = tuple[Any, ...]
ABSENT: Any = object()  # what value_at gives for a path that leads nowhere (None is a value)


@dataclass
class SourceMap:
    """Where each value of a document was written; keys are path tuples like ('a', 0, 'b')."""

    keys: dict[Path_, Location] = field(default_factory=dict)
    values: dict[Path_, Location] = field(default_factory=dict)

    def at(self, path: Path_) -> Location | None:
        """The value's location, else its nearest located ancestor's."""
        path = tuple(path)
        while True:
            loc = self.values.get(path)
            if loc is not None or not path:
                return loc
            path = path[:-1]

    def key_at(self, path: Path_) -> Location | None:
        return self.keys.get(tuple(path)) or self.at(path)


@dataclass
class Document:
    file: str  # as displayed in diagnostics
    path: Path  # absolute
    data: Any
    source: SourceMap
    text: str


def display_path(path: Path) -> str:
    """Paths under the working directory are shown relative, as users typed them; a control
    character in a name (a NUL, an escape sequence) is shown escaped, never sent to a terminal,
    and a very long name by its two ends."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        rel = ".."
    return display_name(str(path) if rel.startswith("..") else rel)


def display_name(name: str) -> str:
    """A file name as written, fit to print: control characters escaped, a very long one shown by
    its two ends."""
    shown = printable(name)
    return f"{shown[:80]}…{shown[-60:]}" if len(shown) > 160 else shown


def locate(text: str, loc: Location | None, needle: str) -> Location | None:
    """Moves a value's location onto `needle` inside it (e.g. the `${var}` in a longer string),
    so the caret points at the part that is wrong; unchanged when the needle is not found."""
    if loc is None or not needle or not loc.line:
        return loc
    lines = text.splitlines(keepends=True)
    if loc.line > len(lines):
        return loc
    start = sum(len(x) for x in lines[: loc.line - 1]) + max(loc.col - 1, 0)
    hit = text.find(needle, start, start + 4096)
    if hit < 0:
        return loc
    line = text.count("\n", 0, hit) + 1
    col = hit - (text.rfind("\n", 0, hit) + 1) + 1
    if "\n" in needle:
        return Location(loc.file, line, col)
    return Location(loc.file, line, col, span=len(needle))


def value_at(tree: Any, path: Path_) -> Any:
    """The value at a path tuple in plain data (int parts index lists), else ABSENT."""
    for part in path:
        if isinstance(tree, dict) and part in tree:
            tree = tree[part]
        elif isinstance(tree, list) and isinstance(part, int) and part < len(tree):
            tree = tree[part]
        else:
            return ABSENT
    return tree
