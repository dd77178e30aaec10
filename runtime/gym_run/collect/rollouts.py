"""Input rows in (read lazily), one rollout record per row x repeat out to a sink, with bounded
concurrency, a deadline per rollout, and a clean stop (Ctrl-C) that admits nothing new."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, Protocol

from gym_compile import jsonsafe
from gym_compile.files import JSONL_BYTES, LINE_BYTES, iter_lines, open_input
from gym_compile.jsonsafe import BadJSON
from gym_compile.plan_types import RolloutRecord
from gym_run.collect.record import ROLLOUT_INDEX, TASK_INDEX, failed_record, ok_record
from gym_run.endpoint.cache import cache_scope
from gym_run.endpoint.callstats import CURRENT_ROLLOUT, RolloutTrace
from gym_run.endpoint.watch import RunStopped
from gym_run.errors import PlanError, RolloutTimeout
from gym_run.servers.builtin.agent import merge_params

Item = tuple[int, int, dict[str, Any]]
Sink = Callable[[RolloutRecord], Awaitable[None]]


class Agent(Protocol):
    name: str

    async def run(
        self, row: dict[str, Any], params_override: dict[str, Any] | None = None
    ) -> dict[str, Any]: ...


def iter_rows(
    path: str, limit: int | None = None, skip: Callable[[int], bool] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row index, row), one line at a time: a dataset is never held in memory. Rows `skip`
    answers True for (all their rollouts done) are not even parsed."""
    if limit is not None and limit <= 0:
        limit = None
    index = 0
    try:
        fh = open_input(path, JSONL_BYTES, "a dataset")
    except OSError as exc:
        raise PlanError(f"input {path} cannot be read ({exc.strerror or exc}); recompile") from None
    with fh:
        for line in iter_lines(fh, LINE_BYTES):
            lineno, data = line.lineno, line.data
            if limit is not None and index >= limit:
                return
            if data is not None and not data.strip():
                continue
            if skip is not None and skip(index):
                index += 1
                continue
            try:
                if data is None:
                    raise BadJSON(f"longer than {LINE_BYTES} bytes")
                row = jsonsafe.loads(data)
            except BadJSON as exc:
                raise PlanError(
                    f"{path}:{lineno}: not JSON ({exc.reason}); fix the file and recompile"
                ) from None
            if not isinstance(row, dict):
                raise PlanError(
                    f"{path}:{lineno}: a row must be a JSON object; fix the file and recompile"
                )
            yield index, row
            index += 1


def iter_items(
    rows: Iterator[tuple[int, dict[str, Any]]],
    num_repeats: int,
    skip: Callable[[int, int], bool] | None = None,
) -> Iterator[Item]:
    """NeMo Gym's order aabbcc: (task 0, rollout 0), (task 0, rollout 1), (task 1, rollout 0), ..."""
    for task, row in rows:
        for rollout in range(num_repeats):
            if skip is None or not skip(task, rollout):
                yield task, rollout, row


def planned_total(rows: int, limit: int | None, num_repeats: int) -> int:
    return (min(rows, limit) if limit else rows) * num_repeats


