"""The environments of a NeMo Gym tree, and each one compiled to a plan that runs it on stand-ins.

What counts as an environment: an agent instance (`<name>: {responses_api_agents: {<impl>: ...}}`)
whose config names a `resources_server`, in the merged config (includes applied) of a file NeMo
Gym's own catalog reads as a runnable unit (nemo_gym/registry.py): `resources_servers/*/configs/
*.yaml` and `environments/*/config*.yaml`. `benchmarks/` is left out: its configs carry no example
data (each is prepared by a download). The same agent reached from two files (an environment's
`config.yaml` that only includes a resources server's config) counts once: agents are keyed by
their name, their merged config and their resources server's merged config.

Each one is compiled as a user would run it without keys: the config, a stand-in model under every
model server name the config defines or refers to (a defined one has its implementation deleted
with NeMo Gym's `_delete_key`, so no model call can leave the machine), an env.yaml with the usual
policy_*/judge_* variables (their URLs name a stand-in endpoint the run serves on a loopback port:
some servers call `${policy_base_url}` themselves, as they would a user's vLLM), the first row of
the agent's example data as the input (repeated as often as a verifier that compares a prompt's
rollouts waits for), and `nemo_gym: {processes: all}` (NeMo Gym's code for every
server except our model servers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gym_compile.compiler import compile_config
from gym_compile.merge import merge
from gym_compile.options import Options

GLOBS = ("resources_servers/*/configs/*.yaml", "environments/*/config*.yaml")
MODELS = "responses_api_models"
AGENTS = "responses_api_agents"
POLICY = "policy_model"
POLICY_MODEL = "stand-in-1"  # as examples/simple_weather/stand_in_model.yaml names it
STAND_IN = "stand_in_model"
# What a NeMo Gym user keeps in env.yaml; the URLs name the run's stand-in endpoint (ENDPOINT_PORT).
ENV_YAML = """\
policy_base_url: http://127.0.0.1:{port}/v1
policy_api_key: not-a-key
policy_model_name: stand-in-1
judge_base_url: http://127.0.0.1:{port}/v1
judge_api_key: not-a-key
judge_model_name: stand-in-1
"""
ENDPOINT_PORT = "endpoint.port"  # the file in the work folder that says which port


@dataclass
class Environment:
    """One agent of one config file, with what it takes to run it."""

    file: str  # relative to the tree
    agent: str
    agent_impl: str
    resources_server: str
    resources_impl: str | None
    models: dict[str, list[str]] = field(default_factory=dict)  # name -> implementations written
    input_path: str | None = None  # relative to the tree: where its first row comes from
    repeats: int = 1  # a verifier that compares a prompt's rollouts waits for this many

    @property
    def key(self) -> str:
        return f"{self.file}::{self.agent}"


def find_environments(tree: Path) -> list[Environment]:
    """Every environment of the tree, in file then agent order, each once."""
    seen: set[str] = set()
    out: list[Environment] = []
    for pattern in GLOBS:
        for path in sorted(tree.glob(pattern)):
            data = merge([path], None, [], partial=True, nemo_gym_roots=(tree,)).data
            for env, identity in _agents(tree, path, data):
                if identity not in seen:
                    seen.add(identity)
                    out.append(env)
    return out


def _agents(tree: Path, path: Path, data: dict[str, Any]) -> list[tuple[Environment, str]]:
    out = []
    models = _model_servers(data)
    for name, instance in data.items():
        block = instance.get(AGENTS) if isinstance(instance, dict) else None
        if not isinstance(block, dict):
            continue
        for impl, config in block.items():
            ref = config.get("resources_server") if isinstance(config, dict) else None
            if not isinstance(ref, dict) or not isinstance(ref.get("name"), str):
                continue
            rs_name = ref["name"]
            rs = data.get(rs_name)
            rs_impls = (
                list((rs or {}).get("resources_servers") or {}) if isinstance(rs, dict) else []
            )
            env = Environment(
                file=str(path.relative_to(tree)),
                agent=name,
                agent_impl=str(impl),
                resources_server=rs_name,
                resources_impl=rs_impls[0] if rs_impls else None,
                models=models,
            )
            env.input_path = _input(tree, config, env.resources_impl)
            env.repeats = _cohort(rs)
            identity = json.dumps([name, impl, config, rs], sort_keys=True, default=str)
            out.append((env, identity))
    return out


def _cohort(resources: Any) -> int:
    """`num_rollouts_per_prompt` of a resources server that compares a prompt's rollouts
    (genrm_compare: its config says to collect with as many repeats), else 1."""
    impls = resources.get("resources_servers") if isinstance(resources, dict) else None
    for config in (impls or {}).values():
        n = config.get("num_rollouts_per_prompt") if isinstance(config, dict) else None
        if isinstance(n, int) and n > 1:
            return n
    return 1


def _model_servers(data: dict[str, Any]) -> dict[str, list[str]]:
    """Model server names the config defines (with their implementations) or refers to ([])."""
    names: dict[str, list[str]] = {POLICY: []}
    _refs(data, names)
    for name, instance in data.items():
        if isinstance(instance, dict) and isinstance(instance.get(MODELS), dict):
            names[name] = [str(i) for i in instance[MODELS]]
    return dict(sorted(names.items()))


def _refs(value: Any, names: dict[str, list[str]]) -> None:
    if isinstance(value, dict):
        name = value.get("name")
        if value.get("type") == MODELS and isinstance(name, str) and "${" not in name:
            names.setdefault(name, [])
        for v in value.values():
            _refs(v, names)
    elif isinstance(value, list):
        for v in value:
            _refs(v, names)


def _input(tree: Path, agent: dict[str, Any], resources_impl: str | None) -> str | None:
    """The agent's example dataset, else another of its datasets that is there, else the resources
    server's data/example.jsonl (NeMo Gym's convention): the first that exists and has a row."""
    datasets = [d for d in agent.get("datasets") or [] if isinstance(d, dict)]
    datasets.sort(key=lambda d: d.get("type") != "example")
    candidates = [str(d.get("jsonl_fpath")) for d in datasets if d.get("jsonl_fpath")]
    if resources_impl:
        candidates.append(f"resources_servers/{resources_impl}/data/example.jsonl")
    for rel in candidates:
        if "${" not in rel and first_row(tree / rel) is not None:
            return rel
    return None


def first_row(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    return line.rstrip("\n") + "\n"
    except (OSError, UnicodeDecodeError):
        return None
    return None


def models_overlay(env: Environment) -> dict[str, Any]:
    """A stand-in under every model server name; a written implementation is deleted first."""
    out: dict[str, Any] = {}
    for name, written in env.models.items():
        block: dict[str, Any] = {STAND_IN: {"model": POLICY_MODEL if name == POLICY else name}}
        others = [i for i in written if i != STAND_IN]
        if others:
            block["_delete_key"] = ", ".join(others)
        out[name] = {MODELS: block}
    return out


@dataclass
class Compiled:
    plan: dict[str, Any] | None
    codes: tuple[str, ...] = ()
    first: str = ""  # the first error, one line


def compile_environment(
    tree: Path, env: Environment, work: Path, python: str, startup_timeout_s: float, port: int
) -> Compiled:
    """The environment's plan (input: its first row), or gym-compile's error codes. `port`: where
    the run serves the stand-in endpoint env.yaml's URLs name."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "env.yaml").write_text(ENV_YAML.format(port=port), encoding="utf-8")
    (work / ENDPOINT_PORT).write_text(str(port), encoding="utf-8")
    (work / "models.yaml").write_text(yaml.safe_dump(models_overlay(env)), encoding="utf-8")
    assert env.input_path is not None
    (work / "input.jsonl").write_text(first_row(tree / env.input_path) or "", encoding="utf-8")
    nemo = f"{{python: {python}, processes: all, startup_timeout_s: {startup_timeout_s:g}}}"
    result = compile_config(
        [tree / env.file, work / "models.yaml"],
        [
            f"+agent_name={env.agent}",
            f"+input_jsonl_fpath={work / 'input.jsonl'}",
            f"+output_jsonl_fpath={work / 'out' / 'rollouts.jsonl'}",
            f"+nemo_gym={nemo}",
            f"+num_repeats={env.repeats}",
            f"+num_samples_in_parallel={env.repeats}",
        ],
        Options(env=work / "env.yaml", env_required=True, nemo_gym_roots=(tree,)),
    )
    if result.ok and result.plan is not None:
        (work / "plan.json").write_text(json.dumps(result.plan), encoding="utf-8")
        return Compiled(result.plan)
    errors = [d for d in result.diagnostics if d.severity == "error"]
    first = f"{errors[0].code} {errors[0].message}".replace("\n", " ")[:300] if errors else ""
    return Compiled(None, tuple(sorted({d.code for d in errors})), first)
