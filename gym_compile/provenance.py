"""provenance: where a value came through a NeMo Gym directive, for diagnostics and explain.

A value taken by `_inherit_from` / `_copy` keeps the location it was written at (inside the source);
the note added here points at the directive too, which the user may recognise more easily.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from gym_compile.diagnostics import Diagnostic, Location, Related, parse_json_path

Path_ = tuple[Any, ...]
INHERIT, COPY = "_inherit_from", "_copy"


@dataclass(frozen=True)
class Applied:
    """One directive that ran: `target` now holds `source`'s value (moved or copied)."""

    kind: str  # INHERIT or COPY
    target: Path_
    source: Path_
    location: Location | None  # where the directive is written
    taken: frozenset[Path_] = field(default=frozenset())  # under target, from the source
    local: frozenset[Path_] = field(default=frozenset())  # under target, written beside it

    def note(self, path: Path_) -> Related | None:
        """A note for a diagnostic at `path` when its value came through this directive: the
        nearest written part of the path decides (a local key inside an inherited mapping is local)."""
        rel = path[len(self.target) :]
        if self.location is None or path[: len(self.target)] != self.target:
            return None
        for n in range(len(rel), -1, -1):
            if rel[:n] in self.local and n:
                return None
            if rel[:n] in self.taken:
                break
        else:
            return None
        verb = "inherits" if self.kind == INHERIT else "copies"
        return Related(
            self.location,
            f"'{dotted(self.target)}' {verb} this value from '{dotted(self.source)}' here",
        )


def annotate(diagnostics: list[Diagnostic], applied: list[Applied]) -> list[Diagnostic]:
    """Adds, to each diagnostic about a value that came through a directive, a note at the
    directive: the location alone points into the source, which the user may not recognise."""
    if not applied:
        return diagnostics
    out = []
    for d in diagnostics:
        path = parse_json_path(d.path) if d.path else ()
        notes = tuple(
            n
            for a in applied
            if (n := a.note(path)) is not None and n.location != d.location and n not in d.related
        )
        out.append(replace(d, related=d.related + notes) if notes else d)
    return out


def dotted(path: Path_) -> str:
    return ".".join(map(str, path))
