"""A plan (its verifier possibly changed) and an existing rollouts file in, a new rollouts file
re-scored by that verifier out, without one call to the policy model.

Each final record of the old file is paired with its input row from the plan's dataset (the row
as the plan sends it, params override merged: what NeMo Gym's `eval reverify` calls the
materialized input) and the old `response`, and handed to the plan's resources server's verify.
Only that server and the model servers its config refers to (a judge) are started: the policy
cannot be called because it is not there. The new file goes through the same writer, ledger,
budget, progress, metrics and final-set pass as a run, so it is durable and resumable
(`--resume [--retry-failed]`); the old file is only read.

Records: ids are the plan's; a failed old rollout is carried over as failed (same error, it has
no response to score); an old rollout whose prompt differs from the plan's row is failed with
`InputMismatch` (the dataset changed under it). The policy's tokens of the old rollout are kept in
`usage_by_server` and marked carried (`_gym.reverify.carried_usage_by_server`): they count as
tokens of the rollout but are not billed again, so cost and budget see only the new judge calls.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Iterator, Mapping
from typing import Any

from gym_compile.plan_types import ErrorInfo, GymBlock, Plan, RolloutRecord, ServerEntry
from gym_run.collect.budget import Budget
from gym_run.collect.job import Job, execute
from gym_run.collect.record import error_info, indexed_record, ok_record, rollout_id
from gym_run.collect.result import JobResult, ProgressSpec, stderr_notice
from gym_run.collect.resume import FinalSet
from gym_run.collect.rollouts import Collector, Item, iter_rows
from gym_run.collect.writer import Existing
from gym_run.defaults import pass_threshold as threshold_for
from gym_run.endpoint.cache import cache_scope
from gym_run.endpoint.callstats import CURRENT_ROLLOUT, RolloutTrace
from gym_run.endpoint.usage import merge_usage_by_server, total_usage
from gym_run.errors import GymRunError, OutputExistsError, PlanError
from gym_run.plan import job_of
from gym_run.secrets import resolve_secrets, substitute_secrets
from gym_run.servers.builtin.agent import merge_params
from gym_run.servers.builtin.resources import ResourcesServer
from gym_run.servers.registry import Servers


def default_metrics_path(rollouts: str) -> str:
    stem = rollouts[: -len(".jsonl")] if rollouts.endswith(".jsonl") else rollouts
    return f"{stem}.metrics.json"


def _refs(value: Any) -> Iterator[str]:
    """Names of the servers a config refers to ({type: responses_api_models, name: ...})."""
    if isinstance(value, dict):
        if value.get("type") in ("responses_api_models", "resources_servers") and isinstance(
            value.get("name"), str
        ):
            yield value["name"]
        for child in value.values():
            yield from _refs(child)
    elif isinstance(value, list):
        for child in value:
            yield from _refs(child)


def verifier_servers(plan: Plan) -> tuple[str, str | None, dict[str, ServerEntry]]:
    """(resources server, policy model server, the servers to start: the verifier and what it
    refers to, transitively); the agent and its policy are not among them."""
    job = job_of(plan)
    agent = plan["servers"].get(job["agent"])
    config = (agent["config"] if agent else None) or {}
    resources = (config.get("resources_server") or {}).get("name")
    policy = (config.get("model_server") or {}).get("name")
    if not isinstance(resources, str) or resources not in plan["servers"]:
        raise PlanError(f"agent {job['agent']!r} has no resources server to verify with")
    wanted, todo = set(), [resources]
    while todo:
        name = todo.pop()
        if name in wanted or name not in plan["servers"]:
            continue
        wanted.add(name)
        todo.extend(_refs(plan["servers"][name].get("config")))
    return resources, policy, {n: s for n, s in plan["servers"].items() if n in wanted}


def _input_of(record: Mapping[str, Any]) -> Any:
    return (record.get("responses_create_params") or {}).get("input")


class _Reverify(Job):
    """A run whose items are old records and whose rollout is verify alone."""

    def __init__(self, plan: Plan, old: FinalSet, **kwargs: Any) -> None:
        super().__init__(plan, **kwargs)
        self.old = old
        self.resources_name, self.policy_name, _ = verifier_servers(plan)
        self.outside = 0  # old records beyond the plan's rows or repeats
        self.changed = {"up": 0, "down": 0, "same": 0}

    def items(self, retry_failed: bool) -> Generator[Item, None, None]:
        """(task, rollout, {row, old}) for every old final record not done in the new file yet;
        the plan's rows are read alongside (both are in task order), never held."""
        rows = iter_rows(self.job["input"]["path"], self.job["limit"])
        current: tuple[int, dict[str, Any]] | None = next(rows, None)
        for record in self.old:
            task, rollout = record.get("_ng_task_index"), record.get("_ng_rollout_index")
            if not isinstance(task, int) or not isinstance(rollout, int):
                continue
            while current is not None and current[0] < task:
                current = next(rows, None)
            if current is None or current[0] != task or rollout >= self.repeats:
                self.outside += 1
                continue
            if self.ledger.done(task * self.repeats + rollout, retry_failed=retry_failed):
                continue
            row = merge_params(current[1], self.job["responses_create_params"])
            yield task, rollout, {"row": row, "old": record}

    async def collect(
        self, specs: dict[str, ServerEntry], *, retry_failed: bool, handle_signals: bool
    ) -> None:
        async def body(servers: Servers) -> None:
            self.collector = _VerifyCollector(
                self,
                servers[self.resources_name],
                concurrency=self.job["concurrency"],
                sink=self.accept,
            )
            items = self.items(retry_failed)
            try:
                await self.start_collector(items, handle_signals)
            finally:
                items.close()  # the old file's ledger, if the run stopped early

        await self.with_servers(specs, body)
        if self.outside:
            self.notice(
                f"gym-run: {self.outside} rollouts of {self.old.path} are outside this plan "
                f"({self.job['input']['rows']} rows x {self.repeats} repeats, limit "
                f"{self.job['limit']}) and were left out"
            )

    def summarize(self) -> None:
        super().summarize()
        assert self.aggregate is not None
        self.aggregate["reverified_from"] = os.path.abspath(self.old.path)

    def note_change(self, before: Any, after: float) -> None:
        if isinstance(before, (int, float)):
            key = "up" if after > before else "down" if after < before else "same"
            self.changed[key] += 1


