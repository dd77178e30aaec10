"""One NeMo Gym environment (example_single_tool_call: NeMo Gym's own resources server and
simple_agent, nemo-gym 0.4.0) collected two ways against the same stand-in model process, in one
run on one machine:

- gym-run: `gym-compile` of NeMo Gym's own config with `+nemo_gym.processes=all`, then
  `gym-run PLAN`: NeMo Gym's two servers started by gym-run as processes, the policy model
  gym-run's own openai_model (served to NeMo Gym's agent on loopback);
- NeMo Gym: `ng_run` (its head server, Ray, one process per server incl. its openai_model) and
  `ng_collect_rollouts`.

Figures cover the steady state: from the first rollout written to the last (start-up, imports
and NeMo Gym's post-processing are left out). CPU is user+system time of the collector and the
server processes over that window, read from /proc; the stand-in's own CPU is left out of both,
and so are ng_run's head process and its Ray cluster (printed apart: idle work NeMo Gym adds).

python benchmarks/bench_nemo_collect.py [--rollouts 400] [--concurrency 32] [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import ENV, PY, REPO, StandInProcess, emit
from ng_tools import (
    AGENT,
    ENVIRONMENT,
    collect_command,
    configs,
    free_port,
    isolated_env,
    start_ng_run,
    stop_group,
    wait_ready,
)

sys.path.insert(0, str(REPO))
from tests.nemo_venv import nemo_python  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


UNCOUNTED = "ray_and_head"  # ng_run's own process and its Ray cluster: shown, not counted

Roles = Callable[[], dict[str, list[int]]]


@dataclass
class Window:
    rollouts: int
    wall_s: float
    cpu_by_role: dict[str, float]

    @property
    def cpu_s(self) -> float:
        return sum(v for k, v in self.cpu_by_role.items() if k != UNCOUNTED)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def tree(root: int) -> list[int]:
    """root and every process below it."""
    children, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / TICKS


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def watch(
    out: Path, total: int, proc: subprocess.Popen[str], roles: Roles, timeout_s: float = 900
) -> Window:
    """Polls the rollouts file: the window opens at its first line and closes at its last."""
    deadline = time.monotonic() + timeout_s
    lines, size = 0, 0
    start: tuple[float, int, dict[str, float]] | None = None
    while time.monotonic() < deadline:
        if out.exists() and out.stat().st_size > size:
            with open(out, "rb") as fh:
                fh.seek(size)
                chunk = fh.read()
            size += len(chunk)
            lines += chunk.count(b"\n")
            now = time.monotonic()
            if start is None:
                start = (now, lines, {k: cpu_s(p) for k, p in roles().items()})
            if lines >= total:
                t0, n0, c0 = start
                c1 = {k: cpu_s(p) for k, p in roles().items()}
                return Window(total - n0, now - t0, {k: c1[k] - c0.get(k, 0.0) for k in c1})
        elif proc.poll() is not None:
            raise RuntimeError(f"collector exited {proc.returncode} after {lines} rollouts")
        time.sleep(0.01)
    raise RuntimeError(f"timed out with {lines} of {total} rollouts")


def cwd(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def site_packages(python: Path) -> Path:
    out = subprocess.run(
        [
            str(python),
            "-c",
            "import nemo_gym, pathlib; print(pathlib.Path(nemo_gym.__file__).parent.parent)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def write_rows(sp: Path, path: Path, n: int) -> Path:
    data = sp / "resources_servers" / ENVIRONMENT / "data" / "example.jsonl"
    rows = [line for line in data.read_text().splitlines() if line.strip()]
    path.write_text("".join(rows[i % len(rows)] + "\n" for i in range(n)))
    return path


def gym_run_plan(
    work: Path, standin: str, rows: Path, concurrency: int, sp: Path, python: Path
) -> Path:
    """NeMo Gym's own config for the environment, compiled with `nemo_gym.processes: all` (its
    resources server and agent run as NeMo Gym processes) and gym-run's openai_model."""
    model = work / "model.yaml"
    model.write_text(
        "policy_model:\n  responses_api_models:\n    openai_model:\n"
        f"      base_url: {standin}\n      api_key: ${{oc.env:GYM_BENCH_KEY}}\n      model: bench\n"
        f"      max_concurrent_requests: {concurrency}\n"
    )
    config = sp / "resources_servers" / ENVIRONMENT / "configs" / f"{ENVIRONMENT}.yaml"
    plan = work / "plan.json"
    out = subprocess.run(
        [
            PY,
            "-m",
            "gym_compile.cli",
            f"+config_paths=[{config},{model}]",
            f"+agent_name={AGENT}",
            f"+input_jsonl_fpath={rows}",
            f"+output_jsonl_fpath={work / 'rollouts.jsonl'}",
            f"+num_samples_in_parallel={concurrency}",
            f"+nemo_gym.python={python}",
            "+nemo_gym.processes=all",
            "-o",
            str(plan),
        ],
        env={**ENV, "GYM_BENCH_KEY": "bench"},
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return plan


def by_gym_run(
    work: Path, standin: str, rows: Path, args: argparse.Namespace, sp: Path, python: Path
) -> Window:
    plan = gym_run_plan(work, standin, rows, args.concurrency, sp, python)
    proc = subprocess.Popen(
        [PY, "-m", "gym_run.cli", str(plan), "--overwrite", "-q"],
        env={**ENV, "GYM_BENCH_KEY": "bench"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def roles() -> dict[str, list[int]]:
            below = tree(proc.pid)[1:]
            servers = [p for p in below if "app.py" in cmdline(p)]
            rest = [p for p in below if p not in servers]
            return {"gym_run_process": [proc.pid], "nemo_servers": servers, "launchers": rest}

        window = watch(work / "rollouts.jsonl", args.rollouts, proc, roles)
        output, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"gym-run exited {proc.returncode}:\n{output[-2000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return window


def by_nemo_gym(
    work: Path, standin: str, rows: Path, args: argparse.Namespace, sp: Path, python: Path
) -> Window:
    """ng_run as users start it (no per-server venv installs: each server's venv is NeMo Gym's)."""
    head = free_port()
    env = isolated_env(work)
    log = open(work / "ng_run.log", "w")
    ng_run = start_ng_run(python.parent.parent, work, configs(sp), standin, head, env, log)
    try:
        wait_ready(ng_run, work / "ng_run.log")
        (work / "out").mkdir()
        collect = subprocess.Popen(
            collect_command(
                python.parent.parent,
                head,
                rows,
                work / "out" / "rollouts.jsonl",
                f"+num_samples_in_parallel={args.concurrency}",
            ),
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        below = tree(ng_run.pid)[1:]
        servers = [p for p in below if "app.py" in cmdline(p)]
        model = [p for p in servers if cwd(p).endswith("openai_model")]
        roles = {
            "collector": [collect.pid],
            "nemo_servers": [p for p in servers if p not in model],
            "model_server": model,
            UNCOUNTED: [ng_run.pid, *(p for p in below if p not in servers)],
        }
        try:
            window = watch(work / "out" / "rollouts.jsonl", args.rollouts, collect, lambda: roles)
            output, _ = collect.communicate(timeout=300)
            if collect.returncode != 0:
                raise RuntimeError(
                    f"ng_collect_rollouts exited {collect.returncode}:\n{output[-2000:]}"
                )
        finally:
            if collect.poll() is None:
                collect.kill()
                collect.wait()
    finally:
        stop_group(ng_run)
        log.close()
    return window


def report(name: str, window: Window) -> dict[str, float]:
    out = dict(
        [
            emit(f"{name}.rollouts_per_s", window.rollouts / window.wall_s),
            emit(f"{name}.cpu_ms_per_rollout", window.cpu_s * 1000 / window.rollouts),
            emit(f"{name}.window_rollouts", window.rollouts),
        ]
    )
    for role, cpu in window.cpu_by_role.items():
        out.update([emit(f"{name}.cpu_ms_per_rollout.{role}", cpu * 1000 / window.rollouts)])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rollouts", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=0)
    args = parser.parse_args()
    try:
        python = nemo_python()
    except BaseException as exc:  # pytest's skip: no Python 3.12 or no PyPI
        raise SystemExit(f"cannot get nemo-gym's venv: {exc}") from None
    sp = site_packages(python)
    with tempfile.TemporaryDirectory() as tmp, StandInProcess(args.latency_ms) as standin:
        work = Path(tmp)
        rows = write_rows(sp, work / "rows.jsonl", args.rollouts)
        (work / "gym").mkdir()
        (work / "nemo").mkdir()
        ours = report("gym_run", by_gym_run(work / "gym", standin.url, rows, args, sp, python))
        theirs = report("nemo_gym", by_nemo_gym(work / "nemo", standin.url, rows, args, sp, python))
    emit(
        "speedup_rollouts_per_s", ours["gym_run.rollouts_per_s"] / theirs["nemo_gym.rollouts_per_s"]
    )
    emit(
        "cpu_per_rollout_ratio",
        theirs["nemo_gym.cpu_ms_per_rollout"] / ours["gym_run.cpu_ms_per_rollout"],
    )


if __name__ == "__main__":
    main()
