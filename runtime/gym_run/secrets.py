"""Plan's secret references + env.yaml/environment in, server configs with real values out.

Values are resolved once at start so a missing key fails before any token is paid for; they
live only in memory and are never printed (errors name where we looked, never what we found).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gym_compile.canonical import SECRET_MARKER
from gym_compile.diagnostics import CompileError, FileMissing
from gym_compile.loader import load_yaml
from gym_compile.plan_types import Plan, ServerEntry
from gym_compile.secretscan import MASK
from gym_run.errors import SecretError
from gym_run.redact import MIN_MASKED_LEN, REDACT, Redactor, spellings
from gym_run.trust import check_trusted

__all__ = ["MASK", "REDACT", "Redactor", "resolve_secrets", "spellings", "substitute_secrets"]


def referenced_secrets(value: Any) -> set[str]:
    """Names of every `{"$secret": NAME}` inside a config."""
    if isinstance(value, dict):
        if _secret_name(value) is not None:
            return {value[SECRET_MARKER]}
        return set().union(*(referenced_secrets(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(referenced_secrets(v) for v in value)) if value else set()
    return set()


def resolve_secrets(
    plan: Plan,
    environ: Mapping[str, str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Values of the secrets the plan's servers use; all missing ones reported in one error."""
    environ = os.environ if environ is None else environ
    check_trusted(plan)  # a plan someone else edited (even re-hashed) gets no secret at all
    wanted = sorted(referenced_secrets(plan["servers"]))
    reader = _FileReader()
    values: dict[str, str] = {}
    problems: list[str] = []
    for name in wanted:
        ref = plan["secrets"].get(name)
        if ref is None:
            problems.append(
                f"secret {name!r} is used by a server but the plan does not say where to read it; recompile"
            )
            continue
        try:
            values[name] = _resolve_one(name, ref, plan.get("env_file"), environ, reader)
        except SecretError as exc:
            problems.append(exc.message)
    if problems:
        raise SecretError("\n".join(problems))
    for name, value in values.items():
        if not REDACT.add(value):
            (warn or _stderr)(
                f"gym-run: warning: secret {name!r} is shorter than {MIN_MASKED_LEN} characters, "
                "too short to tell apart from ordinary text, so it is not masked in what gym-run "
                "prints and writes (a real key is longer)"
            )
    return values


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def substitute_secrets(value: Any, secrets: Mapping[str, str]) -> Any:
    """A copy of `value` with every `{"$secret": NAME}` replaced by its resolved value."""
    if isinstance(value, dict):
        name = _secret_name(value)
        if name is not None:
            return secrets[name]
        return {k: substitute_secrets(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_secrets(v, secrets) for v in value]
    return value


def _secret_name(value: dict[str, Any]) -> str | None:
    if len(value) == 1 and isinstance(value.get(SECRET_MARKER), str):
        return value[SECRET_MARKER]
    return None


def env_var_for(key: str) -> str:
    """The environment variable that overrides an env.yaml key (policy_api_key -> POLICY_API_KEY)."""
    return key.upper().replace(".", "_").replace("-", "_")


def _resolve_one(
    name: str,
    ref: Mapping[str, Any],
    env_file: str | None,
    environ: Mapping[str, str],
    reader: _FileReader,
) -> str:
    source, key = ref["source"], ref["key"]
    if source == "environment":
        if key in environ:
            return environ[key]
        raise SecretError(f"secret {name!r}: environment variable {key} is not set")
    if source == "env_file":
        var = env_var_for(key)
        if environ.get(var):  # an empty variable (common in CI templates) does not override
            return environ[var]
        if env_file is None:
            raise SecretError(
                f"secret {name!r}: environment variable {var} is not set and the plan names no env.yaml"
            )
        found, why = reader.lookup(env_file, key)
        if found is not None:
            return found
        raise SecretError(f"secret {name!r}: environment variable {var} is not set and {why}")
    if source == "config":
        file = ref.get("file")
        if not file:
            raise SecretError(f"secret {name!r}: the plan names no config file for it; recompile")
        found, why = reader.lookup(file, key)
        if found is not None:
            return found
        raise SecretError(f"secret {name!r}: {why}")
    raise SecretError(f"secret {name!r}: unknown source {source!r}; recompile")


class _FileReader:
    """Reads each YAML file at most once per resolution."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[Any, str | None]] = {}

    def lookup(self, path: str, key: str) -> tuple[str | None, str]:
        """(value, "") when found; (None, why) naming the file and key otherwise."""
        data, problem = self._load(path)
        if problem is not None:
            return None, f"{path} {problem}"
        node: Any = data
        if isinstance(node, dict) and key in node:
            node = node[key]
        else:
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    return None, f"{path} has no key {key!r}"
                node = node[part]
        if node is None or isinstance(node, (dict, list)):
            return None, f"{path} key {key!r} is not a string"
        return str(node), ""

    def _load(self, path: str) -> tuple[Any, str | None]:
        if path not in self._cache:
            self._cache[path] = _read_yaml(path)
        return self._cache[path]


def _read_yaml(path: str) -> tuple[Any, str | None]:
    """The compiler's loader (size, depth and alias limits, no tags); its first problem, located,
    says why the file cannot be used. Its messages quote no values (env.yaml holds the secrets)."""
    try:
        return load_yaml(Path(path)).data, None
    except FileMissing:
        return None, "does not exist"
    except CompileError as exc:
        first = exc.diagnostics[0]
        if first.code == "GYM003":
            return None, "cannot be read"
        where = f" at line {first.location.line}" if first.location and first.location.line else ""
        return None, f"cannot be used{where} ({first.code}: {first.message[:160]})"


def server_specs(plan: Plan, environ: Mapping[str, str] | None = None) -> dict[str, ServerEntry]:
    """The plan's servers with secret references replaced by values (fails before anything starts)."""
    return substitute_secrets(plan["servers"], resolve_secrets(plan, environ))
