"""gym-compile from Python: configs and overrides in, a `Compiled` (the plan, if any, and every
diagnostic) out. What `gym-compile CONFIG... OVERRIDES... --env env.yaml -o plan.json` does,
without the exit codes: nothing is printed and nothing is raised for a config mistake.

    from gym_compile.api import compile_plan
    compiled = compile_plan(["env/simple_weather.yaml", "env/model.yaml"], ["+num_repeats=4"])
    plan = compiled.raise_for_errors()      # or look at compiled.diagnostics yourself
    plan.write("plan.json")

The plan holds no secret values (only references gym-run resolves at start) and is hashed; hand
it to `gym_run.api.run(plan)` directly or write it first. docs/python-api.md has the whole API.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gym_compile import plan_types
from gym_compile.compiler import compile_config
from gym_compile.diagnostics import Diagnostic, has_errors
from gym_compile.diagnostics.text import render_text
from gym_compile.options import Options
from gym_compile.overrides import is_override
from gym_compile.plan import write_plan

__all__ = ["Compiled", "Plan", "PlanCompileError", "compile_plan"]


@dataclass(frozen=True)
class Plan:
    """A compiled run plan: the canonical, hashed document gym-run executes (`data`)."""

    data: plan_types.Plan

    @property
    def content_hash(self) -> str:
        return str(self.data["content_hash"])

    @property
    def job(self) -> plan_types.Job | None:
        return self.data.get("job")

    @property
    def rollouts_path(self) -> str | None:
        return self.job["output"]["path"] if self.job else None

    def to_dict(self) -> dict[str, Any]:
        """A deep copy, safe to change (a changed plan no longer matches its hash)."""
        return json.loads(json.dumps(self.data))

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Writes the plan file exactly as `gym-compile -o` does (atomically)."""
        out = Path(path)
        write_plan(self.to_dict(), out)
        return out


class PlanCompileError(Exception):
    """Raised by Compiled.raise_for_errors(); `diagnostics` are all of them, str() renders them."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__(render_text(diagnostics))


@dataclass(frozen=True)
class Compiled:
    plan: Plan | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.plan is not None

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    def raise_for_errors(self) -> Plan:
        """The plan, or PlanCompileError listing every problem (file:line:col, hints)."""
        if self.plan is None or has_errors(self.diagnostics):
            raise PlanCompileError(self.diagnostics)
        return self.plan

    def render(self) -> str:
        """The diagnostics as gym-compile prints them (empty when there are none)."""
        return render_text(self.diagnostics) if self.diagnostics else ""


def compile_plan(
    configs: Iterable[str | os.PathLike[str]],
    overrides: Iterable[str] = (),
    *,
    env: str | os.PathLike[str] | None = None,
) -> Compiled:
    """Compiles config files with Hydra-style overrides (`+num_repeats=4`, `"+config_paths=[a,b]"`).

    `configs` may also hold overrides (as the command line does); `env`: an env.yaml with secrets
    and shared variables (default: ./env.yaml if present, as gym-compile)."""
    paths: list[Path] = []
    extra: list[str] = []
    for item in configs:
        text = os.fspath(item)
        if is_override(text):
            extra.append(text)
        else:
            paths.append(Path(text))
    options = Options(env=Path(env) if env is not None else None, env_required=env is not None)
    result = compile_config(paths, [*extra, *overrides], options)
    return Compiled(Plan(result.plan) if result.plan is not None else None, result.diagnostics)
