"""lint: YAML/JSONL files, directories and globs -> every problem of each file (or of the files as one config).

The semantics (docs/lint.md):
- Every YAML file must parse. A file is a gym config when a top-level key is a server instance, a
  known setting or config_paths; other YAML (CI workflows, pre-commit files) is only parsed.
  Files named env.yaml / env.*.yaml / *.env.yaml are env files: checked as YAML mappings only.
- Default (file mode): each gym config is checked alone with its config_paths includes: schemas,
  interpolation, ports, committed example datasets. References to instances resolve against every
  linted file; one defined in none of them is a warning. `???` is allowed (set at run time).
- --set: the gym configs are compiled together as one config, as `gym-compile` would (plus overrides).
- Either way, top-level ${names} defined in no linted file are assumed to come from env.yaml at run
  time, unless --env names one: then they must be defined there. ./env.yaml is never read implicitly.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gym_compile import schema_catalog as catalog
from gym_compile.compiler import check, compile_config
from gym_compile.diagnostics import Diagnostic, Location, unique
from gym_compile.files import is_dir, is_file, real_path, refusal
from gym_compile.inputs import read_input
from gym_compile.instances import server_type_of
from gym_compile.link import LinkOptions, link, options_for
from gym_compile.loader import load_yaml_lenient
from gym_compile.options import Options
from gym_compile.provenance import annotate
from gym_compile.sourcemap import display_path
from gym_compile.validate import Validated

YAML_SUFFIXES = (".yaml", ".yml")
ENV_FILE = re.compile(r"^(env|.+\.env)(\.[^.]+)*\.ya?ml$")
SKIP_DIRS = {"node_modules", "__pycache__", "venv", "site-packages"}


@dataclass
class LintResult:
    files: list[str] = field(default_factory=list)  # every file looked at
    diagnostics: list[Diagnostic] = field(default_factory=list)


def lint(
    paths: list[str],
    *,
    env: Path | None = None,
    as_set: bool = False,
    overrides: list[str] | None = None,
    nemo_gym_roots: tuple[Path, ...] = (),
) -> LintResult:
    files, problems = expand(paths)
    result = LintResult([display_path(f) for f in files], problems)
    configs: list[Path] = []
    for f in files:
        if f.suffix == ".jsonl":
            result.diagnostics += _jsonl(f)
        elif _yaml_kind(f, result.diagnostics) == "config":
            configs.append(f)
    if env is not None and not configs:
        result.diagnostics += load_yaml_lenient(env)[1]  # otherwise merging loads (and reports) it
    if as_set and configs:
        options = Options(
            env=env,
            env_required=env is not None,
            assume_env=env is None,
            build=False,
            default_env=False,
            nemo_gym_roots=tuple(nemo_gym_roots),
        )
        compiled = compile_config(configs, list(overrides or []), options)
        result.diagnostics += compiled.diagnostics
    elif configs:
        result.diagnostics += _each_alone(configs, env, nemo_gym_roots)
    result.diagnostics = unique(result.diagnostics)
    return result


def expand(paths: list[str]) -> tuple[list[Path], list[Diagnostic]]:
    """Files as given, directories walked for YAML, globs expanded; each file once, in order."""
    found: list[Path] = []
    problems: list[Diagnostic] = []
    for arg in paths:
        if glob.has_magic(arg):
            matches = sorted(Path(m) for m in glob.glob(arg, recursive=True))
            matches = [m for m in matches if is_file(m) and m.suffix in (*YAML_SUFFIXES, ".jsonl")]
            if not matches:
                problems.append(
                    Diagnostic(
                        "GYM003",
                        f"no YAML or JSONL file matches '{arg}'",
                        Location(arg),
                        hints=("quote the pattern so gym-compile expands it ('**' recurses)",),
                    )
                )
            found += matches
        elif is_dir(arg):
            found += _walk(Path(arg))
        else:
            found.append(Path(arg))
    seen: set[Path] = set()
    unique_files = []
    for f in found:
        key = real_path(f)
        if key not in seen:
            seen.add(key)
            unique_files.append(f)
    return unique_files, problems


def _walk(root: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS)
        out += [Path(dirpath) / n for n in sorted(filenames) if n.endswith(YAML_SUFFIXES)]
    return out


def is_env_file(path: Path) -> bool:
    return ENV_FILE.match(path.name) is not None


def is_gym_config(data: Any) -> bool:
    """A top-level key that is a server instance, a known setting or config_paths."""
    if not isinstance(data, dict):
        return False
    settings = catalog.validator("globals.schema.json").schema["properties"]
    return any(k in settings or server_type_of(v) is not None for k, v in data.items())


def _yaml_kind(path: Path, diagnostics: list[Diagnostic]) -> str:
    """'config', 'env' or 'other'. Problems of env files and missing files are reported here, a
    config's when it is merged; YAML that parses but is not a gym config (CI workflows) is left alone."""
    doc, problems = load_yaml_lenient(path)
    if is_env_file(path):
        diagnostics += problems
        return "env"
    if doc is None and problems and problems[0].code == "GYM003":
        diagnostics += problems
        return "other"
    if doc is None or is_gym_config(doc.data):
        return "config"  # one that does not parse is reported, and its names treated as unknown, by merge
    return "other"


