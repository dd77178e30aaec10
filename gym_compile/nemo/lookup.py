"""lookup: a server instance's type and implementation in, its schema derived from NeMo Gym's source
out, or where its source was looked for."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gym_compile.nemo.cache import cached_derive
from gym_compile.nemo.derive import Derived
from gym_compile.nemo.roots import SERVER_TYPES, Root, entrypoint_module, find_server_source

_MAX_LISTED = 2000  # implementation folders read per root and type, for did-you-mean


@dataclass
class Lookup:
    derived: Derived | None  # None: the source was not found
    source: Path | None
    looked_in: list[tuple[Path, Root]]  # each candidate file, and the root it is under


def schema_from_source(
    roots: Sequence[Root], server_type: str, implementation: str, entrypoint: object = None
) -> Lookup:
    """The first root holding `<type>/<implementation>/<entrypoint>` gives the schema; NeMo Gym's
    own modules are then looked up in that root first, then in the others."""
    module = entrypoint_module(entrypoint)
    looked_in = [(r.path / server_type / implementation / module, r) for r in roots]
    for i, root in enumerate(roots):
        source = find_server_source([root], server_type, implementation, module)
        if source is not None:
            others = [r.path for j, r in enumerate(roots) if j != i]
            derived = cached_derive(source, server_type, implementation, [root.path, *others])
            return Lookup(derived, source, looked_in)
    return Lookup(None, None, looked_in)


def implementations_in(roots: Sequence[Root], server_type: str) -> list[str]:
    """Implementation folders (those with an app.py) under the roots, for did-you-mean."""
    if server_type not in SERVER_TYPES:
        return []
    names: set[str] = set()
    for root in roots:
        try:
            with os.scandir(root.path / server_type) as entries:
                for n, entry in enumerate(entries):
                    if n >= _MAX_LISTED:
                        break
                    if entry.is_dir() and os.path.isfile(os.path.join(entry.path, "app.py")):
                        names.add(entry.name)
        except OSError:
            continue
    return sorted(names)


def derive_all(
    roots: Sequence[Root], skip: Mapping[str, Sequence[str]] | None = None
) -> dict[tuple[str, str], Derived]:
    """Every implementation under the roots (the first root holding a name wins), except `skip`
    (server type -> names, e.g. those gym-compile ships): for exporting editor schemas."""
    out: dict[tuple[str, str], Derived] = {}
    for server_type in SERVER_TYPES:
        for impl in implementations_in(roots, server_type):
            if impl in (skip or {}).get(server_type, ()):
                continue
            found = schema_from_source(roots, server_type, impl)
            if found.derived is not None:
                out[(server_type, impl)] = found.derived
    return out