class _VerifyCollector(Collector):
    """The collector's bounded concurrency, stop and cancel; each item is one verify call."""

    def __init__(
        self, job: _Reverify, resources: ResourcesServer, *, concurrency: int, sink: Any
    ) -> None:
        super().__init__(
            resources,  # type: ignore[arg-type]
            plan_hash=job.plan["content_hash"],
            params_override={},
            concurrency=concurrency,
            sink=sink,
        )
        self.job = job
        self.resources = resources

    async def _one(self, item: Item) -> None:
        await self.sink(await self.verify_one(item))

    async def verify_one(self, item: Item) -> RolloutRecord:
        task, rollout, payload = item
        row, old = payload["row"], payload["old"]
        old_gym: Mapping[str, Any] = old.get("_gym") or {}
        origin = {"from": old_gym.get("id"), "reward_before": old.get("reward")}
        error: ErrorInfo = {"class": "Error", "message": "failed"}
        if old_gym.get("status") != "ok":
            error = old_gym.get("error") or error
            return self.failed(row, task, rollout, error, {**origin, "carried": True})
        if not isinstance(old.get("response"), dict):
            error = {"class": "NotReverifiable", "message": "the rollout has no response"}
            return self.failed(row, task, rollout, error, origin)
        if _input_of(old) != _input_of(row):
            error = {
                "class": "InputMismatch",
                "message": f"row {task} of the plan's dataset is not the input this rollout "
                "answered (did the dataset change?); reverify re-scores the same prompts",
            }
            return self.failed(row, task, rollout, error, origin)
        trace = RolloutTrace()
        CURRENT_ROLLOUT.set(trace)
        started = time.perf_counter()
        try:
            with cache_scope(sample=rollout) as tally:
                result = await self.resources.verify({**row, "response": old["response"]})
            reward = result.get("reward") if isinstance(result, dict) else None
            if not isinstance(reward, (int, float)) or isinstance(reward, bool):
                raise TypeError(f"{self.resources.name}/verify returned no numeric 'reward'")
        except Exception as exc:
            return self.failed(row, task, rollout, error_info(exc), origin, trace.retries)
        self.job.note_change(old.get("reward"), float(reward))
        carried = {
            s: u
            for s, u in (old_gym.get("usage_by_server") or {}).items()
            if s == self.job.policy_name
        }
        by_server = merge_usage_by_server(carried, result.pop("_judge_usage", None))
        result["_gym"] = {
            "usage": total_usage(by_server),
            "usage_by_server": by_server,
            "model_calls": old_gym.get("model_calls"),
            "tool_calls": old_gym.get("tool_calls"),
            "latency_s": old_gym.get("latency_s"),
            "reverify": {
                **origin,
                "verify_latency_s": round(time.perf_counter() - started, 6),
                "carried_usage_by_server": carried,
            },
        }
        return ok_record(
            result,
            plan_hash=self.plan_hash,
            task=task,
            rollout=rollout,
            retries=trace.retries,
            cache=tally,
        )

    def failed(
        self,
        row: dict[str, Any],
        task: int,
        rollout: int,
        error: ErrorInfo,
        origin: dict[str, Any],
        retries: int | None = None,
    ) -> RolloutRecord:
        gym: GymBlock = {
            "id": rollout_id(self.plan_hash, task, rollout),
            "status": "failed",
            "error": error,
            "reverify": origin,
        }
        if retries is not None:
            gym["retries"] = retries
        return indexed_record(row, task, rollout, None, gym)


