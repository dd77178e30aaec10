"""A verified plan in, rollouts.jsonl + metrics.json out: sequences secrets, output (new, overwritten
or resumed), servers, collect and writer, and turns Ctrl-C into a clean, resumable stop."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import aiohttp

from gym_run.collect.budget import Budget
from gym_run.collect.interrupt import Interrupts
from gym_run.collect.limits import fit_concurrency
from gym_run.collect.metrics import Metrics
from gym_run.collect.progress import Live, Progress
from gym_run.collect.resume import FAILED, Ledger, scan
from gym_run.collect.rollouts import Collector, Item, iter_items, iter_rows, planned_total
from gym_run.collect.stops import RunWatch
from gym_run.collect.writer import Existing, RolloutWriter, write_json_atomic
from gym_run.defaults import server_defaults
from gym_run.endpoint.cache import ResponseCache
from gym_run.endpoint.callstats import CallStats
from gym_run.endpoint.client import OpenAIClient
from gym_run.endpoint.pricing import CostMeter, PriceTable, price_record, server_models
from gym_run.errors import EXIT_INTERRUPTED, GymRunError, PlanError
from gym_run.secrets import resolve_secrets, substitute_secrets
from gym_run.servers.builtin.models import ModelServer
from gym_run.servers.registry import Servers, build_servers

DEFAULT_GRACE_S = 30.0


@dataclass
class JobResult:
    metrics: dict[str, Any]
    rollouts_path: str
    metrics_path: str
    first_error: str | None = None
    interrupted: bool = False
    run: dict[str, Any] = field(default_factory=dict)
    budget: Budget = field(default_factory=Budget)
    endpoint_down: str | None = None  # the circuit breaker stopped the run: why, in one line

    @property
    def counts(self) -> dict[str, int]:
        return self.metrics["_gym"]["counts"]


def make_session(limit: int) -> aiohttp.ClientSession:
    """One session per run: connections are pooled across rollouts, sized to what can be in flight."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit))


