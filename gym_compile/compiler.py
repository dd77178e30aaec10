"""The facade: sequences load -> merge -> interpolate -> validate -> link -> plan; nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gym_compile.diagnostics import Diagnostic, has_errors, unique
from gym_compile.directives import annotate
from gym_compile.interpolate import resolve
from gym_compile.link import link, options_for
from gym_compile.merge import merge
from gym_compile.overrides import split_overrides
from gym_compile.paths import check_paths
from gym_compile.plan import build_plan
from gym_compile.validate import validate


@dataclass
class Result:
    plan: dict[str, Any] | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.plan is not None


def compile_config(
    configs: list[Path],
    overrides: list[str],
    *,
    env: Path | None = None,
    env_required: bool = False,
    assume_env: bool = False,
    build: bool = True,
    default_env: bool = True,
    nemo_gym_roots: Sequence[Path] = (),
) -> Result:
    """Every problem found in one run; a plan only when there are no errors.

    A file that cannot be read, or a malformed override, does not stop the run: the rest is still
    checked, except what the missing part could have supplied (undefined names, references).
    assume_env (lint --set): top-level names defined nowhere are taken to come from an env.yaml
    given at run time. build=False checks without building a plan. default_env=False: no env.yaml
    unless one is given (lint gives the same answer on a laptop with env.yaml and in CI without).
    nemo_gym_roots (--nemo-gym-root): searched first for NeMo Gym's servers and files."""
    parsed, problems = split_overrides(overrides)
    env_path = env if env is not None else (Path("env.yaml") if default_env else None)
    merged = merge(
        configs,
        env_path,
        parsed,
        env_required=env_required,
        partial=True,
        malformed=tuple(d.location.label for d in problems if d.location),
        nemo_gym_roots=nemo_gym_roots,
    )
    resolved = resolve(merged, external_roots=assume_env)
    validated = validate(resolved, nemo_gym_roots)
    linked = link(validated, options_for(validated))
    check_paths(linked)
    diagnostics = problems + merged.diagnostics + resolved.diagnostics + validated.diagnostics
    if has_errors(diagnostics) or not build or assume_env or merged.incomplete:
        return Result(None, annotate(unique(diagnostics), merged.directives))
    plan = build_plan(linked)
    diagnostics = problems + merged.diagnostics + resolved.diagnostics + validated.diagnostics
    if has_errors(diagnostics):  # the plan stage reports secrets it cannot keep out of the plan
        return Result(None, annotate(unique(diagnostics), merged.directives))
    return Result(plan, annotate(unique(diagnostics), merged.directives))
