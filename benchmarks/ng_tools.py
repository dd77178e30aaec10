"""NeMo Gym's own tools as the NeMo benchmarks start them (bench_nemo_collect, bench_nemo_startup,
nemo_gym_driver): `ng_run` over per-server venvs that are links to one NeMo Gym venv (nothing is
installed: `+skip_venv_if_present`), waited for until it says its servers are ready,
`ng_collect_rollouts` against its head server, and the session stopped as a whole."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

ENVIRONMENT = "example_single_tool_call"
AGENT = f"{ENVIRONMENT}_simple_agent"
SERVERS = (  # the folders of the servers ng_run starts for the environment
    f"resources_servers/{ENVIRONMENT}",
    "responses_api_agents/simple_agent",
    "responses_api_models/openai_model",
)


class NemoGymUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def configs(site: Path) -> list[Path]:
    """The environment's config and NeMo Gym's openai_model config, in a NeMo Gym tree."""
    return [
        site / SERVERS[0] / "configs" / f"{ENVIRONMENT}.yaml",
        site / SERVERS[2] / "configs" / "openai_model.yaml",
    ]


def isolated_env(work: Path) -> dict[str, str]:
    """No PYTHONPATH of ours, and a Ray cluster of its own (not one another program left)."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ["HOME"],
        "RAY_ADDRESS": "local",
        "RAY_TMPDIR": str(work / "ray"),
    }


def head_args(port: int) -> list[str]:
    return ["+head_server.host=127.0.0.1", f"+head_server.port={port}"]


def start_ng_run(
    venv: Path,
    work: Path,
    config_paths: Sequence[Path],
    base_url: str,
    head: int,
    env: dict[str, str],
    log: IO[Any],
) -> subprocess.Popen[bytes]:
    """`ng_run` in its own session (stop it with stop_group), its output into `log`."""
    venvs = work / "venvs"
    for server in SERVERS:
        (venvs / server).mkdir(parents=True)
        (venvs / server / ".venv").symlink_to(venv)
    return subprocess.Popen(
        [
            str(venv / "bin" / "ng_run"),
            f"+config_paths=[{','.join(map(str, config_paths))}]",
            f"+policy_base_url={base_url}",
            "+policy_api_key=bench",
            "+policy_model_name=bench",
            "+skip_venv_if_present=true",
            f"+uv_venv_dir={venvs}",
            *head_args(head),
        ],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(
    ng_run: subprocess.Popen[bytes], log: Path, timeout: float = 300, every: float = 0.5
) -> None:
    """Until ng_run says 'servers ready!'; NemoGymUnavailable (with its log's tail) if it exits
    or takes longer than `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while "servers ready!" not in log.read_text(errors="replace"):
        if ng_run.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:]
            raise NemoGymUnavailable(f"ng_run did not come up:\n{tail}")
        time.sleep(every)


def collect_command(venv: Path, head: int, rows: Path, out: Path, *extra: str) -> list[str]:
    return [
        str(venv / "bin" / "ng_collect_rollouts"),
        *head_args(head),
        f"+agent_name={AGENT}",
        f"+input_jsonl_fpath={rows}",
        f"+output_jsonl_fpath={out}",
        *extra,
    ]


def stop_group(proc: subprocess.Popen[bytes], grace_s: float = 30) -> None:
    """ng_run's session (its servers and its Ray cluster): Ctrl-C, then SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGINT, grace_s), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return
