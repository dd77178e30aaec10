"""The seam between the runner (the one writer: ids, resume, budget, progress, signals) and where
rollouts run. In this process is the default (rollouts.Collector); gym_run.scale plugs in other
engines (Ray workers) and row slices (shards) without the runner knowing how they work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from gym_compile.plan_types import CacheSpec, Plan, RolloutRecord, ServerEntry
from gym_run.collect.rollouts import Item
from gym_run.collect.stops import RunWatch
from gym_run.endpoint.callstats import CallStats

Sink = Callable[[RolloutRecord], Awaitable[None]]


@dataclass(frozen=True)
class EngineJob:
    """What an engine needs to run rollouts the way a local run would."""

    plan: Plan
    specs: dict[str, ServerEntry]  # the plan's servers, secrets resolved
    sink: Sink  # the runner's accept(): priced, written
    watch: RunWatch  # the budget and circuit breaker: workers report each paid call and trip here
    cache_spec: CacheSpec | None  # the response cache (None: off for this run)
    rollout_timeout_s: float | None


class Running(Protocol):
    """A collection in progress (rollouts.Collector is one): the runner stops it (budget, Ctrl-C)."""

    @property
    def in_flight(self) -> int: ...

    def stop(self) -> None: ...

    def cancel(self) -> None: ...

    async def run(self, items: Iterator[Item]) -> None: ...


class RemoteRun(Running, Protocol):
    """A collection elsewhere; `call_stats` are its model clients' counters, kept up to date."""

    @property
    def call_stats(self) -> list[CallStats]: ...

    def abandon(self) -> None:
        """The process exits now (second Ctrl-C): take down what this run started outside it."""


class Engine(Protocol):
    """Starts a collection somewhere else than in this process."""

    def start(self, job: EngineJob) -> RemoteRun: ...


@dataclass(frozen=True)
class Slice:
    """The rows one invocation owns (a shard) and where it writes; the whole plan when absent.

    `owns(task)` is asked for every row index within the plan's limit; `rows` is how many it owns;
    `output` / `metrics_path` replace the plan's paths."""

    owns: Callable[[int], bool]
    rows: int
    output: str
    metrics_path: str
