"""A verified plan in, rollouts.jsonl + metrics.json out: the plan's rows x repeats through its
agent, on the machinery collect/job.py shares with reverify (output, writer, budget, Ctrl-C,
the final-set pass)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TextIO

from gym_compile.atomic import output_refusal
from gym_compile.plan_types import Plan, RolloutRecord, ServerEntry
from gym_run.collect.budget import Budget
from gym_run.collect.engine import Engine, Slice
from gym_run.collect.job import DEFAULT_GRACE_S, Job, execute
from gym_run.collect.progress import PLAIN_INTERVAL_S
from gym_run.collect.result import JobResult, ProgressSpec, stderr_notice
from gym_run.collect.rollouts import Collector, iter_items, iter_rows
from gym_run.collect.writer import Existing
from gym_run.defaults import pass_threshold as threshold_for
from gym_run.defaults import server_defaults
from gym_run.errors import GymRunError
from gym_run.plan import job_of
from gym_run.secrets import server_specs
from gym_run.servers.registry import Servers

__all__ = ["DEFAULT_GRACE_S", "JobResult", "ProgressSpec", "run_job"]


async def run_job(
    plan: Plan,
    *,
    existing: Existing = "refuse",
    retry_failed: bool = False,
    environ: Mapping[str, str] | None = None,
    progress_stream: TextIO | None = None,
    show_progress: bool | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    handle_signals: bool = False,
    resume_hint: str = "gym-run PLAN --resume",
    notice: Callable[[str], None] = stderr_notice,
    use_cache: bool = True,
    max_usd: float | None = None,
    max_tokens: int | None = None,
    pass_threshold: float | None = None,
    junit_path: str | None = None,
    on_record: Callable[[RolloutRecord], None] | None = None,
    backpressure: Callable[[], Awaitable[None]] | None = None,
    progress_interval_s: float = PLAIN_INTERVAL_S,
    engine: Engine | None = None,
    part: Slice | None = None,
) -> JobResult:
    """Runs the plan's collection job; rollouts that fail are recorded, not raised.

    existing="append" resumes: ids with a final ok record (and failed ones unless `retry_failed`)
    are skipped, and a torn last line is cut first. `max_usd` / `max_tokens` replace the plan's
    budget; `use_cache=False` leaves the plan's response cache alone. `on_record` sees every record
    once it is on disk (in file order); `backpressure` is awaited before each record is written
    (a slow consumer of `on_record` slows the collection instead of piling records up). After
    the collection, one pass over the final set adds the aggregate block to the metrics (records
    pass at reward >= `pass_threshold`, default the plan's) and writes `junit_path` when given. `engine` runs the
    rollouts elsewhere (Ray workers) while this process stays the one writer; `part` limits the run
    to a slice of the rows (a shard) written to its own files.
    """
    job = job_of(plan)
    specs = server_specs(plan, environ)
    metrics_refused = output_refusal(job["output"]["metrics_path"])
    if metrics_refused is not None:  # found now, before a token is paid for, not at the end
        raise GymRunError(
            f"cannot write the metrics to {job['output']['metrics_path']}: it {metrics_refused}"
        )
    state = _RunJob(
        plan,
        notice=notice,
        resume_hint=resume_hint,
        grace_s=grace_s,
        budget=Budget.from_plan(job, max_usd=max_usd, max_tokens=max_tokens),
    )
    state.cache_spec = job.get("response_cache") if use_cache else None
    state.pass_threshold = threshold_for(job, pass_threshold)
    state.junit_path = junit_path
    state.on_record, state.backpressure = on_record, backpressure
    state.part, state.engine = part, engine
    return await execute(
        state,
        specs,
        existing=existing,
        retry_failed=retry_failed,
        handle_signals=handle_signals,
        progress=ProgressSpec(progress_stream, show_progress, progress_interval_s),
    )


class _RunJob(Job):
    """A collection run: rows from the plan's dataset, each through the agent."""

    async def collect(
        self, specs: dict[str, ServerEntry], *, retry_failed: bool, handle_signals: bool
    ) -> None:
        """The plan's rows (not done yet) x repeats through the agent."""
        job, repeats = self.job, self.repeats

        def skip(task: int, rollout: int) -> bool:
            return self.ledger.done(task * repeats + rollout, retry_failed=retry_failed)

        part = self.part
        items = iter_items(
            iter_rows(
                job["input"]["path"],
                job["limit"],
                lambda task: (
                    (part is not None and not part.owns(task))
                    or all(skip(task, r) for r in range(repeats))
                ),
            ),
            repeats,
            skip,
        )
        agent = self.plan["servers"].get(job["agent"])
        agent_config = {  # a hand-built plan may leave keys out: the schema's defaults
            **server_defaults("responses_api_agents", "simple_agent"),
            **(agent["config"] if agent else {}),
        }
        if self.engine is not None:  # the engine's workers build the servers
            timeout = agent_config.get("rollout_timeout_s")
            await self.run_elsewhere(self.engine, specs, items, timeout, handle_signals)
            return

        async def body(servers: Servers) -> None:
            self.collector = Collector(
                servers.agent(job["agent"]),
                plan_hash=self.plan["content_hash"],
                params_override=job["responses_create_params"],
                concurrency=self.concurrency,
                sink=self.accept,
                rollout_timeout_s=agent_config.get("rollout_timeout_s"),
            )
            await self.start_collector(items, handle_signals)

        await self.with_servers(specs, body)