def server_specs(
    plan: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The plan's servers with secret references replaced by values (fails before anything starts)."""
    return substitute_secrets(plan["servers"], resolve_secrets(plan, environ))


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run_job(
    plan: dict[str, Any],
    *,
    existing: Existing = "refuse",
    retry_failed: bool = False,
    environ: Mapping[str, str] | None = None,
    progress_stream: TextIO | None = None,
    show_progress: bool | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    handle_signals: bool = False,
    resume_hint: str = "gym-run PLAN --resume",
    notice: Callable[[str], None] = _stderr,
    use_cache: bool = True,
    max_usd: float | None = None,
    max_tokens: int | None = None,
) -> JobResult:
    """Runs the plan's collection job; rollouts that fail are recorded, not raised.

    existing="append" resumes: ids with a final ok record (and failed ones unless `retry_failed`)
    are skipped, and a torn last line is cut first. `max_usd` / `max_tokens` replace the plan's
    budget; `use_cache=False` leaves the plan's response cache alone.
    """
    job = plan.get("job")
    if not job:
        raise PlanError("this plan has no collection job (compile with +agent_name=...)")
    specs = server_specs(plan, environ)
    state = _Job(
        plan,
        notice=notice,
        resume_hint=resume_hint,
        grace_s=grace_s,
        budget=Budget.from_plan(job, max_usd=max_usd, max_tokens=max_tokens),
    )
    state.cache_spec = job.get("response_cache") if use_cache else None
    try:
        state.writer = RolloutWriter(
            job["output"]["path"], existing=existing, on_durable=state.on_durable
        )
    except BaseException:
        state.ledger.close()
        raise
    try:
        if existing == "append":
            state.resume()
        state.progress = Progress(
            state.total,
            stream=progress_stream,
            enabled=show_progress,
            live=state.live,
            already_done=state.ledger.ok + state.ledger.failed,
            already_failed=state.ledger.failed,
        )
        await state.collect(specs, retry_failed=retry_failed, handle_signals=handle_signals)
    finally:
        try:
            await state.writer.aclose()
        finally:
            state.ledger.close()
            if state.progress is not None:
                state.progress.close()
    return state.result()


class _Job:
    """The state one run shares between the writer's callback, the progress line and the signals."""

    def __init__(
        self,
        plan: dict[str, Any],
        *,
        notice: Callable[[str], None],
        resume_hint: str,
        grace_s: float,
        budget: Budget,
    ) -> None:
        self.plan, self.job = plan, plan["job"]
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
        self.cache_spec: dict[str, Any] | None = None
        self.repeats = self.job["num_repeats"]
        self.concurrency = fit_concurrency(self.job["concurrency"], notice)
        self.total = planned_total(self.job["input"]["rows"], self.job["limit"], self.repeats)
        self.ledger = Ledger(plan["content_hash"], self.repeats, self.total)
        self.metrics = Metrics()
        self.writer: RolloutWriter
        self.progress: Progress | None = None
        self.collector: Collector | None = None
        self.clients: list[CallStats] = []
        self.watch = RunWatch(
            budget,
            self.meter,
            stop=self._stop_admitting,
            notice=notice,
            in_flight=lambda: self.collector.in_flight if self.collector is not None else 0,
        )
        self.first_error: str | None = None
        self.started = time.monotonic()
        self.run = {
            "resumed": False,
            "from_before": 0,
            "new": 0,
            "superseded": 0,
            "torn_bytes_removed": 0,
            "interrupted": False,
            "endpoint_down": None,
        }

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

    def on_durable(self, record: dict[str, Any], offset: int) -> None:
        """A record is on disk: it becomes final (the writer calls this in file order)."""
        replaced = self.ledger.state(self.ledger.index(record)) == FAILED
        self.ledger.add(record, offset, self.metrics)
        self.run["new"] += 1
        self.run["superseded"] += replaced
        ok = record["_gym"]["status"] == "ok"
        if self.progress is not None:
            self.progress.record(ok, replaced_failed=replaced)
        if not ok and self.first_error is None:
            error = record["_gym"]["error"]
            self.first_error = f"{error['class']}: {error['message']}"

    def live(self) -> Live:
        calls = CallStats.total(self.clients)
        in_flight = self.collector.in_flight if self.collector is not None else 0
        return Live(in_flight=in_flight, retries=calls.retries, rate_limited=calls.rate_limited)

    def _stop_admitting(self) -> None:
        if self.collector is not None:
            self.collector.stop()

    async def accept(self, record: dict[str, Any]) -> None:
        """The collector's sink: priced (spend was charged call by call), then written."""
        price_record(self.meter, record)
        await self.writer.write(record)

    async def collect(
        self, specs: dict[str, Any], *, retry_failed: bool, handle_signals: bool
    ) -> None:
        """Servers up, the rollouts that are not done yet through the collector, servers down."""
        job, repeats = self.job, self.repeats

        def skip(task: int, rollout: int) -> bool:
            return self.ledger.done(task * repeats + rollout, retry_failed=retry_failed)

        items = iter_items(
            iter_rows(
                job["input"]["path"],
                job["limit"],
                lambda task: all(skip(task, r) for r in range(repeats)),
            ),
            repeats,
            skip,
        )
        cache = open_cache(self.cache_spec["path"]) if self.cache_spec else None
        try:
            async with make_session(self.concurrency + 8) as session:
                servers = await build_servers(
                    specs,
                    session,
                    cache=cache,
                    cache_stand_in=bool(self.cache_spec and self.cache_spec["stand_in"]),
                )
                try:
                    await self._run_collector(servers, items, handle_signals=handle_signals)
                finally:
                    await servers.close()
        finally:
            if cache is not None:
                cache.close()

    async def _run_collector(
        self, servers: Servers, items: Iterator[Item], *, handle_signals: bool
    ) -> None:
        job = self.job
        clients = [
            getattr(s.client, "inner", s.client)  # behind the response cache, if any
            for s in servers.built.values()
            if isinstance(s, ModelServer)
        ]
        self.clients = [
            c.stats for c in clients if isinstance(getattr(c, "stats", None), CallStats)
        ]
        for client in clients:
            if isinstance(client, OpenAIClient):
                client.watch = self.watch  # spend as it happens, and the circuit breaker
        agent_config = {
            **server_defaults("responses_api_agents", "simple_agent"),
            **self.plan["servers"].get(job["agent"], {}).get("config", {}),
        }
        self.collector = Collector(
            servers.agent(job["agent"]),
            plan_hash=self.plan["content_hash"],
            params_override=job["responses_create_params"],
            concurrency=self.concurrency,
            sink=self.accept,
            rollout_timeout_s=agent_config.get("rollout_timeout_s"),
        )
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
            planned=self.total,
            run=self.run,
            calls=calls.as_dict(),
            warnings=self.meter.warnings,
            budget=self.budget.as_dict(),
        )
        out = self.job["output"]
        write_json_atomic(out["metrics_path"], document)
        return JobResult(
            document,
            out["path"],
            out["metrics_path"],
            self.first_error,
            self.run["interrupted"],
            self.run,
            self.budget,
            self.watch.down,
        )


def open_cache(path: str) -> ResponseCache:
    """The plan's response cache; a file that cannot be opened is the user's to fix, not a traceback."""
    try:
        return ResponseCache(path)
    except (OSError, sqlite3.Error) as exc:
        raise GymRunError(
            f"response cache {path} cannot be opened ({exc}); fix the path or run with --no-cache"
        ) from None


async def _tick(progress: Progress) -> None:
    """Redraws between completions, so retries and 429s show while nothing finishes."""
    while True:
        await asyncio.sleep(0.5)
        progress.refresh()
