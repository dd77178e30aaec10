"""pysource: Python files in, what their top-level names are bound to out; parsed, never run.

Names resolve through imports, re-exports included (`nemo_gym.base_resources_server` re-exports
`BaseRunServerInstanceConfig` from `nemo_gym.server_utils`, which imports it from
`nemo_gym.config_types`). Only NeMo Gym's own packages (and the modules beside a server's
entrypoint) are read from files; any other module (typing, pydantic, openai, ...) is external: its
names come back as dotted strings for the caller to recognise, or to give up on.
"""

from __future__ import annotations

import ast
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Top-level packages of a NeMo Gym tree; only these are read from files under a root.
NEMO_PACKAGES = frozenset(
    {
        "nemo_gym",
        "resources_servers",
        "responses_api_agents",
        "responses_api_models",
        "environment_servers",
        "environments",
        "benchmarks",
    }
)
MAX_FILE_BYTES = 4_000_000  # a bigger "module" is not source worth parsing
_MAX_HOPS = 24  # re-export chains longer than this are given up on


@dataclass(frozen=True)
class Imported:
    module: str  # dotted name as written (without the leading dots)
    name: str | None  # None: `import module [as alias]`
    level: int = 0  # leading dots of a relative import


@dataclass
class Module:
    """One parsed file: its top-level bindings, in source order (the last binding wins)."""

    path: Path
    digest: str
    bindings: dict[str, ast.ClassDef | ast.expr | Imported] = field(default_factory=dict)
    stars: list[Imported] = field(default_factory=list)


@dataclass(frozen=True)
class ClassRef:
    module: Module
    node: ast.ClassDef

    @property
    def key(self) -> str:
        return f"{self.module.path}:{self.node.name}"


@dataclass(frozen=True)
class ValueRef:
    module: Module
    node: ast.expr


@dataclass(frozen=True)
class ModuleRef:
    module: Module


@dataclass(frozen=True)
class External:
    qualname: str  # e.g. "typing.Optional", "pydantic.BaseModel", "builtins.str"

    @property
    def package(self) -> str:
        return self.qualname.split(".")[0]


@dataclass(frozen=True)
class Missing:
    reason: str


Found = ClassRef | ValueRef | ModuleRef | External | Missing


class ModuleIndex:
    """Finds and parses modules for one server: beside its entrypoint first, then under the roots."""

    def __init__(self, local_dir: Path | None, roots: Sequence[Path]) -> None:
        self.local_dir = local_dir
        self.roots = list(roots)
        self.parsed: dict[Path, Module | None] = {}

    def files(self) -> list[Module]:
        """Every module read so far (their digests key the derived-schema cache)."""
        return [m for m in self.parsed.values() if m is not None]

    def load(self, path: Path) -> Module | None:
        if path not in self.parsed:
            self.parsed[path] = _parse(path)
        return self.parsed[path]

    def find(self, dotted: str, level: int = 0, importer: Module | None = None) -> Module | None:
        parts = [p for p in dotted.split(".") if p]
        if level:
            if importer is None:
                return None
            base = importer.path.parent
            for _ in range(level - 1):
                base = base.parent
            return self._file_under(base, parts)
        if not parts:
            return None
        if self.local_dir is not None:
            found = self._file_under(self.local_dir, parts)
            if found is not None:
                return found
        if parts[0] not in NEMO_PACKAGES:
            return None
        for root in self.roots:
            found = self._file_under(root, parts)
            if found is not None:
                return found
        return None

    def _file_under(self, base: Path, parts: list[str]) -> Module | None:
        target = base.joinpath(*parts) if parts else base
        for candidate in (target.with_name(target.name + ".py"), target / "__init__.py"):
            if parts and candidate.is_file():
                return self.load(candidate)
        if not parts and (base / "__init__.py").is_file():
            return self.load(base / "__init__.py")
        return None

    def lookup(self, module: Module, name: str, hops: int = 0) -> Found:
        """What `name` is bound to at the top of `module`."""
        if hops > _MAX_HOPS:
            return Missing(f"'{name}': import chain too long")
        bound = module.bindings.get(name)
        if bound is None:
            for star in module.stars:
                target = self.find(star.module, star.level, module)
                if target is not None and target is not module:
                    found = self.lookup(target, name, hops + 1)
                    if not isinstance(found, Missing):
                        return found
            if name in _BUILTINS:
                return External(f"builtins.{name}")
            return Missing(f"'{name}' is not defined in {module.path.name}")
        if isinstance(bound, ast.ClassDef):
            return ClassRef(module, bound)
        if isinstance(bound, Imported):
            return self._imported(module, bound, hops)
        return ValueRef(module, bound)

    def _imported(self, module: Module, imp: Imported, hops: int) -> Found:
        target = self.find(imp.module, imp.level, module)
        if imp.name is None:
            return ModuleRef(target) if target is not None else External(imp.module)
        if target is None:
            if imp.level:
                return Missing(f"relative module '{'.' * imp.level}{imp.module}' not found")
            return External(f"{imp.module}.{imp.name}")
        if target is module and module.bindings.get(imp.name) is imp:
            return Missing(f"'{imp.name}' imports itself")
        found = self.lookup(target, imp.name, hops + 1)
        if isinstance(found, Missing):  # `from package import submodule`
            sub = self.find(f"{imp.module}.{imp.name}", imp.level, module)
            if sub is not None:
                return ModuleRef(sub)
        return found

    def resolve(self, module: Module, expr: ast.expr) -> Found:
        """A Name or a dotted Attribute chain (`ct.ModelServerRef`, `typing.Optional`)."""
        if isinstance(expr, ast.Name):
            return self.lookup(module, expr.id)
        if isinstance(expr, ast.Attribute):
            base = self.resolve(module, expr.value)
            if isinstance(base, ModuleRef):
                found = self.lookup(base.module, expr.attr)
                if isinstance(found, Missing) and base.module.path.name == "__init__.py":
                    sub = self._file_under(base.module.path.parent, [expr.attr])
                    return ModuleRef(sub) if sub is not None else found
                return found
            if isinstance(base, External):
                return External(f"{base.qualname}.{expr.attr}")
            if isinstance(base, ClassRef):
                for stmt in base.node.body:
                    if isinstance(stmt, ast.ClassDef) and stmt.name == expr.attr:
                        return ClassRef(base.module, stmt)
                return Missing(f"'{base.node.name}.{expr.attr}' is not a nested class")
            return base if isinstance(base, Missing) else Missing(f"'{ast.unparse(expr)}'")
        return Missing(f"'{ast.unparse(expr)}' is not a name")


