"""A rollouts file in, its final set out: which ids are done, where each final record sits, whether a
kill left a torn last line; and the de-duplicated export of that set in input order.

The rollouts file is append-only. An id (task, rollout) can appear more than once only when a
failed rollout was re-run (`--resume --retry-failed`). Readers take as final record of an id its
first `ok` record if there is one, else its last `failed` record; `gym-run export` writes exactly
those, in (task, rollout) order. The index of final records is a temporary file of 8-byte slots,
mapped into memory, so neither a resume nor an export holds the records or the ids in memory.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from gym_compile import jsonsafe
from gym_compile.atomic import atomic_file
from gym_compile.canonical import sibling_path
from gym_compile.files import JSONL_BYTES, RECORD_BYTES, iter_lines, open_input
from gym_compile.jsonsafe import BadJSON
from gym_compile.plan_types import Plan
from gym_run.collect.metrics import Metrics
from gym_run.collect.rollouts import planned_total
from gym_run.errors import GymRunError, OutputExistsError
from gym_run.plan import job_of

EMPTY, OK, FAILED = 0, 1, 2
Skip = Callable[[int, str], None]


class Ledger:
    """(task, rollout) -> state and byte offset of its final record, for one plan.

    Slot value: 0 = no record; otherwise (offset + 1) * 2 + (1 if ok). Index = task * repeats + rollout.
    """

    def __init__(self, plan_hash: str, num_repeats: int, total: int) -> None:
        self.prefix = plan_hash[7:19]
        self.num_repeats = num_repeats
        self.total = total
        self.ok = 0
        self.failed = 0
        self._file = tempfile.TemporaryFile(prefix="gym-run-index-")
        self._file.truncate(max(1, total) * 8)
        self._map = mmap.mmap(self._file.fileno(), max(1, total) * 8)
        self._slots = memoryview(self._map).cast("q")

    def index(self, record: Mapping[str, Any]) -> int:
        """The slot of a record of this plan; ValueError (with the reason) for any other record."""
        gym = record.get("_gym")
        rid = gym.get("id") if isinstance(gym, dict) else None
        parts = rid.split(":") if isinstance(rid, str) else []
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            raise ValueError(f"no rollout id (_gym.id) in {str(rid)[:40]!r}")
        if parts[0] != self.prefix:
            raise LookupError(
                f"rollout id {rid} belongs to another plan (this plan's ids start with {self.prefix})"
            )
        task, rollout = int(parts[1]), int(parts[2])
        i = task * self.num_repeats + rollout
        if rollout >= self.num_repeats or i >= self.total:
            raise LookupError(f"rollout id {rid} is outside this plan's {self.total} rollouts")
        return i

    def state(self, i: int) -> int:
        slot = self._slots[i]
        return EMPTY if slot == 0 else OK if slot & 1 else FAILED

    def offset(self, i: int) -> int:
        return self._slots[i] // 2 - 1

    def done(self, i: int, *, retry_failed: bool) -> bool:
        state = self.state(i)
        return state == OK or (state == FAILED and not retry_failed)

    def add(self, record: Mapping[str, Any], offset: int, metrics: Metrics) -> bool:
        """Applies the final-record rule; False for a record that is not final (a second ok)."""
        i = self.index(record)
        ok = record["_gym"].get("status") == "ok"
        previous = self.state(i)
        if previous == OK:
            return False
        if previous == FAILED:
            self.failed -= 1
            metrics.drop_failed()
        self._slots[i] = (offset + 1) * 2 + (1 if ok else 0)
        if ok:
            self.ok += 1
        else:
            self.failed += 1
        metrics.add(record)
        return True

    def close(self) -> None:
        self._slots.release()
        self._map.close()
        self._file.close()


@dataclass
class ScanReport:
    size: int = 0  # bytes of whole lines; the file is truncated to this on resume
    lines: int = 0  # whole lines (a torn last line is line `lines + 1`)
    torn_bytes: int = 0  # a last line without its newline (a write cut short by a kill)
    records: int = 0
    not_final: int = 0


def scan(
    path: str,
    ledger: Ledger,
    metrics: Metrics,
    skip: Skip | None = None,
    *,
    ids_only: bool = False,
) -> ScanReport:
    """Reads every whole line of `path` into the ledger and metrics; the torn tail is only measured.

    A line that is not a record of this plan is refused, unless `skip` is given (readers such as the
    report): then it is passed to `skip(lineno, why)` and left out. `ids_only`: parse only each
    line's `_gym` (readers that read the final records again; `metrics` then sees only that)."""
    report = ScanReport()
    try:
        fh = open_input(path, JSONL_BYTES, "a rollouts file")
    except FileNotFoundError:
        return report
    except OSError as exc:
        raise GymRunError(f"cannot read rollouts {path}: {exc.strerror or exc}") from None
    with fh:
        for line in iter_lines(fh, RECORD_BYTES):
            lineno, data = line.lineno, line.data
            if data is not None and not data.endswith(b"\n"):
                report.torn_bytes = len(data)
                break
            report.lines = lineno
            if data is None or data.strip():
                try:
                    record = (_gym_tail(data) if ids_only and data else None) or _record(
                        data, path, lineno
                    )
                    final = ledger.add(record, report.size, metrics)
                except (GymRunError, LookupError, ValueError) as exc:
                    if skip is None:
                        raise _refusal(exc, path, lineno) from None
                    skip(lineno, getattr(exc, "message", str(exc)))
                    report.size += line.size
                    continue
                report.records += 1
                report.not_final += not final
            report.size += line.size
    return report


