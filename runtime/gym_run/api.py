"""gym-run from Python (notebooks, training loops): run a plan, re-verify, compare, aggregate.

The same code path as the command line, so the same guarantees: every record is on disk before
you see it (fsync'ed, whole lines), a failed rollout is a record, not an exception; resume runs
only what is missing and never duplicates; budgets, retries, the response cache and secrets
behave as documented for `gym-run`. Errors a user can fix raise `gym_run.errors.GymRunError`
(with `.exit_code`, the code the CLI would exit with); nothing is printed unless asked.

    from gym_compile.api import compile_plan
    from gym_run.api import Run, run_sync

    plan = compile_plan(["env.yaml-less/simple_weather.yaml"]).raise_for_errors()
    result = run_sync(plan, overwrite=True)           # or: await run(plan, ...)
    print(result.aggregate["outcome"]["reward_mean"])

    async for record in Run(plan, resume=True):       # records as they land on disk
        print(record["_ng_task_index"], record.get("reward"))

docs/python-api.md describes every function and option.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from gym_compile.plan_types import Plan, RolloutRecord
from gym_run.collect.options import JobKeywords, JobOptions
from gym_run.collect.result import JobResult, ProgressSpec
from gym_run.collect.resume import FinalSet
from gym_run.collect.reverify import reverify_job
from gym_run.collect.runner import run_job
from gym_run.metrics.aggregate import aggregate
from gym_run.metrics.nemo import aggregate_metrics
from gym_run.plan import load_plan
from gym_run.report.compare import Comparison, compare_files
from gym_run.scale.choose import LOCAL, ScaleArgs, resolve

if sys.version_info >= (3, 11):
    from typing import Unpack
elif TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "Run",
    "RunResult",
    "aggregate",
    "aggregate_metrics",
    "compare",
    "final_records",
    "load_plan",
    "reverify",
    "run",
    "run_sync",
]

log = logging.getLogger("gym_run")
MAX_PENDING = 1024


def _plan_dict(plan: Any) -> Plan:
    """A Plan (gym_compile.api), a plan dict, or the path of a plan file (verified as gym-run does).
    A plan given as an object is taken to be what gym-compile made (the one cast of it)."""
    if isinstance(plan, (str, os.PathLike)):
        return load_plan(plan, warn=log.warning)
    data = getattr(plan, "data", plan)
    if not isinstance(data, Mapping):
        raise TypeError(f"plan must be a Plan, a plan dict or a path, not {type(plan).__name__}")
    return cast(Plan, dict(data))


def final_records(rollouts: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The final record of every rollout of a file, in input order (one per id), streamed."""
    return iter(FinalSet(os.fspath(rollouts)))


@dataclass
class RunResult:
    """A finished run: the metrics document, where things are, and the exit code the CLI gives."""

    job: JobResult
    exit_code: int

    @property
    def metrics(self) -> dict[str, Any]:
        return self.job.metrics

    @property
    def aggregate(self) -> dict[str, Any]:
        return self.job.aggregate

    @property
    def counts(self) -> dict[str, int]:
        return self.job.counts

    @property
    def rollouts_path(self) -> str:
        return self.job.rollouts_path

    @property
    def metrics_path(self) -> str:
        return self.job.metrics_path

    def records(self) -> Iterator[dict[str, Any]]:
        """The final set on disk, in input order (streamed: a million rollouts are fine)."""
        return final_records(self.rollouts_path)


