"""merge: config files (+ their config_paths includes) < env.yaml < overrides -> one tree + provenance."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gym_compile import files
from gym_compile.diagnostics import CompileError, Diagnostic, Location, Related, closest, json_path
from gym_compile.directives import apply_directives
from gym_compile.files import read_bytes, real_path
from gym_compile.loader import MAX_FILE_BYTES, load_yaml_lenient, top_level_keys
from gym_compile.nemo.roots import Root, find_roots_explained
from gym_compile.overrides import Override
from gym_compile.provenance import Applied
from gym_compile.searchpath import ambiguity, search
from gym_compile.sourcemap import Document, SourceMap, display_path

Path_ = tuple[Any, ...]


EVERYTHING = "*"  # in Merged.unknown: a file that could define anything could not be read


@dataclass
class Merged:
    data: dict[str, Any]
    source: SourceMap
    configs: list[Document] = field(default_factory=list)  # in merge order
    env: Document | None = None
    env_path: Path | None = None  # where env.yaml was looked for
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: top-level names a file that failed to load may define
    unknown: set[str] = field(default_factory=set)
    #: NeMo Gym's _inherit_from/_copy, as applied
    directives: list[Applied] = field(default_factory=list)
    #: lint, each file alone: instance -> the instance its directive takes from another file
    borrowed: dict[str, str] = field(default_factory=dict)
    #: NeMo Gym roots searched for relative paths (gym_compile.searchpath)
    roots: list[Root] = field(default_factory=list)

    @property
    def incomplete(self) -> bool:
        return bool(self.unknown)

    def could_define(self, name: str) -> bool:
        """Whether a file or override that could not be read might have defined this top-level name:
        then its absence is not reported (the failure to read it is)."""
        return EVERYTHING in self.unknown or name in self.unknown

    def document(self, file: str) -> Document | None:
        """The loaded file shown as `file` in diagnostics (to point inside its text)."""
        for doc in [*self.configs, *([self.env] if self.env else [])]:
            if doc.file == file:
                return doc
        return None


def merge(
    config_files: list[Path],
    env_path: Path | None,
    overrides: list[Override],
    *,
    env_required: bool = False,
    partial: bool = False,
    malformed: tuple[str, ...] = (),
    nemo_gym_roots: Sequence[str | os.PathLike[str]] = (),
    each_alone: bool = False,
) -> Merged:
    """Loads every file (all load errors are collected), then merges in precedence order.
    With partial, problems are returned in the result and whatever could be read is merged, so later
    stages still check it; `malformed` overrides (reported by the caller) are treated as unknown.
    Includes (config_paths) are found as NeMo Gym finds them (gym_compile.searchpath), then next
    to the file that names them."""
    problems: list[Diagnostic] = []
    unknown: set[str] = {guess_root(text) for text in malformed}
    search_roots = find_roots_explained(config_files, nemo_gym_roots)
    env: Document | None = None
    if env_path is not None and (files.is_file(env_path) or env_required):
        env = _load(env_path, None, problems, unknown)
        if env is None and env_required and not files.exists(env_path):
            problems[-1] = _with_hints(
                problems[-1], ("named by --env; relative to the working directory",)
            )
    starts = [Start(Path(p)) for p in config_files]
    cli_includes = [o for o in overrides if o.path == ("config_paths",) and o.op == "set"]
    for o in cli_includes:
        paths = o.value if isinstance(o.value, list) else [o.value]
        if not all(isinstance(p, str) for p in paths):
            problems.append(
                Diagnostic(
                    "GYM010",
                    "config_paths must be a list of file paths",
                    o.location,
                    hints=('write "+config_paths=[a.yaml,b.yaml]"',),
                )
            )
            unknown.add(EVERYTHING)
            continue
        starts += [_include(p, search_roots, None, o.location, problems) for p in paths]
    env_includes = env.data.get("config_paths") if env is not None else None
    if not cli_includes and env is not None and isinstance(env_includes, list):
        starts += [  # NeMo Gym reads config_paths from env.yaml too (the command line's win)
            _include(p, search_roots, env.path, env.source.at(("config_paths", i)), problems)
            for i, p in enumerate(env_includes)
            if isinstance(p, str)
        ]
    if not starts:
        problems.append(
            Diagnostic(
                "GYM003",
                "no config file given",
                None,
                hints=('pass YAML files, or "+config_paths=[a.yaml,b.yaml]"',),
            )
        )
    docs = _load_all(starts, search_roots, problems, unknown)

    if problems and not partial:
        raise CompileError(problems)

    merged = Merged(
        {},
        SourceMap(),
        docs,
        env,
        real_path(env_path) if env_path else None,
        list(problems),
        unknown,
        roots=search_roots,
    )
    for doc in docs:
        data = {k: v for k, v in doc.data.items() if k != "config_paths"}
        _merge_into(merged, data, doc.source)
    if env is not None:
        _merge_into(merged, {k: v for k, v in env.data.items() if k != "config_paths"}, env.source)
    for o in overrides:
        if o.path != ("config_paths",):
            _apply(merged, o)
    merged.directives, problems, merged.borrowed = apply_directives(
        merged.data, merged.source, elsewhere=each_alone
    )
    merged.diagnostics += problems
    if merged.diagnostics and not partial:
        raise CompileError(merged.diagnostics)
    return merged


def guess_root(override: str) -> str:
    """The top-level key a malformed override was probably meant to set."""
    return re.split(r"[.=\[]", override.lstrip("+~").strip(), maxsplit=1)[0] or EVERYTHING


def _load(
    path: Path,
    named_at: Location | None,
    problems: list[Diagnostic],
    unknown: set[str],
    start: Start | None = None,
) -> Document | None:
    """A document whose data is usable even with problems (a duplicate key, an odd tag) is kept;
    one that does not parse adds the names it seems to define to `unknown`."""
    doc, found = load_yaml_lenient(path)
    for d in found:
        if d.code == "GYM003" and named_at is not None:
            message = (
                f"file not found: {start.value}"
                if start and start.value and d.message.startswith("file not found")
                else d.message
            )
            looked = start.looked if start and start.looked else (path,)
            d = _with_hints(
                Diagnostic(d.code, message, named_at, d.path, d.severity, (), d.related),
                (start.hints if start and start.hints else (f"looked for {display_path(path)}",))
                + _near(looked),
            )
        problems.append(d)
    if doc is not None and isinstance(doc.data, dict):
        return doc
    if doc is None and found and found[0].code == "GYM001":
        try:
            text = read_bytes(path, MAX_FILE_BYTES, "a config file").decode("utf-8", "replace")
            unknown |= top_level_keys(text)
        except OSError:
            unknown.add(EVERYTHING)
    elif doc is None:
        unknown.add(EVERYTHING)
    return None


def _with_hints(d: Diagnostic, hints: tuple[str, ...]) -> Diagnostic:
    return Diagnostic(d.code, d.message, d.location, d.path, d.severity, d.hints + hints, d.related)


def _near(looked: tuple[Path, ...]) -> tuple[str, ...]:
    """Did you mean, among the YAML files next to where the missing one was looked for."""
    siblings: dict[str, Path] = {}
    for path in looked:
        try:
            siblings |= {
                p.name: p
                for p in path.parent.iterdir()
                if p.suffix in (".yaml", ".yml") and p.name not in siblings
            }
        except OSError:
            continue
    close = closest(looked[0].name, siblings) if looked else []
    return (
        ("did you mean " + " or ".join(display_path(siblings[n]) for n in close) + "?",)
        if close
        else ()
    )


def _include(
    value: str,
    search_roots: list[Root],
    written_in: Path | None,
    named_at: Location | None,
    problems: list[Diagnostic],
) -> Start:
    """Where an include is read from; a second candidate that differs is a warning."""
    found = search(value, search_roots, written_in)
    warning = ambiguity(found, value, named_at, "$.config_paths")
    if warning is not None:
        problems.append(warning)
    return Start(
        found.path, named_at, value, tuple(p.path for p in found.looked), found.looked_hints()
    )


@dataclass(frozen=True)
class Start:
    """A file to load, where it was named (None: on the command line) and every place looked."""

    path: Path
    named_at: Location | None = None
    value: str = ""  # as written
    looked: tuple[Path, ...] = ()  # every place looked, in order
    hints: tuple[str, ...] = ()  # the same, described


def _load_all(
    starts: list[Start],
    search_roots: list[Root],
    problems: list[Diagnostic],
    unknown: set[str],
) -> list[Document]:
    """Depth-first: a file's includes come before it (so it overrides them); each file once."""
    loaded: dict[Path, Document] = {}
    order: list[Document] = []

    def visit(start: Start, stack: list[tuple[Path, Location | None]]) -> None:
        path, named_at = real_path(start.path), start.named_at
        if any(p == path for p, _ in stack):
            chain = [display_path(p) for p, _ in stack] + [display_path(path)]
            first = next(i for i, (p, _) in enumerate(stack) if p == path)
            problems.append(
                Diagnostic(
                    "GYM004",
                    "config_paths include cycle: " + " -> ".join(chain[first:]),
                    named_at,
                    related=tuple(
                        Related(loc, "included here") for _, loc in stack[first + 1 :] if loc
                    ),
                )
            )
            return
        if path in loaded:
            return
        doc = _load(path, named_at, problems, unknown, start)
        if doc is None:
            return
        loaded[path] = doc
        includes = doc.data.get("config_paths")
        if includes is not None:
            if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
                problems.append(
                    Diagnostic(
                        "GYM031",
                        "config_paths must be a list of file paths",
                        doc.source.at(("config_paths",)),
                        "$.config_paths",
                    )
                )
            else:
                for i, inc in enumerate(includes):
                    at = doc.source.at(("config_paths", i))
                    visit(
                        _include(inc, search_roots, path, at, problems), stack + [(path, named_at)]
                    )
        order.append(doc)

    for start in starts:
        visit(start, [])
    return order


