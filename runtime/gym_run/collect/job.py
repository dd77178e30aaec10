"""What a run and a reverify share: the output opened (new, overwritten or resumed), the
collector fed through pricing, budget and the writer, Ctrl-C as a clean resumable stop, then one
pass over the final set (aggregate block, per-task file, JUnit) and the metrics file.

`Job` is that state; its subclasses (collect/runner.py's run, collect/reverify.py) say what is
collected. `execute` sequences it; the facades call it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from gym_compile.plan_types import CacheSpec, Plan, RolloutRecord, ServerEntry
from gym_run.collect.budget import Budget
from gym_run.collect.engine import Engine, EngineJob, RemoteRun, Running, Slice
from gym_run.collect.interrupt import Interrupts
from gym_run.collect.limits import fit_concurrency
from gym_run.collect.metrics import Metrics
from gym_run.collect.progress import Live, Progress
from gym_run.collect.result import JobResult, ProgressSpec
from gym_run.collect.resume import FAILED, Ledger, iter_final, scan
from gym_run.collect.rollouts import Item, planned_total
from gym_run.collect.stops import RunWatch
from gym_run.collect.writer import Existing, RolloutWriter, write_json_atomic
from gym_run.endpoint.cache import open_cache
from gym_run.endpoint.callstats import CallStats
from gym_run.endpoint.client import make_session
from gym_run.endpoint.pricing import CostMeter, PriceTable, price_record, server_models
from gym_run.errors import EXIT_INTERRUPTED, GymRunError, PlanError
from gym_run.metrics.finalset import Outputs, summarize_final_set, tasks_path_for
from gym_run.plan import job_of
from gym_run.servers.builtin.models import ModelServer
from gym_run.servers.launch import logs_dir_for, start_servers
from gym_run.servers.nemo_process import ServerDied
from gym_run.servers.registry import Servers

DEFAULT_GRACE_S = 30.0


async def execute(
    state: Job,
    specs: dict[str, ServerEntry],
    *,
    existing: Existing,
    retry_failed: bool,
    handle_signals: bool,
    progress: ProgressSpec,
) -> JobResult:
    """Output opened (new, overwritten or resumed), the collection, then the final-set pass and
    the metrics file; the ledger and the writer are closed whatever happens."""
    try:
        state.writer = RolloutWriter(
            state.output_path, existing=existing, on_durable=state.on_durable
        )
    except BaseException:
        state.ledger.close()
        raise
    try:
        if existing == "append":
            state.resume()
        state.progress = Progress(
            state.planned,
            stream=progress.stream,
            enabled=progress.show,
            plain_interval_s=progress.interval_s,
            live=state.live,
            already_done=state.ledger.ok + state.ledger.failed,
            already_failed=state.ledger.failed,
            reward_sum=state.metrics.sum_of("reward"),
            reward_count=state.metrics.count_of("reward"),
        )
        try:
            await state.collect(specs, retry_failed=retry_failed, handle_signals=handle_signals)
        finally:
            try:
                await state.writer.aclose()
            finally:
                if state.progress is not None:
                    state.progress.close()
        state.summarize()
    finally:
        state.ledger.close()
    return state.result()


class Job:
    """The state one run shares between the writer's callback, the progress line and the signals;
    subclasses say what is collected and how (`collect`)."""

    def __init__(
        self,
        plan: Plan,
        *,
        notice: Callable[[str], None],
        resume_hint: str,
        grace_s: float,
        budget: Budget,
    ) -> None:
        self.plan, self.job = plan, job_of(plan)
        self.notice, self.resume_hint, self.grace_s = notice, resume_hint, grace_s
        try:
            prices = PriceTable.load(self.job.get("prices"))
        except ValueError as exc:
            raise PlanError(f"job.prices: {exc}; fix prices: in the config and recompile") from None
        self.meter = CostMeter(prices, server_models(plan["servers"]))
        self.budget = budget
        unpriced = sorted({m for m in self.meter.models.values() if prices.price_for(m) is None})
        if budget.max_usd is not None and unpriced:
            notice(
                f"gym-run: max_usd counts priced models only; no price for {', '.join(unpriced)} "
                "(add it under prices.models, or use --max-tokens)"
            )
        self.cache_spec: CacheSpec | None = None
        self.pass_threshold = 1.0
        self.junit_path: str | None = None
        self.on_record: Callable[[RolloutRecord], None] | None = None
        self.backpressure: Callable[[], Awaitable[None]] | None = None
        self.aggregate: dict[str, Any] | None = None
        self.repeats = self.job["num_repeats"]
        self.concurrency = fit_concurrency(self.job["concurrency"], notice)
        self.total = planned_total(self.job["input"]["rows"], self.job["limit"], self.repeats)
        self.ledger = Ledger(plan["content_hash"], self.repeats, self.total)
        # gym_run.scale: a shard owns some rows and writes its own files (ids and the ledger stay
        # the plan's); an engine runs the rollouts elsewhere while this process writes
        self.part: Slice | None = None
        self.engine: Engine | None = None
        self.remote: RemoteRun | None = None
        self.metrics = Metrics()
        self.writer: RolloutWriter
        self.progress: Progress | None = None
        self.collector: Running | None = None
        self.servers: Servers | None = None
        self.clients: list[CallStats] = []
        self.watch = RunWatch(
            budget, self.meter, stop=self._stop_admitting, notice=notice, in_flight=self._in_flight
        )
        self.first_error: str | None = None
        self.started = time.monotonic()
        self.run: dict[str, Any] = {
            "resumed": False,
            "from_before": 0,
            "new": 0,
            "superseded": 0,
            "torn_bytes_removed": 0,
            "interrupted": False,
            "endpoint_down": None,
        }

    @property
    def planned(self) -> int:
        return self.part.rows * self.repeats if self.part else self.total

    @property
    def output_path(self) -> str:
        return self.part.output if self.part else str(self.job["output"]["path"])

    @property
    def metrics_path(self) -> str:
        return self.part.metrics_path if self.part else str(self.job["output"]["metrics_path"])

    def resume(self) -> None:
        """Reads what is already there; cuts a torn last line so appends start on a fresh one."""
        report = scan(self.writer.path, self.ledger, self.metrics)
        if report.torn_bytes:
            self.writer.truncate(report.size)
            self.run["torn_bytes_removed"] = report.torn_bytes
            self.notice(
                f"gym-run: removed a torn last line ({report.torn_bytes} bytes) left by an interrupted run"
            )
        self.run["resumed"] = True
        self.run["from_before"] = self.ledger.ok + self.ledger.failed

    def on_durable(self, record: RolloutRecord, offset: int) -> None:
        """A record is on disk: it becomes final (the writer calls this in file order)."""
        replaced = self.ledger.state(self.ledger.index(record)) == FAILED
        self.ledger.add(record, offset, self.metrics)
        self.run["new"] += 1
        self.run["superseded"] += replaced
        ok = record["_gym"]["status"] == "ok"
        if self.progress is not None:
            reward = record.get("reward")
            self.progress.record(
                ok,
                replaced_failed=replaced,
                reward=reward if isinstance(reward, (int, float)) else None,
            )
        if not ok and self.first_error is None:
            error = record["_gym"]["error"]
            self.first_error = f"{error['class']}: {error['message']}"
        if self.on_record is not None:
            self.on_record(record)

    def summarize(self) -> None:
        """The final set read back in task order: aggregate block, per-task file, JUnit XML."""
        self.aggregate = summarize_final_set(
            iter_final(self.writer.path, self.ledger),
            num_repeats=self.repeats,
            planned=self.planned,
            pass_threshold=self.pass_threshold,
            outputs=Outputs(
                tasks_path=tasks_path_for(self.output_path),
                junit_path=self.junit_path,
                suite=self.job["agent"],
            ),
        )

    def live(self) -> Live:
        calls = CallStats.total(self.clients)
        in_flight = self.collector.in_flight if self.collector is not None else 0
        return Live(in_flight=in_flight, retries=calls.retries, rate_limited=calls.rate_limited)

    def _in_flight(self) -> int:
        return self.collector.in_flight if self.collector is not None else 0

    def _stop_admitting(self) -> None:
        if self.collector is not None:
            self.collector.stop()

    async def accept(self, record: RolloutRecord) -> None:
        """The collector's sink: priced (spend was charged call by call, by this process's model
        clients or by an engine's workers through `self.watch`), then written."""
        price_record(self.meter, record)
        if record["_gym"]["status"] != "ok" and self.servers is not None:
            await self.servers.settle_processes()  # a dead server fails rollouts fast: look now
        if self.backpressure is not None:
            await self.backpressure()
        await self.writer.write(record)

    async def collect(
        self, specs: dict[str, ServerEntry], *, retry_failed: bool, handle_signals: bool
    ) -> None:
        """Servers up, the items through `self.collector`, servers down (a run, a reverify)."""
        raise NotImplementedError

    async def with_servers(
        self, specs: dict[str, ServerEntry], body: Callable[[Servers], Awaitable[None]]
    ) -> None:
        """The response cache and one HTTP session around the plan's servers (`specs`), built,
        handed to `body`, and closed whatever happens."""
        cache = open_cache(self.cache_spec["path"], self.notice) if self.cache_spec else None
        try:
            async with make_session(self.concurrency + 8) as session:
                servers = await start_servers(
                    self.plan,
                    specs,
                    session,
                    log_dir=logs_dir_for(self.job["output"]["path"]),
                    cache=cache,
                    cache_stand_in=bool(self.cache_spec and self.cache_spec["stand_in"]),
                )
                servers.on_death = self.server_died
                self.servers = servers
                try:
                    self.clients = client_stats(servers)
                    self.watch.attach(servers)  # spend as it happens; the circuit breaker
                    await body(servers)
                finally:
                    await servers.close()
                if servers.died:
                    raise ServerDied(
                        f"{servers.died[0]}; finished rollouts are kept, resume with: "
                        f"{self.resume_hint} --retry-failed"
                    )
        finally:
            if cache is not None:
                cache.close()

    async def run_elsewhere(
        self,
        engine: Engine,
        specs: dict[str, ServerEntry],
        items: Iterator[Item],
        rollout_timeout_s: float | None,
        handle_signals: bool,
    ) -> None:
        """The items through `engine` (its workers build the servers); this process admits rows
        and writes, exactly as with a local collector."""
        job = EngineJob(
            self.plan, specs, self.accept, self.watch, self.cache_spec, rollout_timeout_s
        )
        self.collector = self.remote = engine.start(job)
        self.clients = self.remote.call_stats
        await self.start_collector(items, handle_signals)

    async def start_collector(self, items: Iterator[Item], handle_signals: bool) -> None:
        """Budget from what the file holds, Ctrl-C handling and the progress ticker around
        `self.collector.run(items)`."""
        assert self.collector is not None
        # what the file holds already (a resume) counts against the budget, and may exhaust it
        self.budget.spent_usd, self.budget.spent_tokens = (
            self.metrics.priced_usd,
            self.metrics.billed_tokens,
        )
        self.watch.check_budget()
        interrupts = Interrupts(first=self.stop, again=self.quit)
        if handle_signals:
            interrupts.install()
        ticker = (
            asyncio.create_task(_tick(self.progress))
            if self.progress and self.progress.enabled
            else None
        )
        try:
            await self.collector.run(items)
        finally:
            if ticker is not None:
                ticker.cancel()
            interrupts.remove()

    def server_died(self, line: str) -> None:
        """A NeMo Gym server of the plan exited mid-run: admit nothing new (its rollouts would
        only fail); the ones in flight finish or fail and are recorded."""
        if self.collector is not None:
            self.collector.stop()
        self.notice(f"gym-run: {line}")

    def stop(self) -> None:
        """First Ctrl-C: admit nothing new, give in-flight rollouts `grace_s`, then cancel them."""
        assert self.collector is not None
        self.run["interrupted"] = True
        self.collector.stop()
        asyncio.get_running_loop().call_later(self.grace_s, self.collector.cancel)
        self.notice(
            f"\ngym-run: stopping: no new rollouts; waiting up to {self.grace_s:g} s for "
            f"{self.collector.in_flight} in flight (press Ctrl-C again to quit now)"
        )

    def quit(self) -> None:
        """Second Ctrl-C: out now, but after the line being written, if any."""
        self.notice(f"\ngym-run: quit; finished rollouts are kept. Resume with: {self.resume_hint}")
        if self.remote is not None:
            self.remote.abandon()
        self.writer.hard_exit(EXIT_INTERRUPTED)

    def result(self) -> JobResult:
        calls = CallStats.total(self.clients)
        self.run["endpoint_down"] = self.watch.down
        for server, cost in self.metrics.cost_by_server.items():
            if cost is None:  # also for records from before a resume: one warning per model
                self.meter.note_unpriced(server)
        document = self.metrics.document(
            wall_time_s=time.monotonic() - self.started,
            plan_hash=self.plan["content_hash"],
            planned=self.planned,
            run=self.run,
            calls=calls.as_dict(),
            warnings=self.meter.warnings,
            budget=self.budget.as_dict(),
            aggregate=self.aggregate,
        )
        try:
            write_json_atomic(self.metrics_path, document)
        except OSError as exc:  # a full disk: the rollouts are safe, only the summary file is not
            out = self.job["output"]
            raise GymRunError(
                f"cannot write the metrics to {self.metrics_path}: {exc.strerror or exc}; the "
                f"rollouts are in {out['path']} (`gym-run report` summarises them)"
            ) from None
        return JobResult(
            document,
            self.output_path,
            self.metrics_path,
            self.first_error,
            bool(self.run["interrupted"]),
            self.run,
            self.budget,
            self.watch.down,
        )


def client_stats(servers: Servers) -> list[CallStats]:
    """The call counters (retries, 429s) of every model server's client."""
    found = (
        getattr(s.client, "stats", None)
        for s in servers.built.values()
        if isinstance(s, ModelServer)
    )
    return [stats for stats in found if isinstance(stats, CallStats)]


async def _tick(progress: Progress) -> None:
    """Redraws between completions, so retries and 429s show while nothing finishes."""
    while True:
        await asyncio.sleep(0.5)
        progress.refresh()
