"""Scale-out on Ray, on a real local cluster (`ray start --head` on 127.0.0.1, 2 CPUs):

1. speedup: a resources-bound environment (example_cpu_bound: verify burns 20 ms of CPU) on 1 vs 2
   workers; steady-state rollouts/s (10% -> 90% of the output file), worker start-up excluded.
2. overhead: CPU-ms per rollout through Ray (driver + workers + the cluster's own processes, its
   idle rate subtracted) vs the same rollouts in one gym-run process (example_cpu_bound with 0 ms).
3. memory: the driver's peak RSS at 1,000 vs 100,000 input rows.

python benchmarks/bench_scale.py [--only speedup,overhead,memory] [--rollouts 600] [--repeats 2]
    [--overhead-rollouts 10000] [--small 1000] [--large 100000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ENV, PY, REPO, emit, measured, write_rows

sys.path.insert(0, str(REPO))
from tests.ray_cluster import LOOPBACK_ENV, head_node, session_pids  # noqa: E402

RAY_ENV = {**ENV, **LOOPBACK_ENV}
TICK = os.sysconf("SC_CLK_TCK")


def compile_cpu_bound(work: Path, rows: int, verify_cpu_ms: float, concurrency: int) -> Path:
    config = work / "env.yaml"
    config.write_text(
        f"config_paths: [{REPO / 'examples/cpu_bound/cpu_bound.yaml'}]\n"
        f"example_cpu_bound: {{resources_servers: {{example_cpu_bound: "
        f"{{entrypoint: app.py, domain: other, verify_cpu_ms: {verify_cpu_ms}}}}}}}\n"
    )
    plan = work / "plan.json"
    # fmt: off
    out = subprocess.run(
        [
            PY, "-m", "gym_compile.cli", str(config),
            f"+input_jsonl_fpath={write_rows(work / 'rows.jsonl', rows)}",
            f"+output_jsonl_fpath={work / 'rollouts.jsonl'}",
            f"+num_samples_in_parallel={concurrency}", "-o", str(plan),
        ],
        env=ENV, capture_output=True, text=True,
    )
    # fmt: on
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return plan


def run(plan: Path, *extra: str) -> tuple[float, float, float]:
    """(steady rollouts/s, driver CPU s, driver peak RSS MB) of one gym-run child."""
    out = plan.with_name("rollouts.jsonl")
    out.unlink(missing_ok=True)
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                with open(out, "rb") as fh:
                    samples.append((time.monotonic(), fh.read().count(b"\n")))
            except FileNotFoundError:
                pass
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        stats = measured([PY, "-m", "gym_run.cli", str(plan), "-q", *extra], RAY_ENV)
    finally:
        done.set()
        watcher.join()
    if stats.returncode != 0:
        raise RuntimeError(f"gym-run exited {stats.returncode}:\n{stats.output[-2000:]}")
    return steady_rate(samples), stats.cpu_s, stats.max_rss_mb


def steady_rate(samples: list[tuple[float, int]]) -> float:
    total = samples[-1][1] if samples else 0
    low = next(s for s in samples if s[1] >= 0.1 * total)
    high = next(s for s in samples if s[1] >= 0.9 * total)
    return (high[1] - low[1]) / max(high[0] - low[0], 1e-9)


def process_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


class SessionCpu:
    """CPU used by every process of the cluster's session (workers come and go), sampled every
    50 ms so a worker that exits loses at most its last sample."""

    def __init__(self, sid: int) -> None:
        self.sid = sid
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for pid in session_pids(self.sid):
                cpu = process_cpu_s(pid)
                if cpu is not None:
                    self.first.setdefault(pid, cpu)
                    self.last[pid] = cpu
            time.sleep(0.05)

    def __enter__(self) -> SessionCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def used(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


def cluster_sid(address: str) -> int:
    port = address.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True)
    pid = int(out.stdout.split("pid=")[1].split(",")[0])
    return os.getsid(pid)


def speedup(address: str, rollouts: int, repeats: int) -> None:
    """Wall-clock rollouts/s (best of `repeats`, 1 and 2 workers alternating, so a burst of other
    load hits both alike), and the cluster's CPU per rollout: equal on 1 and 2 workers means the
    second worker adds no work, so on 2 free cores the speedup is the CPU's."""
    sid = cluster_sid(address)
    best = {1: 0.0, 2: 0.0}
    cpu = {1: 0.0, 2: 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        plan = compile_cpu_bound(Path(tmp), rollouts, 20, 16)
        for _ in range(repeats):
            for workers in (1, 2):
                with SessionCpu(sid) as cluster:
                    time.sleep(0.3)
                    rate, driver_cpu, _ = run(plan, "--ray", address, "--ray-workers", str(workers))
                best[workers] = max(best[workers], rate)
                cpu[workers] = 1000 * (cluster.used() + driver_cpu) / rollouts
    for workers in (1, 2):
        emit(f"scale.cpu_bound_20ms.workers_{workers}.rollouts_per_s", best[workers])
        emit(f"scale.cpu_bound_20ms.workers_{workers}.cpu_ms_per_rollout", cpu[workers])
    emit("scale.cpu_bound_20ms.speedup_2_vs_1", best[2] / best[1])


def overhead(address: str, rollouts: int) -> None:
    sid = cluster_sid(address)
    with tempfile.TemporaryDirectory() as tmp:
        plan = compile_cpu_bound(Path(tmp), rollouts, 0, 64)
        local_cpu = run(plan)[1]
        with SessionCpu(sid) as idle:
            time.sleep(0.5)  # first samples: the processes that were there before
            start = time.monotonic()
            time.sleep(5)
            idle_s = time.monotonic() - start
        idle_rate = idle.used() / (idle_s + 0.5)
        with SessionCpu(sid) as cluster:
            time.sleep(0.5)
            start = time.monotonic()
            _rate, driver_cpu, _rss = run(plan, "--ray", address, "--ray-workers", "1")
            time.sleep(0.5)
        cluster_cpu = cluster.used() - idle_rate * (time.monotonic() - start + 1.0)
    per = 1000 / rollouts
    emit("scale.overhead.local.cpu_ms_per_rollout", local_cpu * per)
    emit("scale.overhead.ray.driver_cpu_ms_per_rollout", driver_cpu * per)
    emit("scale.overhead.ray.cluster_cpu_ms_per_rollout", cluster_cpu * per)
    emit("scale.overhead.ray.total_cpu_ms_per_rollout", (driver_cpu + cluster_cpu) * per)
    emit(
        "scale.overhead.ray_minus_local.cpu_ms_per_rollout",
        (driver_cpu + cluster_cpu - local_cpu) * per,
    )


def memory(address: str, small: int, large: int) -> None:
    figures = []
    for rows in (small, large):
        with tempfile.TemporaryDirectory() as tmp:
            plan = compile_cpu_bound(Path(tmp), rows, 0, 64)
            figures.append(run(plan, "--ray", address, "--ray-workers", "2")[2])
    emit(f"scale.driver.rows_{small}.peak_rss_mb", figures[0])
    emit(f"scale.driver.rows_{large}.peak_rss_mb", figures[1])
    emit("scale.driver.growth_ratio", figures[1] / figures[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="speedup,overhead,memory")
    parser.add_argument("--rollouts", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=2, help="speedup: best of so many runs each")
    parser.add_argument("--overhead-rollouts", type=int, default=10000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    try:
        import ray  # noqa: F401
    except ImportError:
        sys.exit("bench_scale needs Ray: pip install 'gym-compile[ray]'")
    parts = set(args.only.split(","))
    emit("scale.loadavg_1m_before", os.getloadavg()[0])  # a busy machine shows in every figure
    with head_node(num_cpus=2) as address:
        if "speedup" in parts:
            speedup(address, args.rollouts, args.repeats)
        if "overhead" in parts:
            overhead(address, args.overhead_rollouts)
        if "memory" in parts:
            memory(address, args.small, args.large)
    emit("scale.loadavg_1m_after", os.getloadavg()[0])


if __name__ == "__main__":
    main()
