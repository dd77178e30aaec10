"""searchpath: a relative path a config names -> the file NeMo Gym would read, every place looked,
and any other candidate that exists and differs.

NeMo Gym resolves the paths its configs name for reading (config_paths, a dataset's jsonl_fpath,
input_jsonl_fpath, prompt configs) against its search roots, first match wins
(`nemo_gym._resolve_under_cwd_or_install`): extra roots (NEMO_GYM_EXTRA_ROOTS; here also
--nemo-gym-root), the working directory, the install root. gym-compile searches the NeMo Gym tree
that holds the config too (gym_compile.nemo.roots), and, last, its own rule: relative to the file
that names the path (a command-line value: the working directory). A server's own files (a judge's
prompt template) are first looked for in the server's folder, where NeMo Gym runs the server.
"""

from __future__ import annotations

import filecmp
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gym_compile.diagnostics import Diagnostic, Location
from gym_compile.nemo.roots import Root, tree_root_of
from gym_compile.sourcemap import display_path


@dataclass(frozen=True)
class Place:
    path: Path
    why: str  # "current directory", "next to x.yaml", ...

    def shown(self) -> str:
        return f"{display_path(self.path)} ({self.why})"


@dataclass(frozen=True)
class Found:
    path: Path  # the first candidate that exists, else the first one looked at
    exists: bool
    looked: tuple[Place, ...]
    chosen: Place | None = None
    other: Place | None = None  # a later candidate that exists too, with other content

    def looked_hints(self) -> tuple[str, ...]:
        return tuple(f"looked for {p.shown()}" for p in self.looked)


def places(
    value: str,
    roots: Sequence[Root],
    written_in: Path | None,
    first: Iterable[Place] = (),
) -> list[Place]:
    """Every candidate for a relative `value`, in search order, each directory once."""
    rel = Path(os.path.expanduser(value))  # Path.expanduser raises for ~unknown-user
    if rel.is_absolute():
        return [Place(rel, "absolute path")]
    out: list[Place] = [Place(p.path / rel, p.why) for p in first]
    out += [Place(r.path / rel, r.origin) for r in roots]
    if written_in is not None:
        tree = tree_root_of(written_in)
        if tree is not None:
            out.append(Place(tree / rel, f"NeMo Gym tree of {display_path(written_in)}"))
        out.append(Place(written_in.parent / rel, f"next to {display_path(written_in)}"))
    else:
        out.append(Place(Path.cwd() / rel, "current directory"))
    seen: set[Path] = set()
    unique: list[Place] = []
    for p in out:
        key = Path(os.path.normpath(p.path.absolute()))
        if key not in seen:
            seen.add(key)
            unique.append(Place(key, p.why))
    return unique


def search(
    value: str,
    roots: Sequence[Root],
    written_in: Path | None,
    *,
    first: Iterable[Place] = (),
    kind: str = "file",
) -> Found:
    """The first candidate that is a `kind` ("file" or "dir"); `other` when a later one also is,
    with different content (then which one is meant is not obvious)."""
    looked = places(value, roots, written_in, first)
    is_kind = Path.is_file if kind == "file" else Path.is_dir
    hits = [p for p in looked if _safe(is_kind, p.path)]
    if not hits:
        return Found(looked[0].path, False, tuple(looked))
    chosen = hits[0]
    other = next((p for p in hits[1:] if _differs(chosen.path, p.path, kind)), None)
    return Found(chosen.path, True, tuple(looked), chosen, other)


def ambiguity(found: Found, value: str, loc: Location | None, path: str) -> Diagnostic | None:
    """GYM008 when two candidates exist and differ: the one NeMo Gym reads is used."""
    if found.other is None or found.chosen is None:
        return None
    return Diagnostic(
        "GYM008",
        f"'{value}' is {found.chosen.shown()}, but {found.other.shown()} exists too and differs",
        loc,
        path,
        severity="warning",
        hints=(
            f"gym-compile uses {display_path(found.chosen.path)}, as NeMo Gym would; to use the other, "
            "write its path from the NeMo Gym root or the working directory, or an absolute path",
        ),
    )


def _safe(check: object, path: Path) -> bool:
    try:
        return bool(check(path))  # type: ignore[operator]
    except OSError:
        return False


def _differs(a: Path, b: Path, kind: str) -> bool:
    try:
        if a.resolve() == b.resolve():
            return False
        if kind != "file":
            return True
        return not filecmp.cmp(a, b, shallow=False)
    except OSError:
        return True
