"""The import rules of docs/architecture.md, enforced: what gym_run may take from gym_compile, no
import from the compiler into the runtime, no facade importing another, and no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The compiler's surface for the runtime (docs/architecture.md "Which way imports run").
RUNTIME_MAY_IMPORT = {
    "gym_compile",  # __version__ only
    "gym_compile.assets",
    "gym_compile.atomic",
    "gym_compile.canonical",
    "gym_compile.clickutil",
    "gym_compile.diagnostics",
    "gym_compile.files",  # every input is opened the same way (regular files, size limits)
    "gym_compile.jsonsafe",  # JSON from others: bounded depth and numbers
    "gym_compile.loader",
    "gym_compile.plan_reader",  # the one plan reader; gym-run's strict checks go on top
    "gym_compile.plan_types",  # the plan and the rollout record as types (the seam itself)
    "gym_compile.prices",
    "gym_compile.secretscan",
    "gym_compile.signing",  # gym-compile signs plans, gym-run verifies them
}


def _modules(root: Path, package_root: Path) -> dict[str, Path]:
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(package_root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = {
    **_modules(REPO / "gym_compile", REPO),
    **_modules(REPO / "runtime" / "gym_run", REPO / "runtime"),
}


def _imports(path: Path) -> set[str]:
    """Module-level and function-level imports alike (a lazy import is still a dependency)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {name for name in found if name in MODULES}


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def test_the_runtime_takes_only_the_named_surface_of_the_compiler() -> None:
    bad = {
        f"{mod} imports {dep}"
        for mod, deps in GRAPH.items()
        if mod.startswith("gym_run")
        for dep in deps
        if dep.startswith("gym_compile") and dep not in RUNTIME_MAY_IMPORT
    }
    assert not bad, sorted(bad)


def test_the_compiler_never_imports_the_runtime() -> None:
    bad = [
        m
        for m, deps in GRAPH.items()
        if m.startswith("gym_compile") and any(d.startswith("gym_run") for d in deps)
    ]
    assert not bad


def test_no_import_cycle() -> None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(mod: str) -> None:
        state[mod] = 1
        stack.append(mod)
        for dep in sorted(GRAPH.get(mod, ())):
            if dep == mod or dep not in GRAPH or _is_parent(dep, mod):
                continue
            if state.get(dep) == 1:
                raise AssertionError(
                    "import cycle: " + " -> ".join([*stack[stack.index(dep) :], dep])
                )
            if dep not in state:
                visit(dep)
        stack.pop()
        state[mod] = 2

    for mod in sorted(GRAPH):
        if mod not in state:
            visit(mod)


def _is_parent(dep: str, mod: str) -> bool:
    """`from gym_run.cli import x` inside gym_run.cli.commands names the package, not a cycle."""
    return mod.startswith(dep + ".")


# The collection facades and the fronts that may call them (the command line, the Python API).
FACADES = {"gym_run.collect.runner", "gym_run.collect.reverify"}
FRONTS = {"gym_run.cli.commands", "gym_run.cli.reverify", "gym_run.api"}


def test_the_collection_facades_are_imported_only_by_the_fronts() -> None:
    bad = {
        f"{mod} imports {facade}"
        for mod, deps in GRAPH.items()
        for facade in FACADES & deps
        if mod not in FRONTS
    }
    assert not bad, sorted(bad)
