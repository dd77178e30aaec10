"""A real Ray cluster for tests: `ray start --head` on 127.0.0.1 in a session of its own, stopped
by killing exactly the processes of that session (never `ray stop`, which would take down any
other Ray on the machine)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Loopback only, no usage statistics, and a token of this test session's own (never ~/.ray's).
LOOPBACK_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "token",
    "RAY_AUTH_TOKEN": secrets.token_hex(32),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def session_pids(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) == sid:
                pids.append(int(entry.name))
        except (ProcessLookupError, PermissionError):
            continue
    return pids


def kill_session(sid: int) -> None:
    for pid in session_pids(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@contextmanager
def head_node(num_cpus: int = 2, timeout_s: float = 90.0) -> Iterator[str]:
    """Yields the head's address (127.0.0.1:PORT); every process it started is gone afterwards."""
    ray_cli = Path(sys.executable).with_name("ray")
    port = free_port()
    temp = tempfile.mkdtemp(prefix="gr-", dir="/tmp")  # short: Ray's socket paths have a limit
    env = {**os.environ, **LOOPBACK_ENV}
    log = open(os.path.join(temp, "start.log"), "wb")  # noqa: SIM115 - closed below
    # fmt: off
    command = [
        str(ray_cli), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
        "--num-cpus", str(num_cpus), "--disable-usage-stats", "--include-dashboard=false",
        "--temp-dir", temp,
    ]
    # fmt: on
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
    sid = proc.pid
    try:
        proc.wait(timeout=timeout_s)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start failed:\n{Path(temp, 'start.log').read_text()[-2000:]}")
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        kill_session(sid)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)
