"""moved_locations: the source map follows values a directive moves or copies.

A value taken by `_inherit_from` / `_copy` keeps the location where it was written (in the source,
as merged); keys written beside the directive keep theirs; a value that no longer exists loses its.
"""

from __future__ import annotations

from typing import Any

from gym_compile.diagnostics import Location
from gym_compile.sourcemap import SourceMap

Path_ = tuple[Any, ...]


class MovedLocations:
    """The live source map and a copy of it as merged (before any directive ran)."""

    def __init__(self, source: SourceMap) -> None:
        self.source = source
        self.frozen_source = SourceMap(dict(source.keys), dict(source.values))

    def _relocate(self, target: Path_, source: Path_, value: Any) -> tuple[frozenset, frozenset]:
        """Locations under target: the source's (as merged), overridden by the keys written beside
        the directive; entries of paths the final value does not have are dropped. Gives the
        relative paths that came from the source and those written locally."""
        n, m = len(target), len(source)
        local_keys = {
            p: loc for p, loc in self.source.keys.items() if p[:n] == target and len(p) > n
        }
        local_values = {
            p: loc for p, loc in self.source.values.items() if p[:n] == target and len(p) > n
        }
        own_value = self.source.values.get(target)
        self._forget(target, keep_self=True)
        exists = _all_paths(value, ())
        taken: set[Path_] = set()
        for table, frozen in (
            (self.source.keys, self.frozen_source.keys),
            (self.source.values, self.frozen_source.values),
        ):
            for p, loc in frozen.items():
                if p[:m] == source and len(p) > m and p[m:] in exists:
                    table[target + p[m:]] = loc
                    taken.add(p[m:])
        local = {p[n:] for p in (*local_keys, *local_values) if p[n:] in exists}
        self.source.keys.update({p: loc for p, loc in local_keys.items() if p[n:] in local})
        self.source.values.update({p: loc for p, loc in local_values.items() if p[n:] in local})
        if own_value is not None and isinstance(value, (dict, list)):
            self.source.values[target] = own_value
        else:  # a whole value: it was written where the source is
            src_value = self.frozen_source.values.get(source)
            if src_value is not None:
                self.source.values[target] = src_value
            taken.add(())
        return frozenset(taken - local), frozenset(local)

    def _forget(self, prefix: Path_, keep_self: bool = False) -> None:
        n = len(prefix)
        for table in (self.source.keys, self.source.values):
            for p in [p for p in table if p[:n] == prefix and (not keep_self or len(p) > n)]:
                del table[p]

    def _loc(self, path: Path_) -> Location | None:
        return (
            self.source.values.get(path)
            or self.source.keys.get(path)
            or self.frozen_source.values.get(path)
            or self.frozen_source.at(path)
        )


def _all_paths(value: Any, prefix: Path_) -> set[Path_]:
    out = {prefix}
    if isinstance(value, dict):
        for k, v in value.items():
            out |= _all_paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out |= _all_paths(v, prefix + (i,))
    return out