_BUILTINS = frozenset(
    "str int float bool bytes dict list set frozenset tuple object type complex None".split()
)


_PARSED: dict[tuple[Path, int, int], Module | None] = {}
_PARSED_MAX = 512  # files kept parsed in a process (NeMo Gym's base modules are shared by all)


def _parse(path: Path) -> Module | None:
    """Parsed once per process while the file is unchanged (lint derives many servers)."""
    try:
        st = path.stat()
    except OSError:
        return None
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in _PARSED:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = _parse_file(path, st.st_size)
    return _PARSED[key]


def clear_parsed() -> None:
    _PARSED.clear()


def _parse_file(path: Path, size: int) -> Module | None:
    try:
        if size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
        tree = ast.parse(data, filename=os.fspath(path))
    except (OSError, SyntaxError, ValueError, RecursionError):
        return None
    module = Module(path, hashlib.sha256(data).hexdigest())
    _bind(module, tree.body)
    return module


def _bind(module: Module, body: list[ast.stmt]) -> None:
    for stmt in body:
        if isinstance(stmt, ast.ClassDef):
            module.bindings[stmt.name] = stmt
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    module.bindings[target.id] = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
            module.bindings[stmt.target.id] = stmt.value
        elif isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                imp = Imported(stmt.module or "", alias.name, stmt.level)
                if alias.name == "*":
                    module.stars.append(Imported(stmt.module or "", None, stmt.level))
                else:
                    module.bindings[alias.asname or alias.name] = imp
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    module.bindings[alias.asname] = Imported(alias.name, None)
                else:  # `import a.b` binds `a`
                    top = alias.name.split(".")[0]
                    module.bindings[top] = Imported(top, None)
        elif isinstance(stmt, ast.If):  # `if TYPE_CHECKING:` and version checks: the first wins
            _bind(module, stmt.orelse)
            _bind(module, stmt.body)
        elif isinstance(stmt, ast.Try):  # `try: import x / except ImportError: x = None`: the try
            for handler in stmt.handlers:
                _bind(module, handler.body)
            _bind(module, stmt.body)
        elif type(stmt).__name__ == "TypeAlias":  # `type X = ...` (Python 3.12 grammar)
            name = getattr(stmt, "name", None)
            if isinstance(name, ast.Name):
                module.bindings[name.id] = stmt.value  # type: ignore[attr-defined]
