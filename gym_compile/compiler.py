"""The facade: sequences load -> merge -> interpolate -> validate -> link -> plan; nothing else.

`check` is the one place the front stages are sequenced: compile, lint and explain all call it."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gym_compile.diagnostics import Diagnostic, has_errors, unique
from gym_compile.interpolate import Resolved, resolve
from gym_compile.link import link, options_for
from gym_compile.merge import Merged, merge
from gym_compile.options import Options
from gym_compile.overrides import split_overrides
from gym_compile.paths import check_paths
from gym_compile.plan import build_plan
from gym_compile.plan_types import Plan
from gym_compile.provenance import annotate
from gym_compile.run_mode import decide_runs
from gym_compile.secret_paths import mask_labels, secret_override_labels
from gym_compile.secretscan import check_literals
from gym_compile.validate import Validated, validate


@dataclass
class Result:
    plan: Plan | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.plan is not None


@dataclass
class Checked:
    """The front stages' values; `raw` is the merged tree before interpolation (for explain)."""

    merged: Merged
    resolved: Resolved
    validated: Validated
    raw: dict[str, Any]  # only with keep_raw
    problems: list[Diagnostic]  # malformed overrides
    secret_labels: set[str] = field(default_factory=set)  # overrides that fill a secret

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """Every problem so far; an override that fills a secret shows as +key=*** in all."""
        return mask_labels(
            self.problems
            + self.merged.diagnostics
            + self.resolved.diagnostics
            + self.validated.diagnostics,
            self.secret_labels,
        )


def check(
    configs: list[Path], overrides: list[str], options: Options, *, keep_raw: bool = False
) -> Checked:
    """merge -> interpolate -> validate (+ secrets written into config files), never raising.

    A file that cannot be read, or a malformed override, does not stop the run: the rest is still
    checked, except what the missing part could have supplied (undefined names, references)."""
    parsed, problems = split_overrides(overrides)
    merged = merge(
        configs,
        options.env_path,
        parsed,
        env_required=options.env_required,
        partial=True,
        malformed=tuple(d.location.label for d in problems if d.location),
        nemo_gym_roots=options.nemo_gym_roots,
        each_alone=options.each_alone,
    )
    raw = copy.deepcopy(merged.data) if keep_raw else {}  # interpolation rewrites merged.data
    resolved = resolve(
        merged, external_roots=options.assume_env, allow_missing=options.allow_missing
    )
    validated = validate(resolved, options.nemo_gym_roots)
    validated.runs = decide_runs(validated)
    check_literals(validated)
    return Checked(merged, resolved, validated, raw, problems, secret_override_labels(validated))


def compile_config(
    configs: list[Path], overrides: list[str], options: Options | None = None
) -> Result:
    """Every problem found in one run; a plan only when there are no errors (and options.build)."""
    options = options or Options()
    checked = check(configs, overrides, options)
    linked = link(checked.validated, options_for(checked.validated))
    check_paths(linked)
    diagnostics = checked.diagnostics
    if (
        has_errors(diagnostics)
        or not options.build
        or options.assume_env
        or checked.merged.incomplete
    ):
        return Result(None, annotate(unique(diagnostics), checked.merged.directives))
    plan = build_plan(linked)
    diagnostics = (
        checked.diagnostics
    )  # the plan stage reports secrets it cannot keep out of the plan
    if has_errors(diagnostics):
        return Result(None, annotate(unique(diagnostics), checked.merged.directives))
    return Result(plan, annotate(unique(diagnostics), checked.merged.directives))
