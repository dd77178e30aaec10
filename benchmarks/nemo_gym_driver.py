"""NeMo Gym's own default collection (nemo-gym 0.4.0: `ng_run` + `ng_collect_rollouts` without
num_samples_in_parallel, i.e. no limit on rollouts in flight) of its example_single_tool_call
environment (the simple_weather rows) against a given endpoint, for bench_defaults_speed.py.

Uses the venv tests install under ~/.cache/gym-compile/venvs (READY inside marks it complete);
each NeMo Gym server runs in that venv (`+skip_venv_if_present` with symlinked venvs, so nothing
is installed). Throughput is taken over the steady window, from the first rollout line written to
the last: NeMo Gym's start-up and post-processing are left out (in its favour).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bounds_common import write_rows

VENV = Path.home() / ".cache/gym-compile/venvs/nemo-gym-0.4.0-py3.12"
ENVIRONMENT = "example_single_tool_call"
SERVERS = (
    f"resources_servers/{ENVIRONMENT}",
    "responses_api_agents/simple_agent",
    "responses_api_models/openai_model",
)


class NemoGymUnavailable(Exception):
    pass


def nemo_gym_default_rate(rollouts: int, base_url: str) -> float:
    """Rollouts per second of NeMo Gym's default collector against `base_url`."""
    if not (VENV / "READY").exists():
        raise NemoGymUnavailable(f"no NeMo Gym venv at {VENV} (the tests install it)")
    bin_dir = VENV / "bin"
    site = next((VENV / "lib").glob("python3.*/site-packages"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = write_rows(work / "rows.jsonl", rollouts)
        for server in SERVERS:
            (work / "venvs" / server).mkdir(parents=True)
            (work / "venvs" / server / ".venv").symlink_to(VENV)
        head = _free_port()
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ["HOME"],
            "RAY_ADDRESS": "local",
            "RAY_TMPDIR": str(work / "ray"),
        }
        configs = ",".join(
            str(site / p)
            for p in (
                f"resources_servers/{ENVIRONMENT}/configs/{ENVIRONMENT}.yaml",
                "responses_api_models/openai_model/configs/openai_model.yaml",
            )
        )
        log_path = work / "ng_run.log"
        with open(log_path, "w") as log:
            ng_run = subprocess.Popen(
                [
                    str(bin_dir / "ng_run"),
                    f"+config_paths=[{configs}]",
                    f"+policy_base_url={base_url}",
                    "+policy_api_key=bench",
                    "+policy_model_name=bench",
                    "+skip_venv_if_present=true",
                    f"+uv_venv_dir={work / 'venvs'}",
                    "+head_server.host=127.0.0.1",
                    f"+head_server.port={head}",
                ],
                cwd=work,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                _wait_ready(ng_run, log_path)
                return _collect(bin_dir, head, rows, work / "out" / "rollouts.jsonl", env, rollouts)
            finally:
                _stop_group(ng_run)


def _collect(
    bin_dir: Path, head: int, rows: Path, out: Path, env: dict[str, str], total: int
) -> float:
    out.parent.mkdir()
    collector = subprocess.Popen(
        [
            str(bin_dir / "ng_collect_rollouts"),
            "+head_server.host=127.0.0.1",
            f"+head_server.port={head}",
            f"+agent_name={ENVIRONMENT}_simple_agent",
            f"+input_jsonl_fpath={rows}",
            f"+output_jsonl_fpath={out}",
        ],  # no +num_samples_in_parallel: NeMo Gym's default
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


def _wait_ready(ng_run: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 300
    while "servers ready!" not in log.read_text(errors="replace"):
        if ng_run.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-1500:]
            raise NemoGymUnavailable(f"ng_run did not come up:\n{tail}")
        time.sleep(0.5)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """ng_run's session (its servers and its Ray cluster): Ctrl-C, then SIGKILL."""
    for sig, wait in ((signal.SIGINT, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