class Collector:
    """Runs at most `concurrency` rollouts at a time; each finished record is awaited into `sink`.

    Items are pulled from the iterator only when a slot is free, so a million-row input is never
    a million pending tasks. `stop()` admits nothing new and lets in-flight rollouts finish;
    `cancel()` abandons them (their ids stay missing and a resume runs them again).
    """

    def __init__(
        self,
        agent: Agent,
        *,
        plan_hash: str,
        params_override: dict[str, Any],
        concurrency: int,
        sink: Sink,
        rollout_timeout_s: float | None = None,
    ) -> None:
        self.agent = agent
        self.plan_hash = plan_hash
        self.params_override = params_override
        self.concurrency = max(1, concurrency)
        self.sink = sink
        self.rollout_timeout_s = rollout_timeout_s
        self.stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def stop(self) -> None:
        self.stopping = True

    def cancel(self) -> None:
        self.stopping = True
        for task in list(self._tasks):
            task.cancel()

    async def run(self, items: Iterator[Item]) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        try:
            for item in items:
                await slots.acquire()
                if self.stopping:
                    slots.release()
                    break
                task = asyncio.create_task(self._one(item))
                self._tasks.add(task)
                task.add_done_callback(functools.partial(self._finished, slots))
            while self._tasks:
                await asyncio.wait(set(self._tasks))
        finally:
            if self._tasks:  # we are being cancelled ourselves: take the rollouts down with us
                self.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._error is not None:
            raise self._error

    def _finished(self, slots: asyncio.Semaphore, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        slots.release()
        if not task.cancelled() and task.exception() is not None and self._error is None:
            self._error = task.exception()  # the sink failed (e.g. disk full): stop admitting
            self.stop()

    async def _one(self, item: Item) -> None:
        trace = RolloutTrace()
        try:
            record = await run_one(
                self.agent,
                item,
                plan_hash=self.plan_hash,
                params_override=self.params_override,
                rollout_timeout_s=self.rollout_timeout_s,
                trace=trace,
            )
            await self.sink(record)
        except RunStopped:
            return  # abandoned (the run stopped): no record, a resume runs it again
        finally:
            trace.release()  # its large answers' memory, now that the writer has the record


async def run_one(
    agent: Agent,
    item: Item,
    *,
    plan_hash: str,
    params_override: dict[str, Any],
    rollout_timeout_s: float | None = None,
    trace: RolloutTrace | None = None,
) -> RolloutRecord:
    """One rollout; whatever it raises becomes a failure record and the collection goes on, except
    RunStopped (the budget or the circuit breaker stopped the run), which is raised: no record."""
    task, rollout, row = item
    trace = trace if trace is not None else RolloutTrace()
    CURRENT_ROLLOUT.set(trace)  # this task's own context: the client counts retries into it
    # As NeMo Gym's collector sends a row: with its indices, which agents pass on to
    # seed_session and verify (a verifier that compares a prompt's rollouts needs them).
    sent = {**row, TASK_INDEX: task, ROLLOUT_INDEX: rollout}
    try:
        with cache_scope(sample=rollout) as tally:  # repeats of a row are distinct samples
            run = agent.run(sent, params_override)
            result = await (_deadline(run, rollout_timeout_s, trace) if rollout_timeout_s else run)
    except RunStopped:
        raise
    except Exception as exc:
        return failed_record(
            merge_params(row, params_override),
            exc,
            plan_hash=plan_hash,
            task=task,
            rollout=rollout,
            retries=trace.retries,
            agent=agent.name,
        )
    return ok_record(
        result,
        plan_hash=plan_hash,
        task=task,
        rollout=rollout,
        retries=trace.retries,
        cache=tally,
        agent=agent.name,
    )


async def _deadline(
    run: Coroutine[Any, Any, dict[str, Any]], timeout_s: float, trace: RolloutTrace
) -> dict[str, Any]:
    """`run` within `timeout_s` of its own time: waits on the endpoint's back-pressure (the
    adaptive cap, 429s) and for answer memory (trace.paused_s) push the deadline back, so a rate
    limit slows a rollout down instead of failing it."""
    started = time.monotonic()
    task = asyncio.ensure_future(run)
    try:
        while True:
            remaining = started + timeout_s + trace.paused_s - time.monotonic()
            if remaining <= 0:
                waited = trace.paused_s
                raise RolloutTimeout(
                    f"the rollout took longer than rollout_timeout_s={timeout_s:g}"
                    + (
                        f" (not counting {waited:.1f} s of waiting on rate limits)"
                        if waited >= 0.1
                        else ""
                    )
                )
            done, _ = await asyncio.wait({task}, timeout=remaining)
            if done:
                return task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
