"""directives: merged tree -> NeMo Gym's `_inherit_from`, `_copy`, `_delete_key` (and the values
`${inherit_from:a.b}`, `${copy:a.b}`) applied in place, every taken value keeping its location.

NeMo Gym's semantics (nemo_gym/global_config.py `_recursively_swap_keys`), mirrored step by step
because users rely on its results: one pass after env.yaml and overrides are merged and before any
`${...}` is resolved; a mapping's `_delete_key: "a, b"` deletes those keys first (the ones not there
yet are deleted after the inherit/copy merge, and must be there then); nested mappings are handled
before their parent; the value taken is the source as merged, before any directive ran (so a
directive inside it is not applied: chains do not work in NeMo Gym, and are reported here);
`_inherit_from` moves the source (it disappears from the config), `_copy` leaves it; keys written
beside the directive override the taken value (deep merge, lists replaced); a source that is `???`
makes the target `???`.
"""

from __future__ import annotations

import copy
from typing import Any

from gym_compile.agent_renames import retarget
from gym_compile.diagnostics import (
    Diagnostic,
    Location,
    Related,
    did_you_mean,
    json_path,
)
from gym_compile.moved_locations import MovedLocations
from gym_compile.provenance import COPY, INHERIT, Applied
from gym_compile.provenance import dotted as _dotted
from gym_compile.sourcemap import ABSENT, SourceMap, value_at

Path_ = tuple[Any, ...]
DELETE = "_delete_key"
DIRECTIVE_KEYS = (INHERIT, COPY, DELETE)
PREFIXES = {"${inherit_from:": INHERIT, "${copy:": COPY}
MISSING = "???"


def has_directives(data: Any) -> bool:
    """Cheap scan so configs without any directive (most of them) skip the copying."""
    if isinstance(data, dict):
        return any(k in DIRECTIVE_KEYS or has_directives(v) for k, v in data.items())
    if isinstance(data, list):
        return any(has_directives(v) for v in data)
    return isinstance(data, str) and data.startswith(tuple(PREFIXES))


def apply_directives(
    data: dict[str, Any], source: SourceMap, *, elsewhere: bool = False
) -> tuple[list[Applied], list[Diagnostic], dict[str, str]]:
    """Applies every directive of `data` in place; `source` follows the values.

    elsewhere (lint, each file alone): a source missing at the top level may be defined by
    another file, so it is a warning, as a reference to an instance no linted file defines is;
    the third value maps each such target to the instance it takes (lint resolves its type)."""
    if not has_directives(data):
        return [], [], {}
    run = _Run(data, source, elsewhere)
    run.walk(data, ())
    run.leftovers(data, ())
    return run.applied, run.problems + retarget(run.frozen, data, source), run.borrowed