def _merge_into(merged: Merged, src: dict[str, Any], src_map: SourceMap) -> None:
    """Deep-merges src over merged.data; replaced subtrees lose their old locations."""
    replaced: set[Path_] = set()
    _deep_merge(merged.data, src, (), replaced)
    if replaced:
        _drop_under(merged.source, replaced)
    merged.source.keys.update(src_map.keys)
    merged.source.values.update({p: loc for p, loc in src_map.values.items() if p})


def _deep_merge(
    dst: dict[str, Any], src: dict[str, Any], path: Path_, replaced: set[Path_]
) -> None:
    for key, value in src.items():
        here = path + (key,)
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _deep_merge(dst[key], value, here, replaced)
        else:
            if key in dst:
                replaced.add(here)
            dst[key] = copy.deepcopy(value)


def _drop_under(source: SourceMap, prefixes: set[Path_]) -> None:
    for table in (source.keys, source.values):
        for p in [p for p in table if any(p[:n] in prefixes for n in range(1, len(p) + 1))]:
            del table[p]


def _apply(merged: Merged, o: Override) -> None:
    """One override: set (creating parents) or delete, located at the command line."""
    node: Any = merged.data
    for i, part in enumerate(o.path[:-1]):
        nxt = node.get(part)
        if nxt is None and o.op == "set":
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            what = "missing" if nxt is None else f"a {type(nxt).__name__}, not a mapping"
            merged.diagnostics.append(
                Diagnostic(
                    "GYM011",
                    f"cannot {'set' if o.op == 'set' else 'delete'} {'.'.join(o.path)}: "
                    f"{json_path(o.path[: i + 1])} is {what}",
                    o.location,
                    json_path(o.path),
                )
            )
            return
        node = nxt
    last = o.path[-1]
    if o.op == "delete":
        if last not in node:
            merged.diagnostics.append(
                Diagnostic(
                    "GYM011",
                    f"cannot delete {'.'.join(o.path)}: no such key",
                    o.location,
                    json_path(o.path),
                )
            )
            return
        del node[last]
    else:
        node[last] = copy.deepcopy(o.value)
    _drop_under(merged.source, {o.path})
    loc = o.location
    for sub in _paths(o.value, o.path) if o.op == "set" else ():
        merged.source.values[sub] = loc
        merged.source.keys[sub] = loc


def _paths(value: Any, path: Path_) -> list[Path_]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, path + (i,))
    return out
