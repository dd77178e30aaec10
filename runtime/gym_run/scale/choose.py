"""Where a run's rollouts run: the plan's `ray:` block and a front's choices (gym-run's flags, the
Python API's keywords) in, the engine (None: in this process) and the row slice (None: all rows)
out. One place, so `gym-run PLAN --ray` and `gym_run.api.Run(plan, ray=True)` cannot differ."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

from gym_compile.plan_types import Plan
from gym_run.collect.engine import Engine, Slice

LOCAL = "local"  # Ray asked for without an address: a local Ray of this run's own


class ScaleError(ValueError):
    """Choices that contradict each other or are malformed (a usage error)."""


@dataclass(frozen=True)
class ScaleArgs:
    ray_address: str | None = None  # LOCAL: Ray without an address
    no_ray: bool = False
    ray_workers: int | None = None
    ray_worker_concurrency: int | None = None
    ray_worker_cpus: float | None = None
    shard: str | None = None

    @property
    def ray_flags(self) -> bool:
        tuning = (self.ray_workers, self.ray_worker_concurrency, self.ray_worker_cpus)
        return any(v is not None for v in tuning)

    def resume_flags(self) -> str:
        """What a resume must repeat: the same shard, and Ray if it came from the command line."""
        out = ""
        if self.shard is not None:
            out += f" --shard {shlex.quote(self.shard)}"
        if self.ray_address is not None:
            out += " --ray" + (
                "" if self.ray_address == LOCAL else f" {shlex.quote(self.ray_address)}"
            )
        return out


def resolve(
    plan: Plan, scale: ScaleArgs, notice: Callable[[str], None]
) -> tuple[Engine | None, Slice | None]:
    """The engine (None: in this process) and the slice (None: all rows) this run uses;
    ScaleError for choices that cannot go together (said in gym-run's flag names)."""
    job = plan.get("job")
    if not job:
        return None, None  # run_job says the plan has no job
    part = None
    if scale.shard is not None:
        from gym_run.scale.shard import ShardError, parse_shard

        try:
            part = parse_shard(scale.shard).slice(job)
        except ShardError as exc:
            raise ScaleError(str(exc)) from None
    if scale.no_ray:
        if scale.ray_address is not None or scale.ray_flags:
            raise ScaleError("--no-ray runs in this process: drop the --ray flags")
        return None, part
    from gym_run.scale.settings import RaySettings

    settings = RaySettings.from_plan(job)
    if settings is None and scale.ray_address is None:
        if scale.ray_flags:
            raise ScaleError(
                "--ray-workers / --ray-worker-* need --ray (or a ray: block in the config)"
            )
        return None, part
    settings = (settings or RaySettings()).override(
        address=scale.ray_address,
        workers=scale.ray_workers,
        concurrency_per_worker=scale.ray_worker_concurrency,
        cpus_per_worker=scale.ray_worker_cpus,
    )
    from gym_run.scale.ray_engine import RayEngine

    return RayEngine(settings, notice), part
