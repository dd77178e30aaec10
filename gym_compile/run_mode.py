"""run_mode: validated servers + the `nemo_gym:` setting in, how gym-run runs each server out.

Three kinds, one protocol (shared/DESIGN.md): `builtin` (gym-run's own implementation,
in-process), `nemo` (NeMo Gym's own server code, which gym-run starts as a process: the plan
carries the folder the compiler found and the entrypoint), `url` (already running; an instance
says `url: http://host:port` beside its other fields and nothing is started for it). Which one:

- `url:` given: url;
- an implementation gym-run does not build in: nemo (its source must be found, see nemo/roots.py);
- a built-in one: builtin, unless `nemo_gym: {processes: all}` (every instance whose NeMo Gym
  source is found, except the model servers gym-run implements, so model calls stay ours) or
  `processes: [names]` asks for NeMo Gym's own code.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gym_compile import schema_catalog as catalog
from gym_compile.diagnostics import Diagnostic, did_you_mean, json_path
from gym_compile.link import resolve_path
from gym_compile.nemo.blocks import named_blocks, secret_leaf
from gym_compile.nemo.roots import find_roots_explained, find_server_source
from gym_compile.plan_types import NemoGym
from gym_compile.secretscan import looks_secret, secret_key_name
from gym_compile.validate import Server, Validated

URL_KEY = "url"

#: What gym-run builds in (runtime/gym_run/servers/registry.py FACTORIES; a test keeps them equal).
BUILT_IN = frozenset(
    {
        ("responses_api_models", "openai_model"),
        ("responses_api_models", "stand_in_model"),
        ("resources_servers", "example_simple_weather"),
        ("resources_servers", "example_single_tool_call"),
        ("resources_servers", "example_cpu_bound"),
        ("resources_servers", "equivalence_llm_judge"),
        ("resources_servers", "answer_match"),
        ("responses_api_agents", "simple_agent"),
    }
)
#: Model servers whose calls gym-run makes itself (retries, cache, cost): never a process by "all".
OUR_MODELS = frozenset(
    {("responses_api_models", "openai_model"), ("responses_api_models", "stand_in_model")}
)


def decide_runs(v: Validated, extra_roots: Sequence[Path] = ()) -> dict[str, dict[str, Any]]:
    """name -> {"run": ...} plus `url` or `source` (none for builtin, the plan's default);
    problems go to v.diagnostics (GYM080-082)."""
    given = v.globals.get("nemo_gym")
    settings: dict[str, Any] = given if isinstance(given, dict) else {}
    forced = _forced(v, settings.get("processes", "auto"))
    roots: list[Any] | None = None
    runs: dict[str, dict[str, Any]] = {}
    for name, server in sorted(v.servers.items()):
        if not server.known:
            continue  # kept only so references reach it; its missing source is GYM036 already
        written = _written(v, server)
        if URL_KEY in written:
            url = _url(v, server, written[URL_KEY])
            if url is not None:
                runs[name] = {"run": "url", "url": url}
                _as_written(server, written)
            continue
        key = (server.type, server.implementation)
        wants_nemo = (
            key not in BUILT_IN
            or (forced is ALL and key not in OUR_MODELS)
            or (isinstance(forced, set) and name in forced)
        )
        if not wants_nemo:
            continue  # builtin: the plan's default, written as nothing (plans stay as they were)
        if roots is None:
            roots = getattr(v, "roots", None) or find_roots_explained(
                [d.path for d in v.resolved.merged.configs], extra_roots
            )
        entrypoint = written.get("entrypoint")
        found = find_server_source(roots, server.type, server.implementation, entrypoint)
        if found is not None:
            parts = Path(server.implementation).parts  # may be nested: a/b is <type>/a/b/
            folder = next(
                (
                    p
                    for p in found.parents
                    if p.parts[-len(parts) :] == parts
                    and p.parents[len(parts) - 1].name == server.type
                ),
                found.parent,
            )
            runs[name] = {
                "run": "nemo",
                "source": {"dir": str(folder), "entrypoint": os.path.relpath(found, folder)},
            }
            _as_written(server, written)
        elif not (key in BUILT_IN and forced is ALL):  # "all": where NeMo Gym has its own
            _no_source(v, server, roots)
    _python(v, settings)
    _secret_blocks(v, runs)
    return runs


def _named_by_processes(v: Validated, runs: dict[str, dict[str, Any]]) -> set[str]:
    """Top-level blocks named by a server that runs NeMo Gym's code (nemo/blocks.py)."""
    nemo = [s.config for n, s in v.servers.items() if runs.get(n, {}).get("run") == "nemo"]
    return named_blocks(nemo)


def _secret_blocks(v: Validated, runs: dict[str, dict[str, Any]]) -> None:
    """GYM083: a block a NeMo Gym server names holds a secret, which gym-run does not pass on."""
    for key in sorted(_named_by_processes(v, runs)):
        value = v.globals.get(key)
        leaf = secret_leaf(value) if isinstance(value, dict) else None
        if leaf is None:
            continue
        path = (key, *leaf.split("."))
        v.diagnostics.append(
            Diagnostic(
                "GYM083",
                f"'{key}' holds a secret ({leaf}): gym-run passes no secret in NeMo Gym's "
                f"global config, so the servers that name '{key}' will not find it",
                v.location(path) or v.location((key,)),
                json_path((key,)),
                severity="warning",
                hints=(
                    "run the server that needs it yourself and give its instance "
                    "url: http://host:port",
                ),
            )
        )


class _All:
    pass


ALL = _All()


def _forced(v: Validated, value: Any) -> set[str] | _All:
    """`processes`: "auto" (none forced), "all", or instance names (each must exist)."""
    if value in (None, "auto"):
        return set()
    if value == "all":
        return ALL
    names = {str(n) for n in value} if isinstance(value, list) else set()
    for index, name in enumerate(value if isinstance(value, list) else []):
        if str(name) not in v.servers:
            path = ("nemo_gym", "processes", index)
            v.diagnostics.append(
                Diagnostic(
                    "GYM082",
                    f"nemo_gym.processes names '{name}', which is not a server instance",
                    v.location(path),
                    json_path(path),
                    hints=did_you_mean(str(name), list(v.servers)),
                )
            )
    return names


def _as_written(server: Server, written: dict[str, Any]) -> None:
    """The config NeMo Gym's code reads. From a schema gym-compile ships (our canonical names and
    gym-run's own settings): the config as written. From a schema derived from NeMo Gym's source:
    with its defaults, but no null the user did not write (NeMo Gym's `x: int = None` refuses an
    explicit null that its own default would be)."""
    if server.implementation in catalog.implementations()[server.type]:
        server.config = {k: copy.deepcopy(v) for k, v in written.items() if k != URL_KEY}
        server.renamed = {}
    else:
        server.config = {k: v for k, v in server.config.items() if v is not None or k in written}


def _written(v: Validated, server: Server) -> dict[str, Any]:
    """The implementation's fields as resolved, before validation dropped or renamed any."""
    node: Any = v.resolved.data
    for part in server.source_path:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _url(v: Validated, server: Server, value: Any) -> str | None:
    path = server.source_path + (URL_KEY,)
    if v.resolved.is_failed(path):
        return None  # an unresolved ${...}: reported where it is
    problem = None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None:
        problem = f"url must be a string like http://127.0.0.1:8000, got {type(value).__name__}"
    elif parts.scheme not in ("http", "https") or not parts.hostname:
        problem = f"url {value!r} is not an http:// or https:// address with a host"
    elif parts.path not in ("", "/") or parts.query or parts.fragment:
        problem = f"url {value!r} has a path; NeMo Gym reaches a server at host:port only"
    else:
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            problem = f"url {value!r} has an invalid port"
    if problem is None:
        return value.rstrip("/") if isinstance(value, str) else None
    v.diagnostics.append(
        Diagnostic(
            "GYM080",
            problem,
            v.location(path),
            json_path(path),
            hints=("url: http://127.0.0.1:8000   # where the server already runs",),
        )
    )
    return None


def _no_source(v: Validated, server: Server, roots: list[Any]) -> None:
    where = [r.describe() if hasattr(r, "describe") else str(r) for r in roots]
    v.diagnostics.append(
        Diagnostic(
            "GYM081",
            f"'{server.name}' needs NeMo Gym's own {server.type}/{server.implementation} to run, "
            "and its source was not found",
            v.location(server.source_path),
            json_path(server.source_path),
            hints=(
                "looked in: " + ("; ".join(where) or "no NeMo Gym root"),
                "install nemo-gym, name its tree with --nemo-gym-root or NEMO_GYM_EXTRA_ROOTS, "
                "or give the instance url: http://host:port of a running server",
            ),
        )
    )


def _python(v: Validated, settings: dict[str, Any]) -> None:
    """nemo_gym.python, made absolute against the file that names it, must be a program."""
    value = settings.get("python")
    path = ("nemo_gym", "python")
    if not isinstance(value, str) or not value or v.resolved.is_failed(path):
        return
    resolved = resolve_path(v, path, value)
    if resolved.is_file() and os.access(resolved, os.X_OK):
        settings["python"] = str(resolved)
        return
    v.diagnostics.append(
        Diagnostic(
            "GYM082",
            f"nemo_gym.python {value!r} is not an executable file ({resolved})",
            v.location(path),
            json_path(path),
            hints=("nemo_gym: {python: /path/to/venv/bin/python}   # a Python with nemo-gym",),
        )
    )


def plan_settings(v: Validated) -> NemoGym | None:
    """The plan's `nemo_gym` block: when the config has `nemo_gym:` or a server runs NeMo Gym's
    code. `globals`: the config's own top-level values (env.yaml variables such as
    policy_model_name), which NeMo Gym's servers may read from the global config, except secrets
    (a server that needs one reads it from its own config, where the plan refers to it)."""
    given = v.globals.get("nemo_gym")
    settings: dict[str, Any] = given if isinstance(given, dict) else {}
    if not settings and not any(r.get("run") == "nemo" for r in v.runs.values()):
        return None
    known = catalog.validator("globals.schema.json").schema["properties"]
    shared: dict[str, Any] = {
        key: value
        for key, value in sorted(v.globals.items())
        if key not in known
        and isinstance(value, (str, int, float, bool))
        and not secret_key_name(key)
        and not looks_secret(value)
    }
    # the blocks NeMo Gym's servers name (a sandbox provider), as its global config holds them
    for key in sorted(_named_by_processes(v, v.runs)):
        value = v.globals.get(key)
        if key not in known and isinstance(value, dict) and secret_leaf(value) is None:
            shared[key] = value
    return {
        "python": settings.get("python"),
        "startup_timeout_s": settings.get("startup_timeout_s"),
        "globals": shared,
    }