async def reverify_job(
    plan: Plan,
    rollouts: str,
    output: str,
    *,
    existing: Existing = "refuse",
    retry_failed: bool = False,
    environ: Any = None,
    progress: ProgressSpec | None = None,
    handle_signals: bool = False,
    resume_hint: str = "gym-run reverify PLAN ROLLOUTS -o NEW --resume",
    notice: Any = None,
    use_cache: bool = True,
    max_usd: float | None = None,
    max_tokens: int | None = None,
    pass_threshold: float | None = None,
    junit_path: str | None = None,
    grace_s: float = 30.0,
) -> tuple[JobResult, dict[str, int]]:
    """Re-scores `rollouts` into `output` with the plan's verifier; returns the job result and
    how many rewards went up, down or stayed."""
    if not plan.get("job"):
        raise PlanError("this plan has no collection job (compile with +agent_name=...)")
    if not os.path.isfile(rollouts):
        raise GymRunError(f"there are no rollouts at {rollouts}")
    if os.path.abspath(output) == os.path.abspath(rollouts) or (
        os.path.exists(output) and os.path.samefile(output, rollouts)
    ):
        raise OutputExistsError(
            f"-o {output} is the rollouts file being re-verified; write the re-scored ones to a new file"
        )
    job = job_of(plan)
    replan: Plan = {
        **plan,
        "job": {**job, "output": {"path": output, "metrics_path": default_metrics_path(output)}},
    }
    _res, _policy, needed = verifier_servers(replan)
    specs = substitute_secrets(needed, resolve_secrets({**replan, "servers": needed}, environ))
    state = _Reverify(
        replan,
        FinalSet(rollouts),
        notice=notice or stderr_notice,
        resume_hint=resume_hint,
        grace_s=grace_s,
        budget=Budget.from_plan(job, max_usd=max_usd, max_tokens=max_tokens),
    )
    state.cache_spec = job.get("response_cache") if use_cache else None
    state.pass_threshold = threshold_for(job, pass_threshold)
    state.junit_path = junit_path
    result = await execute(
        state,
        specs,
        existing=existing,
        retry_failed=retry_failed,
        handle_signals=handle_signals,
        progress=progress or ProgressSpec(show=False),
    )
    return result, dict(state.changed)