class Run:
    """One run of a plan, iterated asynchronously: each final record once it is on disk, in the
    order the file gets them. After the loop, `result` holds the RunResult.

        async with Run(plan) as records:
            async for record in records:
                ...   # break whenever: leaving the block stops the run and waits for it

    Stopping early (break, an exception, cancellation) is a hard stop: rollouts in flight are
    abandoned, what is on disk stays, and `Run(plan, resume=True)` finishes the rest. Without
    `async with`, a loop left early is cleaned up only when Python finalizes the iterator, so
    use the block when you may stop early. A consumer slower than the run slows the run (at
    most `max_pending` records wait for you).

    Scale-out, as gym-run's flags: `ray=True` a local Ray, `ray="host:port"` a cluster,
    `ray=False` this process even when the plan has a ray: block, `ray=None` (default) what the
    plan says; `ray_workers`, `ray_worker_concurrency`, `ray_worker_cpus` override its block;
    `shard="K/N"` runs one slice into its own file (`gym-run merge` joins them). ValueError
    when they contradict each other."""

    def __init__(
        self,
        plan: Any,
        *,
        progress: bool = False,
        max_pending: int = MAX_PENDING,
        ray: bool | str | None = None,
        ray_workers: int | None = None,
        ray_worker_concurrency: int | None = None,
        ray_worker_cpus: float | None = None,
        shard: str | None = None,
        **options: Unpack[JobKeywords],
    ) -> None:
        self.plan = _plan_dict(plan)
        chosen = JobOptions(**options)
        self.existing = chosen.existing()
        self.gates = chosen.gates()
        scale = ScaleArgs(
            ray_address=LOCAL if ray is True else (ray or None),
            no_ray=ray is False,
            ray_workers=ray_workers,
            ray_worker_concurrency=ray_worker_concurrency,
            ray_worker_cpus=ray_worker_cpus,
            shard=shard,
        )
        engine, part = resolve(self.plan, scale, log.warning)
        self.options: dict[str, Any] = {
            **chosen.job_kwargs(),
            "show_progress": None if progress else False,  # on: redrawn on a terminal, else lines
            "engine": engine,
            "part": part,
        }
        self.max_pending = max(1, max_pending)
        self.result: RunResult | None = None
        self._task: asyncio.Task[JobResult] | None = None
        self._cancelling = False
        self._waiting: deque[RolloutRecord] = deque()
        self._arrived = asyncio.Event()
        self._drained = asyncio.Event()
        self._admitted = self._taken = 0  # records handed to the writer / to the consumer

    def _start(self) -> asyncio.Task[JobResult]:
        if self._task is None:
            self._task = asyncio.create_task(
                run_job(
                    self.plan,
                    notice=log.warning,
                    on_record=self._on_record,
                    backpressure=self._backpressure,
                    **self.options,
                )
            )
        return self._task

    def _on_record(self, record: RolloutRecord) -> None:
        self._waiting.append(record)
        self._arrived.set()

    async def _backpressure(self) -> None:
        """Before a record goes to the writer: wait while max_pending records are written or
        waiting but not yet taken by the consumer."""
        while self._admitted - self._taken >= self.max_pending:
            self._drained.clear()
            await self._drained.wait()
        self._admitted += 1

    async def __aenter__(self) -> Run:
        self._start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stops the run if it is still going and waits until its file is closed."""
        task = self._task
        if task is not None and not task.done():
            # once: the async generator's finalizer calls this again, concurrently, after a
            # `break`; a second cancel would land inside the run's own clean-up
            if not self._cancelling:
                self._cancelling = True
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def __aiter__(self) -> AsyncIterator[RolloutRecord]:
        task = self._start()
        try:
            while True:
                while self._waiting:
                    yield self._waiting.popleft()
                    self._taken += 1
                    self._drained.set()
                if task.done():
                    break
                self._arrived.clear()
                waiter = asyncio.ensure_future(self._arrived.wait())
                await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
            job = task.result()
            gates_hold = all(g.check(job.aggregate) is None for g in self.gates)
            self.result = RunResult(job, job.exit_code(gates_hold))
        finally:
            await self.aclose()


async def run(plan: Any, **options: Any) -> RunResult:
    """Runs the plan to the end (options as for Run); the records are in `result.records()`."""
    async with Run(plan, **options) as runner:
        async for _record in runner:
            pass
    assert runner.result is not None
    return runner.result


def run_sync(plan: Any, **options: Any) -> RunResult:
    """run() for code without an event loop (a script; a notebook has one: await run(...))."""
    return asyncio.run(run(plan, **options))


async def reverify(
    plan: Any,
    rollouts: str | os.PathLike[str],
    output: str | os.PathLike[str],
    **options: Unpack[JobKeywords],
) -> RunResult:
    """Re-scores `rollouts` with the plan's verifier into `output` (the policy is never called;
    a judge is). Resumable like a run (the same options, but `progress`); `rollouts` is only read."""
    chosen = JobOptions(**options)
    job, _changed = await reverify_job(
        _plan_dict(plan),
        os.fspath(rollouts),
        os.fspath(output),
        progress=ProgressSpec(show=False),
        notice=log.warning,
        **chosen.job_kwargs(),
    )
    gates = chosen.gates()
    return RunResult(job, job.exit_code(all(g.check(job.aggregate) is None for g in gates)))


def compare(
    a: str | os.PathLike[str], b: str | os.PathLike[str], *, pass_threshold: float = 1.0
) -> Comparison:
    """Two rollouts files side by side (what `gym-run compare A B` prints)."""
    return compare_files(os.fspath(a), os.fspath(b), pass_threshold=pass_threshold)
