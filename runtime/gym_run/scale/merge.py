"""Shard files in, the plan's final set out: one record per rollout id (the same rule as resume and
export: first ok record, else last failed), in input order, plus a metrics document for the whole.

The merged file sits where one run would have written (the plan's rollouts path), so export,
report and `--resume` (to finish what the shards left missing) work on it as on any run's output.
Each shard is indexed with resume's Ledger (a memory-mapped slot per rollout), so no shard is
held in memory, and a record in a shard that does not own its row is refused. Shard files are read
as any input (gym_compile/files.py: regular files only, bounded sizes and lines; jsonsafe: bounded
nesting): a hostile one is one located error, a torn last line (a shard killed mid-write) a notice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

try:
    import fcntl
except ImportError:  # Windows: no advisory lock, the rest works
    fcntl = None  # type: ignore[assignment]

from gym_compile import jsonsafe
from gym_compile.atomic import atomic_file
from gym_compile.files import CONFIG_BYTES, JSONL_BYTES, RECORD_BYTES, iter_lines, open_input
from gym_compile.files import read_bytes as read_limited
from gym_compile.jsonsafe import BadJSON
from gym_compile.plan_types import Plan
from gym_run.collect.metrics import Metrics
from gym_run.collect.resume import EMPTY, Ledger, scan
from gym_run.collect.rollouts import planned_total
from gym_run.collect.writer import write_json_atomic
from gym_run.defaults import pass_threshold as threshold_for
from gym_run.endpoint.callstats import CallStats
from gym_run.errors import GymRunError, OutputExistsError
from gym_run.metrics.finalset import Outputs, summarize_final_set, tasks_path_for
from gym_run.plan import job_of
from gym_run.scale.shard import Shard, find_shard_count, shard_paths


@dataclass
class MergeReport:
    path: str
    metrics_path: str
    shards: int
    absent: list[int] = field(default_factory=list)  # shard numbers with no file
    ok: int = 0
    failed: int = 0
    missing: int = 0
    written: int = 0
    notices: list[str] = field(default_factory=list)  # one line each, e.g. a torn last line


class _ShardLedger(Ledger):
    """A Ledger that refuses an id whose row another shard owns (a file renamed or mixed up)."""

    def __init__(self, plan_hash: str, repeats: int, total: int, shard: Shard, path: str):
        super().__init__(plan_hash, repeats, total)
        self.shard, self.path = shard, path

    def index(self, record: Mapping[str, Any]) -> int:
        i = super().index(record)
        task = i // self.num_repeats
        if not self.shard.owns(task):
            raise GymRunError(
                f"{self.path}: rollout {record['_gym']['id']} belongs to shard "
                f"{task % self.shard.n + 1}/{self.shard.n}, not {self.shard.label}; "
                "shard files must keep the names gym-run gave them"
            )
        return i


def merge_shards(
    plan: Plan,
    *,
    shards: int | None = None,
    dest: str | None = None,
    overwrite: bool = False,
) -> MergeReport:
    """Writes the final set of shards 1..N of `plan` to `dest` (default: the plan's rollouts path)."""
    started = time.monotonic()
    job = job_of(plan)
    output = job["output"]["path"]
    n = shards or find_shard_count(output)
    if not n:
        raise GymRunError(
            f"no shard files beside {output} (expected {shard_paths(output, 1, 2)[0]}, ...); "
            "run gym-run PLAN --shard K/N first"
        )
    dest = dest or output
    metrics_path = job["output"]["metrics_path"] if dest == output else _metrics_beside(dest)
    if not overwrite and os.path.exists(dest) and os.path.getsize(dest) > 0:
        raise OutputExistsError(
            f"{dest} already exists and is not empty; pass --overwrite to replace it"
        )
    repeats = job["num_repeats"]
    total = planned_total(job["input"]["rows"], job["limit"], repeats)
    report = MergeReport(dest, metrics_path, n)
    ledgers: list[_ShardLedger] = []
    files: list[BinaryIO | None] = []
    try:
        for k in range(1, n + 1):
            path = shard_paths(output, k, n)[0]
            ledger = _ShardLedger(plan["content_hash"], repeats, total, Shard(k, n), path)
            ledgers.append(ledger)
            if not os.path.exists(path):
                report.absent.append(k)
                files.append(None)
                continue
            if os.path.exists(dest) and os.path.samefile(path, dest):
                raise OutputExistsError(
                    f"the merge would overwrite shard file {path}; pass another -o"
                )
            files.append(_open_shard(path))  # locked first: no gym-run may write it meanwhile
            scanned = scan(path, ledger, Metrics())
            if scanned.torn_bytes:
                report.notices.append(
                    f"{path}:{scanned.lines + 1}: a torn last line ({scanned.torn_bytes} bytes, a "
                    "write cut short) left out: its rollout counts as missing"
                )
        metrics = Metrics()
        with atomic_file(dest, "wb") as out:
            for i in range(total):
                k = (i // repeats) % n
                ledger, src = ledgers[k], files[k]
                if src is None or ledger.state(i) == EMPTY:
                    report.missing += 1
                    continue
                src.seek(ledger.offset(i))
                line = src.readline(RECORD_BYTES + 1)
                metrics.add(_reread(line, shard_paths(output, k + 1, n)[0]))
                out.write(line)
                report.written += 1
    finally:
        for fh in files:
            if fh is not None:
                fh.close()
        for ledger in ledgers:
            ledger.close()
    report.ok, report.failed = metrics.ok, metrics.failed
    document = _document(plan, metrics, total, output, n, started)
    with open_input(dest, JSONL_BYTES, "a rollouts file") as merged:  # the aggregate block
        document["_gym"]["aggregate"] = summarize_final_set(
            (jsonsafe.loads(line.data or b"") for line in iter_lines(merged, RECORD_BYTES)),
            num_repeats=repeats,
            planned=total,
            pass_threshold=threshold_for(job),
            outputs=Outputs(tasks_path=tasks_path_for(dest)),
        )
    write_json_atomic(metrics_path, document)
    return report


def _open_shard(path: str) -> BinaryIO:
    """Opened and share-locked: a shard a gym-run still writes (it holds the file's exclusive
    lock, collect/writer.py) is refused, and none can start writing it until the merge is done."""
    try:
        fh = open_input(path, JSONL_BYTES, "a rollouts file")
    except OSError as exc:
        raise GymRunError(f"cannot read rollouts {path}: {exc.strerror or exc}") from None
    if fcntl is not None:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise GymRunError(
                f"{path} is still being written by a gym-run (its shard has not finished); "
                "merge once it has"
            ) from None
    return fh


def _reread(line: bytes, path: str) -> dict[str, Any]:
    """The record scan indexed, read again at its offset; anything else means the file changed."""
    try:
        record = jsonsafe.loads(line) if line.endswith(b"\n") else None
    except BadJSON:
        record = None
    if not isinstance(record, dict):
        raise GymRunError(
            f"{path} changed while it was merged (is that shard still running?); merge again "
            "once it has finished"
        )
    return record


def _metrics_beside(dest: str) -> str:
    stem = dest[: -len(".jsonl")] if dest.endswith(".jsonl") else dest
    return stem + ".metrics.json"


def _document(
    plan: Plan, metrics: Metrics, total: int, output: str, n: int, started: float
) -> dict[str, Any]:
    """The whole set's metrics; calls, cost warnings and wall time come from the shards' own
    metrics files (the shards ran in parallel: wall time is the longest shard's)."""
    parts, calls, warnings, wall = [], CallStats(), [], 0.0
    for k in range(1, n + 1):
        doc = _read_metrics(shard_paths(output, k, n)[1])
        gym = (doc or {}).get("_gym") or {}
        parts.append(
            {
                "shard": f"{k}/{n}",
                "counts": gym.get("counts"),
                "wall_time_s": gym.get("wall_time_s"),
            }
        )
        calls.add(
            CallStats(
                **{
                    k2: v
                    for k2, v in (gym.get("calls") or {}).items()
                    if k2 in CallStats.__dataclass_fields__
                }
            )
        )
        warnings += [w for w in (gym.get("cost") or {}).get("warnings") or [] if w not in warnings]
        wall = max(wall, float(gym.get("wall_time_s") or 0.0))
    document = metrics.document(
        wall_time_s=wall or time.monotonic() - started,
        plan_hash=plan["content_hash"],
        planned=total,
        run={"merged_shards": n, "new": metrics.rollouts},
        calls=calls.as_dict(),
        warnings=warnings,
    )
    document["_gym"]["shards"] = parts
    return document


def _read_metrics(path: str) -> dict[str, Any] | None:
    """A shard's metrics document; None when there is none (a shard killed before writing it)."""
    try:
        value = jsonsafe.loads(read_limited(path, CONFIG_BYTES, "a metrics document"))
    except FileNotFoundError:
        return None
    except OSError as exc:
        why = exc.strerror or str(exc)
    except BadJSON as exc:
        why = f"not JSON ({exc.reason})"
    else:
        if isinstance(value, dict):
            return value
        why = "not a JSON object"
    raise GymRunError(
        f"{path}: {why}; it is not a metrics document gym-run wrote: delete it to merge without "
        "that shard's call counts and wall time"
    )
