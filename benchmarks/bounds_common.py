"""Shared by the defaults/bounds benchmarks: the checkout under test, a stand-in with faults, plans
compiled with default settings, gym-run as a measured child.

Every benchmark takes `--code PATH`: the checkout whose gym-compile and gym-run are measured
(default: this one). "Before" figures come from a worktree of main at the branch point
(`git worktree add /tmp/before <commit>` + a venv in it); the endpoint (the stand-in and its fault
flags) always comes from this checkout, so before and after face the same endpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from common import REPO, ROW, compile_weather
from reliability_common import StandIn as _StandIn
from reliability_common import audit, emit

__all__ = ["REPO", "ROW", "Code", "Run", "StandIn", "audit", "emit", "write_rows"]


class StandIn(_StandIn):
    """The stand-in process; after the block, `served` holds its counts (requests, ok, 429s...)."""

    served: dict[str, int]

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        rest = self.proc.stdout.read() if self.proc.stdout else ""
        line = next((x for x in rest.splitlines() if x.startswith("stand-in served: ")), "")
        self.served = json.loads(line.partition(": ")[2]) if line else {}


def write_rows(path: Path, n: int) -> Path:
    path.write_text((json.dumps(ROW) + "\n") * n)
    return path


@dataclass
class Run:
    code: int
    output: str
    wall_s: float
    max_rss_mb: float
    timed_out: bool

    def metrics(self, work: Path) -> dict:
        path = work / "rollouts.metrics.json"
        return json.loads(path.read_text()) if path.exists() else {}


class Code:
    """A checkout of gym-compile: its own venv when it has one, its own sources on PYTHONPATH."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        venv = self.root / ".venv" / "bin" / "python"
        self.python = str(venv) if venv.exists() else sys.executable
        self.env = {
            **os.environ,
            "PYTHONPATH": f"{self.root}{os.pathsep}{self.root / 'runtime'}",
            "GYM_BENCH_KEY": "bench",
        }

    def commit(self) -> str:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=self.root, capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"

    def compile(
        self, work: Path, base_url: str, rows: Path, model_lines: str = "", *overrides: str
    ) -> Path:
        """simple_weather with an openai_model at base_url; nothing else set, so defaults apply."""
        return compile_weather(
            work, base_url, rows, model_lines, list(overrides), python=self.python, env=self.env
        )

    def run(self, plan: Path, *args: str, timeout: float = 600) -> Run:
        """gym-run PLAN --overwrite ARGS; past `timeout` it gets two SIGINTs, then SIGKILL."""
        return self.gym_run(str(plan), "--overwrite", *args, timeout=timeout)

    def resume(self, plan: Path, timeout: float = 600) -> Run:
        return self.gym_run(str(plan), "--resume", "--retry-failed", timeout=timeout)

    def gym_run(self, *args: str, timeout: float = 600) -> Run:
        return measured([self.python, "-m", "gym_run.cli", *args], self.env, timeout)


def measured(cmd: list[str], env: dict[str, str], timeout: float) -> Run:
    """Runs one child; its own peak RSS comes from wait4 (not the whole process tree)."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(proc.stdout or []), daemon=True)
    reader.start()
    timed_out = False
    deadline = started + timeout
    signals = [signal.SIGINT, signal.SIGINT, signal.SIGKILL]  # Ctrl-C, Ctrl-C again, kill
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline and signals:
            timed_out = True
            proc.send_signal(signals.pop(0))
            deadline = time.monotonic() + 15
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(10)
    wall = time.monotonic() - started
    output = b"".join(chunks).decode(errors="replace")
    return Run(proc.returncode, output, wall, usage.ru_maxrss / 1024, timed_out)