def _jsonl(path: Path) -> list[Diagnostic]:
    if not is_file(path) or refusal(path) is not None:
        what = refusal(path) or ("is a directory" if is_dir(path) else "does not exist")
        return [
            Diagnostic(
                "GYM050", f"input file {display_path(path)} {what}", Location(display_path(path))
            )
        ]
    return read_input(path)[1]


def _each_alone(
    configs: list[Path], env: Path | None, nemo_gym_roots: tuple[Path, ...] = ()
) -> list[Diagnostic]:
    """Pass 1 checks each file with its includes; pass 2 links it against every linted file."""
    checked: list[tuple[Validated, list[Diagnostic]]] = []
    registry: dict[str, set[str]] = {}
    referenced: set[tuple[Any, ...]] = set()
    options = Options(
        env=env,
        env_required=env is not None,
        assume_env=env is None,
        allow_missing=True,
        default_env=False,
        nemo_gym_roots=nemo_gym_roots,
        each_alone=True,
    )
    for path in configs:
        front = check([path], [], options)
        validated = front.validated
        checked.append((validated, front.merged.diagnostics + front.resolved.diagnostics))
        referenced |= front.resolved.referenced
        for server in validated.servers.values():
            registry.setdefault(server.name, set()).add(server.type)
    for validated, _ in checked:  # `mine: {_copy: policy_model}` with policy_model in another file
        for target, source in validated.resolved.merged.borrowed.items():
            if source in registry:
                registry.setdefault(target, set()).update(registry[source])
    elsewhere = {name: frozenset(types) for name, types in registry.items()}
    out: list[Diagnostic] = []
    for validated, diagnostics in checked:
        unreadable = options_for(validated)  # names an include that failed to load may define
        link(
            validated,
            LinkOptions(
                elsewhere=elsewhere,
                maybe_defined=unreadable.maybe_defined,
                job=False,
                undefined_refs=unreadable.undefined_refs and "warning",
            ),
        )
        borrowed = validated.resolved.merged.borrowed
        found_keys = {(t,) for t, src in borrowed.items() if src in registry}
        own = [  # a directive whose source another linted file defines is fine alone
            d
            for d in diagnostics
            if not (d.code == "GYM025" and d.severity == "warning" and _top_key(d) in found_keys)
        ] + [
            d
            for d in validated.diagnostics
            if not (d.code == "GYM038" and _top_key(d) in referenced)
        ]
        out += annotate(own, validated.resolved.merged.directives)
    return out


def _top_key(d: Diagnostic) -> tuple[str, ...]:
    return (d.path.removeprefix("$.").split(".")[0],) if d.path.startswith("$.") else ()
