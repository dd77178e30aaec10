"""roots: config files + options in, the NeMo Gym roots to search (in NeMo Gym's order) out.

A NeMo Gym root is a directory holding `resources_servers/`, `responses_api_agents/`,
`responses_api_models/` (and, for NeMo Gym itself, `nemo_gym/`). Server sources live at
`<root>/<server type>/<implementation>/<entrypoint>`; configs name files relative to a root
(`resources_servers/<env>/data/example.jsonl`). The order follows NeMo Gym's own lookup
(`nemo_gym.component_search_roots`: extra roots, then the working directory, then the install
root), with the tree that holds the config file placed before the working directory, so a config
inside a checkout finds that checkout's servers wherever the command runs. Nothing here imports
NeMo Gym: the installed distribution is found by its metadata and import spec only.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: NeMo Gym's environment variable of extra roots (os.pathsep-separated there; commas also work here).
EXTRA_ROOTS_ENV = "NEMO_GYM_EXTRA_ROOTS"
SERVER_TYPES = (
    "resources_servers",
    "responses_api_agents",
    "responses_api_models",
    "environment_servers",  # NeMo Gym 0.7: servers that front agents
)
_LAYOUT = SERVER_TYPES[:3]  # what makes a directory look like a NeMo Gym root
DISTRIBUTION = "nemo-gym"
#: How to point gym-compile at NeMo Gym, for messages that could not find it.
HOW_TO_POINT = (
    "install NeMo Gym (pip install nemo-gym), or name its checkout with --nemo-gym-root DIR "
    f"(repeatable) or {EXTRA_ROOTS_ENV}=DIR{os.pathsep}DIR"
)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_MAX_ASCENT = 64  # bounded walk up from a config file


@dataclass(frozen=True)
class Root:
    """A directory to search and why it is one (for "where it looked" messages)."""

    path: Path
    origin: str  # "--nemo-gym-root", "NEMO_GYM_EXTRA_ROOTS", "NeMo Gym tree of x.yaml", ...

    def describe(self) -> str:
        missing = "" if self.path.is_dir() else ", does not exist"
        return f"{self.path} ({self.origin}{missing})"


def find_roots(
    config_files: Iterable[str | os.PathLike[str]] = (),
    extra: Sequence[str | os.PathLike[str]] = (),
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """The roots to search, first match wins: `extra` (--nemo-gym-root), NEMO_GYM_EXTRA_ROOTS,
    the NeMo Gym tree of each config file, the working directory, the installed nemo-gym."""
    return [r.path for r in find_roots_explained(config_files, extra, environ=environ, cwd=cwd)]


def find_roots_explained(
    config_files: Iterable[str | os.PathLike[str]] = (),
    extra: Sequence[str | os.PathLike[str]] = (),
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> list[Root]:
    """find_roots with the reason of each root; de-duplicated by resolved path, order kept."""
    env = os.environ if environ is None else environ
    here = Path(cwd) if cwd is not None else Path.cwd()
    candidates: list[Root] = [Root(_absolute(p, here), "--nemo-gym-root") for p in extra]
    candidates += [Root(_absolute(p, here), EXTRA_ROOTS_ENV) for p in env_extra_roots(env)]
    for config in config_files:
        tree = tree_root_of(_absolute(config, here))
        if tree is not None:
            candidates.append(Root(tree, f"NeMo Gym tree of {os.fspath(config)}"))
    candidates.append(Root(here.resolve(), "current directory"))
    installed = installed_root()
    if installed is not None:
        candidates.append(installed)
    roots: list[Root] = []
    seen: set[Path] = set()
    for root in candidates:
        key = _resolved(root.path)
        if key not in seen:
            seen.add(key)
            roots.append(root)
    return roots


def env_extra_roots(environ: Mapping[str, str]) -> list[str]:
    """NEMO_GYM_EXTRA_ROOTS split as NeMo Gym splits it (os.pathsep), commas accepted too."""
    value = environ.get(EXTRA_ROOTS_ENV, "")
    return [p.strip() for part in value.split(os.pathsep) for p in part.split(",") if p.strip()]


def looks_like_root(path: Path) -> bool:
    """NeMo Gym's layout: `nemo_gym/` itself, or two of the three server-type folders."""
    try:
        if (path / "nemo_gym" / "__init__.py").is_file():
            return True
        return sum((path / t).is_dir() for t in _LAYOUT) >= 2
    except OSError:
        return False


def tree_root_of(config_file: Path) -> Path | None:
    """The NeMo Gym tree holding a config file: the nearest ancestor laid out like a root, or
    `<root>` of `<root>/<server type>/<implementation>/configs/x.yaml` (a plugin tree with one type)."""
    start = config_file.parent
    for depth, folder in enumerate([start, *start.parents]):
        if depth > _MAX_ASCENT:
            break
        if looks_like_root(folder):
            return folder
    parts = start.parts
    if len(parts) >= 4 and parts[-1] == "configs" and parts[-3] in SERVER_TYPES:
        return Path(*parts[:-3])
    return None


def installed_root() -> Root | None:
    """Where an installed nemo-gym put its tree (a wheel: site-packages; editable: the checkout).
    Found by import spec and metadata, never by importing nemo_gym."""
    try:
        spec = importlib.util.find_spec("nemo_gym")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not spec.origin.endswith("__init__.py"):
        return None
    root = Path(spec.origin).resolve().parent.parent
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown version"
    return Root(root, f"installed nemo-gym {version}")


def find_server_source(
    roots: Iterable[Path | Root],
    server_type: str,
    implementation: str,
    entrypoint: str | None = None,
) -> Path | None:
    """`<root>/<server_type>/<implementation>/<entrypoint>` in the first root that has it.
    The file must stay inside its root (an entrypoint may climb with `..`, NeMo Gym allows it)."""
    if server_type not in SERVER_TYPES or not valid_implementation(implementation):
        return None
    module = entrypoint_module(entrypoint)
    for root in roots:
        base = root.path if isinstance(root, Root) else Path(root)
        candidate = base / server_type / implementation / module
        try:
            if candidate.is_file() and candidate.resolve().is_relative_to(base.resolve()):
                return candidate
        except OSError:
            continue
    return None


def server_folder(
    roots: Iterable[Path | Root], server_type: str, implementation: str
) -> Path | None:
    """`<root>/<server_type>/<implementation>/` in the first root that has it."""
    if server_type not in SERVER_TYPES or not valid_implementation(implementation):
        return None
    for root in roots:
        base = root.path if isinstance(root, Root) else Path(root)
        if (base / server_type / implementation).is_dir():
            return base / server_type / implementation
    return None


def valid_implementation(name: str) -> bool:
    """A folder name, or nested folders (`conversational_tool_use/simulation`), never `..`."""
    parts = name.split("/")
    return all(_NAME.match(p) and p not in (".", "..") for p in parts)


def entrypoint_module(entrypoint: object) -> str:
    """The module file a config's `entrypoint` names; app.py when it names none usable."""
    if isinstance(entrypoint, str) and entrypoint.strip().endswith(".py"):
        value = entrypoint.strip()
        if not os.path.isabs(value):
            return value
    return "app.py"


def _absolute(path: str | os.PathLike[str], cwd: Path) -> Path:
    p = Path(os.path.expanduser(os.fspath(path)))
    return p if p.is_absolute() else cwd / p


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path
