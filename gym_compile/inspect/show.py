"""Plans for people: plan.json -> checked document -> text rendered from templates/plan.txt.j2."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gym_compile.assets import template_env
from gym_compile.canonical import SECRET_MARKER, content_hash
from gym_compile.plan_reader import PlanNotJSON, PlanNotObject, PlanUnreadable, read_plan


@dataclass
class LoadedPlan:
    path: str
    plan: Mapping[str, Any] | None  # as read, valid or not; None when the file is not a plan at all
    problems: list[str] = field(default_factory=list)  # schema violations, a stale hash

    @property
    def hash_ok(self) -> bool:
        return self.plan is not None and self.plan.get("content_hash") == content_hash(self.plan)


def load_plan(path: Path) -> LoadedPlan:
    """Reads and checks a plan; a plan that breaks its schema is still shown, with the problems."""
    shown = str(path)
    try:
        found = read_plan(path)
    except PlanUnreadable as exc:
        return LoadedPlan(shown, None, [f"cannot read {shown}: {exc.reason}"])
    except PlanNotJSON as exc:
        bad = exc.cause
        where = f"{shown}:{bad.lineno}:{bad.colno}" if bad.lineno else shown
        return LoadedPlan(shown, None, [f"{where}: not JSON: {bad.reason}"])
    except PlanNotObject:
        return LoadedPlan(shown, None, [f"{shown}: not a plan (the top level is not an object)"])
    problems = [
        f"{shown}: $.{'.'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in found.schema_errors
    ]
    loaded = LoadedPlan(shown, found.document, problems)
    if "content_hash" in found.document and not found.hash_ok:
        loaded.problems.append(
            f"{shown}: content_hash does not match the contents (edited after compiling?)"
        )
    return loaded


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; a secret reference and an empty container are leaves."""
    if isinstance(value, dict) and value and set(value) != {SECRET_MARKER}:
        out: dict[str, Any] = {}
        for k, sub in value.items():
            out.update(flatten(sub, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def show_value(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {SECRET_MARKER}:
        return f"<secret {value[SECRET_MARKER]}>"
    return json.dumps(value, ensure_ascii=False)


def _context(loaded: LoadedPlan) -> dict[str, Any]:
    plan = loaded.plan or {}
    servers = []
    for name, server in sorted((plan.get("servers") or {}).items()):
        config = server.get("config") or {}
        servers.append(
            {
                "name": name,
                "type": server.get("type", "?"),
                "implementation": server.get("implementation", "?"),
                "settings": [(k, show_value(v)) for k, v in flatten(config).items()],
            }
        )
    job = plan.get("job")
    return {
        "path": loaded.path,
        "plan": plan,
        "servers": servers,
        "job": job,
        "job_params": [
            (k, show_value(v))
            for k, v in flatten(job.get("responses_create_params") or {}).items()
            if k
        ]
        if job
        else [],
        "job_spend": _spend(job) if job else [],
        "secrets": sorted((plan.get("secrets") or {}).items()),
        "sources": plan.get("sources") or [],
        "problems": loaded.problems,
        "hash_ok": loaded.hash_ok,
    }


def _spend(job: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The estimate, the budget, price overrides, the pass threshold, the response cache and Ray,
    as (label, text) lines."""
    from gym_compile.costing import estimate_line

    lines = []
    if job.get("estimate"):
        lines.append(
            (
                "estimate",
                estimate_line(job["estimate"], job.get("prices")).removeprefix("estimate "),
            )
        )
    budget = {k: v for k, v in (job.get("budget") or {}).items() if v is not None}
    if budget:
        lines.append(("budget", ", ".join(f"{k} {v}" for k, v in budget.items())))
    if job.get("prices"):
        lines.append(
            ("prices", ", ".join(sorted(job["prices"].get("models") or {})) + " (config overrides)")
        )
    if job.get("pass_threshold") is not None:
        lines.append(("passes", f"reward >= {job['pass_threshold']:g}"))
    if job.get("response_cache"):
        lines.append(("cache", job["response_cache"]["path"]))
    if job.get("ray"):
        ray = job["ray"]
        where = ray["address"] or "a local Ray on 127.0.0.1"
        workers = ray["workers"] or "one per CPU"
        lines.append(("ray", f"{where}, workers {workers}, {ray['resources_per_worker']} each"))
    return lines


def render_plan(loaded: LoadedPlan, template: str = "plan.txt.j2") -> str:
    """Sandboxed and strict: a template typo fails loudly instead of printing an empty field."""
    return template_env(html=False).get_template(template).render(**_context(loaded))