def _refusal(exc: Exception, path: str, lineno: int) -> GymRunError:
    if isinstance(exc, GymRunError):
        return exc
    if isinstance(exc, LookupError):
        return OutputExistsError(
            f"{path}:{lineno}: {exc}; gym-run does not mix plans in one file: pass --overwrite "
            "to replace it, or compile with another +output_jsonl_fpath"
        )
    return _not_a_record(path, lineno, str(exc))


def _gym_tail(line: bytes) -> dict[str, Any] | None:
    """{"_gym": ...} parsed from the end of a line alone (gym-run writes `_gym` last), else None."""
    at = line.rfind(b'"_gym"')
    if at <= 0:
        return None
    try:
        tail = jsonsafe.loads(b"{" + line[at:])
    except BadJSON:
        return None
    gym = tail.get("_gym") if isinstance(tail, dict) else None
    return {"_gym": gym} if isinstance(gym, dict) and "id" in gym and "status" in gym else None


def _record(line: bytes | None, path: str, lineno: int) -> dict[str, Any]:
    if line is None:
        raise _not_a_record(path, lineno, f"a line longer than {RECORD_BYTES} bytes")
    try:
        record = jsonsafe.loads(line)
    except BadJSON as exc:
        raise _not_a_record(path, lineno, f"not JSON ({exc.reason})") from None
    if not isinstance(record, dict):
        raise _not_a_record(path, lineno, "not a JSON object")
    return record


def _not_a_record(path: str, lineno: int, why: str) -> GymRunError:
    return GymRunError(
        f"{path}:{lineno}: not a rollout record written by gym-run ({why}); remove that line, "
        "or start again with --overwrite"
    )


class FinalSet:
    """The final record of every id of a rollouts file, in (task, rollout) order, without its plan.

    For readers that have only the file (report, compare, reverify): one pass over the ids finds
    the plan prefix (of the first record; records of another prefix are skipped like lines that are
    not records), the tasks and the repeats; iterating applies the same rule as resume and export.
    """

    def __init__(self, path: str, skip: Skip | None = None) -> None:
        self.path = path
        self.skip = skip
        self.prefix: str | None = None
        self.tasks = self.num_repeats = 0
        with open_input(path, JSONL_BYTES, "a rollouts file") as fh:
            for line in iter_lines(fh, RECORD_BYTES):
                try:
                    data = line.data or b""
                    rid = (_gym_tail(data) or jsonsafe.loads(data))["_gym"]["id"]
                    head, task, rollout = rid.split(":")
                    self.prefix = self.prefix or head
                    if head == self.prefix:
                        self.tasks = max(self.tasks, int(task) + 1)
                        self.num_repeats = max(self.num_repeats, int(rollout) + 1)
                except (ValueError, TypeError, KeyError, AttributeError):
                    continue  # scan reports it

    def __iter__(self) -> Iterator[dict[str, Any]]:
        repeats = max(1, self.num_repeats)
        ledger = Ledger(f"sha256:{self.prefix or ''}", repeats, self.tasks * repeats)
        try:
            scan(
                self.path,
                ledger,
                Metrics(),
                self.skip or (lambda _lineno, _why: None),
                ids_only=True,
            )
            yield from iter_final(self.path, ledger)
        finally:
            ledger.close()


