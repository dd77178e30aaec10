"""NeMo Gym's own default collection (nemo-gym 0.4.0: `ng_run` + `ng_collect_rollouts` without
num_samples_in_parallel, i.e. no limit on rollouts in flight) of its example_single_tool_call
environment (the simple_weather rows) against a given endpoint, for bench_defaults_speed.py.

Uses the venv tests install under ~/.cache/gym-compile/venvs (READY inside marks it complete);
each NeMo Gym server runs in that venv (`+skip_venv_if_present` with symlinked venvs, so nothing
is installed). Throughput is taken over the steady window, from the first rollout line written to
the last: NeMo Gym's start-up and post-processing are left out (in its favour).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from bounds_common import write_rows
from ng_tools import (
    NemoGymUnavailable,
    collect_command,
    configs,
    free_port,
    isolated_env,
    start_ng_run,
    stop_group,
    wait_ready,
)

__all__ = ["NemoGymUnavailable", "nemo_gym_default_rate"]

VENV = Path.home() / ".cache/gym-compile/venvs/nemo-gym-0.4.0-py3.12"


def nemo_gym_default_rate(rollouts: int, base_url: str) -> float:
    """Rollouts per second of NeMo Gym's default collector against `base_url`."""
    if not (VENV / "READY").exists():
        raise NemoGymUnavailable(f"no NeMo Gym venv at {VENV} (the tests install it)")
    site = next((VENV / "lib").glob("python3.*/site-packages"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = write_rows(work / "rows.jsonl", rollouts)
        head = free_port()
        env = isolated_env(work)
        log_path = work / "ng_run.log"
        with open(log_path, "w") as log:
            ng_run = start_ng_run(VENV, work, configs(site), base_url, head, env, log)
            try:
                wait_ready(ng_run, log_path)
                return _collect(head, rows, work / "out" / "rollouts.jsonl", env, rollouts)
            finally:
                stop_group(ng_run)


def _collect(head: int, rows: Path, out: Path, env: dict[str, str], total: int) -> float:
    out.parent.mkdir()
    collector = subprocess.Popen(
        collect_command(VENV, head, rows, out),  # no +num_samples_in_parallel: NeMo Gym's default
        cwd=out.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        first, lines, deadline = 0.0, 0, time.monotonic() + 900
        while time.monotonic() < deadline:
            if out.exists():
                lines = out.read_bytes().count(b"\n")
                first = first or (time.monotonic() if lines else 0.0)
                if lines >= total:
                    return (total - 1) / (time.monotonic() - first)
            if collector.poll() is not None and lines < total:
                raise NemoGymUnavailable(f"ng_collect_rollouts exited after {lines} rollouts")
            time.sleep(0.02)
        raise NemoGymUnavailable(f"ng_collect_rollouts timed out after {lines} rollouts")
    finally:
        if collector.poll() is None:
            collector.kill()
        collector.wait()