class _Run(MovedLocations):
    def __init__(self, data: dict[str, Any], source: SourceMap, elsewhere: bool) -> None:
        super().__init__(source)
        self.elsewhere = elsewhere
        self.borrowed: dict[str, str] = {}  # top-level target -> the instance it takes, not here
        self.root = data
        self.frozen = copy.deepcopy(data)
        self.applied: list[Applied] = []
        self.problems: list[Diagnostic] = []

    # -- the pass, in NeMo Gym's order -----------------------------------------------------------
    def walk(self, node: dict[str, Any], path: Path_) -> None:
        for k, v in list(node.items()):  # a snapshot: a sibling moved away is still visited
            here = path + (k,)
            pending: list[str] = []
            if isinstance(v, dict) and DELETE in v:
                pending = self._delete_now(v, here)
            if isinstance(v, dict):
                self.walk(v, here)
            elif isinstance(v, list):
                for i, item in enumerate(v):
                    if isinstance(item, dict):
                        self.walk(item, here + (i,))
            kind, text = _directive(v)
            if kind is None:
                if pending:
                    self._warn_not_there(here, pending)
                continue
            self._take(node, k, v, here, kind, text, pending)

    def _delete_now(self, v: dict[str, Any], here: Path_) -> list[str]:
        raw = v.pop(DELETE)
        at = here + (DELETE,)
        loc = self._loc(at)
        self._forget(at)
        if not isinstance(raw, str):
            self._error(
                "GYM026",
                f"{DELETE} must be a comma-separated string of keys, got {type(raw).__name__}",
                loc,
                at,
                hints=(f'{DELETE}: "key1,key2"',),
            )
            return []
        names = sorted({n.strip() for n in raw.split(",")} - {""})
        pending = [n for n in names if n not in v]  # deleted after an inherit/copy brings them
        for name in [n for n in names if n in v]:
            del v[name]
            self._forget(here + (name,))
        return pending

    def _take(
        self,
        node: dict[str, Any],
        k: str,
        v: Any,
        here: Path_,
        kind: str,
        text: Any,
        pending: list[str],
    ) -> None:
        written = here + (kind,) if isinstance(v, dict) else here
        loc = self._loc(written)
        if isinstance(v, dict):
            if INHERIT in v and COPY in v:
                self._error(
                    "GYM026",
                    f"'{_dotted(here)}' has both {INHERIT} and {COPY}; NeMo Gym takes the {COPY} "
                    f"path and still removes it from the config",
                    loc,
                    written,
                    hints=("keep one of them",),
                )
                v.pop(INHERIT)
            text = v.pop(kind)
            self._forget(written)
        if not isinstance(text, str) or not text.strip():
            self._error(
                "GYM026",
                f"{kind} needs a dotted path to another part of the config, got {text!r}",
                loc,
                written,
                hints=(f"{kind}: name_of_instance   (or a.b.c)",),
            )
            return
        source = tuple(text.strip().split("."))
        parent = self._index(self.root, source[:-1], loc, written, source, frozen=False)
        if parent is _FAILED:
            return
        if kind == INHERIT and isinstance(parent, dict):
            if self._attached(parent, source[:-1]):
                self._forget(source)
            parent.pop(source[-1], None)
        taken = self._index(self.frozen, source, loc, written, source, frozen=True)
        if taken is _FAILED:
            if self.elsewhere and len(here) == 1 and source[0] not in self.frozen:
                self.borrowed[k] = str(source[0])  # may come from another linted file
                if isinstance(v, dict) and not v and self._attached(node, ()):
                    del node[k]  # nothing of its own to check alone
                    self._forget(here)
            return
        attached = self._attached(node, here[:-1])
        if parent is _MISSING_REF or taken is _MISSING_REF:
            node[k] = MISSING
            if attached:
                self._forget(here, keep_self=True)
            return
        value = copy.deepcopy(taken)
        local = v if isinstance(v, dict) else None
        if local is not None:
            if local and not isinstance(value, dict):
                self._error(
                    "GYM026",
                    f"'{_dotted(here)}' has keys beside {kind}, but '{text}' is not a mapping "
                    f"to merge them into",
                    loc,
                    written,
                )
                return
            if isinstance(value, dict):
                _deep_merge(value, local)
        node[k] = value
        if attached:
            taken_rels, local_rels = self._relocate(here, source, value)
            self.applied.append(Applied(kind, here, source, loc, taken_rels, local_rels))
        for name in pending:
            if isinstance(value, dict) and name in value:
                del value[name]
                if attached:
                    self._forget(here + (name,))
            else:
                self._error(
                    "GYM025",
                    f"{DELETE} names '{name}', which is not in '{_dotted(here)}' after {kind}: "
                    f"NeMo Gym stops with a KeyError",
                    self._loc(here) or loc,
                    here,
                    hints=did_you_mean(name, list(value) if isinstance(value, dict) else []),
                )

    # -- after the pass --------------------------------------------------------------------------
    def leftovers(self, node: Any, path: Path_) -> None:
        """Directives NeMo Gym's single pass leaves in place (they came in with a taken value)."""
        if isinstance(node, dict):
            for k, v in node.items():
                if k in DIRECTIVE_KEYS or _directive(v)[0] is not None:
                    self._not_applied(path + (k,), k if k in DIRECTIVE_KEYS else _directive(v)[0])
                else:
                    self.leftovers(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                self.leftovers(v, path + (i,))

    def _not_applied(self, at: Path_, kind: str | None) -> None:
        via = next(
            (a for a in reversed(self.applied) if at[: len(a.target)] == a.target),
            None,
        )
        why = (
            f"it came into '{_dotted(via.target)}' with the value taken from "
            f"'{_dotted(via.source)}', and NeMo Gym applies directives in one pass over the config "
            "as merged, so a directive inside a taken value is never applied"
            if via
            else "NeMo Gym applies it only inside a mapping or as a whole value"
        )
        self._error(
            "GYM027",
            f"{kind} at {json_path(at)} is not applied: {why}",
            self._loc(at),
            at,
            hints=(
                "write the inherited content out in full, or inherit from an instance that has no "
                "directive of its own",
            ),
            related=(Related(via.location, "taken here"),) if via and via.location else (),
        )

    # -- helpers ---------------------------------------------------------------------------------
    def _index(
        self, root: Any, parts: Path_, loc: Location | None, at: Path_, full: Path_, *, frozen: bool
    ) -> Any:
        node = root
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                self._source_missing(node, parts[: i + 1], full, loc, at, frozen)
                return _FAILED
            if node[part] == MISSING:
                return _MISSING_REF
            node = node[part]
        return node

    def _source_missing(
        self, node: Any, reached: Path_, full: Path_, loc: Location | None, at: Path_, frozen: bool
    ) -> None:
        keys = [str(k) for k in node] if isinstance(node, dict) else []
        where = "the config" if len(reached) == 1 else f"'{_dotted(reached[:-1])}'"
        moved = not frozen and value_at(self.frozen, reached) is not ABSENT
        alone = self.elsewhere and len(reached) == 1 and not moved
        self.problems.append(
            Diagnostic(
                "GYM025",
                f"'{_dotted(full)}' does not exist: {where} has no '{reached[-1]}'"
                + (" (an earlier _inherit_from moved it away)" if moved else "")
                + (" (lint checks each file alone)" if alone else ""),
                loc,
                json_path(at),
                severity="warning" if alone else "error",
                hints=did_you_mean(str(reached[-1]), keys)
                + (
                    ("lint the files together with --set to apply it",)
                    if alone
                    else ("the path is written from the top of the merged config: a.b.c",)
                ),
            )
        )

    def _attached(self, node: Any, path: Path_) -> bool:
        """Whether `node` is still where `path` says in the live config (a moved-away mapping is
        still visited, as NeMo Gym does, but its locations are not live any more)."""
        return value_at(self.root, path) is node

    def _warn_not_there(self, here: Path_, names: list[str]) -> None:
        self.problems.append(
            Diagnostic(
                "GYM028",
                f"{DELETE} names {', '.join(repr(n) for n in names)}, not in "
                f"'{_dotted(here)}': nothing to delete",
                self._loc(here),
                json_path(here),
                severity="warning",
                hints=("NeMo Gym ignores such a name; check the spelling",),
            )
        )

    def _error(
        self,
        code: str,
        message: str,
        loc: Location | None,
        at: Path_,
        hints: tuple[str, ...] = (),
        related: tuple[Related, ...] = (),
    ) -> None:
        self.problems.append(
            Diagnostic(code, message, loc, json_path(at), hints=hints, related=related)
        )


class _Sentinel:
    pass


_FAILED: Any = _Sentinel()
_MISSING_REF: Any = _Sentinel()


def _directive(v: Any) -> tuple[str | None, Any]:
    """(kind, the path as written) of a value that is a directive, else (None, None)."""
    if isinstance(v, dict):
        if COPY in v:  # NeMo Gym reads _copy's path last, so it wins when both are there
            return COPY, v[COPY]
        if INHERIT in v:
            return INHERIT, v[INHERIT]
        return None, None
    if isinstance(v, str):
        for prefix, kind in PREFIXES.items():
            if v.startswith(prefix):
                return kind, v.removeprefix(prefix).removesuffix("}")
    return None, None


def _deep_merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _deep_merge(dst[key], value)
        else:
            dst[key] = copy.deepcopy(value)
