"""One compiled environment run by gym-run in a child process, with no way off the machine, and
nothing of it left running afterwards.

- The child (`python nemo_envs.py --child WORK`) runs the plan in WORK with gym_run's
  `run_job`, bounded by the timeout, and prints one JSON line: what happened.
- Network: the child runs in a network namespace with only loopback up (`unshare -n`, root; else
  `unshare -rn`), so an environment that would call a remote host fails at once and is classified
  so. Where no namespace can be made the benchmark says so (`network_isolated=0`); the offline
  switches of HF and friends are set either way.
- Leftovers: this process is the child subreaper (prctl), so anything the run started and did not
  stop is re-parented here when the child exits; it is listed (a leak), killed and reaped.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from nemo_envs_find import ENDPOINT_PORT

OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "WANDB_MODE": "offline",
    "DO_NOT_TRACK": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
}
_NETNS = ("sh", "-c", 'ip link set lo up && exec "$@"', "sh")
PR_SET_CHILD_SUBREAPER = 36
KILL_GRACE_S = 10.0  # past the child's own timeout: gym-run's stop needs a few seconds


def isolation() -> list[str] | None:
    """The command prefix that runs a program with only loopback, or None where none works."""
    for flags in (["-n"], ["-rn"]):
        prefix = ["unshare", *flags, *_NETNS]
        try:
            probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if probe.returncode == 0:
            return prefix
    return None


def become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def run_isolated(
    work: Path, timeout_s: float, prefix: list[str] | None, script: Path
) -> tuple[dict[str, Any], list[str]]:
    """The child's outcome for the plan in `work`, and the processes it left (killed now)."""
    env = {**os.environ, **OFFLINE}
    command = [sys.executable, str(script), "--child", str(work), "--timeout", f"{timeout_s:g}"]
    log = open(work / "child.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*(prefix or []), *command],
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s + KILL_GRACE_S + 60)
        outcome = _last_json(out.decode("utf-8", "replace"))
    except subprocess.TimeoutExpired:
        _killpg(proc.pid)
        proc.communicate()
        outcome = {"phase": "timeout", "message": "the child did not end; killed"}
    finally:
        log.close()
    if outcome is None:
        outcome = {
            "phase": "error",
            "message": f"the child exited {proc.returncode} saying nothing",
        }
    (work / "outcome.json").write_text(json.dumps(outcome, indent=1), encoding="utf-8")
    return outcome, leftovers()


def leftovers() -> list[str]:
    """Processes re-parented to this one (the subreaper): what a run left behind. Killed, reaped."""
    me, found = os.getpid(), []
    for _ in range(3):  # a killed group may orphan another process a moment later
        pids = [pid for pid in _children(me)]
        if not pids:
            break
        for pid in pids:
            found.append(f"{pid} {_cmdline(pid)[:160]}")
            _killpg(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.5)
        _reap()
    _reap()
    return found


def _children(parent: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and int(fields[1]) == parent and fields[0] != "Z":
            out.append(int(entry))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


# ---- the child ---------------------------------------------------------------------------------


def child(work: Path, timeout_s: float) -> dict[str, Any]:
    """Runs the plan in `work` (in this process) and says what happened, never raising. The
    stand-in endpoint env.yaml names serves beside it (a server may call that URL itself)."""
    from gym_run.collect.runner import run_job
    from gym_run.errors import ServerStartError
    from gym_run.standin.server import start_standin

    plan = json.loads((work / "plan.json").read_text(encoding="utf-8"))
    port = int((work / ENDPOINT_PORT).read_text(encoding="utf-8"))
    notices: list[str] = []
    start = time.monotonic()

    async def go() -> Any:
        endpoint = await start_standin(port=port)
        try:
            return await asyncio.wait_for(
                run_job(plan, show_progress=False, notice=notices.append, existing="overwrite"),
                timeout_s,
            )
        finally:
            await endpoint.close()

    try:
        result = asyncio.run(go())
    except ServerStartError as exc:
        return {"phase": "start", "message": str(exc), "seconds": time.monotonic() - start}
    except (asyncio.TimeoutError, TimeoutError):
        return {"phase": "timeout", "message": f"no record within {timeout_s:g} s"}
    except Exception as exc:  # an outcome to classify, never a reason to stop the benchmark
        return {"phase": "error", "message": f"{type(exc).__name__}: {exc}"[:2000]}
    seconds = time.monotonic() - start
    records = _records(Path(result.rollouts_path))
    if not records:
        return {"phase": "error", "message": result.first_error or "no record", "seconds": seconds}
    failed = [r for r in records if (r.get("_gym") or {}).get("status") != "ok"]
    if not failed:  # every repeat ok: the first one's reward stands for them
        return {"phase": "ran", "reward": records[0].get("reward"), "seconds": seconds}
    error = (failed[0].get("_gym") or {}).get("error") or {}
    return {
        "phase": "rollout",
        "error_class": error.get("class"),
        "status": error.get("status"),
        "message": str(error.get("message"))[:2000],
        "seconds": seconds,
        "notices": notices[-3:],
    }


def _records(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.strip()]