def final_records(path: str, skip: Skip | None = None) -> Iterator[dict[str, Any]]:
    """FinalSet(path, skip) as a plain iterator."""
    return iter(FinalSet(path, skip))


def iter_final(path: str, ledger: Ledger) -> Iterator[dict[str, Any]]:
    """The final records the ledger points at, read back from `path` in (task, rollout) order."""
    with open_input(path, JSONL_BYTES, "a rollouts file") as src:
        for i in range(ledger.total):
            if ledger.state(i) != EMPTY:
                src.seek(ledger.offset(i))
                yield jsonsafe.loads(src.readline(RECORD_BYTES + 1))


@dataclass
class ExportReport:
    path: str
    ok: int = 0
    failed: int = 0
    missing: int = 0
    written: int = 0


def export_final(
    rollouts: str, dest: str, ledger: Ledger, *, ok_only: bool = False, overwrite: bool = False
) -> ExportReport:
    """Writes the final record of every id in (task, rollout) order to `dest`, atomically."""
    if not os.path.exists(rollouts):
        raise GymRunError(f"there are no rollouts at {rollouts} yet; run the plan first")
    if os.path.exists(dest) and os.path.exists(rollouts) and os.path.samefile(dest, rollouts):
        raise OutputExistsError(
            f"export would overwrite the rollouts file itself ({dest}); pass another -o"
        )
    if not overwrite and os.path.exists(dest) and os.path.getsize(dest) > 0:
        raise OutputExistsError(
            f"{dest} already exists and is not empty; pass --overwrite to replace it"
        )
    scan(rollouts, ledger, Metrics())
    report = ExportReport(dest, ok=ledger.ok, failed=ledger.failed)
    try:
        with open(rollouts, "rb") as src, atomic_file(dest, "wb") as out:
            report.written, report.missing = _copy_final(src, out, ledger, ok_only)
    except OSError as exc:  # a full disk, or -o naming a device: the old export (if any) stays
        raise GymRunError(f"cannot write the export to {dest}: {exc.strerror or exc}") from None
    return report


def _copy_final(src: BinaryIO, out: IO[bytes], ledger: Ledger, ok_only: bool) -> tuple[int, int]:
    written = missing = 0
    for i in range(ledger.total):
        state = ledger.state(i)
        if state == EMPTY:
            missing += 1
            continue
        if ok_only and state != OK:
            continue
        src.seek(ledger.offset(i))
        out.write(src.readline())
        written += 1
    return written, missing


def default_export_path(rollouts: str) -> str:
    return sibling_path(rollouts, ".final.jsonl")


def export_plan(
    plan: Plan, dest: str | None, *, ok_only: bool = False, overwrite: bool = False
) -> ExportReport:
    """`gym-run export`: the plan's rollouts file, de-duplicated, in input order."""
    job = job_of(plan)
    total = planned_total(job["input"]["rows"], job["limit"], job["num_repeats"])
    ledger = Ledger(plan["content_hash"], job["num_repeats"], total)
    try:
        rollouts = job["output"]["path"]
        return export_final(
            rollouts,
            dest or default_export_path(rollouts),
            ledger,
            ok_only=ok_only,
            overwrite=overwrite,
        )
    finally:
        ledger.close()
