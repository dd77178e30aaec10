"""plan: linked config -> the canonical, hashed, secret-free plan document, written atomically."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from gym_compile import __version__
from gym_compile import schema_catalog as catalog
from gym_compile.atomic import atomic_file
from gym_compile.canonical import (
    FORMAT_VERSION,
    SECRET_MARKER,
    content_hash,
    file_sha256,
    sibling_path,
)
from gym_compile.diagnostics import CMDLINE, Diagnostic, has_errors, json_path
from gym_compile.files import real_path
from gym_compile.interpolate import Origin
from gym_compile.link import Linked
from gym_compile.plan_types import Job, Plan, SecretRef, ServerEntry, Source
from gym_compile.run_mode import plan_settings
from gym_compile.secret_paths import full_path, secret_leaves
from gym_compile.secretscan import leaves, secret_key_name
from gym_compile.signing import PlanKeyError, sign
from gym_compile.validate import Server, Validated


def build_plan(linked: Linked) -> Plan:
    v = linked.validated
    merged = v.resolved.merged
    secrets: dict[str, SecretRef] = {}
    servers = {
        name: _server_entry(s, _redact(v, s, secrets), v.runs.get(name, {}))
        for name, s in sorted(v.servers.items())
    }
    sources: list[Source] = [
        {"role": "config", "path": str(d.path), "sha256": file_sha256(str(d.path))}
        for d in merged.configs
    ]
    if merged.env is not None:
        sources.append(
            {
                "role": "env",
                "path": str(merged.env.path),
                "sha256": file_sha256(str(merged.env.path)),
            }
        )
    job: Job | None = None
    if linked.job is not None:
        j = linked.job
        sources.append({"role": "input", "path": str(j.input.path), "sha256": j.input.sha256})
        job = {
            "agent": j.agent,
            "input": {"path": str(j.input.path), "sha256": j.input.sha256, "rows": j.input.rows},
            "output": {"path": str(j.output), "metrics_path": str(metrics_path(j.output))},
            "limit": j.limit,
            "num_repeats": j.num_repeats,
            "concurrency": j.concurrency,
            "responses_create_params": j.responses_create_params,
            "estimate": j.spend.estimate.as_dict() if j.spend else None,
            "budget": j.spend.budget if j.spend else None,
            "prices": j.spend.prices if j.spend else None,
            "response_cache": j.response_cache,
        }
        if j.ray is not None:  # only when set: plans without it keep their hash
            job["ray"] = j.ray
        if j.pass_threshold is not None:  # likewise
            job["pass_threshold"] = j.pass_threshold
    plan: Plan = {
        "format_version": FORMAT_VERSION,
        "compiler": {"name": "gym-compile", "version": __version__},
        "sources": sources,
        "env_file": str(merged.env.path) if merged.env is not None else None,
        "secrets": dict(sorted(secrets.items())),
        "servers": servers,
        "job": job,
        "content_hash": "",  # set below: the hash covers the rest of the finished plan
    }
    settings = plan_settings(v)
    if settings is not None:
        plan["nemo_gym"] = settings
    _refuse_leaks(v, plan)
    plan["content_hash"] = content_hash(plan)
    if secrets and not has_errors(v.diagnostics):
        try:
            sign(plan)  # gym-run sends secrets only for plans signed with this user's key
        except PlanKeyError as exc:
            v.diagnostics.append(Diagnostic("GYM062", f"cannot sign the plan: {exc}", None))
    catalog.validator("plan.schema.json").validate(plan)  # our own contract: a failure is our bug
    return plan


def _server_entry(server: Server, config: dict[str, Any], run: Mapping[str, Any]) -> ServerEntry:
    """A server as the plan states it: `run` adds run/url/source (nothing for builtin), as
    run_mode decided; the type is one the schema catalogue knows."""
    entry = {"type": server.type, "implementation": server.implementation, "config": config}
    return cast(ServerEntry, {**entry, **run})


def metrics_path(output: Path) -> Path:
    return Path(sibling_path(str(output), ".metrics.json"))


def _redact(v: Validated, server: Server, secrets: dict[str, SecretRef]) -> dict[str, Any]:
    """Replaces every secret by {"$secret": NAME} and records where NAME is read at run time.

    A value is secret when its schema field is writeOnly, when it comes whole from an env.yaml key
    or environment variable whose name looks secret (policy_api_key, HF_TOKEN), when it looks
    like a credential (sk-..., Bearer ...), or when it is an HTTP header value that carries a
    credential (Authorization, api-key, x-api-key) or comes from env.yaml or the environment
    (`X-Org: ${oc.env:ORG}`): the plan is meant to be committed and shared."""
    config = copy.deepcopy(server.config)
    for rel in list(secret_leaves(v, server, config)):
        node = config
        for part in rel[:-1]:
            node = node[part]
        path = full_path(server, rel)
        value = node[rel[-1]]
        ref = _secret_ref(v, path, value)
        if ref is None:
            continue
        name, where = ref
        secrets[name] = where
        node[rel[-1]] = {SECRET_MARKER: name}
    return config


def _refuse_leaks(v: Validated, plan: Plan) -> None:
    """The last net: no value of a secret-named env.yaml key or variable may stand anywhere in the plan."""
    if has_errors(v.diagnostics):
        return  # the secret that failed was reported where it was written
    merged = v.resolved.merged
    values = {
        str(val)
        for key, val in (merged.env.data.items() if merged.env else ())
        if secret_key_name(key) and val is not None
    }
    values |= {
        os.environ[o.key]
        for origins in v.resolved.origins.values()
        for o in origins
        if o.source == "environment" and secret_key_name(o.key) and o.key in os.environ
    }
    values = {val for val in values if len(val) >= 6}  # shorter ones would match innocent text
    if not values:
        return
    for rel, leaf in leaves(plan, ()):
        if isinstance(leaf, str) and any(val in leaf for val in values):
            v.diagnostics.append(
                Diagnostic(
                    "GYM061",
                    f"a secret value would be written into the plan at {json_path(rel)}",
                    None,
                    json_path(rel),
                    hints=("refer to the secret as a whole value: key: ${name}",),
                )
            )


def _secret_ref(v: Validated, path: tuple[Any, ...], value: Any) -> tuple[str, SecretRef] | None:
    origins = v.resolved.origins.get(path, [])
    loc = v.location(path)
    if origins and (
        len(origins) > 1 or not isinstance(value, str) or _embedded(v, origins[0], value)
    ):
        v.diagnostics.append(
            Diagnostic(
                "GYM061",
                "a secret must be a whole value from one place: exactly one ${...} reference or one "
                "literal (the plan cannot keep a secret that is part of a longer string)",
                loc,
                json_path(path),
                hints=("write api_key: ${policy_api_key} and keep the value in env.yaml",),
            )
        )
        return None
    if origins and origins[0].source == "env_file":
        return origins[0].key, {"source": "env_file", "key": origins[0].key}
    if origins and origins[0].source == "environment":
        return origins[0].key, {"source": "environment", "key": origins[0].key}
    literal_at = origins[0].location if origins else loc
    if literal_at is None or literal_at.file == CMDLINE:
        v.diagnostics.append(
            Diagnostic(
                "GYM061",
                "a secret given on the command line cannot be kept out of the plan",
                loc,
                json_path(path),
                hints=(
                    "put it in env.yaml (e.g. policy_api_key: ...) and refer to it as ${policy_api_key}",
                ),
            )
        )
        return None
    # a literal in a config file works, and the validate stage has warned about it (GYM060)
    key = origins[0].key if origins else ".".join(map(str, path))
    return key, {"source": "config", "key": key, "file": str(real_path(literal_at.file))}


def _embedded(v: Validated, origin: Origin, value: Any) -> bool:
    """True when the secret's source holds something other than the whole value (e.g. the config
    wrote "Bearer ${token}" or "${token}x"): the plan could only keep it by keeping the secret."""
    merged = v.resolved.merged
    if origin.source == "env_file" and merged.env is not None:
        return merged.env.data.get(origin.key) != value
    if origin.source == "environment":
        return os.environ.get(origin.key) != value
    return False  # a literal in a config file: the reference points at that literal


def write_plan(plan: Mapping[str, Any], out: Path) -> None:
    """A reader never sees half a plan, and a failed write leaves the old one."""
    with atomic_file(out) as fh:
        json.dump(plan, fh, indent=2, sort_keys=True, ensure_ascii=False)
        fh.write("\n")
