"""A plan's rows in, records from Ray workers out to the runner's sink: this process admits rows and
stays the one writer; the workers (gym_run.scale.worker) build the servers and run the rollouts.

Every row handed to a worker is remembered here until its record comes back. When a worker or its
node is lost, the rows it held go back in the queue and run on another worker (a replacement is
started), and a record is accepted only from the worker that holds its row: nothing is lost,
nothing is written twice. Records come back in batches (whatever finished since the last ask), so
the cost of a Ray call is shared by the rollouts that finished meanwhile.

The budget and the circuit breaker are this process's (the runner's RunWatch): workers send each
paid model call (at once when a budget is set) and a tripped breaker; once the watch stops the run,
every worker is halted, and the rollouts it abandons at their next model call come back as
"abandoned", so they stay missing for a resume, exactly as in a local run.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from gym_run.collect.engine import EngineJob
from gym_run.collect.rollouts import Item
from gym_run.endpoint.callstats import CallStats
from gym_run.errors import GymRunError
from gym_run.plan import job_of
from gym_run.scale.settings import RaySettings, import_ray
from gym_run.scale.worker import RolloutWorker, WorkerJob
from gym_run.servers.nemo_process import ServerDied

POLL_S = 1.0  # a worker answers `results` at the latest after this, so stops are seen promptly
START_TIMEOUT_S = 300.0  # building the servers in a worker (NeMo Gym processes may take a while)


class RemoteError(GymRunError):
    """A worker refused to start for a reason the user can fix; carries that error's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class RayEngine:
    """gym_run.collect.engine.Engine on Ray: connects (or starts a local Ray) when a run starts."""

    def __init__(self, settings: RaySettings, notice: Any = None) -> None:
        self.settings = settings
        self.notice = notice or (lambda _message: None)
        self.ray = import_ray(settings)
        self.last_run: RayRun | None = None

    def start(self, job: EngineJob) -> RayRun:
        self.last_run = RayRun(self.ray, self.settings, job, self.notice)
        return self.last_run


@dataclass(eq=False)
class _Worker:
    number: int
    actor: Any
    held: dict[tuple[int, int], Item] = field(default_factory=dict)
    pid: int | None = None
    halted: bool = False


