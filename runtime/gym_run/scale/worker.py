"""One Ray worker: the plan's servers started once, through the same call a local run uses
(built-ins, NeMo Gym processes, `url:` servers); rollouts handed over by the driver run here, and
their records wait until the driver takes them.

The worker writes nothing. A record lives only in its memory until the driver has it, so a worker
that dies loses nothing the driver does not run again elsewhere. Nor does it keep a budget: each
paid model call and a tripped circuit breaker go to the driver with the next `results`, and the
driver's `halt` stops model calls here, as a local run's watch does (gym_run/collect/stops.py). Ray is not imported here: the
driver wraps this class with ray.remote, so the module also runs (and is tested) without Ray.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from gym_compile.plan_types import CacheSpec, Plan, RolloutRecord, ServerEntry
from gym_run.collect.budget import Budget
from gym_run.collect.rollouts import Item, run_one
from gym_run.collect.stops import attach_watch
from gym_run.endpoint.cache import ResponseCache
from gym_run.endpoint.callstats import CallStats
from gym_run.endpoint.client import make_session
from gym_run.endpoint.pricing import CostMeter
from gym_run.endpoint.watch import RunStopped
from gym_run.errors import EXIT_ERROR, GymRunError
from gym_run.plan import job_of
from gym_run.scale.worker_watch import WorkerWatch
from gym_run.servers.builtin.models import ModelServer
from gym_run.servers.launch import logs_dir_for, start_servers
from gym_run.servers.registry import Servers


@dataclass(frozen=True)
class WorkerJob:
    """What every worker gets once, at its start (the plan's servers with their secrets)."""

    plan: Plan  # as loaded: secret references only (what NeMo Gym's head shows)
    plan_hash: str
    specs: dict[str, ServerEntry]
    agent: str
    params_override: dict[str, Any]
    rollout_timeout_s: float | None
    cache_spec: CacheSpec | None
    concurrency: int
    budget: Budget  # the run's limits (spend is the driver's; see worker_watch.py)
    meter: CostMeter  # prices paid calls for the local view of the budget


class RolloutWorker:
    """An async Ray actor; `start` once, then `submit` and `results` as the driver asks."""

    def __init__(self, job: WorkerJob) -> None:
        self.job = job
        self._tasks: set[asyncio.Task[None]] = set()
        self._done: list[RolloutRecord] = []
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._cache: ResponseCache | None = None
        self._servers: Servers | None = None
        self._stats: list[CallStats] = []
        self._sent = CallStats()
        self._died: list[str] = []  # NeMo Gym servers of this worker that exited
        self._abandoned: list[tuple[int, int]] = []  # stopped at a model call: no record
        self.watch = WorkerWatch(self._wake.set, job.budget, job.meter)

    async def start(self) -> dict[str, Any]:
        """Builds the servers; answers the pid, or the error a user can act on (never raises one:
        the driver re-raises it as itself, with its exit code)."""
        job = self.job
        try:
            if job.cache_spec:
                self._cache = ResponseCache(job.cache_spec["path"])
            self._session = make_session(job.concurrency + 8)
            output = job_of(job.plan)["output"]["path"]
            self._servers = await start_servers(
                job.plan,
                job.specs,
                self._session,
                log_dir=Path(
                    logs_dir_for(output), f"ray-worker-{os.uname().nodename}-{os.getpid()}"
                ),
                cache=self._cache,
                cache_stand_in=bool(job.cache_spec and job.cache_spec["stand_in"]),
            )
            self._servers.on_death = self._died.append
            self._servers.agent(job.agent)
            attach_watch(self._servers, self.watch)
        except GymRunError as exc:
            await self.close()
            return {"error": exc.message, "exit_code": exc.exit_code}
        except OSError as exc:
            await self.close()
            return {"error": f"a Ray worker could not start: {exc}", "exit_code": EXIT_ERROR}
        stats = [
            getattr(s.client, "stats", None)
            for s in self._servers.built.values()
            if isinstance(s, ModelServer)
        ]
        self._stats = [s for s in stats if isinstance(s, CallStats)]
        return {"pid": os.getpid(), "node": os.uname().nodename}

    async def submit(self, items: list[Item]) -> None:
        """Starts the rollouts at once; the driver bounds how many it hands over."""
        assert self._servers is not None, "start() first"
        agent = self._servers.agent(self.job.agent)
        for item in items:
            task = asyncio.create_task(self._one(agent, item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _one(self, agent: Any, item: Item) -> None:
        job = self.job
        try:
            record = await run_one(
                agent,
                item,
                plan_hash=job.plan_hash,
                params_override=job.params_override,
                rollout_timeout_s=job.rollout_timeout_s,
            )
        except RunStopped:
            self._abandoned.append((item[0], item[1]))  # the driver forgets it: a resume runs it
        else:
            self._done.append(record)
        self._wake.set()

    async def results(
        self, wait_s: float, driver_spent: tuple[float, int] = (0.0, 0)
    ) -> tuple[list[RolloutRecord], dict[str, Any]]:
        """Every record finished since the last call (waiting up to `wait_s` for the first one),
        the model clients' counters since then (max_attempts: the largest so far), and, when there
        are any: "spent" the paid calls as [server, usage], "down" the breaker's [server, reason],
        "abandoned" the [task, rollout] stopped without a record, "died" the NeMo Gym servers of
        this worker that exited. `driver_spent` is the run's spend (usd, tokens) as the driver
        knows it: this worker's view of the budget starts from it."""
        if not (self._done or self._abandoned or self._died or self.watch.news()) and self._tasks:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wait_s)
            except asyncio.TimeoutError:
                pass
        done, self._done = self._done, []
        if self._servers is not None and any(
            r["_gym"]["status"] != "ok" for r in done
        ):  # a dying server fails rollouts fast: settle it now, as a local run does
            await self._servers.settle_processes()
        stats: dict[str, Any] = self._stats_delta()
        watch = self.watch
        spent = watch.take_spent(driver_spent)
        if spent:
            stats["spent"] = spent
        down = watch.take_down()
        if down is not None:
            stats["down"] = down
        if self._abandoned:
            stats["abandoned"], self._abandoned = self._abandoned, []
        if self._died:
            stats["died"], self._died = self._died, []
        return done, stats

    async def halt(self, reason: str) -> None:
        """The driver's budget or breaker stopped the run: rollouts in flight here are abandoned at
        their next model call (no record; a resume runs them), as in a local run."""
        self.watch.halt(reason)

    def _stats_delta(self) -> dict[str, int]:
        now = CallStats.total(self._stats)
        delta = {
            key: getattr(now, key) - getattr(self._sent, key)
            for key in ("calls", "requests", "retries", "rate_limited", "failed")
        }
        delta["max_attempts"] = now.max_attempts
        self._sent = now
        return delta

    async def cancel(self) -> None:
        """The driver gave up on what is in flight here (second stage of Ctrl-C)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        await self.cancel()
        if self._servers is not None:
            await self._servers.close()
            self._servers = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._cache is not None:
            self._cache.close()
            self._cache = None
