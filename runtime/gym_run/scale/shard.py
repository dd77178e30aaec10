"""`--shard K/N` in, the slice of a plan's rows one array job runs out: row t belongs to shard
(t mod N) + 1, all repeats of a row in the same shard, written to `<stem>.shard-K-of-N.jsonl`.

Deterministic (the same K/N always owns the same rows, whatever ran before), balanced within one
row, and the rollout ids are the plan's own, so shards merge into exactly what one run writes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from gym_compile.plan_types import Job
from gym_run.collect.engine import Slice

MAX_SHARDS = 100_000
SLURM = "slurm"  # --shard slurm: K and N from the array job's environment
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class ShardError(ValueError):
    """A --shard value that is not K/N with 1 <= K <= N (a usage error)."""


@dataclass(frozen=True)
class Shard:
    k: int  # 1-based, as array jobs count
    n: int

    def owns(self, task: int) -> bool:
        return task % self.n == self.k - 1

    def rows(self, rows: int, limit: int | None) -> int:
        """How many of the plan's rows (within its limit) this shard owns."""
        within = min(rows, limit) if limit else rows
        return max(0, (within - self.k + self.n) // self.n)

    @property
    def label(self) -> str:
        return f"{self.k}/{self.n}"

    def slice(self, job: Job) -> Slice:
        output, metrics = shard_paths(job["output"]["path"], self.k, self.n)
        return Slice(
            owns=self.owns,
            rows=self.rows(job["input"]["rows"], job["limit"]),
            output=output,
            metrics_path=metrics,
        )


def parse_shard(spec: str, environ: Mapping[str, str] | None = None) -> Shard:
    """`K/N` (1-based), or `slurm`: SLURM_ARRAY_TASK_ID within the array's MIN..MAX."""
    if spec.strip().lower() == SLURM:
        return _from_slurm(os.environ if environ is None else environ)
    match = _SPEC.match(spec)
    if not match:
        raise ShardError(f"--shard {spec!r}: expected K/N, e.g. 2/8 (shard 2 of 8), or slurm")
    k, n = int(match.group(1)), int(match.group(2))
    if not 1 <= n <= MAX_SHARDS:
        raise ShardError(f"--shard {spec}: N must be between 1 and {MAX_SHARDS:,}")
    if not 1 <= k <= n:
        raise ShardError(f"--shard {spec}: K counts from 1 to N ({n})")
    return Shard(k, n)


def _from_slurm(environ: Mapping[str, str]) -> Shard:
    try:
        task = int(environ["SLURM_ARRAY_TASK_ID"])
        low = int(environ.get("SLURM_ARRAY_TASK_MIN", "0"))
        high = int(environ["SLURM_ARRAY_TASK_MAX"])
    except (KeyError, ValueError):
        raise ShardError(
            "--shard slurm: SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_MAX are not set; run it in an "
            "array job (sbatch --array=0-7) or give --shard K/N"
        ) from None
    if int(environ.get("SLURM_ARRAY_TASK_STEP", "1")) != 1:
        raise ShardError("--shard slurm needs an array without a step (--array=0-7); or give K/N")
    if not low <= task <= high:
        raise ShardError(f"--shard slurm: task {task} is outside the array {low}-{high}")
    return Shard(task - low + 1, high - low + 1)


def shard_paths(output: str, k: int, n: int) -> tuple[str, str]:
    """(rollouts, metrics) of shard K of N, beside the plan's rollouts file."""
    stem = output[: -len(".jsonl")] if output.endswith(".jsonl") else output
    base = f"{stem}.shard-{k}-of-{n}"
    return base + ".jsonl", base + ".metrics.json"


def find_shard_count(output: str) -> int | None:
    """N of the shard files beside `output`; None when there are none. Two different Ns: error."""
    stem = os.path.basename(output[: -len(".jsonl")] if output.endswith(".jsonl") else output)
    folder = os.path.dirname(output) or "."
    pattern = re.compile(re.escape(stem) + r"\.shard-(\d+)-of-(\d+)\.jsonl$")
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    counts = {int(m.group(2)) for m in map(pattern.match, names) if m}
    if len(counts) > 1:
        listed = ", ".join(str(c) for c in sorted(counts))
        raise ShardError(
            f"shard files of different counts ({listed}) beside {output}: pass --shards N"
        )
    return counts.pop() if counts else None