class RayRun:
    """One collection on Ray (the runner's `Running`): in_flight, stop, cancel, run, call_stats."""

    def __init__(self, ray: ModuleType, settings: RaySettings, job: EngineJob, notice: Any) -> None:
        self.ray, self.settings, self.job, self.notice = ray, settings, job, notice
        plan_job = job_of(job.plan)
        self.per_worker = settings.concurrency_per_worker or plan_job["concurrency"]
        self.call_stats: list[CallStats] = [CallStats()]
        self.stopping = False
        self.workers: list[_Worker] = []
        self.lost = 0
        self.died: str | None = None
        self._numbers = itertools.count(1)
        self._requeued: deque[Item] = deque()
        self._items: Iterator[Item] = iter(())
        self._exhausted = False
        self._changed = asyncio.Event()
        self._loops: set[asyncio.Task[None]] = set()
        self._starts: set[asyncio.Task[_Worker]] = set()
        self._started_here = False
        self._initial = 0
        self._actor_class: Any = None
        self._worker_job = WorkerJob(
            plan=job.plan,
            plan_hash=job.plan["content_hash"],
            specs=job.specs,
            agent=plan_job["agent"],
            params_override=plan_job["responses_create_params"],
            rollout_timeout_s=job.rollout_timeout_s,
            cache_spec=job.cache_spec,
            concurrency=self.per_worker,
            budget=job.watch.budget,
            meter=job.watch.meter,
        )

    @property
    def in_flight(self) -> int:
        return sum(len(w.held) for w in self.workers)

    def stop(self) -> None:
        """No new row (Ctrl-C lets those in flight finish); when the budget or the breaker
        stopped the run, the workers also stop making model calls."""
        self.stopping = True
        self._changed.set()
        for worker in self.workers:
            self._halt(worker)

    def _halt(self, worker: _Worker) -> None:
        reason = self.job.watch.stopped
        if reason is not None and not worker.halted:
            worker.halted = True
            worker.actor.halt.remote(reason)  # not awaited: its answer says nothing

    def cancel(self) -> None:
        """Abandons what is in flight: those ids stay missing and a resume runs them."""
        self.stopping = True
        for worker in self.workers:
            worker.held.clear()
            worker.actor.cancel.remote()
        for task in [*self._loops, *self._starts]:
            task.cancel()

    def abandon(self) -> None:
        """A Ray this run started goes down with it; a cluster's Ray ends the actors it owned."""
        if self._started_here:
            self.ray.shutdown()

    async def run(self, items: Iterator[Item]) -> None:
        self._items = items
        self._connect()
        try:
            count = self._initial = self._worker_count()
            each = ", ".join(f"{k} {v:g}" for k, v in self.settings.resources_per_worker.items())
            self.notice(
                f"gym-run: {count} Ray workers x {self.per_worker} rollouts in flight ({each} each)"
            )
            self._starts = {asyncio.create_task(self._start_worker()) for _ in range(count)}
            while self._starts or self._loops:
                waiting: set[asyncio.Task[Any]] = {*self._starts, *self._loops}
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task in self._starts:
                        self._started(task)
                    else:
                        self._loops.discard(task)
                        if not task.cancelled() and task.exception() is not None:
                            raise task.exception()  # type: ignore[misc]
                if self._finished():  # nothing left: workers still waiting for room are not needed
                    for start in self._starts:
                        start.cancel()
        finally:
            await self._shutdown()
        if self.died is not None:
            raise ServerDied(
                f"{self.died}; finished rollouts are kept, resume with --resume --retry-failed"
            )

    def _started(self, task: asyncio.Task[Any]) -> None:
        """A worker is up (it starts taking rows at once), or could not start: a user's mistake
        ends the run; lack of room does only when no worker is up."""
        self._starts.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            self._serve(task.result())
        elif isinstance(error, RemoteError):
            raise error
        elif self.workers or self._starts:
            self.notice(f"gym-run: {error}; going on with {len(self.workers)} workers")
        else:
            raise GymRunError(f"no Ray worker is left ({error}); finished rollouts are kept")

    def _connect(self) -> None:
        ray, address = self.ray, self.settings.address
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        try:
            if address is None:  # a new Ray of our own, never one some `ray start` left running
                ray.init(
                    address="local",
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    **kwargs,
                )
            else:
                _probe(address)
                ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or "a local Ray"
            raise GymRunError(f"cannot connect to {where}: {_first_line(exc)}") from None
        self._started_here = True

    def _worker_count(self) -> int:
        """The settings' count, or as many as the cluster's CPUs hold; says so when the cluster
        (as it is now) cannot hold them all: the rest wait for room, up to START_TIMEOUT_S."""
        total = self.ray.cluster_resources()
        need = {"CPU": 1.0, **self.settings.resources_per_worker}
        if not self.settings.workers:
            per = need["CPU"] or 1.0
            return max(1, int(float(total.get("CPU", 1)) // per))
        short = [
            f"{k}: {v:g} x {self.settings.workers} wanted, {float(total.get(k, 0)):g} in the cluster"
            for k, v in need.items()
            if v and float(total.get(k, 0)) < v * self.settings.workers
        ]
        if short:
            self.notice(
                f"gym-run: the Ray cluster cannot hold {self.settings.workers} workers now "
                f"({'; '.join(short)}); the rest start when it has room"
            )
        return self.settings.workers

    async def _start_worker(self) -> _Worker:
        if self._actor_class is None:
            self._actor_class = self.ray.remote(RolloutWorker).options(
                max_concurrency=4, max_restarts=0, **self.settings.actor_options()
            )
        worker = _Worker(next(self._numbers), self._actor_class.remote(self._worker_job))
        try:
            answer = await asyncio.wait_for(worker.actor.start.remote(), START_TIMEOUT_S)
        except asyncio.TimeoutError:
            self.ray.kill(worker.actor)
            raise GymRunError(
                f"a Ray worker did not start within {START_TIMEOUT_S:g} s: does the cluster have "
                f"{self.settings.resources_per_worker} free for it?"
            ) from None
        except self.ray.exceptions.RayError as exc:
            raise GymRunError(f"a Ray worker could not start: {_first_line(exc)}") from None
        if "error" in answer:
            raise RemoteError(answer["error"], answer["exit_code"])
        worker.pid = answer["pid"]
        self.workers.append(worker)
        return worker

    def _serve(self, worker: _Worker) -> None:
        loop = asyncio.create_task(self._feed(worker))
        self._loops.add(loop)

    async def _feed(self, worker: _Worker) -> None:
        """Keeps the worker's slots full and hands its records to the sink, until nothing is left."""
        errors = self.ray.exceptions
        lost = (
            errors.RayActorError,
            errors.ObjectLostError,
            getattr(errors, "ActorUnavailableError", errors.RayActorError),
        )
        while True:
            batch = self._take(self.per_worker - len(worker.held))
            try:
                if batch:
                    for item in batch:
                        worker.held[(item[0], item[1])] = item
                    await worker.actor.submit.remote(batch)
                if not worker.held:
                    if self._finished():
                        return
                    self._changed.clear()
                    await self._changed.wait()  # another worker may be lost and give back rows
                    continue
                budget = self.job.watch.budget
                records, stats = await worker.actor.results.remote(
                    POLL_S, (budget.spent_usd, budget.spent_tokens)
                )
            except lost:
                self._lose(worker)
                return
            self._count_calls(stats)
            self._report(worker, stats)
            for record in records:
                key = (record["_ng_task_index"], record["_ng_rollout_index"])
                if worker.held.pop(key, None) is None:
                    continue  # not this worker's any more (cancelled): never written twice
                await self.job.sink(record)
            if records or stats.get("abandoned"):
                self._changed.set()

    def _take(self, room: int) -> list[Item]:
        batch: list[Item] = []
        while room > len(batch) and not self.stopping:
            if self._requeued:
                batch.append(self._requeued.popleft())
                continue
            if self._exhausted:
                break
            item = next(self._items, None)
            if item is None:
                self._exhausted = True
                break
            batch.append(item)
        return batch

    def _finished(self) -> bool:
        """No row left to admit and none held by any worker (a lost one could give some back)."""
        if self.stopping:
            return not self.in_flight
        return self._exhausted and not self._requeued and not self.in_flight

    def _lose(self, worker: _Worker) -> None:
        """A worker (or its node) is gone: its rows run again elsewhere, and a replacement starts
        (taking rows once it is up, if the cluster has room for it before the rows run out)."""
        self.lost += 1
        rows = list(worker.held.values())
        worker.held.clear()
        self.workers.remove(worker)
        self._requeued.extend(rows)
        self.notice(
            f"gym-run: Ray worker {worker.number} (pid {worker.pid}) was lost; "
            f"{len(rows)} rollouts in flight there run again elsewhere"
        )
        self._changed.set()
        if self.stopping:
            self._requeued.clear()  # stopping: they stay missing, a resume runs them
            return
        if self.lost > 2 * self._initial + 2:  # a crash loop, not a lost node: stop replacing
            if not (self.workers or self._starts):
                raise GymRunError(
                    f"Ray workers keep getting lost ({self.lost} so far); finished rollouts are "
                    "kept: resume once the cluster is healthy"
                )
            return  # the remaining workers take the rows
        self._starts.add(asyncio.create_task(self._start_worker()))

    def _report(self, worker: _Worker, stats: dict[str, Any]) -> None:
        """A worker's news to the run's watch: paid calls (the budget), a tripped breaker, rows it
        abandoned at a model call once halted (they stay missing), NeMo Gym servers that died."""
        watch = self.job.watch
        for server, usage in stats.get("spent", ()):
            watch.spent(server, usage)
        down = stats.get("down")
        if down is not None and watch.down is None:
            watch.endpoint_down(*down)
        for task, rollout in stats.get("abandoned", ()):
            worker.held.pop((task, rollout), None)
        for line in stats.get("died", ()):
            self._server_died(worker, line)
        if self.stopping:
            self._halt(worker)  # also a worker that started after the run stopped

    def _server_died(self, worker: _Worker, line: str) -> None:
        """A NeMo Gym server in a worker exited: as in a local run, admit nothing new; the run
        then ends with that error (its failed rollouts are recorded: resume with --retry-failed)."""
        if self.died is None:
            self.died = f"{line} (in Ray worker {worker.number})"
            self.notice(f"gym-run: {self.died}")
        self.stop()

    def _count_calls(self, stats: dict[str, Any]) -> None:
        total = self.call_stats[0]
        for key in ("calls", "requests", "retries", "rate_limited", "failed"):
            setattr(total, key, getattr(total, key) + stats.get(key, 0))
        total.max_attempts = max(total.max_attempts, stats.get("max_attempts", 0))

    async def _shutdown(self) -> None:
        """Workers close their servers (NeMo Gym processes stop); a local Ray is taken down."""
        pending = [*self._loops, *self._starts]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        closing = [w.actor.close.remote() for w in self.workers]
        if closing:
            await asyncio.wait([asyncio.ensure_future(c) for c in closing], timeout=10)
        for worker in self.workers:
            self.ray.kill(worker.actor)
        self.workers.clear()
        if self._started_here:
            self.ray.shutdown()


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """A head that does not answer fails in seconds (Ray itself retries for minutes)."""
    if address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout_s).close()
    except (OSError, ValueError) as exc:
        raise ConnectionError(
            f"nothing answers at {address} ({getattr(exc, 'strerror', None) or exc}); is the "
            "cluster's head running (ray start --head)?"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
