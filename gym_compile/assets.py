"""Finds the packaged data directories (schemas/, templates/) in a checkout or an installed wheel."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

_REPO_ROOT = Path(__file__).resolve().parent.parent


def _data_dir(name: str) -> Path:
    """A checkout keeps the directory at the top level; a wheel installs it as gym_compile/<name>."""
    import importlib.util

    spec = importlib.util.find_spec(f"gym_compile.{name}")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if Path(location).is_dir():
                return Path(location)
    return _REPO_ROOT / name


def schemas_dir() -> Path:
    return _data_dir("schemas")


def templates_dir() -> Path:
    return _data_dir("templates")


def template_env(*, html: bool) -> SandboxedEnvironment:
    """templates/ behind a sandboxed, strict Jinja2 (a typo in a template fails loudly instead of
    printing an empty field): HTML autoescaped (pages show model output, untrusted text), text
    keeping its last newline. Jinja2 is imported here, not at start-up."""
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(
        loader=FileSystemLoader(str(templates_dir())),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=not html,
        autoescape=html,
    )


@cache
def load_schema(relative: str) -> dict[str, Any]:
    """Schemas are read once per process; validators built from them are cached by callers."""
    with open(schemas_dir() / relative, encoding="utf-8") as fh:
        return json.load(fh)
